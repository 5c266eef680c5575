// Compression over worker threads (vmcore convert --threads): the file is
// byte for byte what the single-thread path writes, for every codec, with
// zero runs, excluded frames and batches that straddle slot reuse; a missing
// codec or bad thread count fails before any file appears.

import { describe, it, expect, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { codecAvailable, type Codec } from '../../src/dump/codecs.js';
import { BATCH_PAGES, CompressPool } from '../../src/dump/compress-pool.js';
import { KdumpCompressedReader } from '../../src/dump/kdump-compressed-reader.js';
import { writeKdumpCompressed, type KdumpCompressedSpec, type PfnRange } from '../../src/dump/kdump-compressed-writer.js';
import { MapPageSource, PAGE_SIZE } from '../../src/dump/page-source.js';
import { patternPage, sampleNotes, tempDir, noisePage } from './vmcore-fixtures.js';

const dir = tempDir('compress-threads');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));


const RANGES: PfnRange[] = [{ startPfn: 0x100, endPfn: 0x100 + 5 * BATCH_PAGES + 17 }, { startPfn: 0x4000, endPfn: 0x4000 + 700 }];
const MAX_PFN = 0x4000 + 700;

/** Mixed frames: runs of compressible, random and zero pages, gaps (absent frames read as zero). */
function frames(): Map<number, Uint8Array> {
  const m = new Map<number, Uint8Array>();
  for (const r of RANGES) {
    for (let p = r.startPfn; p < r.endPfn; p++) {
      const k = (p * 7919) % 13;
      if (k < 5) m.set(p, patternPage(p));
      else if (k < 8) m.set(p, noisePage(p));
      else if (k === 8) m.set(p, new Uint8Array(PAGE_SIZE)); // listed but zero
      // else absent: a zero page in a gap
    }
  }
  return m;
}

function excludedBitmap(): Uint8Array {
  const b = new Uint8Array(Math.ceil(MAX_PFN / 8));
  for (let p = 0x180; p < 0x1c0; p++) b[p >>> 3]! |= 1 << (p & 7);
  for (let p = 0x4010; p < 0x4300; p += 3) b[p >>> 3]! |= 1 << (p & 7);
  return b;
}

function spec(codec: Codec, extra: Partial<KdumpCompressedSpec> = {}): KdumpCompressedSpec {
  return {
    source: new MapPageSource(frames()), maxPfn: MAX_PFN, ranges: RANGES, notes: sampleNotes(2).bytes, release: '6.1.0-kdumpsim',
    nrCpus: 2, compression: codec, ...extra,
  };
}

const codecs = (['zlib', 'lzo', 'snappy', 'zstd'] as const).filter((c) => codecAvailable(c));

describe('kdump-compressed writer with worker threads', () => {
  for (const codec of codecs) {
    it(`writes the same bytes as the single-thread path (${codec}, 2 and 3 threads)`, () => {
      const one = path.join(dir, `${codec}-1.kdump`);
      const r1 = writeKdumpCompressed(one, spec(codec));
      const ref = fs.readFileSync(one);
      for (const threads of [2, 3]) {
        const many = path.join(dir, `${codec}-${threads}.kdump`);
        const rn = writeKdumpCompressed(many, spec(codec, { threads }));
        expect(rn).toEqual(r1);
        expect(fs.readFileSync(many).equals(ref)).toBe(true);
      }
      expect(r1.compressedPages).toBeGreaterThan(0);
      expect(r1.rawPages).toBeGreaterThan(0);
      expect(r1.zeroPages).toBeGreaterThan(0);
    });
  }

  it('writes the same bytes with frames left out by a dump level', () => {
    const one = path.join(dir, 'ex-1.kdump');
    const two = path.join(dir, 'ex-2.kdump');
    writeKdumpCompressed(one, spec('zlib', { excluded: excludedBitmap(), dumpLevel: 31 }));
    const r = writeKdumpCompressed(two, spec('zlib', { excluded: excludedBitmap(), dumpLevel: 31, threads: 2 }));
    expect(r.excludedPages).toBeGreaterThan(0);
    expect(fs.readFileSync(two).equals(fs.readFileSync(one))).toBe(true);
    const reader = new KdumpCompressedReader(two);
    try {
      const page = new Uint8Array(PAGE_SIZE);
      const f = frames();
      for (const pfn of [0x100, 0x101, 0x17f, 0x4001, 0x4000 + 699]) {
        expect(reader.readPage(pfn, page)).toBe('present');
        expect(Buffer.from(page).equals(Buffer.from(f.get(pfn) ?? new Uint8Array(PAGE_SIZE)))).toBe(true);
      }
      expect(reader.readPage(0x190, page)).toBe('excluded');
    } finally {
      reader.close();
    }
  });

  it('falls back to the inline path for codec none', () => {
    const one = path.join(dir, 'none-1.kdump');
    const two = path.join(dir, 'none-2.kdump');
    writeKdumpCompressed(one, spec('none'));
    writeKdumpCompressed(two, spec('none', { threads: 2 }));
    expect(fs.readFileSync(two).equals(fs.readFileSync(one))).toBe(true);
  });

  it('refuses a thread count out of range before creating the file', () => {
    const out = path.join(dir, 'bad-threads.kdump');
    expect(() => writeKdumpCompressed(out, spec('zlib', { threads: 1000 }))).toThrow(/1000 threads: expected 1 to 64/);
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.existsSync(`${out}.part`)).toBe(false);
  });

  it('keeps at most its slots in flight', () => {
    const pool = new CompressPool('zlib', 2, 3);
    try {
      for (let i = 0; i < 3; i++) {
        pool.pageSlot(0).set(patternPage(i));
        pool.publish(1);
      }
      expect(pool.full).toBe(true);
      expect(() => pool.publish(1)).toThrow(/every slot is in flight/);
      const b = pool.take();
      expect(b.count).toBe(1);
      expect(b.size(0)).toBeLessThan(PAGE_SIZE);
      expect(pool.inFlight).toBe(2);
    } finally {
      pool.close();
    }
  });
});
