import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { Memblock, type Range } from '../../src/kernel/memblock.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;

function freeBytes(mb: Memblock): number {
  return mb.freeRanges.reduce((n, r) => n + (r.end - r.start), 0);
}

describe('Memblock', () => {
  it('sorts the usable ranges and drops empty ones', () => {
    const mb = new Memblock([{ start: 4 * GiB, end: 8 * GiB }, { start: MiB, end: 3 * GiB }, { start: 5, end: 5 }]);
    expect(mb.freeRanges).toEqual([{ start: MiB, end: 3 * GiB }, { start: 4 * GiB, end: 8 * GiB }]);
    expect(mb.total).toBe(3 * GiB - MiB + 4 * GiB);
  });

  it('does not keep a reference to the caller\'s ranges', () => {
    const usable = [{ start: 0, end: 1000 }];
    const mb = new Memblock(usable);
    mb.reserve(0, 10);
    expect(usable).toEqual([{ start: 0, end: 1000 }]);
  });

  it('treats adjacent usable ranges as one block, as memblock_add merges them', () => {
    const mb = new Memblock([{ start: 0, end: 1000 }, { start: 1000, end: 2000 }]);
    expect(mb.total).toBe(2000);
    expect(mb.isFree(900, 200)).toBe(true);
    expect(mb.reserve(900, 200)).toBe(true);
    expect(mb.freeRanges).toEqual([{ start: 0, end: 900 }, { start: 1100, end: 2000 }]);
    const mb2 = new Memblock([{ start: 0, end: 1000 }, { start: 1000, end: 2000 }]);
    expect(mb2.alloc(1500, 1)).toBe(500);
  });

  it('allocates top-down: the highest aligned block that fits below max', () => {
    const mb = new Memblock([{ start: MiB, end: 3 * GiB }, { start: 4 * GiB, end: 8 * GiB }]);
    expect(mb.alloc(256 * MiB, 16 * MiB)).toBe(8 * GiB - 256 * MiB);
    expect(mb.alloc(256 * MiB, 16 * MiB, 16 * MiB, 4 * GiB)).toBe(3 * GiB - 256 * MiB);
    // The next one below 4 GiB sits just under the previous one.
    expect(mb.alloc(256 * MiB, 16 * MiB, 16 * MiB, 4 * GiB)).toBe(3 * GiB - 512 * MiB);
    // Alignment rounds down inside the free block.
    expect(mb.alloc(4096, 2 * MiB, 0, 4 * GiB)).toBe(3 * GiB - 512 * MiB - 2 * MiB);
  });

  it('respects min: fails rather than allocating below it', () => {
    const mb = new Memblock([{ start: 0, end: 64 * MiB }]);
    expect(mb.alloc(32 * MiB, 16 * MiB, 48 * MiB)).toBeUndefined();
    expect(mb.alloc(16 * MiB, 16 * MiB, 48 * MiB)).toBe(48 * MiB);
    expect(mb.freeRanges).toEqual([{ start: 0, end: 48 * MiB }]);
  });

  it('returns undefined when nothing fits, and leaves the free list alone', () => {
    const mb = new Memblock([{ start: 10, end: 100 }, { start: 200, end: 300 }]);
    expect(mb.alloc(101, 1)).toBeUndefined();
    expect(mb.allocLow(101, 1)).toBeUndefined();
    expect(mb.alloc(50, 128)).toBeUndefined(); // the only aligned candidate is 256, and 256 + 50 > 300
    expect(mb.freeRanges).toEqual([{ start: 10, end: 100 }, { start: 200, end: 300 }]);
    expect(mb.alloc(44, 128)).toBe(256);
    expect(mb.freeRanges).toEqual([{ start: 10, end: 100 }, { start: 200, end: 256 }]);
  });

  it('allocLow takes the lowest aligned block', () => {
    const mb = new Memblock([{ start: 10, end: 100 }, { start: 200, end: 300 }]);
    expect(mb.allocLow(20, 16)).toBe(16);
    expect(mb.allocLow(80, 8)).toBe(200);
    expect(new Memblock([{ start: 200, end: 300 }]).allocLow(10, 1, 250)).toBe(250);
  });

  it('reserve succeeds only on free memory', () => {
    const mb = new Memblock([{ start: 0, end: 1000 }]);
    expect(mb.reserve(100, 100)).toBe(true);
    expect(mb.reserve(150, 10)).toBe(false); // inside the reservation
    expect(mb.reserve(50, 100)).toBe(false); // overlaps its start
    expect(mb.reserve(199, 2)).toBe(false); // overlaps its end
    expect(mb.reserve(900, 200)).toBe(false); // runs past the end of memory
    expect(mb.reserve(200, 100)).toBe(true); // right after it
    expect(mb.freeRanges).toEqual([{ start: 0, end: 100 }, { start: 300, end: 1000 }]);
    expect(freeBytes(mb)).toBe(mb.total - 200);
  });

  describe('against a reference bitmap', () => {
    const SPACE = 1024;
    type Op =
      | { kind: 'alloc' | 'allocLow'; size: number; alignLog: number; min: number; max: number }
      | { kind: 'reserve'; start: number; size: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({
        kind: fc.constantFrom('alloc' as const, 'allocLow' as const),
        size: fc.integer({ min: 1, max: 200 }),
        alignLog: fc.nat(6),
        min: fc.nat(SPACE),
        max: fc.integer({ min: 0, max: SPACE + 100 }),
      }),
      fc.record({ kind: fc.constant('reserve' as const), start: fc.nat(SPACE), size: fc.integer({ min: 1, max: 100 }) }),
    );
    /** Disjoint usable ranges, some touching (as separate e820 entries can), some empty. */
    const usable: fc.Arbitrary<Range[]> = fc.array(fc.tuple(fc.nat(150), fc.nat(150)), { minLength: 1, maxLength: 10 }).map((steps) => {
      const out: Range[] = [];
      let at = 0;
      for (const [gap, len] of steps) {
        at += gap % 3 === 0 ? 0 : gap;
        out.push({ start: at, end: Math.min(at + len, SPACE) });
        at = Math.min(at + len, SPACE);
      }
      return out;
    });

    it('allocates and reserves exactly what the bitmap says; the free list stays sorted, disjoint and accounted', () => {
      fc.assert(
        fc.property(usable, fc.array(op, { maxLength: 40 }), fc.boolean(), (ranges, ops, shuffle) => {
          const mb = new Memblock(shuffle ? [...ranges].reverse() : ranges);
          const free = new Uint8Array(SPACE + 200);
          for (const r of ranges) free.fill(1, r.start, r.end);
          const allFree = (b: number, n: number): boolean => b >= 0 && free.subarray(b, b + n).every((x) => x === 1) && b + n <= free.length;
          let taken = 0;
          expect(mb.total).toBe(free.reduce((n, x) => n + x, 0));
          for (const o of ops) {
            if (o.kind === 'reserve') {
              const want = allFree(o.start, o.size);
              expect(mb.isFree(o.start, o.size)).toBe(want);
              expect(mb.reserve(o.start, o.size)).toBe(want);
              if (want) {
                free.fill(0, o.start, o.start + o.size);
                taken += o.size;
              }
            } else {
              const align = 2 ** o.alignLog;
              let want: number | undefined;
              if (o.kind === 'alloc') {
                for (let b = Math.floor((o.max - o.size) / align) * align; b >= o.min && b >= 0; b -= align) {
                  if (allFree(b, o.size)) { want = b; break; }
                }
              } else {
                for (let b = Math.ceil(o.min / align) * align; b + o.size <= o.max; b += align) {
                  if (allFree(b, o.size)) { want = b; break; }
                }
              }
              const got = o.kind === 'alloc' ? mb.alloc(o.size, align, o.min, o.max) : mb.allocLow(o.size, align, o.min, o.max);
              expect(got, JSON.stringify(o)).toBe(want);
              if (got !== undefined) {
                expect(got % align).toBe(0);
                expect(got >= o.min && got + o.size <= o.max).toBe(true);
                free.fill(0, got, got + o.size);
                taken += o.size;
              }
            }
            const fr = mb.freeRanges;
            for (const [i, r] of fr.entries()) {
              expect(r.end).toBeGreaterThan(r.start);
              if (i > 0) expect(r.start).toBeGreaterThan(fr[i - 1]!.end); // sorted, disjoint, not touching
            }
            expect(freeBytes(mb)).toBe(mb.total - taken);
          }
          // The free list is exactly the bitmap's free runs.
          const runs: Range[] = [];
          for (let a = 0; a < free.length; a++) {
            if (free[a] !== 1) continue;
            let b = a;
            while (b < free.length && free[b] === 1) b++;
            runs.push({ start: a, end: b });
            a = b;
          }
          expect(mb.freeRanges).toEqual(runs);
        }),
        { numRuns: 300 },
      );
    });
  });
});
