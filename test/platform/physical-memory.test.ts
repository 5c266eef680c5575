import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { FRAME_SIZE, PhysicalMemory } from '../../src/platform/physical-memory.js';

const TiB = 2 ** 40;

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + seed * 7 + 1) & 0xff || 1;
  return b;
}

/** Index of the first differing byte, or -1 (vitest's deep equality is slow on large typed arrays). */
function firstDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

describe('PhysicalMemory', () => {
  it('reads untouched memory as zeros and allocates nothing for it', () => {
    const m = new PhysicalMemory(64 * FRAME_SIZE);
    const dst = new Uint8Array(3 * FRAME_SIZE + 17).fill(0xaa);
    m.read(FRAME_SIZE - 5, dst);
    expect(dst.every((b) => b === 0)).toBe(true);
    expect(m.framesPresent).toBe(0);
    expect(m.peekFrame(3)).toBeUndefined();
  });

  it('round-trips a write that straddles frame boundaries and creates only the frames it touches', () => {
    const m = new PhysicalMemory(16 * FRAME_SIZE);
    const src = bytes(2 * FRAME_SIZE + 10, 1);
    const pa = 3 * FRAME_SIZE - 5; // last 5 bytes of frame 2, all of 3 and 4, 5 bytes of 5
    m.write(pa, src);
    const back = new Uint8Array(src.length);
    m.read(pa, back);
    expect(firstDiff(back, src)).toBe(-1);
    expect(m.presentFrames(0, 16)).toEqual([2, 3, 4, 5]);
    // Bytes around the write stay zero.
    const around = new Uint8Array(2);
    m.read(pa - 2, around);
    expect([...around]).toEqual([0, 0]);
    m.read(pa + src.length, around);
    expect([...around]).toEqual([0, 0]);
  });

  it('behaves like a flat byte array under random writes, reads and zeroes', () => {
    const frames = 8;
    const size = frames * FRAME_SIZE;
    const access = fc.tuple(fc.nat(size - 1), fc.nat(3 * FRAME_SIZE)).map(([pa, n]) => ({ pa, n: Math.min(n, size - pa) }));
    const op = fc.oneof(
      fc.record({ kind: fc.constant('write' as const), at: access, seed: fc.nat(255) }),
      fc.record({ kind: fc.constant('zero' as const), at: access }),
      fc.record({ kind: fc.constant('read' as const), at: access }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 30 }), (ops) => {
        const m = new PhysicalMemory(size);
        const ref = new Uint8Array(size);
        for (const o of ops) {
          const { pa, n } = o.at;
          if (o.kind === 'write') {
            const src = bytes(n, o.seed);
            m.write(pa, src);
            ref.set(src, pa);
          } else if (o.kind === 'zero') {
            m.zero(pa, n);
            ref.fill(0, pa, pa + n);
          } else {
            const dst = new Uint8Array(n).fill(0x5a);
            m.read(pa, dst);
            expect(firstDiff(dst, ref.subarray(pa, pa + n))).toBe(-1);
          }
        }
        const all = new Uint8Array(size);
        m.read(0, all);
        expect(firstDiff(all, ref)).toBe(-1);
        // Frames that exist are exactly those listed, sorted, and each peeks as its bytes.
        const present = m.presentFrames(0, frames);
        expect(present).toEqual([...present].sort((a, b) => a - b));
        expect(present.length).toBe(m.framesPresent);
        for (let pfn = 0; pfn < frames; pfn++) {
          const f = m.peekFrame(pfn);
          if (f === undefined) {
            expect(present).not.toContain(pfn);
            expect(ref.subarray(pfn * FRAME_SIZE, (pfn + 1) * FRAME_SIZE).every((b) => b === 0)).toBe(true);
          } else {
            expect(firstDiff(f, ref.subarray(pfn * FRAME_SIZE, (pfn + 1) * FRAME_SIZE))).toBe(-1);
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it('drops whole frames on zero() and clears only the bytes of partial ones', () => {
    const m = new PhysicalMemory(8 * FRAME_SIZE);
    m.write(0, new Uint8Array(4 * FRAME_SIZE).fill(0xff)); // frames 0..3
    expect(m.framesPresent).toBe(4);
    // Zero from the middle of frame 0 to the middle of frame 3: frames 1 and 2 go away.
    m.zero(100, 3 * FRAME_SIZE);
    expect(m.framesPresent).toBe(2);
    expect(m.presentFrames(0, 8)).toEqual([0, 3]);
    const f0 = m.peekFrame(0)!;
    expect(f0[99]).toBe(0xff);
    expect(f0[100]).toBe(0);
    expect(f0[FRAME_SIZE - 1]).toBe(0);
    const f3 = m.peekFrame(3)!;
    expect(f3[99]).toBe(0);
    expect(f3[100]).toBe(0xff);
    // Zeroing untouched memory creates nothing.
    m.zero(5 * FRAME_SIZE, 10);
    expect(m.framesPresent).toBe(2);
  });

  it('gives a frame that comes back after zero() clean contents', () => {
    const m = new PhysicalMemory(4 * FRAME_SIZE);
    m.write(FRAME_SIZE, new Uint8Array(FRAME_SIZE).fill(0x77));
    m.zero(FRAME_SIZE, FRAME_SIZE);
    expect(m.framesPresent).toBe(0);
    m.write(2 * FRAME_SIZE + 8, Uint8Array.of(1)); // likely reuses the spare frame
    const f = new Uint8Array(FRAME_SIZE);
    m.read(2 * FRAME_SIZE, f);
    expect(f[8]).toBe(1);
    expect(f.reduce((s, b) => s + b, 0)).toBe(1);
  });

  it('lists present frames in a range, ascending, whatever order they were created in', () => {
    const m = new PhysicalMemory(1024 * FRAME_SIZE);
    for (const pfn of [900, 3, 512, 7, 511, 0, 1023]) m.write(pfn * FRAME_SIZE, Uint8Array.of(1));
    expect(m.presentFrames(0, 1024)).toEqual([0, 3, 7, 511, 512, 900, 1023]);
    expect(m.presentFrames(4, 512)).toEqual([7, 511]);
    expect(m.presentFrames(512, 513)).toEqual([512]);
    expect(m.presentFrames(8, 511)).toEqual([]);
    // The sorted view is refreshed after creation and after dropping.
    m.write(8 * FRAME_SIZE, Uint8Array.of(1));
    m.zero(511 * FRAME_SIZE, FRAME_SIZE);
    expect(m.presentFrames(0, 1024)).toEqual([0, 3, 7, 8, 512, 900, 1023]);
  });

  it('throws RangeError for access outside DRAM', () => {
    const size = 4 * FRAME_SIZE;
    const m = new PhysicalMemory(size);
    expect(() => m.read(size, new Uint8Array(1))).toThrow(RangeError);
    expect(() => m.read(size - 1, new Uint8Array(2))).toThrow(RangeError);
    expect(() => m.write(-1, new Uint8Array(1))).toThrow(RangeError);
    expect(() => m.write(size - 4, new Uint8Array(8))).toThrow(RangeError);
    expect(() => m.zero(size - FRAME_SIZE, FRAME_SIZE + 1)).toThrow(RangeError);
    expect(() => m.read(0.5, new Uint8Array(1))).toThrow(RangeError);
    expect(() => m.frameForWrite(4)).toThrow(RangeError);
    // A failed write leaves nothing behind.
    expect(m.framesPresent).toBe(0);
    // The last byte is reachable.
    m.write(size - 1, Uint8Array.of(9));
    const b = new Uint8Array(1);
    m.read(size - 1, b);
    expect(b[0]).toBe(9);
  });

  it('rejects sizes that are not a positive multiple of the frame size', () => {
    expect(() => new PhysicalMemory(0)).toThrow(RangeError);
    expect(() => new PhysicalMemory(FRAME_SIZE + 1)).toThrow(RangeError);
    expect(() => new PhysicalMemory(-FRAME_SIZE)).toThrow(RangeError);
    expect(() => new PhysicalMemory(2 ** 60)).toThrow(RangeError); // beyond Number.MAX_SAFE_INTEGER
  });

  it('a 16 TiB DRAM costs only the frames that were touched', () => {
    const m = new PhysicalMemory(16 * TiB);
    const spots = [0, 4 * 2 ** 30 + 123, 8 * TiB - 1, 16 * TiB - FRAME_SIZE];
    for (const [i, pa] of spots.entries()) m.write(pa, Uint8Array.of(i + 1, i + 2));
    // 8 TiB - 1 straddles two frames, the others fit in one.
    expect(m.framesPresent).toBe(5);
    for (const [i, pa] of spots.entries()) {
      const b = new Uint8Array(2);
      m.read(pa, b);
      expect([...b]).toEqual([i + 1, i + 2]);
    }
    expect(m.presentFrames(0, (16 * TiB) / FRAME_SIZE)).toEqual([
      0, (4 * 2 ** 30) / FRAME_SIZE, (8 * TiB) / FRAME_SIZE - 1, (8 * TiB) / FRAME_SIZE, (16 * TiB) / FRAME_SIZE - 1,
    ]);
    // Zeroing a gibibyte of untouched memory creates nothing.
    m.zero(TiB, 2 ** 30);
    expect(m.framesPresent).toBe(5);
  });
});
