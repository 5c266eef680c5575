// Compressing one page for the kdump-compressed writer, fast: the inline
// path and every compression worker (compress-pool.ts) run this same code,
// so the file is the same bytes whatever the thread count.
//
// Two costs dominated a conversion (measured with node --cpu-prof on a
// 1 GiB mixed dump): zlib.deflateSync builds and tears down a zlib stream
// for every 4 KiB page (deflateInit2 allocates about 256 KiB and clears the
// hash table), and random or encrypted pages were compressed only to be
// stored raw. So:
// - zlib pages go through one deflate stream that is reset between pages
//   (deflateReset: every page is still a complete, standalone RFC 1950
//   stream, the same bytes deflateSync gives) and deflate straight into the
//   caller's output buffer with room for PAGE_SIZE - 1 bytes: a page that
//   does not fit does not shrink and is stored raw. The stream is driven
//   through node:zlib's handle (writeSync/reset, what zlib.deflateSync uses
//   inside); where that handle is not there, or its first output differs
//   from deflateSync's, pages go through deflateSync as before.
// - A page that looks incompressible is stored raw without trying: fewer
//   than INCOMPRESSIBLE_MAX_REPEATS 4-byte sequences repeat in it (so LZ77
//   finds next to nothing to match) and its bytes are close to uniformly
//   distributed (at least INCOMPRESSIBLE_MIN_BITS bits of entropy per byte,
//   so the literals alone take at least 4045 of the 4096 bytes, and the
//   Huffman tables for about 256 near-equal literals take more than what is
//   left: deflate falls back to a stored block, 4107 bytes). Random and
//   encrypted memory look like that; text, code, tables and data
//   structures repeat within their first few hundred bytes, which is where
//   the test stops. A page the test calls incompressible might in theory
//   have shrunk by a few bytes; it is then stored raw, which any reader
//   reads the same.
//
// The functions below are self-contained (no imports, no outer names) because
// their source text is also what the workers evaluate.

import * as zlib from 'node:zlib';
import type { PageCodec } from './codecs.js';
import { PAGE_SIZE } from './page-source.js';

/** Repeated 4-byte sequences at which a page counts as worth compressing. */
export const INCOMPRESSIBLE_MAX_REPEATS = 8;
/** Order-0 entropy (bits per byte) at or above which a page without repeats is stored raw. */
export const INCOMPRESSIBLE_MIN_BITS = 7.9;

/**
 * Compresses `page` into out[outOff, outOff + PAGE_SIZE - 1) and returns the
 * compressed length, or -1 when the page is to be stored raw (it would not
 * shrink, or it looks incompressible). `out` must have PAGE_SIZE bytes of
 * room at outOff; bytes past the returned length may be overwritten.
 */
export type PageCompressor = (page: Uint8Array, out: Uint8Array, outOff: number) => number;

/** The incompressibility test: true when the page is to be stored raw without a compression attempt. */
export function makeIncompressibleTest(maxRepeats: number, minBits: number): (page: Uint8Array) => boolean {
  const SLOTS = 4096;
  const values = new Int32Array(SLOTS);
  const stamps = new Int32Array(SLOTS);
  const hist = new Int32Array(256);
  const cLog2c = new Float64Array(65537);
  for (let c = 2; c < cLog2c.length; c++) cLog2c[c] = c * Math.log2(c);
  let stamp = 0;
  return (page) => {
    const n = page.length;
    if (n < 4 || n >= cLog2c.length) return false;
    if (++stamp === 0x7fffffff) {
      stamps.fill(0);
      stamp = 1;
    }
    hist.fill(0);
    let repeats = 0;
    let v = 0;
    for (let i = 0; i < n; i++) {
      const b = page[i]!;
      hist[b]!++;
      v = (v << 8) | b;
      if (i < 3) continue;
      const h = Math.imul(v, 0x9e3779b1) >>> 20;
      if (stamps[h] === stamp && values[h] === v) {
        if (++repeats >= maxRepeats) return false;
      } else {
        stamps[h] = stamp;
        values[h] = v;
      }
    }
    let s = 0;
    for (let k = 0; k < 256; k++) s += cLog2c[hist[k]!]!;
    return Math.log2(n) - s / n >= minBits;
  };
}

interface ZlibLike {
  constants: { Z_FINISH: number };
  deflateSync(buf: Uint8Array, options: { level: number }): Uint8Array;
  createDeflate(options: { level: number }): unknown;
}

/**
 * A compressor over one reusable compression step: zlib (level 1, as
 * makedumpfile's compress2) through one reset-between-pages deflate stream
 * when `zlibModule` is given, else `compress` (any other codec) with its
 * output copied when it shrinks the page.
 */
export function makePageCompressor(
  zlibModule: ZlibLike | null, compress: ((page: Uint8Array) => Uint8Array) | null, pageSize: number, maxRepeats: number, minBits: number,
  makeTest: (maxRepeats: number, minBits: number) => (page: Uint8Array) => boolean,
): (page: Uint8Array, out: Uint8Array, outOff: number) => number {
  const incompressible = makeTest(maxRepeats, minBits);
  const copying = (f: (page: Uint8Array) => Uint8Array) => (page: Uint8Array, out: Uint8Array, outOff: number): number => {
    const c = f(page);
    if (c.length >= pageSize) return -1;
    out.set(c, outOff);
    return c.length;
  };
  let step: (page: Uint8Array, out: Uint8Array, outOff: number) => number;
  if (zlibModule === null) {
    if (compress === null) throw new Error('makePageCompressor: no codec');
    step = copying(compress);
  } else {
    const z = zlibModule;
    const viaSync = copying((p) => z.deflateSync(p, { level: 1 }));
    step = viaSync;
    try {
      const engine = z.createDeflate({ level: 1 }) as { _handle?: unknown; _writeState?: unknown; destroyed?: boolean; on?: unknown };
      // A zlib error destroys the stream (synchronously) and emits 'error' later: keep it from being unhandled.
      if (typeof engine.on === 'function') (engine.on as (e: string, f: () => void) => void).call(engine, 'error', () => {});
      const handle = engine._handle as { writeSync?: unknown; reset?: unknown } | undefined | null;
      const state = engine._writeState;
      if (handle && typeof handle.writeSync === 'function' && typeof handle.reset === 'function' && state instanceof Uint32Array && state.length >= 2) {
        const write = handle.writeSync as (flush: number, i: Uint8Array, io: number, il: number, o: Uint8Array, oo: number, ol: number) => void;
        const reset = handle.reset as () => void;
        const finish = z.constants.Z_FINISH;
        const room = pageSize - 1;
        const viaHandle = (page: Uint8Array, out: Uint8Array, outOff: number): number => {
          reset.call(handle);
          write.call(handle, finish, page, 0, page.length, out, outOff, room);
          if (engine.destroyed === true) {
            step = viaSync; // the stream failed and is closed: deflateSync from now on
            return viaSync(page, out, outOff);
          }
          // state[0]: output room left, state[1]: input left. Z_FINISH returns with room left only at the stream's end.
          const left = state[0]!;
          if (left === 0 || state[1] !== 0) return -1;
          return room - left;
        };
        // Self-check on a page that compresses: the same bytes as deflateSync, or do not use the handle.
        const probe = new Uint8Array(pageSize);
        for (let i = 0; i < pageSize; i++) probe[i] = (i * 7) & 0x3f;
        const a = new Uint8Array(pageSize);
        const b = new Uint8Array(pageSize);
        const c = new Uint8Array(pageSize + 1);
        const na = viaHandle(probe, a, 0);
        const nb = viaSync(probe, b, 0);
        const nc = viaHandle(probe, c, 1); // again, after a reset, at an offset
        let same = na > 0 && na === nb && nc === na;
        for (let i = 0; same && i < na; i++) same = a[i] === b[i] && c[i + 1] === b[i];
        if (same) step = viaHandle;
      }
    } catch {
      step = viaSync;
    }
  }
  return (page, out, outOff) => (incompressible(page) ? -1 : step(page, out, outOff));
}

/**
 * The JavaScript source of the two functions above, for the workers to
 * evaluate. Run from the TypeScript sources (tsx, vitest), esbuild keeps
 * function names with calls to a `__name` helper that the worker does not
 * have: it gets one that does nothing.
 */
export const PAGE_COMPRESSOR_SOURCE = `var __name = (f) => f;\n${makeIncompressibleTest.toString()}\n${makePageCompressor.toString()}\n`;

/** A compressor for `codec` (not 'none'), in this thread. */
export function pageCompressor(codec: PageCodec): PageCompressor {
  if (codec.flag === 0) throw new RangeError(`Cannot compress pages with codec "${codec.name}": it stores pages raw`);
  return codec.name === 'zlib'
    ? makePageCompressor(zlib, null, PAGE_SIZE, INCOMPRESSIBLE_MAX_REPEATS, INCOMPRESSIBLE_MIN_BITS, makeIncompressibleTest)
    : makePageCompressor(null, (p) => codec.compress(p), PAGE_SIZE, INCOMPRESSIBLE_MAX_REPEATS, INCOMPRESSIBLE_MIN_BITS, makeIncompressibleTest);
}
