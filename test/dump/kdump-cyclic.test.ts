// The kdump-compressed writer works a cycle of frames at a time (bitmaps,
// the dump level's filter, the page loop), so a huge sparse dump costs the
// writer a bounded amount of memory, not the size of its bitmaps; and the
// cycle size changes nothing in the file.

import { afterAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KdumpCompressedReader } from '../../src/dump/kdump-compressed-reader.js';
import { CYCLE_PFNS, writeKdumpCompressed, type KdumpCompressedSpec, type PfnRange } from '../../src/dump/kdump-compressed-writer.js';
import { MapPageSource, PAGE_SIZE, type PageSource } from '../../src/dump/page-source.js';
import { patternPage, sampleNotes, tempDir } from './vmcore-fixtures.js';

const dir = tempDir('kdump-cyclic');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const RANGES: PfnRange[] = [{ startPfn: 0x100, endPfn: 0x1300 }, { startPfn: 0x1a00, endPfn: 0x2a10 }];
const MAX_PFN = 0x2a10;

function frames(): Map<number, Uint8Array> {
  const m = new Map<number, Uint8Array>();
  for (const r of RANGES) {
    for (let p = r.startPfn; p < r.endPfn; p++) {
      const k = (p * 7919) % 11;
      if (k < 4) m.set(p, patternPage(p));
      else if (k === 4) m.set(p, new Uint8Array(PAGE_SIZE)); // listed but zero
    }
  }
  return m;
}

function excluded(): Uint8Array {
  const b = new Uint8Array(Math.ceil(MAX_PFN / 8));
  for (let p = 0x1f0; p < 0x600; p++) b[p >>> 3]! |= 1 << (p & 7); // across a 512-frame cycle boundary
  for (let p = 0x1a00; p < 0x2a10; p += 5) b[p >>> 3]! |= 1 << (p & 7);
  return b;
}

function spec(extra: Partial<KdumpCompressedSpec> = {}): KdumpCompressedSpec {
  return {
    source: new MapPageSource(frames()), maxPfn: MAX_PFN, ranges: RANGES, notes: sampleNotes(2).bytes, release: '6.1.0-kdumpsim',
    nrCpus: 2, compression: 'zlib', ...extra,
  };
}

describe('kdump-compressed writer in cycles', () => {
  for (const [name, extra] of [
    ['zero pages shared', {}],
    ['zero pages left out', { excludeZero: true }],
    ['frames left out by a dump level', { excluded: excluded(), dumpLevel: 31 }],
    ['both, with 2 threads', { excluded: excluded(), dumpLevel: 31, excludeZero: true, threads: 2 }],
  ] as [string, Partial<KdumpCompressedSpec>][]) {
    it(`cycles of 512, 1024 and 4096 frames write the same file as one cycle (${name})`, () => {
      const ref = path.join(dir, 'ref.kdump');
      const r0 = writeKdumpCompressed(ref, spec(extra));
      const want = fs.readFileSync(ref);
      for (const cyclePfns of [512, 1024, 4096]) {
        const out = path.join(dir, `c${cyclePfns}.kdump`);
        expect(writeKdumpCompressed(out, spec({ ...extra, cyclePfns }))).toEqual(r0);
        expect(fs.readFileSync(out).equals(want), `cycle ${cyclePfns}`).toBe(true);
      }
    });
  }

  it('refuses a cycle that is not a multiple of 512 frames before creating the file', () => {
    const out = path.join(dir, 'bad-cycle.kdump');
    expect(() => writeKdumpCompressed(out, spec({ cyclePfns: 1000 }))).toThrow(/cyclePfns 1000 is not a positive multiple of 512/);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('a 1 TiB sparse dump: the writer\'s memory stays far below the 64 MiB its two bitmaps take in the file', () => {
    const maxPfn = 2 ** 28; // 1 TiB of 4 KiB frames: each bitmap is 32 MiB
    const ranges: PfnRange[] = [{ startPfn: 0x100, endPfn: 0x9f }, { startPfn: 0x100, endPfn: maxPfn / 2 }, { startPfn: maxPfn / 2 + 0x1000, endPfn: maxPfn }]
      .filter((r) => r.endPfn > r.startPfn);
    // A few hundred non-zero frames spread over the whole range, every one in its own cycle or near others.
    const present = new Map<number, Uint8Array>();
    for (let i = 0; i < 300; i++) {
      const pfn = 0x100 + Math.floor((i * (maxPfn - 0x200)) / 300) + (i % 7);
      if (ranges.some((r) => pfn >= r.startPfn && pfn < r.endPfn)) present.set(pfn, patternPage(pfn));
    }
    const inner = new MapPageSource(present);
    const baseline = (): number => {
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    globalThis.gc?.();
    const before = baseline();
    let peak = before;
    const sample = (): void => {
      peak = Math.max(peak, baseline());
    };
    const source: PageSource = {
      *presentFrames(a, b) {
        sample();
        yield* inner.presentFrames(a, b);
      },
      readFrame(pfn, dst) {
        sample();
        inner.readFrame(pfn, dst);
      },
    };
    const out = path.join(dir, 'sparse-1tib.kdump');
    const r = writeKdumpCompressed(out, { source, maxPfn, ranges, notes: sampleNotes(2).bytes, release: '6.1.0-kdumpsim', nrCpus: 2, compression: 'zlib', excludeZero: true });
    sample();
    expect(r.pages).toBe(present.size);
    // The bitmaps are in the file (2 x 32 MiB), not in memory: a few cycles' worth of buffers at most.
    expect(maxPfn / 8).toBe(32 * 2 ** 20);
    expect(fs.statSync(out).size).toBeGreaterThan(2 * 32 * 2 ** 20);
    expect(peak - before).toBeLessThan(16 * 2 ** 20);
    expect(CYCLE_PFNS / 8).toBeLessThanOrEqual(2 ** 20);
    // And it reads back: a present frame, a zero one left out, the bitmaps at both ends.
    const k = new KdumpCompressedReader(out);
    try {
      const page = new Uint8Array(PAGE_SIZE);
      const [first] = present.keys();
      expect(k.readPage(first!, page)).toBe('present');
      expect(Buffer.from(page).equals(Buffer.from(present.get(first!)!))).toBe(true);
      expect(k.bits(maxPfn - 1)).toEqual({ inMemory: true, dumped: false });
      expect(k.bits(maxPfn / 2 + 0x10)).toEqual({ inMemory: false, dumped: false });
      expect(k.dumpedPages).toBe(present.size);
    } finally {
      k.close();
    }
    fs.rmSync(out);
  });
});
