// makedumpfile's flattened stream format (`makedumpfile -F`, rearranged with
// `makedumpfile -R`): a 4096-byte header ("makedumpfile" signature, big-endian
// type and version), then records of {offset i64 BE, size i64 BE, data}
// giving where in the regular file each piece goes, then an end marker of
// offset = size = -1. Records may come in any order and overlap (later wins).
//
// Both directions stream through a bounded buffer with positional I/O, and
// write to `out + '.part'`, renamed into place only when complete.

import * as fs from 'node:fs';
import { withPartFile } from './part-file.js';
import { VmcoreFormatError } from '../util/errors.js';

/** "makedumpfile" followed by 4 NUL bytes: the 16-byte signature field. */
export const FLAT_SIGNATURE = new Uint8Array([...Buffer.from('makedumpfile', 'latin1'), 0, 0, 0, 0]);
export const FLAT_HEADER_SIZE = 4096;
export const FLAT_TYPE_FLAT_HEADER = 1n;
export const FLAT_VERSION = 1n;
export const FLAT_RECORD_HEADER_SIZE = 16;
/** Largest payload one record may claim (makedumpfile's records are page caches and bitmap blocks, far smaller). */
export const FLAT_MAX_RECORD_BYTES = 1 << 30;
/** Default bound on the rearranged file's size (16 TiB). */
export const FLAT_DEFAULT_MAX_FILE_SIZE = 2 ** 44;

const CHUNK = 1 << 20;

/** True when `head` starts with the flattened-format signature (16 bytes). */
export function isFlattenedSignature(head: Uint8Array): boolean {
  if (head.length < FLAT_SIGNATURE.length) return false;
  for (let i = 0; i < FLAT_SIGNATURE.length; i++) if (head[i] !== FLAT_SIGNATURE[i]) return false;
  return true;
}

export interface FlattenResult {
  /** Data records written (all-zero chunks other than the last are left out). */
  records: number;
  /** Payload bytes written. */
  dataBytes: number;
  /** Size of the flattened output. */
  fileSize: number;
}

export interface UnflattenOptions {
  /** Largest rearranged file accepted (default FLAT_DEFAULT_MAX_FILE_SIZE). */
  maxFileSize?: number;
}

export interface UnflattenResult {
  records: number;
  dataBytes: number;
  /** Size of the rearranged file: the largest record end. */
  fileSize: number;
}

function readFull(fd: number, buf: Uint8Array, length: number, position: number): number {
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, buf, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

function writeAll(fd: number, buf: Uint8Array, position: number | null): void {
  let done = 0;
  while (done < buf.length) {
    done += fs.writeSync(fd, buf, done, buf.length - done, position === null ? null : position + done);
  }
}

function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

function flatHeader(): Uint8Array {
  const h = new Uint8Array(FLAT_HEADER_SIZE);
  h.set(FLAT_SIGNATURE, 0);
  const v = new DataView(h.buffer);
  v.setBigInt64(16, FLAT_TYPE_FLAT_HEADER, false);
  v.setBigInt64(24, FLAT_VERSION, false);
  return h;
}

/**
 * Writes `regularPath` (a kdump-compressed or ELF vmcore, or any file) as a
 * flattened stream: header, one record per 1 MiB chunk in file order (all-zero
 * chunks skipped, except the last so the rearranged file keeps its size), end
 * marker.
 */
export function flattenFile(regularPath: string, outPath: string): FlattenResult {
  const inFd = fs.openSync(regularPath, 'r');
  try {
    const size = fs.fstatSync(inFd).size;
    const head = new Uint8Array(FLAT_SIGNATURE.length);
    if (isFlattenedSignature(head.subarray(0, readFull(inFd, head, head.length, 0)))) {
      throw new VmcoreFormatError(`Cannot flatten "${regularPath}": it is already in makedumpfile's flattened format`, {
        file: regularPath, offset: 0, field: 'magic',
      });
    }
    return withPartFile(outPath, (outFd) => {
      writeAll(outFd, flatHeader(), null);
      let outSize = FLAT_HEADER_SIZE;
      let records = 0;
      let dataBytes = 0;
      const buf = new Uint8Array(CHUNK);
      const rec = new Uint8Array(FLAT_RECORD_HEADER_SIZE);
      const rv = new DataView(rec.buffer);
      for (let off = 0; off < size; off += CHUNK) {
        const want = Math.min(CHUNK, size - off);
        const got = readFull(inFd, buf, want, off);
        if (got !== want) throw new Error(`"${regularPath}" shrank while being flattened (short read at offset ${off})`);
        const data = buf.subarray(0, want);
        if (off + want < size && isZero(data)) continue;
        rv.setBigInt64(0, BigInt(off), false);
        rv.setBigInt64(8, BigInt(want), false);
        writeAll(outFd, rec, null);
        writeAll(outFd, data, null);
        records++;
        dataBytes += want;
        outSize += FLAT_RECORD_HEADER_SIZE + want;
      }
      writeAll(outFd, new Uint8Array(FLAT_RECORD_HEADER_SIZE).fill(0xff), null);
      outSize += FLAT_RECORD_HEADER_SIZE;
      return { records, dataBytes, fileSize: outSize };
    });
  } finally {
    fs.closeSync(inFd);
  }
}

/**
 * Rearranges a flattened stream into a regular file, like `makedumpfile -R`.
 * Every record is validated before anything is copied; a truncated or
 * malformed stream gives a VmcoreFormatError naming the offset in `flatPath`.
 */
export function unflattenFile(flatPath: string, outPath: string, opts: UnflattenOptions = {}): UnflattenResult {
  const maxFileSize = opts.maxFileSize ?? FLAT_DEFAULT_MAX_FILE_SIZE;
  const inFd = fs.openSync(flatPath, 'r');
  try {
    const inSize = fs.fstatSync(inFd).size;
    const bad = (offset: number, field: string, why: string): never => {
      throw new VmcoreFormatError(`Cannot rearrange flattened vmcore "${flatPath}": ${why} (at file offset ${offset})`, {
        file: flatPath, offset, field,
      });
    };
    const hdr = new Uint8Array(FLAT_HEADER_SIZE);
    const got = readFull(inFd, hdr, FLAT_HEADER_SIZE, 0);
    if (!isFlattenedSignature(hdr.subarray(0, got))) bad(0, 'signature', 'no "makedumpfile" flattened-format signature');
    if (got < FLAT_HEADER_SIZE) bad(got, 'header', `truncated flat header: ${got} of ${FLAT_HEADER_SIZE} bytes`);
    const hv = new DataView(hdr.buffer);
    const type = hv.getBigInt64(16, false);
    if (type !== FLAT_TYPE_FLAT_HEADER) bad(16, 'type', `unknown flattened type ${type}, expected ${FLAT_TYPE_FLAT_HEADER}`);
    const version = hv.getBigInt64(24, false);
    if (version !== FLAT_VERSION) bad(24, 'version', `unknown flattened version ${version}, expected ${FLAT_VERSION}`);

    return withPartFile(outPath, (outFd) => {
      const rec = new Uint8Array(FLAT_RECORD_HEADER_SIZE);
      const rv = new DataView(rec.buffer);
      const buf = new Uint8Array(CHUNK);
      let pos = FLAT_HEADER_SIZE;
      let records = 0;
      let dataBytes = 0;
      let fileSize = 0;
      for (;;) {
        const n = readFull(inFd, rec, FLAT_RECORD_HEADER_SIZE, pos);
        if (n < FLAT_RECORD_HEADER_SIZE) {
          bad(pos, 'record', `truncated stream: record header needs ${FLAT_RECORD_HEADER_SIZE} bytes, ${n} left (no end marker)`);
        }
        const offset = rv.getBigInt64(0, false);
        const size = rv.getBigInt64(8, false);
        if (offset < 0n || size <= 0n) {
          if (offset === -1n && size === -1n) break;
          bad(pos, 'record', `invalid end marker or record header: offset ${offset}, size ${size}`);
        }
        if (size > BigInt(FLAT_MAX_RECORD_BYTES)) bad(pos + 8, 'size', `record size ${size} exceeds the ${FLAT_MAX_RECORD_BYTES}-byte limit`);
        if (offset + size > BigInt(maxFileSize)) {
          bad(pos, 'offset', `record [${offset}, ${offset + size}) ends beyond the ${maxFileSize}-byte limit for the rearranged file`);
        }
        const dst = Number(offset);
        const len = Number(size);
        const dataPos = pos + FLAT_RECORD_HEADER_SIZE;
        if (dataPos + len > inSize) bad(dataPos, 'data', `truncated stream: record claims ${len} bytes, ${inSize - dataPos} left`);
        for (let done = 0; done < len; done += CHUNK) {
          const want = Math.min(CHUNK, len - done);
          const r = readFull(inFd, buf, want, dataPos + done);
          if (r !== want) bad(dataPos + done + r, 'data', `truncated stream: record data ends early`);
          writeAll(outFd, buf.subarray(0, want), dst + done);
        }
        records++;
        dataBytes += len;
        fileSize = Math.max(fileSize, dst + len);
        pos = dataPos + len;
      }
      return { records, dataBytes, fileSize };
    });
  } finally {
    fs.closeSync(inFd);
  }
}
