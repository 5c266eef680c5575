// Reads ELF vmcores: ours, a capture kernel's /proc/vmcore copied out,
// makedumpfile -E output and QEMU dump-guest-memory (paging=false). Every
// size taken from the file is checked against the file before it is used, so
// a damaged file gives a VmcoreFormatError, never a huge allocation or a hang.

import * as fs from 'node:fs';
import { VmcoreFormatError } from '../util/errors.js';
import { hex } from '../util/hex.js';
import {
  EHDR_SIZE, EM_X86_64, ET_CORE, PHDR_SIZE, PN_XNUM, PT_LOAD, PT_NOTE, SHDR_SIZE,
  decodeElfHeader, decodeProgramHeader, decodeXnumPhnum, type ElfHeader, type ProgramHeader,
} from './elf.js';
import { CORE_NOTE_NAME, NT_PRSTATUS, NT_VMCOREINFO, VMCOREINFO_NOTE_NAME, decodeNotesAt, type ElfNote, type LocatedNote } from './elf-note.js';
import { PAGE_SIZE } from './page-source.js';
import { decodePrStatus, type PrStatus } from './prstatus.js';
import { VmcoreInfo } from './vmcoreinfo.js';
import type { PageStatus, PhysRange, VmcoreReader } from './vmcore-reader.js';

/** Hard caps on what we allocate for metadata, whatever the file claims. */
const MAX_PHDR_TABLE_BYTES = 64 * 2 ** 20;
const MAX_NOTE_BYTES = 64 * 2 ** 20;

/** Kernel text is mapped at or above __START_KERNEL_map on x86_64. */
const KERNEL_TEXT_BASE = 0xffffffff80000000n;
/** drgn's convention: a PT_LOAD with all-ones p_paddr has no physical address. */
const NO_PADDR = (1n << 64n) - 1n;
/** Physical addresses are numbers here; x86 tops out at 2^52. */
const MAX_PHYS = BigInt(Number.MAX_SAFE_INTEGER);

/** A PT_LOAD that contributes to the physical map. */
interface LoadSegment {
  index: number;
  paddr: number;
  memsz: number;
  filesz: number;
  offset: number;
  isKernelText: boolean;
}

/**
 * A slice of one PT_LOAD in the physical map. Pieces never overlap and are
 * sorted by start, so both starts and ends are ascending.
 */
interface Piece {
  start: number;
  end: number;
  /** Bytes in [start, dataEnd) are in the file; [dataEnd, end) read as zero (excluded). */
  dataEnd: number;
  /** File offset of `start`. */
  fileOffset: number;
  index: number;
}

interface CopyOutcome {
  sawData: boolean;
  sawExcluded: boolean;
  /** First byte address no segment covers, if any. */
  firstAbsent: number | undefined;
}

export class ElfVmcoreReader implements VmcoreReader {
  readonly file: string;
  readonly format = 'elf';
  readonly pageSize: number;
  readonly fileSize: number;
  readonly header: ElfHeader;
  readonly programHeaders: readonly ProgramHeader[];
  readonly notes: readonly ElfNote[];
  readonly vmcoreinfo: VmcoreInfo | undefined;
  readonly prstatus: readonly PrStatus[];
  #fd: number | undefined;
  readonly #pieces: Piece[];

  constructor(file: string) {
    this.file = file;
    const fd = fs.openSync(file, 'r');
    this.#fd = fd;
    try {
      this.fileSize = fs.fstatSync(fd).size;
      const head = this.#readAt(0, Math.min(EHDR_SIZE, this.fileSize), 'the ELF header');
      this.header = decodeElfHeader(head, file);
      if (this.header.type !== ET_CORE) {
        throw this.#error(`Cannot open vmcore "${file}": e_type is ${this.header.type}, expected ET_CORE (${ET_CORE})`, 16, 'e_type');
      }
      this.programHeaders = this.#readProgramHeaders();
      const segments = this.#checkSegments();
      this.#pieces = this.#buildPhysMap(segments);
      const located = this.#readNotes();
      this.notes = located.map((n) => n.note);
      this.vmcoreinfo = this.#findVmcoreinfo(located);
      this.prstatus = this.#decodePrStatus(located);
      this.pageSize = this.#pageSizeFromInfo();
    } catch (e) {
      this.close();
      throw e;
    }
  }

  physRanges(): readonly PhysRange[] {
    const out: PhysRange[] = [];
    for (const p of this.#pieces) {
      const last = out[out.length - 1];
      if (last && last.end === p.start) last.end = p.end;
      else out.push({ start: p.start, end: p.end });
    }
    return out;
  }

  readPage(pfn: number, dst: Uint8Array): PageStatus {
    if (!Number.isSafeInteger(pfn) || pfn < 0) throw new RangeError(`Cannot read page ${pfn} of "${this.file}": not a frame number`);
    if (dst.length < this.pageSize) {
      throw new RangeError(`Cannot read page ${hex(pfn)} of "${this.file}": buffer of ${dst.length} bytes is smaller than a page (${this.pageSize})`);
    }
    const page = dst.subarray(0, this.pageSize);
    page.fill(0);
    const paddr = pfn * this.pageSize;
    if (!Number.isSafeInteger(paddr + this.pageSize)) return 'absent';
    const r = this.#copy(paddr, page);
    return r.sawData ? 'present' : r.sawExcluded ? 'excluded' : 'absent';
  }

  readPages(startPfn: number, count: number, dst: Uint8Array, status: PageStatus[]): void {
    const ps = this.pageSize;
    if (dst.length < count * ps) throw new RangeError(`Cannot read ${count} pages of "${this.file}": buffer of ${dst.length} bytes is too small`);
    status.length = count;
    const start = startPfn * ps;
    const end = start + count * ps;
    const j = firstEndingAfter(this.#pieces, start);
    const p = this.#pieces[j];
    if (p !== undefined && p.start <= start && end <= p.dataEnd) {
      // All frames are file data of one segment: a single positional read.
      this.#readInto(dst.subarray(0, count * ps), p.fileOffset + (start - p.start), `PT_LOAD ${p.index}`);
      status.fill('present');
      return;
    }
    for (let i = 0; i < count; i++) status[i] = this.readPage(startPfn + i, dst.subarray(i * ps, (i + 1) * ps));
  }

  readPhys(paddr: number, length: number): Uint8Array {
    if (!Number.isSafeInteger(paddr) || paddr < 0 || !Number.isSafeInteger(length) || length < 0 || !Number.isSafeInteger(paddr + length)) {
      throw new RangeError(`Cannot read physical memory of "${this.file}": address ${paddr} and length ${length} are not a valid range`);
    }
    const dst = new Uint8Array(length);
    const r = this.#copy(paddr, dst);
    if (r.firstAbsent !== undefined) {
      throw new VmcoreFormatError(
        `Cannot read physical memory at ${hex(paddr)} of "${this.file}": address ${hex(r.firstAbsent)} is not in any PT_LOAD`,
        { file: this.file, field: 'paddr' },
      );
    }
    return dst;
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

  #readProgramHeaders(): ProgramHeader[] {
    const h = this.header;
    let phnum = h.phnum;
    if (phnum === PN_XNUM) {
      // The real count is sh_info of section header 0.
      if (h.shoff === 0n || h.shoff + BigInt(SHDR_SIZE) > BigInt(this.fileSize)) {
        throw this.#error(
          `Cannot read program headers of "${this.file}": e_phnum is PN_XNUM but e_shoff ${hex(h.shoff)} does not point at a section header inside the file (size ${hex(this.fileSize)})`,
          40, 'e_shoff',
        );
      }
      const shoff = Number(h.shoff);
      phnum = decodeXnumPhnum(this.#readAt(shoff, SHDR_SIZE, 'section header 0'));
    }
    if (phnum === 0) {
      throw this.#error(`Cannot read program headers of "${this.file}": e_phnum is 0, a vmcore needs at least a PT_NOTE or a PT_LOAD`, 56, 'e_phnum');
    }
    const tableBytes = BigInt(phnum) * BigInt(PHDR_SIZE);
    if (h.phoff + tableBytes > BigInt(this.fileSize)) {
      throw this.#error(
        `Cannot read program headers of "${this.file}": e_phoff ${hex(h.phoff)} + ${phnum} × ${PHDR_SIZE} bytes runs past the end of the file (size ${hex(this.fileSize)})`,
        32, 'e_phnum',
      );
    }
    if (tableBytes > BigInt(MAX_PHDR_TABLE_BYTES)) {
      throw this.#error(
        `Cannot read program headers of "${this.file}": ${phnum} program headers exceed the limit of ${MAX_PHDR_TABLE_BYTES / PHDR_SIZE}`,
        56, 'e_phnum',
      );
    }
    const phoff = Number(h.phoff);
    const table = this.#readAt(phoff, Number(tableBytes), 'the program headers');
    const view = new DataView(table.buffer, table.byteOffset, table.length);
    const out: ProgramHeader[] = [];
    for (let i = 0; i < phnum; i++) out.push(decodeProgramHeader(view, i * PHDR_SIZE));
    return out;
  }

  #phdrError(i: number, detail: string, field: string): VmcoreFormatError {
    const off = Number(this.header.phoff) + i * PHDR_SIZE;
    return this.#error(`Cannot read program header ${i} of "${this.file}": ${detail}`, off, field);
  }

  /** Checks every PT_LOAD and PT_NOTE against the file; returns the loads that map physical memory. */
  #checkSegments(): LoadSegment[] {
    const size = BigInt(this.fileSize);
    const out: LoadSegment[] = [];
    this.programHeaders.forEach((p, i) => {
      if (p.type !== PT_LOAD && p.type !== PT_NOTE) return;
      if (p.filesz > 0n && p.offset > size) {
        throw this.#phdrError(i, `p_offset ${hex(p.offset)} is past the end of the file (size ${hex(size)})`, 'p_offset');
      }
      if (p.filesz > 0n && p.offset + p.filesz > size) {
        throw this.#phdrError(
          i,
          `p_offset ${hex(p.offset)} + p_filesz ${hex(p.filesz)} runs past the end of the file (size ${hex(size)})`,
          'p_filesz',
        );
      }
      if (p.type === PT_NOTE) return;
      if (p.filesz > p.memsz) {
        throw this.#phdrError(i, `p_filesz ${hex(p.filesz)} exceeds p_memsz ${hex(p.memsz)}`, 'p_filesz');
      }
      if (p.paddr === NO_PADDR || p.memsz === 0n) return;
      if (p.paddr + p.memsz > MAX_PHYS) {
        throw this.#phdrError(
          i,
          `physical range ${hex(p.paddr)} + p_memsz ${hex(p.memsz)} is beyond 2^53, which no x86 machine addresses`,
          'p_paddr',
        );
      }
      out.push({
        index: i,
        paddr: Number(p.paddr),
        memsz: Number(p.memsz),
        filesz: Number(p.filesz),
        offset: Number(p.offset),
        isKernelText: p.vaddr >= KERNEL_TEXT_BASE,
      });
    });
    return out;
  }

  /**
   * Sorted, non-overlapping pieces. Direct-map PT_LOADs must not overlap. A
   * kernel-text PT_LOAD aliases RAM another PT_LOAD already describes (real
   * vmcores have both), so it only fills addresses nothing else covers.
   */
  #buildPhysMap(segments: LoadSegment[]): Piece[] {
    const byStart = (a: { paddr: number; index: number }, b: { paddr: number; index: number }): number =>
      a.paddr - b.paddr || a.index - b.index;
    const direct = segments.filter((s) => !s.isKernelText).sort(byStart);
    const pieces: Piece[] = [];
    let widest: LoadSegment | undefined; // the segment reaching furthest so far
    for (const s of direct) {
      if (widest && s.paddr < widest.paddr + widest.memsz) {
        const [a, b] = widest.index < s.index ? [widest, s] : [s, widest];
        throw this.#phdrError(
          b.index,
          `PT_LOAD physical range [${hex(b.paddr)}, ${hex(b.paddr + b.memsz)}) overlaps program header ${a.index} [${hex(a.paddr)}, ${hex(a.paddr + a.memsz)})`,
          'p_paddr',
        );
      }
      if (!widest || s.paddr + s.memsz > widest.paddr + widest.memsz) widest = s;
      pieces.push(pieceOf(s, s.paddr, s.paddr + s.memsz));
    }

    const text = segments.filter((s) => s.isKernelText).sort(byStart);
    if (text.length === 0) return pieces;
    const extra: Piece[] = [];
    let textCovered = 0; // text segments alias each other too; the first in address order wins
    for (const s of text) {
      let cursor = Math.max(s.paddr, textCovered);
      const end = s.paddr + s.memsz;
      let j = firstEndingAfter(pieces, cursor);
      while (cursor < end) {
        const p = pieces[j];
        if (!p || p.start >= end) {
          extra.push(pieceOf(s, cursor, end));
          break;
        }
        if (p.start > cursor) extra.push(pieceOf(s, cursor, p.start));
        cursor = Math.max(cursor, p.end);
        j++;
      }
      textCovered = Math.max(textCovered, end);
    }
    return pieces.concat(extra).sort((a, b) => a.start - b.start);
  }

  #readNotes(): LocatedNote[] {
    const out: LocatedNote[] = [];
    let total = 0;
    this.programHeaders.forEach((p, i) => {
      if (p.type !== PT_NOTE || p.filesz === 0n) return;
      total += Number(p.filesz); // already bounded by the file size
      if (total > MAX_NOTE_BYTES) {
        throw this.#phdrError(i, `note segments add up to more than ${hex(MAX_NOTE_BYTES)} bytes`, 'p_filesz');
      }
      const offset = Number(p.offset);
      const buf = this.#readAt(offset, Number(p.filesz), `the notes of program header ${i}`);
      out.push(...decodeNotesAt(buf, { file: this.file, offset }));
    });
    return out;
  }

  #findVmcoreinfo(notes: readonly LocatedNote[]): VmcoreInfo | undefined {
    const n = notes.find((x) => x.note.name === VMCOREINFO_NOTE_NAME && x.note.type === NT_VMCOREINFO);
    return n ? VmcoreInfo.fromBytes(n.note.desc, { file: this.file, offset: n.descOffset }) : undefined;
  }

  #decodePrStatus(notes: readonly LocatedNote[]): PrStatus[] {
    // The register layout is x86_64's; other machines' notes are kept raw in `notes`.
    if (this.header.machine !== EM_X86_64) return [];
    return notes
      .filter((x) => x.note.name === CORE_NOTE_NAME && x.note.type === NT_PRSTATUS)
      .map((x) => decodePrStatus(x.note.desc, { file: this.file, offset: x.descOffset }));
  }

  #pageSizeFromInfo(): number {
    const ps = this.vmcoreinfo?.pageSize;
    if (ps === undefined) return PAGE_SIZE;
    if (ps < 512 || ps > 2 ** 20 || (ps & (ps - 1)) !== 0) {
      throw this.#error(`Cannot open vmcore "${this.file}": VMCOREINFO PAGESIZE ${ps} is not a power of two between 512 and 1 MiB`, undefined, 'PAGESIZE');
    }
    return ps;
  }

  // ---- reading ----

  #readAt(position: number, length: number, what: string): Uint8Array {
    const buf = new Uint8Array(length);
    this.#readInto(buf, position, what);
    return buf;
  }

  #readInto(dst: Uint8Array, position: number, what: string): void {
    const fd = this.#fd;
    if (fd === undefined) throw new Error(`Cannot read "${this.file}": the reader is closed`);
    let done = 0;
    while (done < dst.length) {
      const n = fs.readSync(fd, dst, done, dst.length - done, position + done);
      if (n === 0) {
        throw this.#error(
          `Cannot read ${what} of "${this.file}": unexpected end of file at offset ${hex(position + done)}`,
          position + done,
          'size',
        );
      }
      done += n;
    }
  }

  /** Copies [paddr, paddr + dst.length) into dst (pre-zeroed by the caller). */
  #copy(paddr: number, dst: Uint8Array): CopyOutcome {
    const limit = paddr + dst.length;
    const out: CopyOutcome = { sawData: false, sawExcluded: false, firstAbsent: undefined };
    let cursor = paddr;
    for (let j = firstEndingAfter(this.#pieces, paddr); j < this.#pieces.length && cursor < limit; j++) {
      const p = this.#pieces[j];
      if (!p || p.start >= limit) break;
      if (p.start > cursor) out.firstAbsent ??= cursor;
      const a = Math.max(cursor, p.start);
      const b = Math.min(limit, p.end);
      const dataB = Math.min(b, p.dataEnd);
      if (dataB > a) {
        this.#readInto(dst.subarray(a - paddr, dataB - paddr), p.fileOffset + (a - p.start), `PT_LOAD ${p.index}`);
        out.sawData = true;
      }
      if (b > Math.max(a, dataB)) out.sawExcluded = true;
      cursor = b;
    }
    if (cursor < limit) out.firstAbsent ??= cursor;
    return out;
  }
}

function pieceOf(s: LoadSegment, start: number, end: number): Piece {
  return {
    start,
    end,
    dataEnd: Math.min(end, Math.max(start, s.paddr + s.filesz)),
    fileOffset: s.offset + (start - s.paddr),
    index: s.index,
  };
}

/** Index of the first piece whose end is past `addr` (pieces are sorted, so ends are too). */
function firstEndingAfter(pieces: readonly Piece[], addr: number): number {
  let lo = 0;
  let hi = pieces.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((pieces[mid]?.end ?? 0) <= addr) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
