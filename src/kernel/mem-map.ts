// The memory map: one struct page (64 bytes, 6.1 layout) per page frame,
// FLATMEM style (a `mem_map` pointer to one array). Pages the workload owns get
// their flags, mapping and counts written, so dump filters classify them from
// the dumped kernel's own data as makedumpfile does.

import type { PhysAccess } from './phys-access.js';
import { PAGE_OFFSET } from './layout.js';

export const STRUCT_PAGE = { size: 64, flags: 0, lru: 8, mapping: 24, private: 40, _mapcount: 48, _refcount: 52 } as const;

/** Page flag bit numbers (enum pageflags, 6.1). */
export const PG = { lru: 4, slab: 9, swapcache: 10, private: 13, swapbacked: 19, hwpoison: 23 } as const;
export const PG_HEAD_MASK = 1 << 16;
export const PAGE_BUDDY_MAPCOUNT_VALUE = -129;
export const PAGE_OFFLINE_MAPCOUNT_VALUE = -257;
/** Low bit of page->mapping marks an anon_vma (PAGE_MAPPING_ANON). */
const PAGE_MAPPING_ANON = 1n;

/** What a page is used for, as its struct page shows it. */
export type PageUse = 'kernel' | 'slab' | 'cache' | 'cache-private' | 'anon' | 'free';

export class MemMap {
  readonly base: number;
  readonly maxPfn: number;

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

  /** Virtual address of the array (what the mem_map pointer holds). */
  get va(): bigint {
    return PAGE_OFFSET + BigInt(this.base);
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
    mem.write(this.base + pfn * STRUCT_PAGE.size, buf);
  }
}
