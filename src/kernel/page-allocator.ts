// The page allocator after boot. memblock hands every range still free to
// the buddy allocator (memblock_free_all), and from then on each allocation
// splits the free block it comes from. The free blocks live where the kernel
// keeps them, in the struct pages of mem_map: a block head says "buddy" and
// its order, so a dump filter finds free memory from the dumped kernel's own
// data. Each block head is also on its zone's free list of its order
// (pglist-data.ts), as the kernel's free_area lists hold them. Until the
// handover this is plain memblock.

import { Memblock, type Range } from './memblock.js';
import { MAX_ORDER, type MemMap } from './mem-map.js';
import { zoneBuddyBlocks, type PglistData } from './pglist-data.js';
import type { PhysAccess } from './phys-access.js';

const PAGE = 4096;

/** Whole page frames of a free range: a partly allocated page is not free. */
function freePfns(r: Range): [number, number] {
  return [Math.ceil(r.start / PAGE), Math.floor(r.end / PAGE)];
}

export class PageAllocator extends Memblock {
  #buddy: { mem: PhysAccess; map: MemMap; node: PglistData } | undefined;

  /** Whether memblock_free_all() has run. */
  get buddyActive(): boolean {
    return this.#buddy !== undefined;
  }

  /**
   * memblock_free_all(): every free range becomes buddy blocks, their heads
   * written to mem_map and put on the free lists of `node` (laid out empty
   * by free_area_init()).
   */
  freeAll(mem: PhysAccess, map: MemMap, node: PglistData): void {
    this.#buddy = { mem, map, node };
    for (const r of this.freeRanges) {
      const [a, b] = freePfns(r);
      for (const blk of zoneBuddyBlocks(a, b)) {
        map.describeFreeHead(mem, blk.pfn, blk.order);
        node.add(mem, blk.pfn, blk.order);
      }
    }
    node.flush(mem);
  }

  /** The free blocks (pfn -> order) the buddy allocator holds: the tiling of what memblock still has free. */
  freeBlocks(): Map<number, number> {
    const out = new Map<number, number>();
    if (this.#buddy === undefined) return out;
    for (const r of this.freeRanges) {
      const [a, b] = freePfns(r);
      for (const blk of zoneBuddyBlocks(a, b)) out.set(blk.pfn, blk.order);
    }
    return out;
  }

  override reserve(start: number, size: number): boolean {
    const before = this.freeRanges;
    const ok = super.reserve(start, size);
    if (ok) this.#taken(before, start, start + size);
    return ok;
  }

  override alloc(size: number, align: number, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
    const before = this.freeRanges;
    const at = super.alloc(size, align, min, max);
    if (at !== undefined) this.#taken(before, at, at + size);
    return at;
  }

  override allocLow(size: number, align: number, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
    const before = this.freeRanges;
    const at = super.allocLow(size, align, min, max);
    if (at !== undefined) this.#taken(before, at, at + size);
    return at;
  }

  /**
   * [start, end) left the free range that held it: the blocks of what
   * remains on either side replace that range's blocks, and the allocated
   * pages become in-use kernel pages (a caller that knows better, such as
   * the workload, describes them again).
   */
  #taken(before: readonly Range[], start: number, end: number): void {
    const b = this.#buddy;
    if (b === undefined || end <= start) return;
    const r = before.find((x) => start >= x.start && end <= x.end);
    if (r === undefined) throw new Error(`BUG: allocation [0x${start.toString(16)}, 0x${end.toString(16)}) was not inside one free range`);
    const [ra, rb] = freePfns(r);
    const sPfn = Math.floor(start / PAGE);
    const ePfn = Math.ceil(end / PAGE);
    // Blocks never straddle a multiple of the largest block, and the tiling right of such a
    // boundary depends only on where the range ends: only the blocks in this window change.
    const span = 2 ** (MAX_ORDER - 1);
    const wa = Math.max(ra, Math.floor(sPfn / span) * span);
    const wb = Math.min(rb, Math.ceil(ePfn / span) * span);
    // Zone boundaries (16 MiB, 4 GiB) cut the tiling at fixed frames, so the same holds with them.
    const next = new Map<number, number>();
    for (const blk of zoneBuddyBlocks(wa, Math.min(wb, sPfn))) next.set(blk.pfn, blk.order);
    for (const blk of zoneBuddyBlocks(Math.max(wa, ePfn), wb)) next.set(blk.pfn, blk.order);
    for (const blk of zoneBuddyBlocks(wa, wb)) {
      if (next.get(blk.pfn) === blk.order) {
        next.delete(blk.pfn); // unchanged head, unchanged place on its list
        continue;
      }
      b.node.remove(b.mem, blk.pfn, blk.order);
      const inUse = blk.pfn >= sPfn && blk.pfn < ePfn;
      if (!inUse) b.map.clearFreeHead(b.mem, blk.pfn);
    }
    for (const [pfn, order] of next) {
      b.map.describeFreeHead(b.mem, pfn, order);
      b.node.add(b.mem, pfn, order);
    }
    const a = Math.max(sPfn, ra);
    const z = Math.min(ePfn, rb);
    if (z > a) b.map.describe(b.mem, a, z - a, 'kernel');
    b.node.flush(b.mem);
  }
}
