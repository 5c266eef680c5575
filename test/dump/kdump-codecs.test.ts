// Every kdump-compressed page codec (zlib, lzo, snappy, zstd, none) through
// writer -> reader on mixed pages, the codec framing makedumpfile uses, and
// descriptors whose data does not decompress to a page.

import { describe, it, expect, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { CODECS, codecForFlag, getCodec, isCodec, requireCodec, type Codec } from '../../src/dump/codecs.js';
import { KdumpCompressedReader } from '../../src/dump/kdump-compressed-reader.js';
import { writeKdumpCompressed, type PfnRange } from '../../src/dump/kdump-compressed-writer.js';
import {
  DH_BITMAP_BLOCKS, DH_STATUS, DH_SUB_HDR_SIZE, DUMP_DH_COMPRESSED_LZO, DUMP_DH_COMPRESSED_SNAPPY, DUMP_DH_COMPRESSED_ZLIB,
  DUMP_DH_COMPRESSED_ZSTD, PD_SIZE,
} from '../../src/dump/kdump-compressed.js';
import { MapPageSource, PAGE_SIZE } from '../../src/dump/page-source.js';
import { VmcoreFormatError } from '../../src/util/errors.js';
import { patternPage, sampleNotes, tempDir } from './vmcore-fixtures.js';

const dir = tempDir('kdump-codecs');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const RANGES: PfnRange[] = [{ startPfn: 0x100, endPfn: 0x120 }, { startPfn: 0x800, endPfn: 0x808 }];
const MAX_PFN = 0x808;
const COMPRESSIBLE = [0x100, 0x101, 0x110, 0x11f, 0x800, 0x807];
const RANDOM = [0x102, 0x801];

function textPage(seed: number): Uint8Array {
  const s = Buffer.alloc(PAGE_SIZE);
  for (let i = 0; i < PAGE_SIZE; i++) s[i] = 0x61 + ((i * 7 + seed) % 23) * ((i >> 6) % 2);
  return new Uint8Array(s);
}

function frames(): Map<number, Uint8Array> {
  const m = new Map<number, Uint8Array>();
  for (const pfn of COMPRESSIBLE) m.set(pfn, pfn % 2 === 0 ? patternPage(pfn) : textPage(pfn));
  for (const pfn of RANDOM) m.set(pfn, new Uint8Array(randomBytes(PAGE_SIZE)));
  m.set(0x103, new Uint8Array(PAGE_SIZE)); // named but zero
  return m;
}

function write(codec: Codec, file: string, m = frames()): ReturnType<typeof writeKdumpCompressed> {
  return writeKdumpCompressed(file, {
    source: new MapPageSource(m), maxPfn: MAX_PFN, ranges: RANGES, notes: sampleNotes(2).bytes, release: '6.1.0-kdumpsim',
    nrCpus: 2, compression: codec,
  });
}

/** File offset of the descriptor of pfn. */
function descAt(file: Uint8Array, r: KdumpCompressedReader, pfn: number): number {
  const v = new DataView(file.buffer, file.byteOffset);
  const descOff = (1 + v.getInt32(DH_SUB_HDR_SIZE, true) + v.getUint32(DH_BITMAP_BLOCKS, true)) * PAGE_SIZE;
  return descOff + r.descriptorIndex(pfn) * PD_SIZE;
}

describe('page codecs', () => {
  it('carry makedumpfile\'s flag values', () => {
    expect(getCodec('zlib').flag).toBe(DUMP_DH_COMPRESSED_ZLIB);
    expect(getCodec('lzo').flag).toBe(DUMP_DH_COMPRESSED_LZO);
    expect(getCodec('snappy').flag).toBe(DUMP_DH_COMPRESSED_SNAPPY);
    expect(getCodec('zstd').flag).toBe(DUMP_DH_COMPRESSED_ZSTD);
    expect(getCodec('none').flag).toBe(0);
    expect([0x1, 0x2, 0x4, 0x20].map((f) => codecForFlag(f)?.name)).toEqual(['zlib', 'lzo', 'snappy', 'zstd']);
    expect(codecForFlag(0x8)).toBeUndefined();
    expect(codecForFlag(0x3)).toBeUndefined();
    expect(isCodec('lz4')).toBe(false);
    expect(CODECS.every(isCodec)).toBe(true);
  });

  for (const name of CODECS) {
    it(`${name}: round trip and size checks`, () => {
      const c = requireCodec(name);
      const page = textPage(3);
      const z = c.compress(page);
      if (name !== 'none') expect(z.length).toBeLessThan(PAGE_SIZE);
      expect(Buffer.from(c.decompress(z, PAGE_SIZE)).equals(page)).toBe(true);
      expect(() => c.decompress(z, PAGE_SIZE / 2)).toThrow();
      expect(() => c.decompress(c.compress(page.subarray(0, 2048)), PAGE_SIZE)).toThrow();
    });
  }

  it('frame their data as makedumpfile does', () => {
    const page = textPage(5);
    expect(getCodec('zlib').compress(page)[0]).toBe(0x78); // RFC 1950 header
    expect([...getCodec('zstd').compress(page).subarray(0, 4)]).toEqual([0x28, 0xb5, 0x2f, 0xfd]); // zstd frame magic
    expect([...getCodec('snappy').compress(page).subarray(0, 2)]).toEqual([0x80, 0x20]); // raw block: varint 4096, no stream header
    const lzo = getCodec('lzo').compress(page);
    expect([...lzo.subarray(-3)]).toEqual([0x11, 0, 0]); // LZO1X end-of-stream marker, raw block
  });
});

describe('kdump-compressed with every codec', () => {
  for (const codec of CODECS) {
    it(`${codec}: mixed pages read back, descriptors carry the codec flag`, () => {
      const m = frames();
      const file = path.join(dir, `rt-${codec}.kdump`);
      const stats = write(codec, file, m);
      const flag = getCodec(codec).flag;
      if (codec === 'none') expect(stats.compressedPages).toBe(0);
      else expect(stats.compressedPages).toBe(COMPRESSIBLE.length);
      expect(stats.rawPages).toBe(codec === 'none' ? COMPRESSIBLE.length + RANDOM.length : RANDOM.length);
      const bytes = new Uint8Array(fs.readFileSync(file));
      expect(new DataView(bytes.buffer).getUint32(DH_STATUS, true)).toBe(flag);
      const r = new KdumpCompressedReader(file);
      try {
        expect(r.compression).toBe(codec);
        const page = new Uint8Array(PAGE_SIZE);
        for (const { startPfn, endPfn } of RANGES) {
          for (let pfn = startPfn; pfn < endPfn; pfn++) {
            expect(r.readPage(pfn, page)).toBe('present');
            const want = m.get(pfn) ?? new Uint8Array(PAGE_SIZE);
            expect(Buffer.from(page).equals(want), `pfn ${pfn.toString(16)}`).toBe(true);
          }
        }
        const v = new DataView(bytes.buffer);
        for (const pfn of COMPRESSIBLE) expect(v.getUint32(descAt(bytes, r, pfn) + 12, true)).toBe(flag);
        for (const pfn of RANDOM) {
          expect(v.getUint32(descAt(bytes, r, pfn) + 12, true)).toBe(0);
          expect(v.getUint32(descAt(bytes, r, pfn) + 8, true)).toBe(PAGE_SIZE);
        }
      } finally {
        r.close();
      }
    });
  }

  for (const codec of ['zlib', 'lzo', 'snappy', 'zstd'] as const) {
    it(`${codec}: a descriptor whose data does not decompress to a page gives VmcoreFormatError`, () => {
      const file = path.join(dir, `bad-${codec}.kdump`);
      write(codec, file);
      const good = new Uint8Array(fs.readFileSync(file));
      const probe = new KdumpCompressedReader(file);
      const d = descAt(good, probe, 0x101);
      probe.close();
      const dv = new DataView(good.buffer);
      const dataOff = Number(dv.getBigInt64(d, true));
      const size = dv.getUint32(d + 8, true);
      const victims: [string, Uint8Array][] = [];
      // Truncated stream.
      const cut = good.slice();
      new DataView(cut.buffer).setUint32(d + 8, Math.floor(size / 2), true);
      victims.push(['truncated', cut]);
      // A well-formed stream of half a page.
      const half = getCodec(codec).compress(new Uint8Array(PAGE_SIZE / 2).fill(0x41));
      expect(half.length).toBeLessThanOrEqual(size);
      const short = good.slice();
      short.set(half, dataOff);
      new DataView(short.buffer).setUint32(d + 8, half.length, true);
      victims.push(['half page', short]);
      // Garbage.
      const junk = good.slice();
      junk.fill(0xff, dataOff, dataOff + size);
      victims.push(['garbage', junk]);
      for (const [what, bytes] of victims) {
        const f = path.join(dir, `bad-${codec}-${what}.kdump`);
        fs.writeFileSync(f, bytes);
        const r = new KdumpCompressedReader(f);
        try {
          let err: unknown;
          try {
            r.readPage(0x101, new Uint8Array(PAGE_SIZE));
          } catch (e) {
            err = e;
          }
          expect(err, `${codec} ${what}`).toBeInstanceOf(VmcoreFormatError);
          expect((err as VmcoreFormatError).message).toMatch(new RegExp(`${codec} data .* does not decompress to a page`));
          expect((err as VmcoreFormatError).field).toBe('page data');
          // Other pages still read.
          expect(r.readPage(0x100, new Uint8Array(PAGE_SIZE))).toBe('present');
        } finally {
          r.close();
        }
      }
    });
  }
});
