// A small POSIX ustar reader and writer for doctor bundles. Reading indexes
// the headers only (file data is read on demand), so a large tar costs its
// header count in memory; every header field is checked because a bundle is
// user input. Writing produces plain ustar that GNU and BSD tar extract.

import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { InputError } from '../util/errors.js';

export const BLOCK = 512;
/** A gzip-compressed bundle is inflated in memory; beyond this it is refused rather than allowed to grow. */
export const MAX_INFLATED_BYTES = 256 * 2 ** 20;

/** A malformed tar: names the file, the byte offset of the header and the field. */
export class TarFormatError extends InputError {
  override name = 'TarFormatError';
  readonly file: string;
  readonly offset: number;
  readonly field: string;
  constructor(detail: string, where: { file: string; offset: number; field: string }) {
    super(`Cannot read tar "${where.file}": header at offset ${where.offset}, field ${where.field}: ${detail}`);
    this.file = where.file;
    this.offset = where.offset;
    this.field = where.field;
  }
}

// Header layout (POSIX.1-1988 ustar): name, offset, length.
const F = {
  name: [0, 100],
  mode: [100, 8],
  uid: [108, 8],
  gid: [116, 8],
  size: [124, 12],
  mtime: [136, 12],
  chksum: [148, 8],
  typeflag: [156, 1],
  linkname: [157, 100],
  magic: [257, 6],
  version: [263, 2],
  uname: [265, 32],
  gname: [297, 32],
  devmajor: [329, 8],
  devminor: [337, 8],
  prefix: [345, 155],
} as const satisfies Record<string, readonly [number, number]>;
type Field = keyof typeof F;

export interface TarEntry {
  /** Path inside the archive, without a leading "./". */
  name: string;
  type: 'file' | 'dir' | 'symlink';
  /** Byte offset of the data in the (inflated) archive. */
  dataOffset: number;
  size: number;
  linkname: string;
}

/** Random access to the archive bytes: a file descriptor or an inflated buffer. */
interface Bytes {
  readonly length: number;
  read(offset: number, length: number): Buffer;
}

function bufferBytes(buf: Buffer): Bytes {
  return { length: buf.length, read: (o, n) => buf.subarray(o, Math.min(buf.length, o + n)) };
}

/** Reads a file by offset, opening it for each read so an archive holds no descriptor between reads. */
function fileBytes(file: string, length: number): Bytes {
  return {
    length,
    read(offset, n) {
      const want = Math.max(0, Math.min(n, length - offset));
      const out = Buffer.alloc(want);
      const fd = fs.openSync(file, 'r');
      try {
        let got = 0;
        while (got < want) {
          const r = fs.readSync(fd, out, got, want - got, offset + got);
          if (r === 0) break;
          got += r;
        }
        return out.subarray(0, got);
      } finally {
        fs.closeSync(fd);
      }
    },
  };
}

/** An opened tar: the entry index and on-demand reads of entry data. */
export class TarArchive {
  readonly file: string;
  readonly entries: ReadonlyMap<string, TarEntry>;
  readonly #bytes: Bytes;

  private constructor(file: string, bytes: Bytes) {
    this.file = file;
    this.#bytes = bytes;
    this.entries = indexEntries(file, bytes);
  }

  /** Opens `file` (ustar, or gzip-compressed ustar detected by its magic bytes). */
  static open(file: string): TarArchive {
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch (e) {
      throw new InputError(`Cannot open bundle "${file}": ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    if (!st.isFile()) throw new InputError(`Cannot open bundle "${file}": not a regular file`);
    const raw = fileBytes(file, st.size);
    let magic: Buffer;
    try {
      magic = raw.read(0, 2);
    } catch (e) {
      throw new InputError(`Cannot open bundle "${file}": ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    if (magic.length === 2 && magic[0] === 0x1f && magic[1] === 0x8b) {
      if (st.size > MAX_INFLATED_BYTES) {
        throw new InputError(`Cannot open bundle "${file}": ${st.size} bytes compressed is more than a bundle holds (limit ${MAX_INFLATED_BYTES})`);
      }
      let inflated: Buffer;
      try {
        // Bounded: a bundle holds logs capped at 16 MiB and small files; a bomb stops here.
        inflated = zlib.gunzipSync(raw.read(0, st.size), { maxOutputLength: MAX_INFLATED_BYTES });
      } catch (e) {
        throw new InputError(`Cannot inflate bundle "${file}": ${(e as Error).message}`);
      }
      return new TarArchive(file, bufferBytes(inflated));
    }
    return new TarArchive(file, raw);
  }

  /** Reads up to `cap` bytes of an entry's data; `truncated` when it holds more. */
  read(entry: TarEntry, cap: number): { data: Buffer; truncated: boolean } {
    const n = Math.min(entry.size, cap);
    return { data: Buffer.from(this.#bytes.read(entry.dataOffset, n)), truncated: entry.size > cap };
  }
}

function fieldBytes(h: Buffer, f: Field): Buffer {
  const [o, n] = F[f];
  return h.subarray(o, o + n);
}

/** A NUL-terminated (or full-width) text field. */
function text(h: Buffer, f: Field): string {
  const b = fieldBytes(h, f);
  const end = b.indexOf(0);
  return b.subarray(0, end < 0 ? b.length : end).toString('utf8');
}

/**
 * An octal number field: optional leading spaces, octal digits, then NUL or
 * space padding. `emptyOk` for devmajor/devminor, which writers leave blank.
 */
function octal(file: string, offset: number, h: Buffer, f: Field, emptyOk = false): number {
  const b = fieldBytes(h, f);
  if ((b[0]! & 0x80) !== 0) {
    throw new TarFormatError('base-256 numbers are not supported', { file, offset, field: f });
  }
  const s = b.toString('latin1');
  const m = /^ *([0-7]*)[ \0]*$/.exec(s);
  if (!m) throw new TarFormatError(`not an octal number: "${printable(s)}"`, { file, offset, field: f });
  if (m[1] === '') {
    if (emptyOk) return 0;
    throw new TarFormatError('empty number', { file, offset, field: f });
  }
  const v = parseInt(m[1]!, 8);
  if (!Number.isSafeInteger(v)) throw new TarFormatError(`number too large: ${m[1]}`, { file, offset, field: f });
  return v;
}

function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, (c) => '\\x' + c.charCodeAt(0).toString(16).padStart(2, '0'));
}

function checksums(h: Buffer): { unsigned: number; signed: number } {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= F.chksum[0] && i < F.chksum[0] + F.chksum[1] ? 0x20 : h[i]!;
    unsigned += b;
    signed += b >= 0x80 ? b - 0x100 : b;
  }
  return { unsigned, signed };
}

function isZero(b: Buffer): boolean {
  for (const x of b) if (x !== 0) return false;
  return true;
}

/** Drops "./" and a leading "/"; refuses names that climb out with "..". */
function cleanName(file: string, offset: number, raw: string): string {
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new TarFormatError(`path climbs out of the archive: "${printable(raw)}"`, { file, offset, field: 'name' });
  return parts.join('/');
}

function indexEntries(file: string, bytes: Bytes): Map<string, TarEntry> {
  const entries = new Map<string, TarEntry>();
  let offset = 0;
  let longName: string | undefined; // GNU 'L' record: the next header's full name
  let paxPath: string | undefined; // pax 'x' record "path" key
  for (;;) {
    if (offset + BLOCK > bytes.length) {
      if (offset === bytes.length) {
        // Some writers omit the end-of-archive blocks; accept a clean end between entries.
        if (longName !== undefined || paxPath !== undefined) {
          throw new TarFormatError('extended header with no entry after it', { file, offset, field: 'typeflag' });
        }
        return entries;
      }
      throw new TarFormatError(`header runs past the end of the file (length ${bytes.length})`, { file, offset, field: 'name' });
    }
    const h = bytes.read(offset, BLOCK);
    if (isZero(h)) {
      // End of archive: whatever follows must be zero padding too.
      for (let o = offset + BLOCK; o < bytes.length; o += BLOCK) {
        if (!isZero(bytes.read(o, BLOCK))) {
          throw new TarFormatError('data after the end-of-archive block', { file, offset: o, field: 'name' });
        }
      }
      return entries;
    }
    const magic = fieldBytes(h, 'magic').toString('latin1');
    const version = fieldBytes(h, 'version').toString('latin1');
    const posix = magic === 'ustar\0' && version === '00';
    const gnu = magic === 'ustar ' && version === ' \0';
    if (!posix && !gnu) {
      throw new TarFormatError(`not a ustar header: magic "${printable(magic)}" version "${printable(version)}"`, { file, offset, field: 'magic' });
    }
    const stored = octal(file, offset, h, 'chksum');
    const sums = checksums(h);
    if (stored !== sums.unsigned && stored !== sums.signed) {
      throw new TarFormatError(`checksum 0${stored.toString(8)} does not match the header (0${sums.unsigned.toString(8)})`, { file, offset, field: 'chksum' });
    }
    octal(file, offset, h, 'mode');
    octal(file, offset, h, 'uid');
    octal(file, offset, h, 'gid');
    octal(file, offset, h, 'mtime');
    octal(file, offset, h, 'devmajor', true);
    octal(file, offset, h, 'devminor', true);
    const size = octal(file, offset, h, 'size');
    const dataOffset = offset + BLOCK;
    if (dataOffset + size > bytes.length) {
      throw new TarFormatError(`size ${size} runs past the end of the file (length ${bytes.length})`, { file, offset, field: 'size' });
    }
    const next = dataOffset + Math.ceil(size / BLOCK) * BLOCK;
    const type = String.fromCharCode(h[F.typeflag[0]]!);
    const prefix = posix ? text(h, 'prefix') : '';
    const headerName = (prefix ? prefix + '/' : '') + text(h, 'name');

    if (type === 'L' || type === 'x' || type === 'g') {
      if (size > 64 * 1024) throw new TarFormatError(`extended header of ${size} bytes is too large`, { file, offset, field: 'size' });
      const body = bytes.read(dataOffset, size);
      if (type === 'L') longName = body.toString('utf8').replace(/\0+$/, '');
      else if (type === 'x') paxPath = paxValue(file, offset, body, 'path') ?? paxPath;
      offset = next;
      continue;
    }
    let kind: TarEntry['type'];
    if (type === '0' || type === '\0' || type === '7') kind = 'file';
    else if (type === '5') kind = 'dir';
    else if (type === '2') kind = 'symlink';
    else throw new TarFormatError(`unsupported entry type "${printable(type)}"`, { file, offset, field: 'typeflag' });
    if (kind !== 'file' && size !== 0) {
      throw new TarFormatError(`a ${kind} entry has size ${size}`, { file, offset, field: 'size' });
    }
    const name = cleanName(file, offset, paxPath ?? longName ?? headerName);
    longName = undefined;
    paxPath = undefined;
    if (name === '' && kind !== 'dir') throw new TarFormatError('empty name', { file, offset, field: 'name' });
    if (name !== '') entries.set(name, { name, type: kind, dataOffset, size, linkname: text(h, 'linkname') });
    offset = next;
  }
}

/** One key of a pax extended header ("<len> key=value\n" records). */
function paxValue(file: string, offset: number, body: Buffer, key: string): string | undefined {
  let pos = 0;
  let found: string | undefined;
  while (pos < body.length) {
    const sp = body.indexOf(0x20, pos);
    const len = sp < 0 ? NaN : Number(body.subarray(pos, sp).toString('latin1'));
    if (!Number.isInteger(len) || len <= 0 || pos + len > body.length) {
      throw new TarFormatError('malformed pax record', { file, offset, field: 'pax' });
    }
    const rec = body.subarray(sp + 1, pos + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0 && rec.slice(0, eq) === key) found = rec.slice(eq + 1);
    pos += len;
  }
  return found;
}

// ---------------------------------------------------------------------------
// Writer

function putText(h: Buffer, f: Field, s: string): void {
  const [o, n] = F[f];
  const b = Buffer.from(s, 'utf8');
  if (b.length > n) throw new RangeError(`tar field ${f} too long: "${s}"`);
  b.copy(h, o);
}

function putOctal(h: Buffer, f: Field, v: number): void {
  const [o, n] = F[f];
  const s = v.toString(8).padStart(n - 1, '0');
  if (s.length > n - 1) throw new RangeError(`tar field ${f} cannot hold ${v}`);
  h.write(s + '\0', o, 'latin1');
}

/** Splits a long path into ustar prefix and name at a slash. */
function splitName(path: string): { prefix: string; name: string } {
  if (Buffer.byteLength(path) <= 100) return { prefix: '', name: path };
  for (let i = path.lastIndexOf('/'); i > 0; i = path.lastIndexOf('/', i - 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name !== '') return { prefix, name };
  }
  throw new RangeError(`path too long for ustar: "${path}"`);
}

export function tarHeader(entry: { name: string; type: 'file' | 'dir'; size: number; mtime: number }): Buffer {
  const h = Buffer.alloc(BLOCK);
  const { prefix, name } = splitName(entry.type === 'dir' ? entry.name + '/' : entry.name);
  putText(h, 'name', name);
  putOctal(h, 'mode', entry.type === 'dir' ? 0o755 : 0o644);
  putOctal(h, 'uid', 0);
  putOctal(h, 'gid', 0);
  putOctal(h, 'size', entry.size);
  putOctal(h, 'mtime', entry.mtime);
  h.write(entry.type === 'dir' ? '5' : '0', F.typeflag[0], 'latin1');
  h.write('ustar\0', F.magic[0], 'latin1');
  h.write('00', F.version[0], 'latin1');
  putText(h, 'uname', 'root');
  putText(h, 'gname', 'root');
  putOctal(h, 'devmajor', 0);
  putOctal(h, 'devminor', 0);
  putText(h, 'prefix', prefix);
  // The checksum is computed with its own field as spaces, stored as 6 digits, NUL, space.
  const sum = checksums(h).unsigned;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', F.chksum[0], 'latin1');
  return h;
}

/** Builds an archive in memory (bundles are small: capped logs and sysfs values). */
export function buildTar(files: { name: string; data: Uint8Array }[], mtime: number): Buffer {
  const parts: Buffer[] = [];
  const dirs = new Set<string>();
  for (const f of files) {
    // Directories first, so extraction by any tar recreates the tree with sane modes.
    const segs = f.name.split('/');
    for (let i = 1; i < segs.length; i++) {
      const d = segs.slice(0, i).join('/');
      if (!dirs.has(d)) {
        dirs.add(d);
        parts.push(tarHeader({ name: d, type: 'dir', size: 0, mtime }));
      }
    }
    parts.push(tarHeader({ name: f.name, type: 'file', size: f.data.length, mtime }));
    parts.push(Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength));
    const pad = (BLOCK - (f.data.length % BLOCK)) % BLOCK;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}
