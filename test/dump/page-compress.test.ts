// One page through the writer's compressor (page-compress.ts): zlib pages
// through one reset-between-pages stream are each a standalone zlib stream,
// byte for byte what zlib.deflateSync gives; random pages are stored raw
// without a compression attempt, and only pages zlib could not shrink anyway;
// anything with structure is still compressed.

import { describe, it, expect } from 'vitest';
import * as zlib from 'node:zlib';
import * as fc from 'fast-check';
import { getCodec, codecAvailable, type Codec } from '../../src/dump/codecs.js';
import {
  INCOMPRESSIBLE_MAX_REPEATS, INCOMPRESSIBLE_MIN_BITS, makeIncompressibleTest, makePageCompressor, pageCompressor,
} from '../../src/dump/page-compress.js';
import { PAGE_SIZE } from '../../src/dump/page-source.js';
import { patternPage, noisePage } from './vmcore-fixtures.js';


function textPage(seed: number): Uint8Array {
  const words = ['struct', 'page', 'vmcore', 'kexec', 'the', 'crash', 'kernel', 'memory', 'iommu', 'panic', 'dump', 'level'];
  const s: string[] = [];
  let x = seed >>> 0 || 1;
  while (s.join(' ').length < PAGE_SIZE) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    s.push(words[(x >>> 16) % words.length]!);
  }
  return Uint8Array.from(Buffer.from(s.join(' ').slice(0, PAGE_SIZE), 'latin1'));
}

/** Random bytes with the same 2000 random bytes again 2001 bytes later: high entropy, yet compresses to about half. */
function shiftedRepeatPage(): Uint8Array {
  const p = noisePage(7);
  p.copyWithin(2001, 0, PAGE_SIZE - 2001);
  return p;
}

/** Every byte value equally often (entropy exactly 8 bits), in a 256-byte cycle. */
function cyclePage(): Uint8Array {
  return Uint8Array.from({ length: PAGE_SIZE }, (_, i) => i & 0xff);
}

const isIncompressible = makeIncompressibleTest(INCOMPRESSIBLE_MAX_REPEATS, INCOMPRESSIBLE_MIN_BITS);

describe('the incompressible-page test', () => {
  it('calls random pages incompressible, and zlib could not have shrunk any of them', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const p = noisePage(seed);
      expect(isIncompressible(p)).toBe(true);
      expect(zlib.deflateSync(p, { level: 1 }).length).toBeGreaterThanOrEqual(PAGE_SIZE);
    }
  });

  it('still compresses pages with structure: text, pattern words, a 256-byte cycle, a shifted repeat of random bytes', () => {
    const pages = [textPage(1), textPage(99), patternPage(0x1234), cyclePage(), shiftedRepeatPage()];
    for (const p of pages) {
      expect(isIncompressible(p)).toBe(false);
      expect(zlib.deflateSync(p, { level: 1 }).length).toBeLessThan(PAGE_SIZE);
    }
  });

  it('does not skip a random page with a short run of zeros or a repeated 64-byte block', () => {
    const zeros = noisePage(3);
    zeros.fill(0, 1000, 1064);
    const block = noisePage(4);
    block.copyWithin(3000, 100, 164);
    expect(isIncompressible(zeros)).toBe(false);
    expect(isIncompressible(block)).toBe(false);
  });

  it('property: a page it calls incompressible never deflates below a page', () => {
    // Random pages with a random number of random bytes forced to a few values, and random copies inside.
    fc.assert(fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.integer({ min: 0, max: 4096 }), fc.integer({ min: 0, max: 4 }),
      fc.integer({ min: 0, max: 4095 }), fc.integer({ min: 0, max: 4095 }), fc.integer({ min: 0, max: 64 }), (seed, skew, values, from, to, len) => {
        const p = noisePage(seed);
        for (let i = 0; i < skew; i++) p[(i * 2654435761) % PAGE_SIZE] = (i % (values + 1)) * 17;
        p.copyWithin(to, from, Math.min(PAGE_SIZE, from + len));
        if (isIncompressible(p)) expect(zlib.deflateSync(p, { level: 1 }).length).toBeGreaterThanOrEqual(PAGE_SIZE);
      }), { numRuns: 400 });
  });
});

describe('the page compressor', () => {
  const pages = [textPage(5), patternPage(0x99), cyclePage(), shiftedRepeatPage(), noisePage(11), new Uint8Array(PAGE_SIZE).fill(0x41)];

  it('zlib: each page is a standalone zlib stream, the same bytes as zlib.deflateSync, written at the offset given', () => {
    const compress = pageCompressor(getCodec('zlib'));
    const out = new Uint8Array(3 * PAGE_SIZE).fill(0xee);
    for (let round = 0; round < 2; round++) {
      for (const [i, p] of pages.entries()) {
        const at = 17 + i * 3;
        const n = compress(p, out, at);
        const ref = zlib.deflateSync(p, { level: 1 });
        if (ref.length >= PAGE_SIZE || isIncompressible(p)) {
          expect(n).toBe(-1);
          continue;
        }
        expect(n).toBe(ref.length);
        expect(Buffer.from(out.subarray(at, at + n)).equals(ref)).toBe(true);
        expect(Buffer.from(zlib.inflateSync(out.subarray(at, at + n))).equals(Buffer.from(p))).toBe(true);
      }
    }
  });

  it('zlib: a page that does not fit in PAGE_SIZE - 1 bytes is stored raw', () => {
    // Random bytes with a repeat early on: the test lets it through, deflate cannot shrink it.
    const p = noisePage(21);
    p.copyWithin(40, 0, 40);
    expect(isIncompressible(p)).toBe(false);
    expect(zlib.deflateSync(p, { level: 1 }).length).toBeGreaterThanOrEqual(PAGE_SIZE);
    expect(pageCompressor(getCodec('zlib'))(p, new Uint8Array(PAGE_SIZE), 0)).toBe(-1);
  });

  it('zlib without node:zlib handle internals falls back to deflateSync, same bytes', () => {
    const bare = { constants: zlib.constants, deflateSync: zlib.deflateSync, createDeflate: () => ({}) };
    const viaSync = makePageCompressor(bare, null, PAGE_SIZE, INCOMPRESSIBLE_MAX_REPEATS, INCOMPRESSIBLE_MIN_BITS, makeIncompressibleTest);
    const viaHandle = pageCompressor(getCodec('zlib'));
    for (const p of pages) {
      const a = new Uint8Array(PAGE_SIZE);
      const b = new Uint8Array(PAGE_SIZE);
      const na = viaSync(p, a, 0);
      expect(na).toBe(viaHandle(p, b, 0));
      if (na > 0) expect(Buffer.from(a.subarray(0, na)).equals(Buffer.from(b.subarray(0, na)))).toBe(true);
    }
  });

  for (const codec of ['lzo', 'snappy', 'zstd'] as Codec[]) {
    it.runIf(codecAvailable(codec))(`${codec}: the codec's own bytes when they shrink the page, else raw`, () => {
      const c = getCodec(codec);
      const compress = pageCompressor(c);
      for (const p of pages) {
        const out = new Uint8Array(PAGE_SIZE);
        const n = compress(p, out, 0);
        const ref = c.compress(p);
        if (isIncompressible(p) || ref.length >= PAGE_SIZE) expect(n).toBe(-1);
        else expect(Buffer.from(out.subarray(0, n)).equals(Buffer.from(ref))).toBe(true);
      }
    });
  }

  it('refuses codec none', () => {
    expect(() => pageCompressor(getCodec('none'))).toThrow(/stores pages raw/);
  });
});
