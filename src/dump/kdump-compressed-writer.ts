// Writes a kdump-compressed ("KDUMP   ") vmcore the way makedumpfile -c -d 1
// does: both bitmaps, one descriptor per dumped page, zero pages pointing at
// one shared zero page written first in the data area, each other page
// compressed with the chosen codec (codecs.ts: zlib as compress2 level 1,
// lzo, snappy or zstd as makedumpfile -l/-p/-z) unless that does not shrink it.
// Page data is streamed through a bounded buffer; descriptors are written in
// batches at their computed offsets. With `threads` > 1 the compression runs
// on a worker pool (compress-pool.ts) and results are stored in page order,
// so the file is the same bytes either way.

import * as fs from 'node:fs';
import { withPartFile } from './part-file.js';
import { hex } from '../util/hex.js';
import { VmcoreFormatError } from '../util/errors.js';
import { requireCodec, type Codec } from './codecs.js';
import { NT_VMCOREINFO, VMCOREINFO_NOTE_NAME, decodeNotesAt, encodeNotes } from './elf-note.js';
import {
  DH_BITMAP_BLOCKS, DH_BLOCK_SIZE, DH_HEADER_VERSION, DH_MAX_MAPNR, DH_NR_CPUS, DH_SIZE, DH_STATUS, DH_SUB_HDR_SIZE,
  DH_TIMESTAMP_SEC, DH_UTSNAME, DL_EXCLUDE_ZERO, KDUMP_HEADER_VERSION, KDUMP_SIGNATURE,
  PD_SIZE, SH_DUMP_LEVEL, SH_MAX_MAPNR_64, SH_OFFSET_NOTE, SH_OFFSET_VMCOREINFO, SH_PHYS_BASE, SH_SIZE, SH_SIZE_NOTE,
  SH_SIZE_VMCOREINFO, UTS_DOMAINNAME, UTS_FIELD_LEN, UTS_MACHINE, UTS_NODENAME, UTS_RELEASE, UTS_SYSNAME, UTS_VERSION, bitmapBlocksFor, bitmapClear, bitmapSet,
} from './kdump-compressed.js';
import { PAGE_SIZE, type PageSource } from './page-source.js';
import { BATCH_PAGES, CompressPool } from './compress-pool.js';
import { SourcePhysMemory } from './kernel-vm.js';
import { checkDumpLevel, excludedByStructPages, levelNeedsStructPages } from './page-class.js';
import { VmcoreInfo } from './vmcoreinfo.js';

export interface PfnRange {
  startPfn: number;
  endPfn: number;
}

export interface KdumpCompressedSpec {
  source: PageSource;
  /** Frames the dump covers (max_mapnr): highest pfn + 1. */
  maxPfn: number;
  /** Pages the dump describes (1st bitmap), [startPfn, endPfn). */
  ranges: readonly PfnRange[];
  /** Merged ELF note bytes (PRSTATUS, VMCOREINFO, ...), copied verbatim after the sub header. */
  notes: Uint8Array;
  /** VMCOREINFO text; appended as a note when `notes` has none. */
  vmcoreinfo?: string;
  /** utsname.release of the crashed kernel. */
  release: string;
  /**
   * utsname.version and nodename; libkdumpfile ignores the header's utsname
   * (machine included) unless sysname, nodename, release, version and
   * machine are all non-empty. Default "#1 SMP" and "(none)" (the kernel's
   * default nodename).
   */
  version?: string;
  nodename?: string;
  nrCpus: number;
  /** Page codec (makedumpfile -c zlib, -l lzo, -p snappy, -z zstd); pages that do not shrink are stored raw. */
  compression: Codec;
  /** Clear all-zero pages from the 2nd bitmap (they read as excluded) instead of sharing one zero page. */
  excludeZero?: boolean;
  /**
   * Frames a dump level leaves out because of their struct pages (free,
   * cache, user data...): bit `pfn` of this bitmap (LSB first) set means the
   * frame gets no descriptor. See page-class.ts.
   */
  excluded?: Uint8Array;
  /**
   * The -d level recorded in the sub header; default 1 (zero pages shared).
   * Without `excluded`, a level above 1 filters by the struct pages the
   * source's own VMCOREINFO describes (read through the source first, as
   * makedumpfile reads mem_map from /proc/vmcore).
   */
  dumpLevel?: number;
  /**
   * Worker threads compressing pages (default 1: compress inline). The file
   * is byte for byte the same whatever the count; compress-pool.ts.
   */
  threads?: number;
  /** Called as pages are written. */
  onProgress?: (donePages: number, totalPages: number) => void;
}

export interface KdumpCompressedWriteResult {
  /** Pages with a descriptor (2nd bitmap bits set). */
  pages: number;
  /** Pages pointing at the shared zero page. */
  zeroPages: number;
  /** Pages stored compressed, and their compressed bytes. */
  compressedPages: number;
  compressedBytes: number;
  /** Pages stored raw (not zero, did not shrink or compression 'none'). */
  rawPages: number;
  /** Pages left out because of their struct pages (spec.excluded). */
  excludedPages: number;
  fileSize: number;
}

const DATA_BUFFER_BYTES = 1 << 20;
const DESC_BATCH = 4096;

function writeAll(fd: number, buf: Uint8Array, position: number): void {
  let done = 0;
  while (done < buf.length) done += fs.writeSync(fd, buf, done, buf.length - done, position + done);
}

function putString(dst: Uint8Array, off: number, s: string, max: number): void {
  const bytes = Buffer.from(s, 'latin1');
  dst.set(bytes.subarray(0, max - 1), off); // keep the NUL
}

const ZERO_PAGE = Buffer.alloc(PAGE_SIZE);

/** Whether a page is all zero; runs for every page, so a native compare (memcmp) against a zero page. */
function isZero(page: Buffer): boolean {
  return page.equals(ZERO_PAGE);
}

function checkRanges(path: string, spec: KdumpCompressedSpec): PfnRange[] {
  if (!Number.isSafeInteger(spec.maxPfn) || spec.maxPfn <= 0) {
    throw new RangeError(`Cannot write kdump "${path}": maxPfn ${spec.maxPfn} is not a positive frame count`);
  }
  if (!Number.isInteger(spec.nrCpus) || spec.nrCpus < 0 || spec.nrCpus > 0x7fffffff) {
    throw new RangeError(`Cannot write kdump "${path}": nrCpus ${spec.nrCpus} is not a CPU count`);
  }
  const sorted = [...spec.ranges].sort((a, b) => a.startPfn - b.startPfn);
  let prevEnd = 0;
  for (const r of sorted) {
    if (!Number.isSafeInteger(r.startPfn) || !Number.isSafeInteger(r.endPfn) || r.startPfn < 0 || r.endPfn < r.startPfn || r.endPfn > spec.maxPfn) {
      throw new RangeError(`Cannot write kdump "${path}": range [${hex(r.startPfn)}, ${hex(r.endPfn)}) is not inside [0, maxPfn ${hex(spec.maxPfn)})`);
    }
    if (r.startPfn < prevEnd) {
      throw new RangeError(`Cannot write kdump "${path}": range [${hex(r.startPfn)}, ${hex(r.endPfn)}) overlaps the one before it`);
    }
    prevEnd = r.endPfn;
  }
  return sorted.filter((r) => r.endPfn > r.startPfn);
}

/** Notes to embed and where the VMCOREINFO descriptor sits inside them. */
function prepareNotes(path: string, spec: KdumpCompressedSpec): { notes: Uint8Array; vmciOffset: number; vmciSize: number; info: VmcoreInfo | undefined } {
  let notes = spec.notes;
  const find = (): { at: number; size: number; desc: Uint8Array } | undefined => {
    const located = decodeNotesAt(notes, { file: `${path} (notes given to the writer)`, offset: 0 });
    const n = located.find((x) => x.note.name === VMCOREINFO_NOTE_NAME && x.note.type === NT_VMCOREINFO);
    return n ? { at: n.descOffset, size: n.note.desc.length, desc: n.note.desc } : undefined;
  };
  let found = find();
  if (!found && spec.vmcoreinfo !== undefined) {
    const extra = encodeNotes([{ name: VMCOREINFO_NOTE_NAME, type: NT_VMCOREINFO, desc: Buffer.from(spec.vmcoreinfo, 'latin1') }]);
    const merged = new Uint8Array(notes.length + extra.length);
    merged.set(notes, 0);
    merged.set(extra, notes.length);
    notes = merged;
    found = find();
  }
  const info = found ? VmcoreInfo.fromBytes(found.desc) : spec.vmcoreinfo !== undefined ? VmcoreInfo.parse(spec.vmcoreinfo) : undefined;
  return { notes, vmciOffset: found?.at ?? 0, vmciSize: found?.size ?? 0, info };
}

export function writeKdumpCompressed(path: string, spec: KdumpCompressedSpec): KdumpCompressedWriteResult {
  const bs = PAGE_SIZE;
  const codec = requireCodec(spec.compression); // fail before creating any file when the package is missing
  const ranges = checkRanges(path, spec);
  const { notes, vmciOffset, vmciSize, info } = prepareNotes(path, spec);
  const maxPfn = spec.maxPfn;
  const bitmapBlocks = bitmapBlocksFor(maxPfn, bs);
  const bitmapBytes = bitmapBlocks * bs;
  const subHdrSize = Math.ceil((SH_SIZE + notes.length) / bs);
  const bitmap1Off = (1 + subHdrSize) * bs;
  const bitmap2Off = bitmap1Off + bitmapBytes;
  const descOff = bitmap2Off + bitmapBytes;

  const bitmap1 = new Uint8Array(bitmapBytes);
  for (const r of ranges) for (let p = r.startPfn; p < r.endPfn; p++) bitmapSet(bitmap1, p);
  const bitmap2 = bitmap1.slice();
  const ex = spec.excluded ?? (levelNeedsStructPages(spec.dumpLevel ?? DL_EXCLUDE_ZERO) ? structPageFilter(path, spec, info, ranges) : undefined);
  const isExcluded = (pfn: number): boolean => ex !== undefined && ((ex[pfn >>> 3] ?? 0) & (1 << (pfn & 7))) !== 0;
  let excludedCount = 0;
  if (ex !== undefined) {
    for (const r of ranges) {
      for (let p = r.startPfn; p < r.endPfn; p++) {
        if (isExcluded(p)) {
          bitmapClear(bitmap2, p);
          excludedCount++;
        }
      }
    }
  }
  const excludeZero = spec.excludeZero === true;
  const page = new Uint8Array(PAGE_SIZE);
  const pageBuf = Buffer.from(page.buffer, page.byteOffset, PAGE_SIZE);
  const totalDescribed = ranges.reduce((n, r) => n + r.endPfn - r.startPfn, 0);

  // Pass 1 (only when excluding zero pages): find which present frames are zero.
  let numDumpable = totalDescribed - excludedCount;
  if (excludeZero) {
    for (const r of ranges) {
      let next = r.startPfn;
      const clearZero = (a: number, b: number): void => {
        for (let p = a; p < b; p++) {
          if (isExcluded(p)) continue; // already cleared and counted
          bitmapClear(bitmap2, p);
          numDumpable--;
        }
      };
      for (const pfn of spec.source.presentFrames(r.startPfn, r.endPfn)) {
        checkPfn(path, pfn, next, r.endPfn);
        clearZero(next, pfn);
        next = pfn + 1;
        if (isExcluded(pfn)) continue;
        spec.source.readFrame(pfn, page);
        if (isZero(pageBuf)) clearZero(pfn, pfn + 1);
      }
      clearZero(next, r.endPfn);
    }
  }

  const dataStart = descOff + PD_SIZE * numDumpable;
  const zeroPageOffset = dataStart;
  // Worker threads only pay when there is compression to spread.
  const pool = (spec.threads ?? 1) > 1 && codec.flag !== 0 ? new CompressPool(spec.compression, spec.threads ?? 1) : undefined;
  try {
    return withPartFile(path, (fd) => writeBody(fd));
  } finally {
    pool?.close();
  }

  function writeBody(fd: number): KdumpCompressedWriteResult {
    // Headers.
    const head = new Uint8Array(DH_SIZE);
    const hv = new DataView(head.buffer);
    putString(head, 0, KDUMP_SIGNATURE, 9);
    hv.setInt32(DH_HEADER_VERSION, KDUMP_HEADER_VERSION, true);
    putString(head, DH_UTSNAME + UTS_SYSNAME * UTS_FIELD_LEN, 'Linux', UTS_FIELD_LEN);
    putString(head, DH_UTSNAME + UTS_NODENAME * UTS_FIELD_LEN, spec.nodename ?? '(none)', UTS_FIELD_LEN);
    putString(head, DH_UTSNAME + UTS_RELEASE * UTS_FIELD_LEN, spec.release, UTS_FIELD_LEN);
    putString(head, DH_UTSNAME + UTS_VERSION * UTS_FIELD_LEN, spec.version ?? '#1 SMP', UTS_FIELD_LEN);
    putString(head, DH_UTSNAME + UTS_DOMAINNAME * UTS_FIELD_LEN, '(none)', UTS_FIELD_LEN);
    putString(head, DH_UTSNAME + UTS_MACHINE * UTS_FIELD_LEN, 'x86_64', UTS_FIELD_LEN);
    hv.setBigInt64(DH_TIMESTAMP_SEC, info?.crashTime ?? 0n, true);
    hv.setUint32(DH_STATUS, codec.flag, true);
    hv.setInt32(DH_BLOCK_SIZE, bs, true);
    hv.setInt32(DH_SUB_HDR_SIZE, subHdrSize, true);
    hv.setUint32(DH_BITMAP_BLOCKS, 2 * bitmapBlocks, true);
    hv.setUint32(DH_MAX_MAPNR, Math.min(maxPfn, 0xffffffff), true);
    hv.setInt32(DH_NR_CPUS, spec.nrCpus, true);
    writeAll(fd, head, 0);

    const sub = new Uint8Array(SH_SIZE);
    const sv = new DataView(sub.buffer);
    const physBase = info?.get('NUMBER(phys_base)');
    sv.setBigUint64(SH_PHYS_BASE, physBase !== undefined && /^-?\d+$/.test(physBase) ? BigInt.asUintN(64, BigInt(physBase)) : 0n, true);
    sv.setInt32(SH_DUMP_LEVEL, spec.dumpLevel ?? DL_EXCLUDE_ZERO, true);
    const noteOff = bs + SH_SIZE;
    if (vmciSize > 0) {
      sv.setBigUint64(SH_OFFSET_VMCOREINFO, BigInt(noteOff + vmciOffset), true);
      sv.setBigUint64(SH_SIZE_VMCOREINFO, BigInt(vmciSize), true);
    }
    if (notes.length > 0) {
      sv.setBigUint64(SH_OFFSET_NOTE, BigInt(noteOff), true);
      sv.setBigUint64(SH_SIZE_NOTE, BigInt(notes.length), true);
    }
    sv.setBigUint64(SH_MAX_MAPNR_64, BigInt(maxPfn), true);
    writeAll(fd, sub, bs);
    if (notes.length > 0) writeAll(fd, notes, noteOff);
    writeAll(fd, bitmap1, bitmap1Off);
    writeAll(fd, bitmap2, bitmap2Off);

    // Descriptors and data.
    const stats: KdumpCompressedWriteResult = { pages: 0, zeroPages: 0, compressedPages: 0, compressedBytes: 0, rawPages: 0, excludedPages: excludedCount, fileSize: 0 };
    const descBuf = new Uint8Array(DESC_BATCH * PD_SIZE);
    const dv = new DataView(descBuf.buffer);
    let descCount = 0; // descriptors in descBuf
    let descIndex = 0; // index of descBuf[0]
    const dataBuf = new Uint8Array(DATA_BUFFER_BYTES);
    let dataLen = 0;
    let dataFileOff = dataStart; // file offset of dataBuf[0]
    const flushData = (): void => {
      if (dataLen > 0) writeAll(fd, dataBuf.subarray(0, dataLen), dataFileOff);
      dataFileOff += dataLen;
      dataLen = 0;
    };
    const flushDesc = (): void => {
      flushData(); // data before descriptors, so a descriptor never points at unwritten bytes
      if (descCount > 0) writeAll(fd, descBuf.subarray(0, descCount * PD_SIZE), descOff + descIndex * PD_SIZE);
      descIndex += descCount;
      descCount = 0;
    };
    const addDesc = (offset: number, size: number, flags: number): void => {
      const o = descCount * PD_SIZE;
      // 64-bit offset as two 32-bit halves: no BigInt per page.
      dv.setUint32(o, offset >>> 0, true);
      dv.setUint32(o + 4, Math.floor(offset / 0x1_0000_0000), true);
      dv.setUint32(o + 8, size, true);
      dv.setUint32(o + 12, flags, true);
      dv.setUint32(o + 16, 0, true);
      dv.setUint32(o + 20, 0, true);
      descCount++;
      stats.pages++;
      if (descCount === DESC_BATCH) flushDesc();
    };
    const addData = (bytes: Uint8Array): number => {
      if (dataLen + bytes.length > dataBuf.length) flushData();
      const at = dataFileOff + dataLen;
      dataBuf.set(bytes, dataLen);
      dataLen += bytes.length;
      return at;
    };
    if (!excludeZero) addData(new Uint8Array(PAGE_SIZE)); // the shared zero page
    const zeroDescs = (n: number): void => {
      for (let i = 0; i < n; i++) addDesc(zeroPageOffset, PAGE_SIZE, 0);
      stats.zeroPages += n;
    };
    const storeRaw = (bytes: Uint8Array): void => {
      addDesc(addData(bytes), PAGE_SIZE, 0);
      stats.rawPages++;
    };
    const storeCompressed = (c: Uint8Array): void => {
      addDesc(addData(c), c.length, codec.flag);
      stats.compressedPages++;
      stats.compressedBytes += c.length;
    };
    // Where pages go: compressed here, one at a time, or batched to a worker pool.
    const sink = pool === undefined
      ? {
        zeros: zeroDescs,
        page: (p: Uint8Array): void => {
          if (codec.flag !== 0) {
            const c = codec.compress(p);
            if (c.length < PAGE_SIZE) return storeCompressed(c);
          }
          storeRaw(p);
        },
        finish: (): void => {},
      }
      : pooledSink(pool, zeroDescs, storeRaw, storeCompressed);
    const zeroRun = (a: number, b: number): void => {
      if (excludeZero) return; // cleared from the 2nd bitmap in pass 1
      if (ex === undefined) {
        if (b > a) sink.zeros(b - a);
        return;
      }
      let n = 0;
      for (let p = a; p < b; p++) if (!isExcluded(p)) n++;
      if (n > 0) sink.zeros(n);
    };

    let done = 0;
    let written = 0;
    for (const r of ranges) {
      let next = r.startPfn;
      for (const pfn of spec.source.presentFrames(r.startPfn, r.endPfn)) {
        checkPfn(path, pfn, next, r.endPfn);
        zeroRun(next, pfn);
        next = pfn + 1;
        if (isExcluded(pfn)) continue;
        spec.source.readFrame(pfn, page);
        if (isZero(pageBuf)) {
          zeroRun(pfn, pfn + 1);
          continue;
        }
        sink.page(page);
        if (spec.onProgress && (++written & 0xfff) === 0) spec.onProgress(done + (pfn + 1 - r.startPfn), totalDescribed);
      }
      zeroRun(next, r.endPfn);
      done += r.endPfn - r.startPfn;
      spec.onProgress?.(done, totalDescribed);
    }
    sink.finish();
    flushDesc();
    if (stats.pages !== numDumpable) {
      throw new Error(`Cannot write kdump "${path}": wrote ${stats.pages} descriptors, expected ${numDumpable} (the page source changed between passes)`);
    }
    const fileSize = dataFileOff;
    fs.ftruncateSync(fd, fileSize);
    stats.fileSize = fileSize;
    return stats;
  }
}

function checkPfn(path: string, pfn: number, next: number, end: number): void {
  if (!Number.isSafeInteger(pfn) || pfn < next || pfn >= end) {
    throw new RangeError(`Cannot write kdump "${path}": the page source gave frame ${hex(pfn)}, expected ascending frames in [${hex(next)}, ${hex(end)})`);
  }
}

/**
 * The page sink of the threaded path: pages go to the pool in batches, zero
 * pages ride along as run lengths, and results are stored in the order the
 * pages came, so descriptors and data land exactly where the inline path
 * puts them.
 */
function pooledSink(
  pool: CompressPool, zeros: (n: number) => void, storeRaw: (b: Uint8Array) => void, storeCompressed: (b: Uint8Array) => void,
): { zeros(n: number): void; page(p: Uint8Array): void; finish(): void } {
  // Per batch: a positive number is that many zero pages, -1 the batch's next page.
  const pending: number[][] = [];
  let ops: number[] = [];
  let count = 0;
  const takeOldest = (): void => {
    const b = pool.take();
    const o = pending.shift() ?? [];
    let i = 0;
    for (const op of o) {
      if (op > 0) {
        zeros(op);
        continue;
      }
      if (b.size(i) < PAGE_SIZE) storeCompressed(b.output(i));
      else storeRaw(b.input(i));
      i++;
    }
  };
  const publish = (): void => {
    if (pool.full) takeOldest();
    pool.publish(count);
    pending.push(ops);
    ops = [];
    count = 0;
  };
  return {
    zeros(n) {
      if (pending.length === 0 && ops.length === 0) return zeros(n); // nothing ahead of them: store now
      const last = ops.length - 1;
      if (last >= 0 && ops[last]! > 0) ops[last]! += n;
      else ops.push(n);
    },
    page(p) {
      if (count === 0 && pool.full) takeOldest(); // the slot to fill must be free
      pool.pageSlot(count).set(p);
      ops.push(-1);
      if (++count === BATCH_PAGES) publish();
    },
    finish() {
      if (ops.length > 0) publish();
      while (pending.length > 0) takeOldest();
    },
  };
}

/** Frames the spec's dump level leaves out, decided from the struct pages in the source. */
function structPageFilter(path: string, spec: KdumpCompressedSpec, info: VmcoreInfo | undefined, ranges: readonly PfnRange[]): Uint8Array {
  const level = spec.dumpLevel ?? DL_EXCLUDE_ZERO;
  checkDumpLevel(level, `writing "${path}"`);
  if (info === undefined) {
    throw new VmcoreFormatError(`Cannot write kdump "${path}" at dump level ${level}: the notes have no VMCOREINFO, so the struct pages cannot be found`, {
      file: path, field: 'VMCOREINFO',
    });
  }
  return excludedByStructPages(info, new SourcePhysMemory(spec.source, ranges), path, ranges, spec.maxPfn, level).bitmap;
}
