import { describe, expect, it } from 'vitest';
import { MAX_ORDER, MemMap, STRUCT_PAGE, buddyBlocks } from '../../src/kernel/mem-map.js';
import { PageAllocator } from '../../src/kernel/page-allocator.js';
import { PglistData } from '../../src/kernel/pglist-data.js';
import { Prng } from '../../src/util/prng.js';
import { heads, memory } from './free-list-walk.js';

/** Node 0 for a map at `base` over `usable`, its zones laid out empty. */
function node(mem: ReturnType<typeof memory>, base: number, usable: { start: number; end: number }[]): PglistData {
  const n = new PglistData(0x20_0000, 0xffff_ffff_8020_0000n, base, usable);
  n.init(mem);
  return n;
}

describe('buddy blocks', () => {
  it('tile a range with naturally aligned blocks that a page-by-page free with merging would leave', () => {
    const rng = new Prng(5, 2);
    for (let t = 0; t < 200; t++) {
      const a = rng.below(5000);
      const b = a + rng.below(3000);
      // Reference: free each page, merging with its buddy while the buddy is free and the order allows.
      const free = new Map<number, number>();
      for (let p = a; p < b; p++) {
        let pfn = p;
        let order = 0;
        while (order < MAX_ORDER - 1) {
          const buddy = pfn ^ (2 ** order);
          if (free.get(buddy) !== order) break;
          free.delete(buddy);
          pfn = Math.min(pfn, buddy);
          order++;
        }
        free.set(pfn, order);
      }
      expect(new Map([...buddyBlocks(a, b)].map((x) => [x.pfn, x.order])), `[${a}, ${b})`).toEqual(free);
    }
  });
});

describe('the page allocator after memblock_free_all', () => {
  it('keeps mem_map\'s free-block heads equal to the buddy tiling of what memblock still has free, through any allocations', () => {
    const rng = new Prng(11, 3);
    const size = 64 << 20; // 16384 frames
    const mem = memory();
    const usable = [{ start: 0x100000, end: 0x800000 }, { start: 0x1000000, end: size }];
    const pa = new PageAllocator(usable);
    pa.reserve(0x20_0000, 0x4000);
    const map = new MemMap(pa.alloc(MemMap.bytesFor(size / 4096), 4096)!, size / 4096);
    pa.freeAll(mem, map, node(mem, map.base, usable));
    const expected = (): Map<number, number> => {
      const m = new Map<number, number>();
      for (const r of pa.freeRanges) for (const x of buddyBlocks(Math.ceil(r.start / 4096), Math.floor(r.end / 4096))) m.set(x.pfn, x.order);
      return m;
    };
    expect(heads(mem, map)).toEqual(expected());
    for (let i = 0; i < 120; i++) {
      const kind = rng.below(3);
      const bytes = (1 + rng.below(300)) * (rng.below(4) === 0 ? 1000 : 4096); // some not page sized
      if (kind === 0) pa.alloc(bytes, 4096);
      else if (kind === 1) pa.allocLow(bytes, 2 ** (12 + rng.below(8)));
      else pa.reserve(0x100000 + rng.below(size / 4096) * 4096, bytes);
      expect(heads(mem, map), `after step ${i}`).toEqual(expected());
    }
  });

  it('allocated pages become in-use kernel pages (one reference) and stay so', () => {
    const mem = memory();
    const pa = new PageAllocator([{ start: 0, end: 16 << 20 }]);
    pa.reserve(0x20_0000, 0x4000);
    const map = new MemMap(pa.alloc(MemMap.bytesFor(4096), 4096)!, 4096);
    pa.freeAll(mem, map, node(mem, map.base, [{ start: 0, end: 16 << 20 }]));
    const at = pa.alloc(3 * 4096, 4096)!;
    const buf = new Uint8Array(3 * STRUCT_PAGE.size);
    mem.read(map.base + (at / 4096) * STRUCT_PAGE.size, buf);
    const dv = new DataView(buf.buffer);
    for (let i = 0; i < 3; i++) {
      expect(dv.getInt32(i * STRUCT_PAGE.size + STRUCT_PAGE._refcount, true)).toBe(1);
      expect(dv.getInt32(i * STRUCT_PAGE.size + STRUCT_PAGE._mapcount, true)).toBe(-1);
    }
  });
});
