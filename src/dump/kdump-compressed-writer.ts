// Writes a kdump-compressed ("KDUMP   ") vmcore the way makedumpfile -c -d 1
// does: both bitmaps, one descriptor per dumped page, zero pages pointing at
// one shared zero page written first in the data area, each other page
// compressed with the chosen codec (codecs.ts: zlib as compress2 level 1,
// lzo, snappy or zstd as makedumpfile -l/-p/-z) unless that does not shrink it.
// Page data is streamed through a bounded buffer; descriptors are written in
// batches at their computed offsets. Everything goes a cycle of CYCLE_PFNS
// frames at a time, as makedumpfile's cyclic mode: pass 1 builds each
// cycle's slice of both bitmaps (ranges, the dump level's struct-page
// filter, zero pages) and writes it to the file, counting the descriptors;
// pass 2 reads each slice of the 2nd bitmap back and writes that cycle's
// descriptors and pages. Memory does not grow with the dump's size.
// With `threads` > 1 the compression runs
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
  SH_SIZE_VMCOREINFO, UTS_DOMAINNAME, UTS_FIELD_LEN, UTS_MACHINE, UTS_NODENAME, UTS_RELEASE, UTS_SYSNAME, UTS_VERSION, POPCOUNT8, bitmapBlocksFor,
} from './kdump-compressed.js';
import { PAGE_SIZE, type PageSource } from './page-source.js';
import { BATCH_PAGES, CompressPool } from './compress-pool.js';
import { pageCompressor } from './page-compress.js';
import { SourcePhysMemory } from './kernel-vm.js';
import { PageClassifier, checkDumpLevel, levelNeedsStructPages, type PageClass } from './page-class.js';
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
  /** Frames per cycle (default CYCLE_PFNS); a multiple of 512. Smaller cycles cost time, not bytes: the file is the same. */
  cyclePfns?: number;
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
  /** Pages left out because of their struct pages (spec.excluded, or the dump level's filter). */
  excludedPages: number;
  /** With the dump level's own filter (no spec.excluded): those pages by class. */
  excludedByClass?: Partial<Record<PageClass, number>>;
  fileSize: number;
}

const DATA_BUFFER_BYTES = 1 << 20;
/**
 * Frames per cycle: the bitmaps, the struct-page filter and the page loop
 * work on this many frames at a time (128 KiB of each bitmap), so memory
 * does not grow with the dump. A multiple of 8 (bitmap bytes line up), of
 * the classifier's 512-frame batches and of 2^18 (a 1 GiB block).
 */
export const CYCLE_PFNS = 1 << 20;
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

  const level = spec.dumpLevel ?? DL_EXCLUDE_ZERO;
  const filter = spec.excluded !== undefined ? undefined : levelNeedsStructPages(level) ? structPageFilter(path, spec, info, ranges) : undefined;
  const excludeZero = spec.excludeZero === true;
  const page = new Uint8Array(PAGE_SIZE);
  const pageBuf = Buffer.from(page.buffer, page.byteOffset, PAGE_SIZE);
  const totalDescribed = ranges.reduce((n, r) => n + r.endPfn - r.startPfn, 0);
  // One cycle's worth of each bitmap: the frames [c0, c0 + CYCLE_PFNS) as bits.
  const cycle = spec.cyclePfns ?? CYCLE_PFNS;
  if (!Number.isSafeInteger(cycle) || cycle <= 0 || cycle % 512 !== 0) {
    throw new RangeError(`Cannot write kdump "${path}": cyclePfns ${cycle} is not a positive multiple of 512`);
  }
  const chunk1 = new Uint8Array(cycle / 8);
  const chunk2 = new Uint8Array(cycle / 8);
  const exChunk = new Uint8Array(cycle / 8);
  /** Cycles [c0, c1) holding frames of some range, ascending, with those ranges clipped to them. */
  function* cycles(): Iterable<{ c0: number; c1: number; parts: PfnRange[] }> {
    let ri = 0;
    let pos = 0; // frames below are done
    while (ri < ranges.length) {
      const c0 = Math.floor(Math.max(pos, ranges[ri]!.startPfn) / cycle) * cycle;
      const c1 = Math.min(c0 + cycle, maxPfn);
      const parts: PfnRange[] = [];
      for (let i = ri; i < ranges.length && ranges[i]!.startPfn < c1; i++) {
        parts.push({ startPfn: Math.max(c0, ranges[i]!.startPfn), endPfn: Math.min(c1, ranges[i]!.endPfn) });
      }
      yield { c0, c1, parts };
      pos = c1;
      while (ri < ranges.length && ranges[ri]!.endPfn <= c1) ri++;
    }
  }
  const dumpable = (c0: number, pfn: number): boolean => ((chunk2[(pfn - c0) >>> 3]! >> ((pfn - c0) & 7)) & 1) === 1;
  // Worker threads only pay when there is compression to spread.
  const pool = (spec.threads ?? 1) > 1 && codec.flag !== 0 ? new CompressPool(spec.compression, spec.threads ?? 1) : undefined;
  try {
    return withPartFile(path, (fd) => {
      writeHeaders(fd);
      const counted = writeBitmaps(fd);
      return writeBody(fd, counted.numDumpable, counted.excludedCount);
    });
  } finally {
    pool?.close();
  }

  /**
   * Pass 1, one cycle at a time: the 1st bitmap (the ranges), the 2nd (minus
   * what the level leaves out by struct page, and zero pages with
   * excludeZero), written to the file; returns how many frames get a
   * descriptor.
   */
  function writeBitmaps(fd: number): { numDumpable: number; excludedCount: number } {
    let numDumpable = 0;
    let excludedCount = 0;
    for (const { c0, c1, parts } of cycles()) {
      const bytes = Math.ceil((c1 - c0) / 8);
      chunk1.fill(0, 0, bytes);
      for (const r of parts) setBits(chunk1, r.startPfn - c0, r.endPfn - c0);
      exChunk.fill(0, 0, bytes);
      if (spec.excluded !== undefined) {
        const ex = spec.excluded;
        // c0 is a multiple of 8: whole bytes line up.
        for (let i = 0; i < bytes; i++) exChunk[i] = ex[(c0 >>> 3) + i] ?? 0;
      } else {
        filter?.fill(c0, c1, parts, exChunk);
      }
      for (let i = 0; i < bytes; i++) {
        const left = exChunk[i]! & chunk1[i]!;
        chunk2[i] = chunk1[i]! & ~left;
        excludedCount += POPCOUNT8[left]!;
      }
      if (excludeZero) {
        for (const r of parts) {
          let next = r.startPfn;
          const clear = (a: number, b: number): void => clearBits(chunk2, a - c0, b - c0);
          for (const pfn of spec.source.presentFrames(r.startPfn, r.endPfn)) {
            checkPfn(path, pfn, next, r.endPfn);
            clear(next, pfn); // frames the source does not hold are zero
            next = pfn + 1;
            if (!dumpable(c0, pfn)) continue;
            spec.source.readFrame(pfn, page);
            if (isZero(pageBuf)) clear(pfn, pfn + 1);
          }
          clear(next, r.endPfn);
        }
      }
      for (let i = 0; i < bytes; i++) numDumpable += POPCOUNT8[chunk2[i]!]!;
      const n = Math.min(bytes, bitmapBytes - c0 / 8);
      writeAll(fd, chunk1.subarray(0, n), bitmap1Off + c0 / 8);
      writeAll(fd, chunk2.subarray(0, n), bitmap2Off + c0 / 8);
    }
    return { numDumpable, excludedCount };
  }

  function writeHeaders(fd: number): void {
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
  }

  /** Pass 2, one cycle at a time: descriptors and page data for the frames the 2nd bitmap (read back from the file) holds. */
  function writeBody(fd: number, numDumpable: number, excludedCount: number): KdumpCompressedWriteResult {
    const dataStart = descOff + PD_SIZE * numDumpable;
    const zeroPageOffset = dataStart;
    const stats: KdumpCompressedWriteResult = {
      pages: 0, zeroPages: 0, compressedPages: 0, compressedBytes: 0, rawPages: 0, excludedPages: excludedCount, fileSize: 0,
      ...(filter === undefined ? {} : { excludedByClass: filter.counts }),
    };
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
    const compressInto = pool === undefined && codec.flag !== 0 ? pageCompressor(codec) : undefined;
    const sink = pool === undefined
      ? {
        zeros: zeroDescs,
        page: (p: Uint8Array): void => {
          if (compressInto !== undefined) {
            // Compressed straight into the data buffer, no copy.
            if (dataLen + PAGE_SIZE > dataBuf.length) flushData();
            const n = compressInto(p, dataBuf, dataLen);
            if (n >= 0) {
              const at = dataFileOff + dataLen;
              dataLen += n; // before addDesc, which may flush the buffer
              addDesc(at, n, codec.flag);
              stats.compressedPages++;
              stats.compressedBytes += n;
              return;
            }
          }
          storeRaw(p);
        },
        finish: (): void => {},
      }
      : pooledSink(pool, zeroDescs, storeRaw, storeCompressed);
    let c0 = 0; // the cycle chunk2 holds
    const zeroRun = (a: number, b: number): void => {
      if (excludeZero) return; // cleared from the 2nd bitmap in pass 1
      const n = countBits(chunk2, a - c0, b - c0);
      if (n > 0) sink.zeros(n);
    };

    let done = 0;
    let written = 0;
    for (const cycle of cycles()) {
      c0 = cycle.c0;
      const bytes = Math.min(Math.ceil((cycle.c1 - c0) / 8), bitmapBytes - c0 / 8);
      readAll(fd, chunk2.subarray(0, bytes), bitmap2Off + c0 / 8);
      for (const r of cycle.parts) {
        let next = r.startPfn;
        for (const pfn of spec.source.presentFrames(r.startPfn, r.endPfn)) {
          checkPfn(path, pfn, next, r.endPfn);
          zeroRun(next, pfn);
          next = pfn + 1;
          if (!dumpable(c0, pfn)) continue;
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

/**
 * The struct-page filter of a dump level, one cycle at a time: fill() marks
 * the frames of a cycle the level leaves out. A block (free pages, a compound
 * page) is decided by its head; one that runs past the cycle's end carries
 * into the next, so the result is the same as one scan over the whole dump
 * (cycles are multiples of the classifier's batch, and of every naturally
 * aligned block up to 1 GiB, so that carry is rare).
 */
class CyclicStructPageFilter {
  readonly counts: Partial<Record<PageClass, number>> = {};
  readonly #classifier: PageClassifier;
  readonly #level: number;
  #carryEnd = 0;
  #carryClass: PageClass = 'free';

  constructor(classifier: PageClassifier, level: number) {
    this.#classifier = classifier;
    this.#level = level;
  }

  /** Sets bit (pfn - c0) of `ex` for every frame of [c0, c1) left out; counts those inside `parts` by class. */
  fill(c0: number, c1: number, parts: readonly PfnRange[], ex: Uint8Array): void {
    const mark = (a: number, b: number, cls: PageClass): void => {
      for (const r of parts) {
        const lo = Math.max(a, r.startPfn);
        const hi = Math.min(b, r.endPfn);
        for (let p = lo; p < hi; p++) {
          const i = (p - c0) >>> 3;
          const m = 1 << ((p - c0) & 7);
          if ((ex[i]! & m) !== 0) continue;
          ex[i]! |= m;
          this.counts[cls] = (this.counts[cls] ?? 0) + 1;
        }
      }
    };
    const from = Math.max(c0, this.#carryEnd);
    if (this.#carryEnd > c0) mark(c0, Math.min(c1, this.#carryEnd), this.#carryClass);
    const spans = parts.filter((r) => r.endPfn > from).map((r) => ({ startPfn: Math.max(r.startPfn, from), endPfn: r.endPfn }));
    this.#classifier.scan(spans, this.#level, (a, b, cls) => {
      mark(Math.max(a, c0), Math.min(b, c1), cls);
      if (b > c1 && b > this.#carryEnd) {
        this.#carryEnd = b;
        this.#carryClass = cls;
      }
    });
  }
}

/** The filter for the spec's dump level, deciding from the struct pages in the source. */
function structPageFilter(path: string, spec: KdumpCompressedSpec, info: VmcoreInfo | undefined, ranges: readonly PfnRange[]): CyclicStructPageFilter {
  const level = spec.dumpLevel ?? DL_EXCLUDE_ZERO;
  checkDumpLevel(level, `writing "${path}"`);
  if (info === undefined) {
    throw new VmcoreFormatError(`Cannot write kdump "${path}" at dump level ${level}: the notes have no VMCOREINFO, so the struct pages cannot be found`, {
      file: path, field: 'VMCOREINFO',
    });
  }
  return new CyclicStructPageFilter(new PageClassifier(info, new SourcePhysMemory(spec.source, ranges), path), level);
}

/** Sets bits [a, b) of a bitmap (bit i = bit (i & 7) of byte i >> 3), whole bytes at a time in the middle. */
function setBits(map: Uint8Array, a: number, b: number): void {
  let i = a;
  for (; i < b && (i & 7) !== 0; i++) map[i >>> 3]! |= 1 << (i & 7);
  const whole = (b - i) >>> 3;
  if (whole > 0) {
    map.fill(0xff, i >>> 3, (i >>> 3) + whole);
    i += whole * 8;
  }
  for (; i < b; i++) map[i >>> 3]! |= 1 << (i & 7);
}

function clearBits(map: Uint8Array, a: number, b: number): void {
  let i = a;
  for (; i < b && (i & 7) !== 0; i++) map[i >>> 3]! &= ~(1 << (i & 7));
  const whole = (b - i) >>> 3;
  if (whole > 0) {
    map.fill(0, i >>> 3, (i >>> 3) + whole);
    i += whole * 8;
  }
  for (; i < b; i++) map[i >>> 3]! &= ~(1 << (i & 7));
}

/** Set bits in [a, b). */
function countBits(map: Uint8Array, a: number, b: number): number {
  let n = 0;
  let i = a;
  for (; i < b && (i & 7) !== 0; i++) n += (map[i >>> 3]! >> (i & 7)) & 1;
  for (; i + 8 <= b; i += 8) n += POPCOUNT8[map[i >>> 3]!]!;
  for (; i < b; i++) n += (map[i >>> 3]! >> (i & 7)) & 1;
  return n;
}

function readAll(fd: number, buf: Uint8Array, position: number): void {
  let done = 0;
  while (done < buf.length) {
    const n = fs.readSync(fd, buf, done, buf.length - done, position + done);
    if (n === 0) throw new Error(`Cannot read back ${buf.length} bytes at ${hex(position)} of the file being written: it ends early`);
    done += n;
  }
}
