// The page allocator after boot. memblock hands every range still free to
// the buddy allocator (memblock_free_all), and from then on each allocation
// splits the free block it comes from. The free blocks live where the kernel
// keeps them, in the struct pages of mem_map: a block head says "buddy" and
// its order, so a dump filter finds free memory from the dumped kernel's own
// data. Until the handover this is plain memblock.

import { Memblock, type Range } from './memblock.js';
import { MAX_ORDER, buddyBlocks, type MemMap } from './mem-map.js';
import type { PhysAccess } from './phys-access.js';

const PAGE = 4096;

/** Whole page frames of a free range: a partly allocated page is not free. */
function freePfns(r: Range): [number, number] {
  return [Math.ceil(r.start / PAGE), Math.floor(r.end / PAGE)];
}

export class PageAllocator extends Memblock {
  #buddy: { mem: PhysAccess; map: MemMap } | undefined;

  /** Whether memblock_free_all() has run. */
  get buddyActive(): boolean {
    return this.#buddy !== undefined;
  }

  /** memblock_free_all(): every free range becomes buddy blocks, their heads written to mem_map. */
  freeAll(mem: PhysAccess, map: MemMap): void {
    this.#buddy = { mem, map };
    for (const r of this.freeRanges) {
      const [a, b] = freePfns(r);
      for (const blk of buddyBlocks(a, b)) map.describeFreeHead(mem, blk.pfn, blk.order);
    }
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
    const next = new Map<number, number>();
    for (const blk of buddyBlocks(wa, Math.min(wb, sPfn))) next.set(blk.pfn, blk.order);
    for (const blk of buddyBlocks(Math.max(wa, ePfn), wb)) next.set(blk.pfn, blk.order);
    for (const blk of buddyBlocks(wa, wb)) {
      const inUse = blk.pfn >= sPfn && blk.pfn < ePfn;
      if (!inUse && next.get(blk.pfn) !== blk.order) b.map.clearFreeHead(b.mem, blk.pfn);
      if (next.get(blk.pfn) === blk.order) next.delete(blk.pfn); // unchanged head
    }
    for (const [pfn, order] of next) b.map.describeFreeHead(b.mem, pfn, order);
    const a = Math.max(sPfn, ra);
    const z = Math.min(ePfn, rb);
    if (z > a) b.map.describe(b.mem, a, z - a, 'kernel');
  }
}
