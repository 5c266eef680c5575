// Node 0's pglist_data, as a !NUMA x86-64 kernel has it in contig_page_data:
// the zones (DMA below 16 MiB, DMA32 below 4 GiB, Normal above; Movable
// empty), and in each zone free_area[order].free_list[migratetype], the
// buddy allocator's free lists. Each list is a struct list_head threaded
// through the `lru` field of the head struct page of every free block of that
// order, in vmemmap; nr_free counts the blocks of an order and
// vm_stat[NR_FREE_PAGES] the zone's free pages. makedumpfile walks these lists
// (exclude_free_page) when VMCOREINFO does not let it recognise buddy pages by
// _mapcount. The layouts are 6.1's field order, with the fields nobody here
// reads folded into padding; VMCOREINFO exports exactly these numbers.
//
// Every free block sits on its zone's MIGRATE_MOVABLE list of its order (a
// host after boot has almost nothing else); the other migratetypes' lists are
// empty. The lists' order is the kernel's: a block freed last is first.

import { writeU64, type PhysAccess } from './phys-access.js';
import { MAX_ORDER, STRUCT_PAGE, buddyBlocks } from './mem-map.js';
import { VMEMMAP_START } from './mem-section.js';

/** struct list_head. */
export const LIST_HEAD = { size: 16, next: 0, prev: 8 } as const;
/** enum migratetype with CMA and memory isolation (UNMOVABLE, MOVABLE, RECLAIMABLE, HIGHATOMIC, CMA, ISOLATE): LENGTH(free_area.free_list). */
export const MIGRATE_TYPES = 6;
export const MIGRATE_MOVABLE = 1;
/** struct free_area: free_list[MIGRATE_TYPES], then nr_free. */
export const FREE_AREA = { size: MIGRATE_TYPES * LIST_HEAD.size + 8, free_list: 0, nr_free: MIGRATE_TYPES * LIST_HEAD.size } as const;
/** enum zone_stat_item: NR_FREE_PAGES first, ten more counters (LRU lists, write pending, mlock, bounce, zspages, free CMA). */
export const NR_FREE_PAGES = 0;
export const NR_VM_ZONE_STAT_ITEMS = 11;

const ZONE_FREE_AREA = 192; // after the watermarks, lowmem_reserve, the pgdat and per-cpu pointers and the page counts, cacheline aligned
const ZONE_VM_STAT = Math.ceil((ZONE_FREE_AREA + MAX_ORDER * FREE_AREA.size + 16) / 64) * 64 + 64; // after flags and lock, then the compaction fields' cacheline
/** struct zone (____cacheline_internodealigned_in_smp). */
export const ZONE = {
  zone_pgdat: 80,
  zone_start_pfn: 112,
  managed_pages: 120,
  spanned_pages: 128,
  present_pages: 136,
  name: 152,
  free_area: ZONE_FREE_AREA,
  vm_stat: ZONE_VM_STAT,
  size: Math.ceil((ZONE_VM_STAT + NR_VM_ZONE_STAT_ITEMS * 8) / 64) * 64,
} as const;

/** x86-64: DMA, DMA32, Normal, Movable. */
export const MAX_NR_ZONES = 4;
export const ZONE_NAMES = ['DMA', 'DMA32', 'Normal', 'Movable'] as const;
/** First pfn past ZONE_DMA (16 MiB) and past ZONE_DMA32 (4 GiB). */
export const ZONE_DMA_END_PFN = 2 ** 12;
export const ZONE_DMA32_END_PFN = 2 ** 20;

const NODE_ZONELISTS = MAX_NR_ZONES * ZONE.size; // one zonelist of MAX_NR_ZONES + 1 zonerefs (16 bytes each) on !NUMA
const NR_ZONES = NODE_ZONELISTS + (MAX_NR_ZONES + 1) * 16;
/** struct pglist_data. */
export const PGLIST_DATA = {
  node_zones: 0,
  node_zonelists: NODE_ZONELISTS,
  nr_zones: NR_ZONES, // int, then node_size_lock
  node_start_pfn: NR_ZONES + 8,
  node_present_pages: NR_ZONES + 16,
  node_spanned_pages: NR_ZONES + 24,
  node_id: NR_ZONES + 32,
  size: Math.ceil((NR_ZONES + 40 + 512) / 64) * 64, // kswapd's wait queues and state, the LRU vectors, the per-node stats
} as const;

/** nodemask_t with MAX_NUMNODES 1: one unsigned long. */
export const NODEMASK_SIZE = 8;
/** enum node_states: N_POSSIBLE, N_ONLINE, N_NORMAL_MEMORY, N_MEMORY, N_CPU, N_GENERIC_INITIATOR. */
export const NR_NODE_STATES = 6;
export const N_ONLINE = 1;

/** node_states[]: node 0 possible, online, with normal memory, memory, CPUs and (no) initiator. */
export function writeNodeStates(mem: PhysAccess, pa: number): void {
  const b = new Uint8Array(NR_NODE_STATES * NODEMASK_SIZE);
  const dv = new DataView(b.buffer);
  for (let s = 0; s < NR_NODE_STATES - 1; s++) dv.setBigUint64(s * NODEMASK_SIZE, 1n, true);
  mem.write(pa, b);
}

/** The zone holding frame `pfn`. */
export function zoneOf(pfn: number): number {
  return pfn < ZONE_DMA_END_PFN ? 0 : pfn < ZONE_DMA32_END_PFN ? 1 : 2;
}

/**
 * The free blocks of frames [startPfn, endPfn): buddyBlocks() within each
 * zone, as the buddy allocator never merges across a zone boundary.
 */
export function* zoneBuddyBlocks(startPfn: number, endPfn: number): Generator<{ pfn: number; order: number }> {
  let a = startPfn;
  for (const cut of [ZONE_DMA_END_PFN, ZONE_DMA32_END_PFN, Infinity]) {
    if (a >= endPfn) return;
    if (a >= cut) continue;
    const b = Math.min(endPfn, cut);
    yield* buddyBlocks(a, b);
    a = b;
  }
}

export interface ZoneSpan {
  startPfn: number;
  spanned: number;
  present: number;
}

/** One free list in JS, mirroring the one in memory: neighbours by pfn, -1 for the list head. */
interface FreeList {
  first: number;
  last: number;
  links: Map<number, { prev: number; next: number }>;
}

export class PglistData {
  readonly pa: number;
  readonly va: bigint;
  /** Physical address of mem_map (vmemmap's backing). */
  readonly mapBase: number;
  readonly zones: readonly ZoneSpan[];
  /** Highest populated zone + 1. */
  readonly nrZones: number;
  readonly #lists: FreeList[][];
  readonly #freePages: number[];
  readonly #dirty = new Set<number>();

  /** `usable`: RAM in bytes, as memblock saw it. */
  constructor(pa: number, va: bigint, mapBase: number, usable: readonly { start: number; end: number }[]) {
    this.pa = pa;
    this.va = va;
    this.mapBase = mapBase;
    const bounds = [0, ZONE_DMA_END_PFN, ZONE_DMA32_END_PFN, Infinity, Infinity];
    this.zones = ZONE_NAMES.map((_, z) => {
      let lo = Infinity;
      let hi = 0;
      let present = 0;
      for (const r of usable) {
        const a = Math.max(Math.ceil(r.start / 4096), bounds[z]!);
        const b = Math.min(Math.floor(r.end / 4096), bounds[z + 1]!);
        if (b <= a) continue;
        lo = Math.min(lo, a);
        hi = Math.max(hi, b);
        present += b - a;
      }
      return present === 0 ? { startPfn: 0, spanned: 0, present: 0 } : { startPfn: lo, spanned: hi - lo, present };
    });
    let nr = 0;
    this.zones.forEach((z, i) => { if (z.present > 0) nr = i + 1; });
    this.nrZones = nr;
    this.#lists = this.zones.map(() => Array.from({ length: MAX_ORDER }, () => ({ first: -1, last: -1, links: new Map() })));
    this.#freePages = this.zones.map(() => 0);
  }

  /** free_area_init(): the node and its zones, every free list empty (its head pointing at itself). */
  init(mem: PhysAccess): void {
    const b = new Uint8Array(PGLIST_DATA.size);
    const dv = new DataView(b.buffer);
    const populated = this.zones.filter((z) => z.present > 0);
    this.zones.forEach((z, i) => {
      const zo = PGLIST_DATA.node_zones + i * ZONE.size;
      dv.setBigUint64(zo + ZONE.zone_pgdat, this.va, true);
      dv.setBigUint64(zo + ZONE.zone_start_pfn, BigInt(z.startPfn), true);
      dv.setBigUint64(zo + ZONE.managed_pages, BigInt(z.present), true);
      dv.setBigUint64(zo + ZONE.spanned_pages, BigInt(z.spanned), true);
      dv.setBigUint64(zo + ZONE.present_pages, BigInt(z.present), true);
      for (let order = 0; order < MAX_ORDER; order++) {
        for (let mt = 0; mt < MIGRATE_TYPES; mt++) {
          const h = this.#headOffset(i, order, mt);
          dv.setBigUint64(h + LIST_HEAD.next, this.va + BigInt(h), true);
          dv.setBigUint64(h + LIST_HEAD.prev, this.va + BigInt(h), true);
        }
      }
    });
    dv.setInt32(PGLIST_DATA.nr_zones, this.nrZones, true);
    const first = populated[0]?.startPfn ?? 0;
    const end = populated.reduce((n, z) => Math.max(n, z.startPfn + z.spanned), first);
    dv.setBigUint64(PGLIST_DATA.node_start_pfn, BigInt(first), true);
    dv.setBigUint64(PGLIST_DATA.node_present_pages, BigInt(populated.reduce((n, z) => n + z.present, 0)), true);
    dv.setBigUint64(PGLIST_DATA.node_spanned_pages, BigInt(end - first), true);
    dv.setInt32(PGLIST_DATA.node_id, 0, true);
    mem.write(this.pa, b);
  }

  /** Offset in pglist_data of free_area[order].free_list[mt] of zone `z`. */
  #headOffset(z: number, order: number, mt: number): number {
    return PGLIST_DATA.node_zones + z * ZONE.size + ZONE.free_area + order * FREE_AREA.size + FREE_AREA.free_list + mt * LIST_HEAD.size;
  }

  /** Virtual address of the MIGRATE_MOVABLE list head of zone `z`, order `order`. */
  listHeadVa(z: number, order: number): bigint {
    return this.va + BigInt(this.#headOffset(z, order, MIGRATE_MOVABLE));
  }

  /** An entry's list_head: the page's lru in vmemmap, or (pfn -1) the list head in the zone. [physical, virtual]. */
  #node(z: number, order: number, pfn: number): [number, bigint] {
    if (pfn < 0) {
      const o = this.#headOffset(z, order, MIGRATE_MOVABLE);
      return [this.pa + o, this.va + BigInt(o)];
    }
    return [this.mapBase + pfn * STRUCT_PAGE.size + STRUCT_PAGE.lru, VMEMMAP_START + BigInt(pfn * STRUCT_PAGE.size + STRUCT_PAGE.lru)];
  }


  /** add_to_free_list(): the block at `pfn` goes first on its zone's list of `order` (its struct page must be written already). */
  add(mem: PhysAccess, pfn: number, order: number): void {
    const z = zoneOf(pfn);
    const l = this.#lists[z]![order]!;
    if (l.links.has(pfn)) throw new Error(`BUG: free block at pfn 0x${pfn.toString(16)} is already on the order-${order} list`);
    const next = l.first;
    l.links.set(pfn, { prev: -1, next });
    if (next >= 0) l.links.get(next)!.prev = pfn;
    else l.last = pfn;
    l.first = pfn;
    const [npa, nva] = this.#node(z, order, pfn);
    const [, headVa] = this.#node(z, order, -1);
    const [nextPa, nextVa] = this.#node(z, order, next);
    const lru = new Uint8Array(LIST_HEAD.size);
    const dv = new DataView(lru.buffer);
    dv.setBigUint64(LIST_HEAD.next, nextVa, true);
    dv.setBigUint64(LIST_HEAD.prev, headVa, true);
    mem.write(npa, lru);
    writeU64(mem, nextPa + LIST_HEAD.prev, nva);
    writeU64(mem, this.#node(z, order, -1)[0] + LIST_HEAD.next, nva);
    this.#counted(z, order, 2 ** order);
  }

  /** del_page_from_free_list(): the block at `pfn` leaves its list (its lru is rewritten by whoever takes the page). */
  remove(mem: PhysAccess, pfn: number, order: number): void {
    const z = zoneOf(pfn);
    const l = this.#lists[z]![order]!;
    const me = l.links.get(pfn);
    if (me === undefined) throw new Error(`BUG: free block at pfn 0x${pfn.toString(16)} is not on the order-${order} list`);
    l.links.delete(pfn);
    if (me.prev >= 0) l.links.get(me.prev)!.next = me.next;
    else l.first = me.next;
    if (me.next >= 0) l.links.get(me.next)!.prev = me.prev;
    else l.last = me.prev;
    const [prevPa, prevVa] = this.#node(z, order, me.prev);
    const [nextPa, nextVa] = this.#node(z, order, me.next);
    writeU64(mem, prevPa + LIST_HEAD.next, nextVa);
    writeU64(mem, nextPa + LIST_HEAD.prev, prevVa);
    this.#counted(z, order, -(2 ** order));
  }

  #counted(z: number, order: number, pages: number): void {
    this.#freePages[z]! += pages;
    this.#dirty.add(z * MAX_ORDER + order);
  }

  /** Writes the nr_free and NR_FREE_PAGES counters changed since the last flush. */
  flush(mem: PhysAccess): void {
    const zones = new Set<number>();
    for (const k of this.#dirty) {
      const z = Math.floor(k / MAX_ORDER);
      const order = k % MAX_ORDER;
      zones.add(z);
      const at = this.pa + PGLIST_DATA.node_zones + z * ZONE.size + ZONE.free_area + order * FREE_AREA.size + FREE_AREA.nr_free;
      writeU64(mem, at, BigInt(this.#lists[z]![order]!.links.size));
    }
    for (const z of zones) {
      writeU64(mem, this.pa + PGLIST_DATA.node_zones + z * ZONE.size + ZONE.vm_stat + NR_FREE_PAGES * 8, BigInt(this.#freePages[z]!));
    }
    this.#dirty.clear();
  }

  /** Free pages of zone `z` (its NR_FREE_PAGES). */
  freePages(z: number): number {
    return this.#freePages[z]!;
  }
}
