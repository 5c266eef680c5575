// The memory map: one struct page (64 bytes, 6.1 layout) per page frame, in
// one physically contiguous array that the kernel maps at VMEMMAP_START
// (SPARSEMEM_VMEMMAP; the sections that describe it are in mem-section.ts). Pages the workload owns get
// their flags, mapping and counts written, so dump filters classify them from
// the dumped kernel's own data as makedumpfile does. Free memory is held by
// the buddy allocator (page-allocator.ts) in naturally aligned blocks of
// 2^order pages; the first struct page of each block carries the buddy page
// type in _mapcount and the order in private, and its lru links it into its
// zone's free list of that order (pglist-data.ts).

import type { PhysAccess } from './phys-access.js';

export const STRUCT_PAGE = { size: 64, flags: 0, lru: 8, mapping: 24, private: 40, _mapcount: 48, _refcount: 52 } as const;

/** Page flag bit numbers (enum pageflags, 6.1). */
export const PG = { lru: 4, slab: 9, swapcache: 10, private: 13, swapbacked: 19, hwpoison: 23 } as const;
export const PG_HEAD_MASK = 1 << 16;
export const PAGE_BUDDY_MAPCOUNT_VALUE = -129;
export const PAGE_OFFLINE_MAPCOUNT_VALUE = -257;
/**
 * Free blocks are 2^0 .. 2^(MAX_ORDER-1) pages; exported as
 * LENGTH(zone.free_area). x86 Linux 6.1 stops at 2^10 pages (4 MiB); this
 * model goes up to 2^18 (1 GiB). Each block head is a struct page in a mem_map
 * frame of its own, so 4 MiB blocks would make an idle 1 TiB host touch 1 GiB
 * of mem_map (DRAM costs what is written). Dump filters take the order from
 * the head's private field and bound it only by this length, so they see
 * free memory exactly as they would with smaller blocks.
 */
export const MAX_ORDER = 19;
/** Low bit of page->mapping marks an anon_vma (PAGE_MAPPING_ANON). */
const PAGE_MAPPING_ANON = 1n;

/** What a page is used for, as its struct page shows it. */
export type PageUse = 'kernel' | 'slab' | 'cache' | 'cache-private' | 'anon' | 'free';

export class MemMap {
  readonly base: number;
  readonly maxPfn: number;
  /**
   * mem_map frames initialised so far. memmap_init() zeroes every struct
   * page through the kernel's own mapping; here a frame is zeroed that way
   * when first written, so the struct pages around the ones written read as
   * zero to the kernel (not as whatever DRAM's zeros decrypt to under SME),
   * and frames nothing describes are never touched.
   */
  readonly #ready = new Set<number>();

  constructor(base: number, maxPfn: number) {
    this.base = base;
    this.maxPfn = maxPfn;
  }

  static bytesFor(maxPfn: number): number {
    return Math.ceil((maxPfn * STRUCT_PAGE.size) / 4096) * 4096;
  }

  get bytes(): number {
    return MemMap.bytesFor(this.maxPfn);
  }


  /** Writes the struct pages of `count` consecutive frames from `pfn`. */
  describe(mem: PhysAccess, pfn: number, count: number, use: PageUse, order = 0): void {
    const buf = new Uint8Array(count * STRUCT_PAGE.size);
    const dv = new DataView(buf.buffer);
    for (let i = 0; i < count; i++) {
      const o = i * STRUCT_PAGE.size;
      let flags = 0n;
      let mapping = 0n;
      let mapcount = -1;
      let refcount = 1;
      let priv = 0n;
      switch (use) {
        case 'kernel': break;
        case 'slab': flags = 1n << BigInt(PG.slab); break;
        case 'cache': flags = 1n << BigInt(PG.lru); mapping = 0xffff_8880_0100_0000n; break;
        case 'cache-private': flags = (1n << BigInt(PG.lru)) | (1n << BigInt(PG.private)); mapping = 0xffff_8880_0100_0000n; priv = 0xffff_8880_0200_0000n; break;
        case 'anon': flags = (1n << BigInt(PG.lru)) | (1n << BigInt(PG.swapbacked)); mapping = 0xffff_8880_0300_0000n | PAGE_MAPPING_ANON; mapcount = 0; break;
        case 'free':
          refcount = 0;
          if (i === 0) { mapcount = PAGE_BUDDY_MAPCOUNT_VALUE; priv = BigInt(order); }
          break;
      }
      dv.setBigUint64(o + STRUCT_PAGE.flags, flags, true);
      dv.setBigUint64(o + STRUCT_PAGE.mapping, mapping, true);
      dv.setBigUint64(o + STRUCT_PAGE.private, priv, true);
      dv.setInt32(o + STRUCT_PAGE._mapcount, mapcount, true);
      dv.setInt32(o + STRUCT_PAGE._refcount, refcount, true);
    }
    this.#write(mem, this.base + pfn * STRUCT_PAGE.size, buf);
  }

  #write(mem: PhysAccess, pa: number, bytes: Uint8Array): void {
    const end = pa + bytes.length;
    for (let f = Math.floor(pa / 4096); f * 4096 < end; f++) {
      if (this.#ready.has(f)) continue;
      this.#ready.add(f);
      if (pa > f * 4096 || end < (f + 1) * 4096) mem.zero(f * 4096, 4096);
    }
    mem.write(pa, bytes);
  }

  /**
   * The head of a free buddy block: no references, the buddy page type in
   * _mapcount, the order in private. The block's other pages are left as
   * they are: nothing (the kernel or a dump filter) reads a free block's
   * tail pages, and writing them would touch all of mem_map on a big host.
   */
  describeFreeHead(mem: PhysAccess, pfn: number, order: number): void {
    const buf = new Uint8Array(STRUCT_PAGE.size);
    const dv = new DataView(buf.buffer);
    dv.setBigUint64(STRUCT_PAGE.private, BigInt(order), true);
    dv.setInt32(STRUCT_PAGE._mapcount, PAGE_BUDDY_MAPCOUNT_VALUE, true);
    this.#write(mem, this.base + pfn * STRUCT_PAGE.size, buf);
  }

  /** A former block head that merged into (or was split off) another block: a plain free page again. */
  clearFreeHead(mem: PhysAccess, pfn: number): void {
    this.#write(mem, this.base + pfn * STRUCT_PAGE.size, new Uint8Array(STRUCT_PAGE.size));
  }
}

/**
 * The buddy allocator's view of free frames [startPfn, endPfn): the largest
 * naturally aligned blocks (at most order MAX_ORDER - 1) that tile the range,
 * in ascending order, as freeing the range page by page would leave them
 * after every possible merge.
 */
export function* buddyBlocks(startPfn: number, endPfn: number): Generator<{ pfn: number; order: number }> {
  let pfn = startPfn;
  while (pfn < endPfn) {
    let order = 0;
    while (order < MAX_ORDER - 1 && pfn % 2 ** (order + 1) === 0 && pfn + 2 ** (order + 1) <= endPfn) order++;
    yield { pfn, order };
    pfn += 2 ** order;
  }
}
