// Helpers for the buddy-allocator tests: plain sparse memory, the free-block
// heads mem_map shows, and a walk of the zones' free lists driven only by
// VMCOREINFO, the way makedumpfile's exclude_free_page() walks them.

import { PAGE_BUDDY_MAPCOUNT_VALUE, STRUCT_PAGE, type MemMap } from '../../src/kernel/mem-map.js';
import type { PhysAccess } from '../../src/kernel/phys-access.js';
import type { VmcoreInfo } from '../../src/dump/vmcoreinfo.js';
import { FREE_AREA } from '../../src/kernel/pglist-data.js';

/** Plain sparse memory, as a kernel without encryption sees it. */
export function memory(): PhysAccess & { frames: Map<number, Uint8Array> } {
  const frames = new Map<number, Uint8Array>();
  const each = (pa: number, len: number, fn: (f: Uint8Array, off: number, done: number, n: number) => void): void => {
    let done = 0;
    while (done < len) {
      const a = pa + done;
      const off = a % 4096;
      const n = Math.min(4096 - off, len - done);
      const pfn = (a - off) / 4096;
      let f = frames.get(pfn);
      if (!f) frames.set(pfn, (f = new Uint8Array(4096)));
      fn(f, off, done, n);
      done += n;
    }
  };
  return {
    frames,
    read: (pa, dst) => each(pa, dst.length, (f, off, done, n) => dst.set(f.subarray(off, off + n), done)),
    write: (pa, src) => each(pa, src.length, (f, off, done, n) => f.set(src.subarray(done, done + n), off)),
    zero: (pa, len) => each(pa, len, (f, off, _d, n) => f.fill(0, off, off + n)),
    keyFor: () => 0,
  };
}

/** Free blocks a mem_map's heads describe: pfn -> order. */
export function heads(mem: PhysAccess, map: MemMap): Map<number, number> {
  const out = new Map<number, number>();
  const buf = new Uint8Array(map.maxPfn * STRUCT_PAGE.size);
  mem.read(map.base, buf);
  const dv = new DataView(buf.buffer);
  for (let pfn = 0; pfn < map.maxPfn; pfn++) {
    const o = pfn * STRUCT_PAGE.size;
    if (dv.getInt32(o + STRUCT_PAGE._mapcount, true) === PAGE_BUDDY_MAPCOUNT_VALUE) out.set(pfn, Number(dv.getBigUint64(o + STRUCT_PAGE.private, true)));
  }
  return out;
}

export interface FreeListWalk {
  /** Every block on some list: pfn -> where it was found. */
  blocks: Map<number, { zone: number; order: number; migratetype: number; private: number; mapcount: number }>;
  /** Per zone (up to nr_zones): spanned_pages, nr_free per order, vm_stat[NR_FREE_PAGES]. */
  zones: { spanned: number; nrFree: number[]; freePages: number }[];
  nodeOnline: boolean;
  /** Broken links, blocks on two lists, addresses outside vmemmap. */
  problems: string[];
}

/**
 * Walks contig_page_data's free lists with nothing but VMCOREINFO's numbers.
 * `read` gives `n` bytes at kernel virtual address `va`. nr_free is not in
 * VMCOREINFO (makedumpfile does not read it); its offset is the model's.
 */
export function walkFreeLists(vi: VmcoreInfo, read: (va: bigint, n: number) => Uint8Array): FreeListWalk {
  const need = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`VMCOREINFO has no ${what}`);
    return v;
  };
  const dv = (va: bigint, n: number): DataView => {
    const b = read(va, n);
    return new DataView(b.buffer, b.byteOffset, b.length);
  };
  const u64 = (va: bigint): bigint => dv(va, 8).getBigUint64(0, true);
  const num = (v: number | undefined, what: string): bigint => BigInt(need(v, what));
  const pgdat = need(vi.symbol('contig_page_data'), 'SYMBOL(contig_page_data)');
  const vmemmap = need(vi.symbol('vmemmap'), 'SYMBOL(vmemmap)');
  const onlineMap = need(vi.symbol('node_online_map'), 'SYMBOL(node_online_map)');
  const nodemask = need(vi.size('nodemask_t'), 'SIZE(nodemask_t)');
  const sizePage = num(vi.size('page'), 'SIZE(page)');
  const lru = num(vi.offset('page.lru'), 'OFFSET(page.lru)');
  const sizeZone = num(vi.size('zone'), 'SIZE(zone)');
  const sizeFreeArea = num(vi.size('free_area'), 'SIZE(free_area)');
  const sizeListHead = num(vi.size('list_head'), 'SIZE(list_head)');
  const next = num(vi.offset('list_head.next'), 'OFFSET(list_head.next)');
  const prev = num(vi.offset('list_head.prev'), 'OFFSET(list_head.prev)');
  const orders = need(vi.length('zone.free_area'), 'LENGTH(zone.free_area)');
  const mts = need(vi.length('free_area.free_list'), 'LENGTH(free_area.free_list)');
  const nrFreePages = need(vi.number('NR_FREE_PAGES'), 'NUMBER(NR_FREE_PAGES)');
  const nrZones = dv(pgdat + num(vi.offset('pglist_data.nr_zones'), 'OFFSET(pglist_data.nr_zones)'), 4).getInt32(0, true);
  const out: FreeListWalk = { blocks: new Map(), zones: [], nodeOnline: (read(onlineMap, nodemask)[0]! & 1) === 1, problems: [] };
  for (let z = 0; z < nrZones; z++) {
    const zone = pgdat + num(vi.offset('pglist_data.node_zones'), 'OFFSET(pglist_data.node_zones)') + BigInt(z) * sizeZone;
    const spanned = Number(u64(zone + num(vi.offset('zone.spanned_pages'), 'OFFSET(zone.spanned_pages)')));
    const nrFree: number[] = [];
    for (let order = 0; order < orders; order++) {
      const area = zone + num(vi.offset('zone.free_area'), 'OFFSET(zone.free_area)') + BigInt(order) * sizeFreeArea;
      nrFree.push(Number(u64(area + BigInt(FREE_AREA.nr_free))));
      for (let mt = 0; mt < mts; mt++) {
        const head = area + num(vi.offset('free_area.free_list'), 'OFFSET(free_area.free_list)') + BigInt(mt) * sizeListHead;
        let previous = head;
        let curr = u64(head + next);
        for (let steps = 0; curr !== head; steps++) {
          if (steps > 10_000_000) { out.problems.push(`zone ${z} order ${order} list ${mt} does not come back to its head`); break; }
          const page = curr - lru;
          if (page < vmemmap || (page - vmemmap) % sizePage !== 0n) { out.problems.push(`list entry 0x${curr.toString(16)} is not a struct page's lru`); break; }
          if (u64(curr + prev) !== previous) out.problems.push(`zone ${z} order ${order}: prev of 0x${curr.toString(16)} is not 0x${previous.toString(16)}`);
          const pfn = Number((page - vmemmap) / sizePage);
          const sp = dv(page, Number(sizePage));
          const entry = {
            zone: z, order, migratetype: mt,
            private: Number(sp.getBigUint64(need(vi.offset('page.private'), 'OFFSET(page.private)'), true)),
            mapcount: sp.getInt32(need(vi.offset('page._mapcount'), 'OFFSET(page._mapcount)'), true),
          };
          if (out.blocks.has(pfn)) out.problems.push(`pfn 0x${pfn.toString(16)} is on two lists`);
          out.blocks.set(pfn, entry);
          previous = curr;
          curr = u64(curr + next);
        }
      }
    }
    const freePages = Number(u64(zone + num(vi.offset('zone.vm_stat'), 'OFFSET(zone.vm_stat)') + 8n * nrFreePages));
    out.zones.push({ spanned, nrFree, freePages });
  }
  return out;
}
