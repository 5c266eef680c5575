// Which parts of each PT_LOAD a filtered ELF vmcore keeps, decided as
// makedumpfile -E -d N decides them (write_elf_pages_cyclic): walking a
// segment's frames in order, a frame is left out when the dump level
// excludes it (zero with bit 1, or its struct-page class); a run of fewer
// than PFN_EXCLUDED left-out frames followed by a kept frame is written
// anyway, with its contents; a run of PFN_EXCLUDED or more ends the segment
// (its p_memsz covers the run, its p_filesz stops before it) and a new
// PT_LOAD starts at the next kept frame, p_vaddr advanced as much as
// p_paddr; left-out frames at the end of a segment are past p_filesz. A
// segment that keeps nothing has p_filesz 0.

import { hex } from '../util/hex.js';
import type { ElfLoadSpec } from './elf-vmcore-writer.js';
import { PAGE_SIZE, type PageSource } from './page-source.js';

/** makedumpfile's PFN_EXCLUDED: left-out runs at least this long split a PT_LOAD. */
export const PFN_EXCLUDED = 256;

export interface ElfFilter {
  /** Frames the dump level leaves out by struct page: bit pfn (LSB first) set. */
  excluded?: Uint8Array;
  /** Leave out all-zero frames (dump level bit 1). */
  excludeZero: boolean;
}

export interface ElfFilterResult {
  loads: ElfLoadSpec[];
  /** Frames past some p_filesz: left out of the file. */
  pagesLeftOut: number;
}

function bit(map: Uint8Array | undefined, pfn: number): boolean {
  return map !== undefined && ((map[pfn >>> 3] ?? 0) & (1 << (pfn & 7))) !== 0;
}

/**
 * The frames of [startPfn, endPfn) the filter keeps, ascending. With
 * excludeZero, only frames the source holds can be kept, and each is read
 * to see whether it is zero.
 */
function* keptFrames(source: PageSource, startPfn: number, endPfn: number, filter: ElfFilter, page: Uint8Array): Iterable<number> {
  if (!filter.excludeZero) {
    for (let p = startPfn; p < endPfn; p++) {
      // Skip whole bytes of the bitmap that exclude eight frames.
      if ((p & 7) === 0 && p + 8 <= endPfn && filter.excluded !== undefined && filter.excluded[p >>> 3] === 0xff) {
        p += 7;
        continue;
      }
      if (!bit(filter.excluded, p)) yield p;
    }
    return;
  }
  let next = startPfn;
  const zero = Buffer.alloc(PAGE_SIZE);
  const buf = Buffer.from(page.buffer, page.byteOffset, PAGE_SIZE);
  for (const pfn of source.presentFrames(startPfn, endPfn)) {
    if (!Number.isSafeInteger(pfn) || pfn < next || pfn >= endPfn) {
      throw new RangeError(`Cannot filter frames: the page source gave frame ${hex(pfn)}, expected ascending frames in [${hex(next)}, ${hex(endPfn)})`);
    }
    next = pfn + 1; // frames the source does not hold read as zero: left out
    if (bit(filter.excluded, pfn)) continue;
    source.readFrame(pfn, page);
    if (!buf.equals(zero)) yield pfn;
  }
}

/** Splits `loads` (page aligned, as /proc/vmcore has them) as makedumpfile -E does for `filter`. */
export function filterElfLoads(loads: readonly ElfLoadSpec[], source: PageSource, filter: ElfFilter): ElfFilterResult {
  const out: ElfLoadSpec[] = [];
  const page = new Uint8Array(PAGE_SIZE);
  let pagesLeftOut = 0;
  loads.forEach((load, i) => {
    if (load.paddr % PAGE_SIZE !== 0 || load.memsz % PAGE_SIZE !== 0 || (load.filesz ?? load.memsz) !== load.memsz) {
      throw new RangeError(`Cannot filter PT_LOAD ${i}: paddr ${hex(load.paddr)} and memsz ${hex(load.memsz)} must be page aligned, with all of it in the input`);
    }
    const startPfn = load.paddr / PAGE_SIZE;
    const endPfn = startPfn + load.memsz / PAGE_SIZE;
    const flags = load.flags === undefined ? {} : { flags: load.flags };
    let segStart = startPfn; // first frame of the segment being built
    let filePages = 0; // its p_filesz in pages
    let prev = startPfn - 1; // last kept frame
    const emit = (memPages: number): void => {
      out.push({ paddr: segStart * PAGE_SIZE, vaddr: load.vaddr + BigInt((segStart - startPfn) * PAGE_SIZE), memsz: memPages * PAGE_SIZE, filesz: filePages * PAGE_SIZE, ...flags });
      pagesLeftOut += memPages - filePages;
    };
    for (const pfn of keptFrames(source, startPfn, endPfn, filter, page)) {
      const gap = pfn - prev - 1;
      if (gap >= PFN_EXCLUDED) {
        emit(pfn - segStart);
        segStart = pfn;
        filePages = 1;
      } else {
        filePages = pfn + 1 - segStart; // a short run is written with the frame after it
      }
      prev = pfn;
    }
    emit(endPfn - segStart);
  });
  return { loads: out, pagesLeftOut };
}
