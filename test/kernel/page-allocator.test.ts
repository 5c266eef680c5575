import { describe, expect, it } from 'vitest';
import { MAX_ORDER, MemMap, PAGE_BUDDY_MAPCOUNT_VALUE, STRUCT_PAGE, buddyBlocks } from '../../src/kernel/mem-map.js';
import { PageAllocator } from '../../src/kernel/page-allocator.js';
import type { PhysAccess } from '../../src/kernel/phys-access.js';
import { Prng } from '../../src/util/prng.js';

/** Plain sparse memory, as a kernel without encryption sees it. */
function memory(): PhysAccess & { frames: Map<number, Uint8Array> } {
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
function heads(mem: PhysAccess, map: MemMap): Map<number, number> {
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
    const pa = new PageAllocator([{ start: 0x100000, end: 0x800000 }, { start: 0x1000000, end: size }]);
    const map = new MemMap(pa.alloc(MemMap.bytesFor(size / 4096), 4096)!, size / 4096);
    pa.freeAll(mem, map);
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
    const map = new MemMap(pa.alloc(MemMap.bytesFor(4096), 4096)!, 4096);
    pa.freeAll(mem, map);
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
