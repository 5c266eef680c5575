// Writes an ELF vmcore laid out exactly as a capture kernel's /proc/vmcore
// (Linux >= 3.11): header and phdrs padded to a page, merged notes padded to a
// page, then each PT_LOAD's bytes page aligned in phdr order. Frames that are
// absent or all zero are left as holes, so the file is sparse and costs what
// the machine touched, not what it has.

import * as fs from 'node:fs';
import { withPartFile } from './part-file.js';
import { hex } from '../util/hex.js';
import { EHDR_SIZE, PF_R, PF_W, PF_X, PHDR_SIZE, PN_XNUM, PT_LOAD, PT_NOTE, encodeElfHeader, encodeProgramHeader } from './elf.js';
import { PAGE_SIZE, type PageSource } from './page-source.js';

export interface ElfLoadSpec {
  /** Physical start, page aligned. */
  paddr: number;
  /** Virtual address the kernel maps it at (direct map, or kernel text). */
  vaddr: bigint;
  /** Length in bytes, page aligned; the whole range is written (p_filesz = p_memsz). */
  memsz: number;
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
}

export interface ElfVmcoreWriteResult {
  /** Bytes actually written (headers, notes, non-zero pages). */
  bytesWritten: number;
  /** Length of the (sparse) file. */
  fileSize: number;
  pagesWritten: number;
}

/** Largest single positional write; big enough for throughput, small enough to keep memory flat. */
const CHUNK_BYTES = 1 << 20;
const CHUNK_PAGES = CHUNK_BYTES / PAGE_SIZE;
/** The last phdr count that still fits e_phnum without PN_XNUM. */
const MAX_PHNUM = PN_XNUM - 1;

const ZERO_PAGE = Buffer.alloc(PAGE_SIZE);

function roundUpPage(n: number): number {
  return Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;
}

/** Where each part of the file goes; computed before anything is written. */
export interface ElfVmcoreLayout {
  headerBytes: number;
  noteOffset: number;
  loadOffsets: number[];
  fileSize: number;
}

export function layoutElfVmcore(notesLength: number, loads: readonly ElfLoadSpec[]): ElfVmcoreLayout {
  const phnum = loads.length + 1;
  if (phnum > MAX_PHNUM) {
    throw new RangeError(`Cannot lay out ELF vmcore: ${phnum} program headers exceed ${MAX_PHNUM} (PN_XNUM is not supported)`);
  }
  const headerBytes = EHDR_SIZE + PHDR_SIZE * phnum;
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
    if (!Number.isSafeInteger(l.paddr + l.memsz)) {
      throw new RangeError(`Cannot lay out PT_LOAD ${i}: paddr ${hex(l.paddr)} + memsz ${hex(l.memsz)} is too large`);
    }
    if (l.vaddr < 0n || l.vaddr + BigInt(l.memsz) > 1n << 64n) {
      throw new RangeError(`Cannot lay out PT_LOAD ${i}: vaddr ${hex(l.vaddr)} + memsz ${hex(l.memsz)} does not fit 64 bits`);
    }
    loadOffsets.push(off);
    off += l.memsz;
  });
  if (!Number.isSafeInteger(off)) throw new RangeError(`Cannot lay out ELF vmcore: file size ${off} is too large`);
  return { headerBytes, noteOffset, loadOffsets, fileSize: off };
}

function encodeHeaders(spec: ElfVmcoreSpec, layout: ElfVmcoreLayout): Uint8Array {
  const buf = new Uint8Array(layout.headerBytes);
  const ehdr = spec.elfFlags === undefined
    ? encodeElfHeader({ phnum: spec.loads.length + 1 })
    : encodeElfHeader({ phnum: spec.loads.length + 1, flags: spec.elfFlags });
  buf.set(ehdr, 0);
  const view = new DataView(buf.buffer);
  const noteSize = BigInt(spec.notes.length);
  encodeProgramHeader(
    { type: PT_NOTE, flags: 0, offset: BigInt(layout.noteOffset), vaddr: 0n, paddr: 0n, filesz: noteSize, memsz: noteSize, align: 0n },
    view,
    EHDR_SIZE,
  );
  spec.loads.forEach((l, i) => {
    const size = BigInt(l.memsz);
    encodeProgramHeader(
      {
        type: PT_LOAD,
        flags: l.flags ?? PF_R | PF_W | PF_X,
        offset: BigInt(layout.loadOffsets[i] ?? 0),
        vaddr: l.vaddr,
        paddr: BigInt(l.paddr),
        filesz: size,
        memsz: size,
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
export function writeElfVmcore(path: string, spec: ElfVmcoreSpec): ElfVmcoreWriteResult {
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
      const endPfn = startPfn + load.memsz / PAGE_SIZE;
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
    return { bytesWritten, fileSize: layout.fileSize, pagesWritten };
  });
}
