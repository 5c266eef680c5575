// Reads kdump-compressed ("KDUMP   ") vmcores: ours and makedumpfile's
// (x86_64 layout, little endian, header versions 1-6, not flattened). A
// part of a split dump (makedumpfile --split) opens on its own too: it holds
// the frames of its [start_pfn, end_pfn) only, and split-kdump-reader.ts
// joins the parts into one dump. Every header field is checked against the file size before
// anything is allocated from it; a damaged file gives a VmcoreFormatError
// naming the file, offset and field.

import * as fs from 'node:fs';
import { VmcoreFormatError } from '../util/errors.js';
import { hex } from '../util/hex.js';
import { CodecUnavailableError, codecForFlag } from './codecs.js';
import { CORE_NOTE_NAME, NT_PRSTATUS, NT_VMCOREINFO, VMCOREINFO_NOTE_NAME, decodeNotesAt, type ElfNote, type LocatedNote } from './elf-note.js';
import {
  BitmapRank, DH_BITMAP_BLOCKS, DH_BLOCK_SIZE, DH_HEADER_VERSION, DH_MAX_MAPNR, DH_NR_CPUS, DH_SIZE, DH_STATUS,
  DH_SUB_HDR_SIZE, DH_UTSNAME, DUMP_DH_COMPRESSED_INCOMPLETE, DUMP_DH_COMPRESSION_MASK,
  KDUMP_SIGNATURE, MAX_BLOCK_SIZE, MIN_BLOCK_SIZE, PD_SIZE, SH_DUMP_LEVEL, SH_MAX_MAPNR_64, SH_OFFSET_NOTE,
  SH_OFFSET_VMCOREINFO, SH_PHYS_BASE, SH_SIZE, SH_SIZE_NOTE, SH_SIZE_VMCOREINFO, SH_SPLIT, SH_START_PFN, SH_START_PFN_64, SH_END_PFN, SH_END_PFN_64, UTS_FIELD_LEN, UTS_MACHINE,
  UTS_RELEASE, bitmapBlocksFor, bitmapTest, compressionName,
} from './kdump-compressed.js';
import { decodePrStatus, type PrStatus } from './prstatus.js';
import { VmcoreInfo } from './vmcoreinfo.js';
import type { PageStatus, PhysRange, VmcoreReader } from './vmcore-reader.js';
import { readPhysByPages } from './read-phys.js';

const MAX_NOTE_BYTES = 64 * 2 ** 20;
const MAX_VMCOREINFO_BYTES = 1 << 20;
/** Page descriptors read at a time (6 KiB). */
const DESC_WINDOW = 256;
/** Largest bitmap we hold in memory (one bitmap; 2^33 frames = 32 TiB of 4 KiB pages). */
const MAX_BITMAP_BYTES = 2 ** 30;

export class KdumpCompressedReader implements VmcoreReader {
  readonly file: string;
  readonly format = 'kdump';
  readonly pageSize: number;
  readonly fileSize: number;
  readonly headerVersion: number;
  readonly status: number;
  /** The dump was cut short (ENOSPC or a size limit); lost pages read as excluded. */
  readonly incomplete: boolean;
  /** Compression named in the header status. */
  readonly compression: string;
  readonly maxMapnr: number;
  readonly nrCpus: number;
  readonly release: string;
  readonly machine: string;
  readonly physBase: bigint;
  readonly dumpLevel: number;
  readonly notes: readonly ElfNote[];
  readonly vmcoreinfo: VmcoreInfo | undefined;
  readonly prstatus: readonly PrStatus[];
  /** Pages with a descriptor in this file (2nd bitmap bits, inside the split range for a part). */
  readonly dumpedPages: number;
  /** For one part of a split dump: the frames it holds, [startPfn, endPfn). */
  readonly split: { startPfn: number; endPfn: number } | undefined;
  /** Descriptor index of the first frame of the split range (2nd-bitmap bits below it). */
  readonly #descBase: number;
  #fd: number | undefined;
  readonly #bitmap1: Uint8Array;
  readonly #rank: BitmapRank;
  readonly #descOff: number;
  readonly #ranges: PhysRange[];
  // A window of consecutive page descriptors, so reading pages in order
  // costs one read per DESC_WINDOW descriptors instead of one each.
  readonly #desc = new Uint8Array(PD_SIZE * DESC_WINDOW);
  readonly #descView = new DataView(this.#desc.buffer);
  #descFirst = 0;
  #descCount = 0;
  // The last raw page read and its file offset: every zero page of a dump
  // shares one raw page, read once here instead of once per frame.
  #rawOff = -1;
  #raw: Uint8Array | undefined;

  constructor(file: string) {
    this.file = file;
    const fd = fs.openSync(file, 'r');
    this.#fd = fd;
    try {
      this.fileSize = fs.fstatSync(fd).size;
      if (this.fileSize < DH_SIZE) {
        throw this.#error(`Cannot open kdump "${file}": the file is ${this.fileSize} bytes, shorter than the ${DH_SIZE}-byte disk_dump_header`, this.fileSize, 'disk_dump_header');
      }
      const head = this.#readAt(0, DH_SIZE, 'the disk_dump_header');
      const hv = new DataView(head.buffer);
      const sig = Buffer.from(head.subarray(0, 8)).toString('latin1');
      if (sig !== KDUMP_SIGNATURE) {
        throw this.#error(`Cannot open kdump "${file}": signature is ${JSON.stringify(sig)}, expected "KDUMP   "`, 0, 'signature');
      }
      this.headerVersion = hv.getInt32(DH_HEADER_VERSION, true);
      if (this.headerVersion < 1 || this.headerVersion > 6) {
        throw this.#error(`Cannot open kdump "${file}": header_version ${this.headerVersion} is not between 1 and 6`, DH_HEADER_VERSION, 'header_version');
      }
      const bs = hv.getInt32(DH_BLOCK_SIZE, true);
      if (bs < MIN_BLOCK_SIZE || bs > MAX_BLOCK_SIZE || (bs & (bs - 1)) !== 0) {
        throw this.#error(`Cannot open kdump "${file}": block_size ${bs} is not a power of two between ${MIN_BLOCK_SIZE} and ${MAX_BLOCK_SIZE}`, DH_BLOCK_SIZE, 'block_size');
      }
      this.pageSize = bs;
      this.status = hv.getUint32(DH_STATUS, true);
      this.incomplete = (this.status & DUMP_DH_COMPRESSED_INCOMPLETE) !== 0;
      this.compression = compressionName(this.status & DUMP_DH_COMPRESSION_MASK);
      this.nrCpus = hv.getInt32(DH_NR_CPUS, true);
      this.release = utsField(head, UTS_RELEASE);
      this.machine = utsField(head, UTS_MACHINE);
      const subHdrSize = hv.getInt32(DH_SUB_HDR_SIZE, true);
      const blocks = Math.floor(this.fileSize / bs);
      if (subHdrSize < 1 || subHdrSize >= blocks) {
        throw this.#error(`Cannot open kdump "${file}": sub_hdr_size ${subHdrSize} blocks does not fit the file (${blocks} blocks of ${bs} bytes)`, DH_SUB_HDR_SIZE, 'sub_hdr_size');
      }
      const bitmapBlocks = hv.getUint32(DH_BITMAP_BLOCKS, true);
      if (bitmapBlocks === 0 || bitmapBlocks % 2 !== 0 || 1 + subHdrSize + bitmapBlocks > blocks) {
        throw this.#error(
          `Cannot open kdump "${file}": bitmap_blocks ${bitmapBlocks} is not an even, non-zero count of blocks fitting the file after the sub header (${blocks} blocks of ${bs} bytes)`,
          DH_BITMAP_BLOCKS, 'bitmap_blocks',
        );
      }
      const bitmapBytes = (bitmapBlocks / 2) * bs;
      if (bitmapBytes > MAX_BITMAP_BYTES) {
        throw this.#error(`Cannot open kdump "${file}": bitmap_blocks ${bitmapBlocks} makes a ${hex(bitmapBytes)}-byte bitmap, over the limit ${hex(MAX_BITMAP_BYTES)}`, DH_BITMAP_BLOCKS, 'bitmap_blocks');
      }

      // Sub header.
      const sub = this.#readAt(bs, SH_SIZE, 'the kdump_sub_header');
      const sv = new DataView(sub.buffer);
      this.physBase = sv.getBigUint64(SH_PHYS_BASE, true);
      this.dumpLevel = sv.getInt32(SH_DUMP_LEVEL, true);
      let maxMapnr = hv.getUint32(DH_MAX_MAPNR, true);
      let mapnrField = 'max_mapnr';
      let mapnrOff = DH_MAX_MAPNR;
      if (this.headerVersion >= 6) {
        const m64 = sv.getBigUint64(SH_MAX_MAPNR_64, true);
        mapnrField = 'max_mapnr_64';
        mapnrOff = bs + SH_MAX_MAPNR_64;
        if (m64 > BigInt(bitmapBytes) * 8n) {
          throw this.#error(`Cannot open kdump "${file}": max_mapnr_64 ${hex(m64)} exceeds the ${hex(bitmapBytes * 8)} frames the bitmap covers`, mapnrOff, mapnrField);
        }
        maxMapnr = Number(m64);
      }
      if (maxMapnr === 0 || maxMapnr > bitmapBytes * 8 || bitmapBlocksFor(maxMapnr, bs) * 2 > bitmapBlocks) {
        throw this.#error(`Cannot open kdump "${file}": ${mapnrField} ${hex(maxMapnr)} does not fit the ${hex(bitmapBytes * 8)} frames the bitmap covers`, mapnrOff, mapnrField);
      }
      this.maxMapnr = maxMapnr;

      // Bitmaps.
      const b1Off = (1 + subHdrSize) * bs;
      this.#bitmap1 = this.#readAt(b1Off, bitmapBytes, 'the 1st bitmap');
      const bitmap2 = this.#readAt(b1Off + bitmapBytes, bitmapBytes, 'the 2nd bitmap');
      clearBeyond(this.#bitmap1, maxMapnr);
      clearBeyond(bitmap2, maxMapnr);
      this.#rank = new BitmapRank(bitmap2);
      this.split = this.headerVersion >= 2 && sv.getInt32(SH_SPLIT, true) !== 0 ? this.#splitRange(sv, bs, maxMapnr) : undefined;
      this.#descBase = this.split === undefined ? 0 : this.#rank.rank(this.split.startPfn);
      this.dumpedPages = this.split === undefined ? this.#rank.total : this.#rank.rank(this.split.endPfn) - this.#descBase;
      this.#descOff = b1Off + 2 * bitmapBytes;
      if (this.#descOff + this.dumpedPages * PD_SIZE > this.fileSize) {
        throw this.#error(
          `Cannot open kdump "${file}": the 2nd bitmap has ${this.dumpedPages} pages, whose descriptors at ${hex(this.#descOff)} run past the end of the file (size ${hex(this.fileSize)})`,
          b1Off + bitmapBytes, '2nd bitmap',
        );
      }
      this.#ranges = rangesOf(this.#bitmap1, maxMapnr, bs);

      // Notes and VMCOREINFO.
      const located = this.#readNotes(sv, bs);
      this.notes = located.map((n) => n.note);
      const vn = located.find((x) => x.note.name === VMCOREINFO_NOTE_NAME && x.note.type === NT_VMCOREINFO);
      if (vn) this.vmcoreinfo = VmcoreInfo.fromBytes(vn.note.desc, { file, offset: vn.descOffset });
      else this.vmcoreinfo = this.headerVersion >= 3 ? this.#readVmcoreinfo(sv, bs) : undefined;
      this.prstatus = located
        .filter((x) => x.note.name === CORE_NOTE_NAME && x.note.type === NT_PRSTATUS)
        .map((x) => decodePrStatus(x.note.desc, { file, offset: x.descOffset }));
    } catch (e) {
      this.close();
      throw e;
    }
  }

  physRanges(): readonly PhysRange[] {
    return this.#ranges.map((r) => ({ ...r }));
  }

  /** Whether pfn's bit is set in the 1st (in memory) and 2nd (dumped) bitmaps. */
  bits(pfn: number): { inMemory: boolean; dumped: boolean } {
    if (pfn >= this.maxMapnr) return { inMemory: false, dumped: false };
    return { inMemory: bitmapTest(this.#bitmap1, pfn), dumped: bitmapTest(this.#rank.bitmap, pfn) };
  }

  /** Index of pfn's page descriptor (set 2nd-bitmap bits below it, from the split range's start for a part). */
  descriptorIndex(pfn: number): number {
    return this.#rank.rank(pfn) - this.#descBase;
  }

  readPage(pfn: number, dst: Uint8Array): PageStatus {
    if (!Number.isSafeInteger(pfn) || pfn < 0) throw new RangeError(`Cannot read page ${pfn} of "${this.file}": not a frame number`);
    const ps = this.pageSize;
    if (dst.length < ps) {
      throw new RangeError(`Cannot read page ${hex(pfn)} of "${this.file}": buffer of ${dst.length} bytes is smaller than a page (${ps})`);
    }
    const page = dst.subarray(0, ps);
    page.fill(0);
    if (pfn >= this.maxMapnr) return 'absent';
    if (!bitmapTest(this.#rank.bitmap, pfn)) return bitmapTest(this.#bitmap1, pfn) ? 'excluded' : 'absent';
    // A part of a split dump: frames of the other parts are in memory, not in this file.
    if (this.split !== undefined && (pfn < this.split.startPfn || pfn >= this.split.endPfn)) return 'excluded';
    const idx = this.#rank.rank(pfn) - this.#descBase;
    const dOff = this.#descOff + idx * PD_SIZE;
    if (idx < this.#descFirst || idx >= this.#descFirst + this.#descCount) this.#loadDescriptors(idx, dOff, pfn);
    const dv = this.#descView;
    const at = (idx - this.#descFirst) * PD_SIZE;
    // The 64-bit offset as two halves: no BigInt on the per-page path.
    const offLo = dv.getUint32(at, true);
    const offHi = dv.getInt32(at + 4, true);
    const size = dv.getUint32(at + 8, true);
    const flags = dv.getUint32(at + 12, true);
    // Built only for an error message.
    const where = (): string => `page descriptor ${idx} (frame ${hex(pfn)}) at ${hex(dOff)}`;
    if (offLo === 0 && offHi === 0 && this.incomplete) return 'excluded'; // lost when the dump was cut short
    if (size === 0 || size > ps) {
      throw this.#error(`Cannot read frame ${hex(pfn)} of "${this.file}": ${where()} has size ${size}, expected 1..block_size ${ps}`, dOff + 8, 'page_desc.size');
    }
    // offHi below 2^21 keeps the offset a safe integer; anything larger lies past any file we can open.
    const off = offHi * 0x1_0000_0000 + offLo;
    if (offHi < 0 || offHi >= 0x20_0000 || off + size > this.fileSize) {
      throw this.#error(
        `Cannot read frame ${hex(pfn)} of "${this.file}": ${where()} points at ${hex(dv.getBigInt64(at, true))} + ${size} bytes, outside the file (size ${hex(this.fileSize)})`,
        dOff, 'page_desc.offset',
      );
    }
    if (flags === 0) {
      if (size !== ps) {
        throw this.#error(`Cannot read frame ${hex(pfn)} of "${this.file}": ${where()} stores a raw page of ${size} bytes, expected ${ps}`, dOff + 8, 'page_desc.size');
      }
      if (off === this.#rawOff && this.#raw !== undefined) {
        page.set(this.#raw);
        return 'present';
      }
      this.#readInto(page, off, () => `the data of frame ${hex(pfn)}`);
      this.#raw ??= new Uint8Array(ps);
      this.#raw.set(page);
      this.#rawOff = off;
      return 'present';
    }
    const codec = codecForFlag(flags);
    if (codec === undefined || codec.flag === 0) {
      throw this.#error(
        `Cannot read frame ${hex(pfn)} of "${this.file}": ${where()} has flags 0x${flags.toString(16)} (${compressionName(flags)}), not zlib, lzo, snappy or zstd`,
        dOff + 12, 'page_desc.flags',
      );
    }
    const comp = this.#readAt(off, size, () => `the compressed data of frame ${hex(pfn)}`);
    let out: Uint8Array;
    try {
      out = codec.decompress(comp, ps);
    } catch (e) {
      if (e instanceof CodecUnavailableError) throw e; // not a format problem: names the package to install
      throw this.#error(
        `Cannot read frame ${hex(pfn)} of "${this.file}": ${codec.name} data at ${hex(off)} (${size} bytes) does not decompress to a page: ${(e as Error).message}`,
        off, 'page data',
      );
    }
    page.set(out);
    return 'present';
  }

  readPages(startPfn: number, count: number, dst: Uint8Array, status: PageStatus[]): void {
    const ps = this.pageSize;
    if (dst.length < count * ps) throw new RangeError(`Cannot read ${count} pages of "${this.file}": buffer of ${dst.length} bytes is too small`);
    status.length = count;
    for (let i = 0; i < count; i++) status[i] = this.readPage(startPfn + i, dst.subarray(i * ps, (i + 1) * ps));
  }

  readPhys(paddr: number, length: number): Uint8Array {
    return readPhysByPages(this, paddr, length);
  }

  close(): void {
    if (this.#fd !== undefined) {
      fs.closeSync(this.#fd);
      this.#fd = undefined;
    }
  }

  // ---- opening ----

  #error(message: string, offset: number | undefined, field: string): VmcoreFormatError {
    return new VmcoreFormatError(message, offset === undefined ? { file: this.file, field } : { file: this.file, offset, field });
  }

  #region(sv: DataView, bs: number, offField: number, sizeField: number, names: [string, string], max: number): [number, number] | undefined {
    const off = sv.getBigUint64(offField, true);
    const size = sv.getBigUint64(sizeField, true);
    if (off === 0n || size === 0n) return undefined;
    if (size > BigInt(max)) {
      throw this.#error(`Cannot open kdump "${this.file}": ${names[1]} ${hex(size)} exceeds the limit ${hex(max)}`, bs + sizeField, names[1]);
    }
    if (off + size > BigInt(this.fileSize)) {
      throw this.#error(
        `Cannot open kdump "${this.file}": ${names[0]} ${hex(off)} + ${names[1]} ${hex(size)} runs past the end of the file (size ${hex(this.fileSize)})`,
        bs + offField, names[0],
      );
    }
    return [Number(off), Number(size)];
  }

  /** start_pfn_64/end_pfn_64 (version 6; start_pfn/end_pfn before), checked against max_mapnr. */
  #splitRange(sv: DataView, bs: number, maxMapnr: number): { startPfn: number; endPfn: number } {
    const wide = this.headerVersion >= 6;
    const startOff = wide ? SH_START_PFN_64 : SH_START_PFN;
    const endOff = wide ? SH_END_PFN_64 : SH_END_PFN;
    const start = sv.getBigUint64(startOff, true);
    const end = sv.getBigUint64(endOff, true);
    const names = wide ? ['start_pfn_64', 'end_pfn_64'] : ['start_pfn', 'end_pfn'];
    if (start > end || end > BigInt(maxMapnr)) {
      throw this.#error(
        `Cannot open kdump "${this.file}": split part range ${names[0]} ${hex(start)} to ${names[1]} ${hex(end)} is not inside [0, max_mapnr ${hex(maxMapnr)}]`,
        bs + startOff, names[0] ?? 'start_pfn',
      );
    }
    return { startPfn: Number(start), endPfn: Number(end) };
  }

  #readNotes(sv: DataView, bs: number): LocatedNote[] {
    if (this.headerVersion < 4) return [];
    const r = this.#region(sv, bs, SH_OFFSET_NOTE, SH_SIZE_NOTE, ['offset_note', 'size_note'], MAX_NOTE_BYTES);
    if (!r) return [];
    const buf = this.#readAt(r[0], r[1], 'the notes');
    return decodeNotesAt(buf, { file: this.file, offset: r[0] });
  }

  #readVmcoreinfo(sv: DataView, bs: number): VmcoreInfo | undefined {
    const r = this.#region(sv, bs, SH_OFFSET_VMCOREINFO, SH_SIZE_VMCOREINFO, ['offset_vmcoreinfo', 'size_vmcoreinfo'], MAX_VMCOREINFO_BYTES);
    if (!r) return undefined;
    return VmcoreInfo.fromBytes(this.#readAt(r[0], r[1], 'VMCOREINFO'), { file: this.file, offset: r[0] });
  }

  /** Fills the descriptor window from descriptor idx (at file offset dOff) on; a short file fails as a single descriptor read would. */
  #loadDescriptors(idx: number, dOff: number, pfn: number): void {
    const fd = this.#fd;
    if (fd === undefined) throw new Error(`Cannot read "${this.file}": the reader is closed`);
    const buf = this.#desc;
    let got = 0;
    while (got < buf.length) {
      const n = fs.readSync(fd, buf, got, buf.length - got, dOff + got);
      if (n === 0) break;
      got += n;
    }
    if (got < PD_SIZE) {
      this.#descCount = 0;
      throw this.#error(`Cannot read the page descriptor of frame ${hex(pfn)} of "${this.file}": unexpected end of file at offset ${hex(dOff + got)}`, dOff + got, 'size');
    }
    this.#descFirst = idx;
    this.#descCount = Math.floor(got / PD_SIZE);
  }

  #readAt(position: number, length: number, what: string | (() => string)): Uint8Array {
    const buf = new Uint8Array(length);
    this.#readInto(buf, position, what);
    return buf;
  }

  /** `what` names the bytes in an error; a function when building it would cost on the per-page path. */
  #readInto(dst: Uint8Array, position: number, what: string | (() => string)): void {
    const fd = this.#fd;
    if (fd === undefined) throw new Error(`Cannot read "${this.file}": the reader is closed`);
    let done = 0;
    while (done < dst.length) {
      const n = fs.readSync(fd, dst, done, dst.length - done, position + done);
      if (n === 0) {
        throw this.#error(`Cannot read ${typeof what === 'string' ? what : what()} of "${this.file}": unexpected end of file at offset ${hex(position + done)}`, position + done, 'size');
      }
      done += n;
    }
  }
}

function utsField(head: Uint8Array, index: number): string {
  const start = DH_UTSNAME + index * UTS_FIELD_LEN;
  const f = head.subarray(start, start + UTS_FIELD_LEN);
  const nul = f.indexOf(0);
  return Buffer.from(f.subarray(0, nul < 0 ? f.length : nul)).toString('latin1');
}

/** Bits at or past maxMapnr mean nothing; clear them so rank and ranges ignore them. */
function clearBeyond(bitmap: Uint8Array, maxMapnr: number): void {
  const byte = Math.floor(maxMapnr / 8);
  if (byte >= bitmap.length) return;
  const keep = maxMapnr % 8;
  bitmap[byte] = (bitmap[byte] ?? 0) & ((1 << keep) - 1);
  bitmap.fill(0, byte + 1);
}

function rangesOf(bitmap: Uint8Array, maxMapnr: number, ps: number): PhysRange[] {
  const out: PhysRange[] = [];
  let runStart = -1;
  const nBytes = Math.ceil(maxMapnr / 8);
  for (let i = 0; i < nBytes; i++) {
    const b = bitmap[i] ?? 0;
    if ((b === 0 && runStart < 0) || (b === 0xff && runStart >= 0)) continue;
    for (let bit = 0; bit < 8; bit++) {
      const pfn = i * 8 + bit;
      const set = ((b >> bit) & 1) === 1;
      if (set && runStart < 0) runStart = pfn;
      else if (!set && runStart >= 0) {
        out.push({ start: runStart * ps, end: pfn * ps });
        runStart = -1;
      }
    }
  }
  if (runStart >= 0) out.push({ start: runStart * ps, end: Math.min(nBytes * 8, maxMapnr) * ps });
  return out;
}
