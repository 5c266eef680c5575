// Page codecs of the kdump-compressed format, each framed as makedumpfile
// writes it: zlib = compress2() output (RFC 1950, level 1), lzo = one raw
// LZO1X-1 block, snappy = one raw snappy block (varint length, no framing),
// zstd = one zstd frame per page (level 1). The native codec packages are
// loaded on first use, so a machine without one still reads and writes the
// others; asking for a missing one names the package to install.

import { createRequire } from 'node:module';
import * as zlib from 'node:zlib';
import { InputError } from '../util/errors.js';
import {
  DUMP_DH_COMPRESSED_LZO, DUMP_DH_COMPRESSED_SNAPPY, DUMP_DH_COMPRESSED_ZLIB, DUMP_DH_COMPRESSED_ZSTD,
} from './kdump-compressed.js';

export type Codec = 'zlib' | 'lzo' | 'snappy' | 'zstd' | 'none';
export const CODECS: readonly Codec[] = ['zlib', 'lzo', 'snappy', 'zstd', 'none'];

export interface PageCodec {
  readonly name: Codec;
  /** disk_dump_header.status and page_desc.flags bit (0 for none). */
  readonly flag: number;
  /** Package the codec comes from ('node:zlib' for zlib, '' for none). */
  readonly packageName: string;
  compress(page: Uint8Array): Uint8Array;
  /** Throws unless data decompresses to exactly expectedSize bytes. */
  decompress(data: Uint8Array, expectedSize: number): Uint8Array;
}

/** A codec whose package is not installed or does not load. */
export class CodecUnavailableError extends InputError {
  override name = 'CodecUnavailableError';
  readonly codec: Codec;
  readonly packageName: string;
  constructor(codec: Codec, packageName: string, cause: unknown) {
    super(`Cannot use ${codec} compression: package "${packageName}" is not installed or does not load (${(cause as Error).message.split('\n')[0] ?? ''}); install it with npm install ${packageName}`, { cause });
    this.codec = codec;
    this.packageName = packageName;
  }
}

interface LzoModule {
  compress(input: Buffer): Buffer;
  decompress(input: Buffer, length: number): Buffer;
}
interface SnappyModule {
  compressSync(input: Uint8Array): Buffer;
  uncompressSync(input: Uint8Array, options?: { asBuffer?: boolean }): string | Buffer;
}
interface ZstdModule {
  Encoder: new (level: number) => { encodeSync(data: Buffer): Buffer };
  Decoder: new () => { decodeSync(data: Buffer): Buffer };
}

const require = createRequire(import.meta.url);
const loaded = new Map<string, unknown>();

function load<T>(codec: Codec, pkg: string): T {
  if (loaded.has(pkg)) return loaded.get(pkg) as T;
  let mod: unknown;
  try {
    mod = require(pkg);
  } catch (e) {
    throw new CodecUnavailableError(codec, pkg, e);
  }
  loaded.set(pkg, mod);
  return mod as T;
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.length);
}

function checkSize(codec: Codec, out: Uint8Array, expected: number): Uint8Array {
  if (out.length !== expected) throw new Error(`${codec} data decompresses to ${out.length} bytes, expected ${expected}`);
  return out;
}

/** Leading varint of a snappy block: the uncompressed length. */
function snappyLength(data: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < 5 && i < data.length; i++) {
    const b = data[i] ?? 0;
    n += (b & 0x7f) * 2 ** (7 * i);
    if ((b & 0x80) === 0) return n;
  }
  throw new Error('snappy data has no valid length prefix');
}

/** Frame_Content_Size of a zstd frame header, or undefined when not recorded. */
function zstdContentSize(data: Uint8Array): number | undefined {
  if (data.length < 6 || data[0] !== 0x28 || data[1] !== 0xb5 || data[2] !== 0x2f || data[3] !== 0xfd) {
    throw new Error('zstd data does not start with a zstd frame magic');
  }
  const fhd = data[4] ?? 0;
  const fcsFlag = fhd >> 6;
  const single = (fhd >> 5) & 1;
  const didFlag = fhd & 3;
  const fcsBytes = [single ? 1 : 0, 2, 4, 8][fcsFlag] ?? 0;
  if (fcsBytes === 0) return undefined;
  const at = 5 + (single ? 0 : 1) + ([0, 1, 2, 4][didFlag] ?? 0);
  if (data.length < at + fcsBytes) throw new Error('zstd frame header is truncated');
  let v = 0;
  for (let i = fcsBytes - 1; i >= 0; i--) v = v * 256 + (data[at + i] ?? 0);
  return fcsBytes === 2 ? v + 256 : v;
}

const zlibCodec: PageCodec = {
  name: 'zlib', flag: DUMP_DH_COMPRESSED_ZLIB, packageName: 'node:zlib',
  compress: (page) => zlib.deflateSync(page, { level: 1 }),
  decompress: (data, expected) => checkSize('zlib', zlib.inflateSync(data, { maxOutputLength: Math.max(1, expected) }), expected),
};

const lzoCodec: PageCodec = {
  name: 'lzo', flag: DUMP_DH_COMPRESSED_LZO, packageName: 'lzo',
  compress: (page) => load<LzoModule>('lzo', 'lzo').compress(asBuffer(page)),
  // lzo1x_decompress_safe into an expectedSize buffer: longer output is LZO_E_OUTPUT_OVERRUN.
  decompress: (data, expected) => checkSize('lzo', load<LzoModule>('lzo', 'lzo').decompress(asBuffer(data), expected), expected),
};

const snappyCodec: PageCodec = {
  name: 'snappy', flag: DUMP_DH_COMPRESSED_SNAPPY, packageName: 'snappy',
  compress: (page) => load<SnappyModule>('snappy', 'snappy').compressSync(page),
  decompress: (data, expected) => {
    const m = load<SnappyModule>('snappy', 'snappy');
    const len = snappyLength(data);
    if (len !== expected) throw new Error(`snappy data declares ${len} bytes, expected ${expected}`);
    const out = m.uncompressSync(data, { asBuffer: true });
    if (typeof out === 'string') throw new Error('snappy returned a string');
    return checkSize('snappy', out, expected);
  },
};

let zstdEncoder: { encodeSync(data: Buffer): Buffer } | undefined;
let zstdDecoder: { decodeSync(data: Buffer): Buffer } | undefined;
const zstdCodec: PageCodec = {
  name: 'zstd', flag: DUMP_DH_COMPRESSED_ZSTD, packageName: '@toondepauw/node-zstd',
  compress: (page) => {
    zstdEncoder ??= new (load<ZstdModule>('zstd', '@toondepauw/node-zstd').Encoder)(1);
    return zstdEncoder.encodeSync(asBuffer(page));
  },
  decompress: (data, expected) => {
    const declared = zstdContentSize(data);
    if (declared !== undefined && declared !== expected) throw new Error(`zstd frame declares ${declared} bytes, expected ${expected}`);
    zstdDecoder ??= new (load<ZstdModule>('zstd', '@toondepauw/node-zstd').Decoder)();
    return checkSize('zstd', zstdDecoder.decodeSync(asBuffer(data)), expected);
  },
};

const noneCodec: PageCodec = {
  name: 'none', flag: 0, packageName: '',
  compress: (page) => page,
  decompress: (data, expected) => checkSize('none', data, expected),
};

const BY_NAME: Record<Codec, PageCodec> = { zlib: zlibCodec, lzo: lzoCodec, snappy: snappyCodec, zstd: zstdCodec, none: noneCodec };

export function isCodec(name: string): name is Codec {
  return (CODECS as readonly string[]).includes(name);
}

export function getCodec(name: Codec): PageCodec {
  return BY_NAME[name];
}

/** The codec for a page_desc.flags / header status compression bit, or undefined. */
export function codecForFlag(flag: number): PageCodec | undefined {
  return Object.values(BY_NAME).find((c) => c.flag === flag);
}

/** Loads the codec's package now; throws CodecUnavailableError when it is missing. */
export function requireCodec(name: Codec): PageCodec {
  const c = BY_NAME[name];
  if (c.packageName !== '' && c.packageName !== 'node:zlib') load(name, c.packageName);
  return c;
}

/** Whether the codec's package loads on this machine. */
export function codecAvailable(name: Codec): boolean {
  try {
    requireCodec(name);
    return true;
  } catch (e) {
    if (e instanceof CodecUnavailableError) return false;
    throw e;
  }
}
