// Writes an ELF vmcore laid out exactly as a capture kernel's /proc/vmcore
// (Linux >= 3.11): header and phdrs padded to a page, merged notes padded to a
// page, then each PT_LOAD's bytes page aligned in phdr order. Frames that are
// absent or all zero are left as holes, so the file is sparse and costs what
// the machine touched, not what it has.
//
// With a dump level (makedumpfile -E -d N), the PT_LOADs are first split the
// way makedumpfile splits them (elf-filter.ts): pages the level leaves out
// are past p_filesz of their segment, or between segments.

import * as fs from 'node:fs';
import { withPartFile } from './part-file.js';
import { hex } from '../util/hex.js';
import { EHDR_SIZE, PF_R, PF_W, PF_X, PHDR_SIZE, PN_XNUM, PT_LOAD, PT_NOTE, SHDR_SIZE, encodeElfHeader, encodeProgramHeader } from './elf.js';
import { PAGE_SIZE, type PageSource } from './page-source.js';
import { VmcoreFormatError } from '../util/errors.js';
import { filterElfLoads } from './elf-filter.js';
import { NT_VMCOREINFO, VMCOREINFO_NOTE_NAME, decodeNotesAt } from './elf-note.js';
import { SourcePhysMemory } from './kernel-vm.js';
import { DL_EXCLUDE_ZERO, checkDumpLevel, excludedByStructPages, levelNeedsStructPages } from './page-class.js';
import { VmcoreInfo } from './vmcoreinfo.js';

export interface ElfLoadSpec {
  /** Physical start, page aligned. */
  paddr: number;
  /** Virtual address the kernel maps it at (direct map, or kernel text). */
  vaddr: bigint;
  /** Length in bytes, page aligned. */
  memsz: number;
  /** Bytes of it in the file (page aligned, at most memsz; default memsz): the rest reads as left out. */
  filesz?: number;
  /** Defaults to R+W+X, as the kernel writes. */
  flags?: number;
}

export interface ElfVmcoreSpec {
  /** Merged note bytes, without the zero terminator. */
  notes: Uint8Array;
  loads: readonly ElfLoadSpec[];
  source: PageSource;
  /** Called as PT_LOAD ranges are covered; totalBytes is the sum of all memsz. */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  /** e_flags (makedumpfile sets bit 0 for an incomplete dump). */
  elfFlags?: number;
  /**
   * makedumpfile's -d: leave out zero pages (bit 1) and, from the struct
   * pages the notes' VMCOREINFO describes (read through the source), free,
   * cache and user pages, splitting PT_LOADs as makedumpfile -E does.
   * Default: none, the file is /proc/vmcore as is.
   */
  dumpLevel?: number;
  /** With dumpLevel: the frames it leaves out by struct page (bit pfn, LSB first), instead of reading them from the source. */
  excluded?: Uint8Array;
}

export interface ElfVmcoreWriteResult {
  /** Bytes actually written (headers, notes, non-zero pages). */
  bytesWritten: number;
  /** Length of the (sparse) file. */
  fileSize: number;
  pagesWritten: number;
  /** Pages the dump level left out (past p_filesz); 0 without a level. */
  pagesLeftOut: number;
  /** The PT_LOADs as written. */
  loads: ElfLoadSpec[];
}

/** Largest single positional write; big enough for throughput, small enough to keep memory flat. */
const CHUNK_BYTES = 1 << 20;
const CHUNK_PAGES = CHUNK_BYTES / PAGE_SIZE;
/** The last phdr count that still fits e_phnum without PN_XNUM. */
const MAX_PHNUM = PN_XNUM - 1;
/** Beyond that, e_phnum is PN_XNUM and section header 0 (after the phdrs) holds the count; at most as many as the reader takes (64 MiB of phdrs). */
const MAX_XNUM_PHNUM = Math.floor((64 * 2 ** 20) / PHDR_SIZE);

const ZERO_PAGE = Buffer.alloc(PAGE_SIZE);

function roundUpPage(n: number): number {
  return Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;
}

/** Where each part of the file goes; computed before anything is written. */
export interface ElfVmcoreLayout {
  headerBytes: number;
  /** File offset of section header 0 when e_phnum is PN_XNUM, else 0. */
  shoff: number;
  noteOffset: number;
  loadOffsets: number[];
  fileSize: number;
}

export function layoutElfVmcore(notesLength: number, loads: readonly ElfLoadSpec[]): ElfVmcoreLayout {
  const phnum = loads.length + 1;
  if (phnum > MAX_XNUM_PHNUM) {
    throw new RangeError(`Cannot lay out ELF vmcore: ${phnum} program headers exceed ${MAX_XNUM_PHNUM}`);
  }
  const shoff = phnum > MAX_PHNUM ? EHDR_SIZE + PHDR_SIZE * phnum : 0;
  const headerBytes = EHDR_SIZE + PHDR_SIZE * phnum + (shoff > 0 ? SHDR_SIZE : 0);
  const noteOffset = roundUpPage(headerBytes);
  let off = noteOffset + roundUpPage(notesLength);
  const loadOffsets: number[] = [];
  loads.forEach((l, i) => {
    if (!Number.isSafeInteger(l.paddr) || l.paddr < 0 || l.paddr % PAGE_SIZE !== 0) {
      throw new RangeError(`Cannot lay out PT_LOAD ${i}: paddr ${hex(l.paddr)} is not a page-aligned physical address`);
    }
    if (!Number.isSafeInteger(l.memsz) || l.memsz <= 0 || l.memsz % PAGE_SIZE !== 0) {
      throw new RangeError(`Cannot lay out PT_LOAD ${i}: memsz ${hex(l.memsz)} is not a positive multiple of the page size`);
    }
    const filesz = l.filesz ?? l.memsz;
    if (!Number.isSafeInteger(filesz) || filesz < 0 || filesz > l.memsz || filesz % PAGE_SIZE !== 0) {
      throw new RangeError(`Cannot lay out PT_LOAD ${i}: filesz ${hex(filesz)} is not a multiple of the page size from 0 to memsz ${hex(l.memsz)}`);
    }
    if (!Number.isSafeInteger(l.paddr + l.memsz)) {
      throw new RangeError(`Cannot lay out PT_LOAD ${i}: paddr ${hex(l.paddr)} + memsz ${hex(l.memsz)} is too large`);
    }
    if (l.vaddr < 0n || l.vaddr + BigInt(l.memsz) > 1n << 64n) {
      throw new RangeError(`Cannot lay out PT_LOAD ${i}: vaddr ${hex(l.vaddr)} + memsz ${hex(l.memsz)} does not fit 64 bits`);
    }
    // A segment with nothing in the file gets p_offset 0, as makedumpfile writes it.
    loadOffsets.push(filesz === 0 ? 0 : off);
    off += filesz;
  });
  if (!Number.isSafeInteger(off)) throw new RangeError(`Cannot lay out ELF vmcore: file size ${off} is too large`);
  return { headerBytes, shoff, noteOffset, loadOffsets, fileSize: off };
}

function encodeHeaders(spec: ElfVmcoreSpec, layout: ElfVmcoreLayout): Uint8Array {
  const buf = new Uint8Array(layout.headerBytes);
  const phnum = spec.loads.length + 1;
  const xnum = layout.shoff > 0;
  const ehdr = spec.elfFlags === undefined
    ? encodeElfHeader({ phnum: xnum ? 0 : phnum })
    : encodeElfHeader({ phnum: xnum ? 0 : phnum, flags: spec.elfFlags });
  buf.set(ehdr, 0);
  const view = new DataView(buf.buffer);
  if (xnum) {
    // PN_XNUM, as the kernel writes /proc/vmcore with that many segments: the count is sh_info of section header 0.
    view.setUint16(56, PN_XNUM, true); // e_phnum
    view.setBigUint64(40, BigInt(layout.shoff), true); // e_shoff
    view.setUint16(58, SHDR_SIZE, true); // e_shentsize
    view.setUint16(60, 1, true); // e_shnum
    view.setUint32(layout.shoff + 44, phnum, true); // sh_info
  }
  const noteSize = BigInt(spec.notes.length);
  encodeProgramHeader(
    { type: PT_NOTE, flags: 0, offset: BigInt(layout.noteOffset), vaddr: 0n, paddr: 0n, filesz: noteSize, memsz: noteSize, align: 0n },
    view,
    EHDR_SIZE,
  );
  spec.loads.forEach((l, i) => {
    encodeProgramHeader(
      {
        type: PT_LOAD,
        flags: l.flags ?? PF_R | PF_W | PF_X,
        offset: BigInt(layout.loadOffsets[i] ?? 0),
        vaddr: l.vaddr,
        paddr: BigInt(l.paddr),
        filesz: BigInt(l.filesz ?? l.memsz),
        memsz: BigInt(l.memsz),
        align: 0n, // crash recognises a kdump ELF by p_align 0
      },
      view,
      EHDR_SIZE + PHDR_SIZE * (i + 1),
    );
  });
  return buf;
}

function writeAll(fd: number, buf: Uint8Array, position: number): void {
  let done = 0;
  while (done < buf.length) {
    done += fs.writeSync(fd, buf, done, buf.length - done, position + done);
  }
}

/**
 * Writes `path` through `path.part`, renamed on success and removed on
 * failure, so the final name never holds a half-written dump.
 */
export function writeElfVmcore(path: string, given: ElfVmcoreSpec): ElfVmcoreWriteResult {
  const filtered = filterByLevel(path, given);
  const spec = filtered === undefined ? given : { ...given, loads: filtered.loads };
  const layout = layoutElfVmcore(spec.notes.length, spec.loads);
  const headers = encodeHeaders(spec, layout);
  const total = spec.loads.reduce((s, l) => s + l.memsz, 0);
  return withPartFile(path, (fd) => {
    let bytesWritten = 0;
    let pagesWritten = 0;
    writeAll(fd, headers, 0);
    bytesWritten += headers.length;
    if (spec.notes.length > 0) {
      writeAll(fd, spec.notes, layout.noteOffset);
      bytesWritten += spec.notes.length;
    }

    // One buffer reused for every run of consecutive non-zero frames.
    const chunk = Buffer.alloc(CHUNK_BYTES);
    let done = 0;
    spec.loads.forEach((load, i) => {
      const fileBase = layout.loadOffsets[i] ?? 0;
      const startPfn = load.paddr / PAGE_SIZE;
      const endPfn = startPfn + (load.filesz ?? load.memsz) / PAGE_SIZE;
      let runStart = -1; // first pfn held in chunk
      let runPages = 0;
      let lastPfn = startPfn - 1;
      const flush = (): void => {
        if (runPages === 0) return;
        const bytes = runPages * PAGE_SIZE;
        writeAll(fd, chunk.subarray(0, bytes), fileBase + (runStart - startPfn) * PAGE_SIZE);
        bytesWritten += bytes;
        pagesWritten += runPages;
        runPages = 0;
        spec.onProgress?.(done + (lastPfn + 1 - startPfn) * PAGE_SIZE, total);
      };
      for (const pfn of spec.source.presentFrames(startPfn, endPfn)) {
        if (!Number.isSafeInteger(pfn) || pfn <= lastPfn || pfn >= endPfn) {
          throw new RangeError(
            `Cannot write PT_LOAD ${i} of "${path}": the page source gave frame ${hex(pfn)}, expected ascending frames in [${hex(Math.max(startPfn, lastPfn + 1))}, ${hex(endPfn)})`,
          );
        }
        if (runPages > 0 && (pfn !== runStart + runPages || runPages === CHUNK_PAGES)) flush();
        const slot = chunk.subarray(runPages * PAGE_SIZE, (runPages + 1) * PAGE_SIZE);
        spec.source.readFrame(pfn, slot);
        lastPfn = pfn;
        if (slot.equals(ZERO_PAGE)) {
          flush(); // a zero frame ends the run and stays a hole
          continue;
        }
        if (runPages === 0) runStart = pfn;
        runPages++;
      }
      flush();
      done += load.memsz;
      spec.onProgress?.(done, total);
    });

    fs.ftruncateSync(fd, layout.fileSize);
    return { bytesWritten, fileSize: layout.fileSize, pagesWritten, pagesLeftOut: filtered?.pagesLeftOut ?? 0, loads: [...spec.loads] };
  });
}

/** The PT_LOADs split for spec.dumpLevel, or undefined when nothing is to be left out. */
function filterByLevel(path: string, spec: ElfVmcoreSpec): { loads: ElfLoadSpec[]; pagesLeftOut: number } | undefined {
  if (spec.dumpLevel === undefined) {
    if (spec.excluded !== undefined) throw new RangeError(`Cannot write ELF vmcore "${path}": excluded frames given without a dump level`);
    return undefined;
  }
  const level = spec.dumpLevel;
  checkDumpLevel(level, `writing "${path}"`);
  const excludeZero = (level & DL_EXCLUDE_ZERO) !== 0;
  let excluded = spec.excluded;
  if (excluded === undefined && levelNeedsStructPages(level)) {
    const spans = mergedSpans(spec.loads);
    const maxPfn = spans.reduce((n, x) => Math.max(n, x.endPfn), 0);
    const vmci = decodeNotesAt(spec.notes, { file: `${path} (notes given to the writer)`, offset: 0 })
      .find((x) => x.note.name === VMCOREINFO_NOTE_NAME && x.note.type === NT_VMCOREINFO);
    if (vmci === undefined) {
      throw new VmcoreFormatError(`Cannot write ELF vmcore "${path}" at dump level ${level}: the notes have no VMCOREINFO, so the struct pages cannot be found`, {
        file: path, field: 'VMCOREINFO',
      });
    }
    excluded = excludedByStructPages(VmcoreInfo.fromBytes(vmci.note.desc), new SourcePhysMemory(spec.source, spans), path, spans, maxPfn, level).bitmap;
  }
  if (excluded === undefined && !excludeZero) return undefined;
  return filterElfLoads(spec.loads, spec.source, excluded === undefined ? { excludeZero } : { excluded, excludeZero });
}

/** The frames the loads cover, merged (the kernel-text PT_LOAD aliases RAM another one covers). */
function mergedSpans(loads: readonly ElfLoadSpec[]): { startPfn: number; endPfn: number }[] {
  const sorted = loads.map((l) => ({ startPfn: Math.floor(l.paddr / PAGE_SIZE), endPfn: Math.ceil((l.paddr + l.memsz) / PAGE_SIZE) })).sort((a, b) => a.startPfn - b.startPfn);
  const out: { startPfn: number; endPfn: number }[] = [];
  for (const s of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && s.startPfn <= last.endPfn) last.endPfn = Math.max(last.endPfn, s.endPfn);
    else out.push({ ...s });
  }
  return out;
}
