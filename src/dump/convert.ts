// Converting a vmcore between formats: any file openVmcore reads (ELF,
// kdump-compressed) to an ELF vmcore laid out as /proc/vmcore (or, with a
// dump level, as makedumpfile -E -d N splits it) or to a kdump-compressed
// file. Pages are read in bulk and written sparse or compressed; memory stays
// bounded whatever the dump's size: the kdump writer filters and builds its
// bitmaps a cycle of frames at a time; ELF output at a dump level that
// filters by struct page keeps one bit per frame.

import type { Codec } from './codecs.js';
import { encodeNotes } from './elf-note.js';
import { writeElfVmcore } from './elf-vmcore-writer.js';
import { writeKdumpCompressed, type KdumpCompressedWriteResult } from './kdump-compressed-writer.js';
import type { PageSource } from './page-source.js';
import type { VmcoreReader } from './vmcore-reader.js';
import type { PageStatus } from './vmcore-reader.js';
import { checkDumpLevel, excludedByStructPages, levelNeedsStructPages, type PageClass } from './page-class.js';
import { ReaderPhysMemory } from './kernel-vm.js';
import { VmcoreFormatError } from '../util/errors.js';

/** Direct-map base the ELF output's PT_LOADs get as p_vaddr (x86-64, 4-level). */
const PAGE_OFFSET = 0xffff_8880_0000_0000n;
const CHUNK = 256;

/** Every frame of the input's physical ranges, read 256 at a time. */
export class ReaderPageSource implements PageSource {
  readonly #reader: VmcoreReader;
  readonly #buf = new Uint8Array(CHUNK * 4096);
  readonly #status: PageStatus[] = [];
  #base = -1;
  #count = 0;

  constructor(reader: VmcoreReader) {
    this.#reader = reader;
  }

  *presentFrames(startPfn: number, endPfn: number): Iterable<number> {
    for (const r of this.#reader.physRanges()) {
      const a = Math.max(startPfn, Math.floor(r.start / 4096));
      const b = Math.min(endPfn, Math.ceil(r.end / 4096));
      for (let p = a; p < b; p++) yield p;
    }
  }

  readFrame(pfn: number, dst: Uint8Array): void {
    if (pfn < this.#base || pfn >= this.#base + this.#count) {
      this.#base = pfn;
      this.#count = CHUNK;
      this.#reader.readPages(pfn, CHUNK, this.#buf, this.#status);
    }
    const i = pfn - this.#base;
    if (this.#status[i] === 'present') dst.set(this.#buf.subarray(i * 4096, (i + 1) * 4096));
    else dst.fill(0, 0, 4096);
  }
}

export interface ConvertResult {
  format: 'elf' | 'kdump';
  fileSize: number;
  pages: number;
  /** The kdump-compressed writer's counts (compressed, raw, zero pages), for kdump output. */
  kdump?: KdumpCompressedWriteResult;
  /**
   * Pages the dump level's struct-page filter leaves out, by class (for ELF
   * output, makedumpfile's rule keeps short runs of them: see pagesLeftOut).
   */
  excluded?: Partial<Record<PageClass, number>>;
  /** ELF output with a dump level: pages past p_filesz, left out of the file. */
  pagesLeftOut?: number;
}

/**
 * Frames of `ranges` that dump level `level` leaves out because of the
 * dumped kernel's struct pages, as a bitmap (bit pfn, LSB first), with counts.
 */
export function excludedFrames(
  reader: VmcoreReader, ranges: readonly { startPfn: number; endPfn: number }[], maxPfn: number, level: number,
): { bitmap: Uint8Array; counts: Partial<Record<PageClass, number>> } {
  const vi = reader.vmcoreinfo;
  if (vi === undefined) {
    throw new VmcoreFormatError(`Cannot filter "${reader.file}" at dump level ${level}: it has no VMCOREINFO, so its struct pages cannot be found`, {
      file: reader.file, field: 'VMCOREINFO',
    });
  }
  return excludedByStructPages(vi, new ReaderPhysMemory(reader), reader.file, ranges, maxPfn, level);
}

/**
 * compression: the kdump output's page codec (default zlib); ignored for ELF.
 * dumpLevel: makedumpfile's -d; bits above 1 leave out pages by struct page
 * (page-class.ts). kdump output: default 1; zero pages are always shared.
 * ELF output: default none (the file is /proc/vmcore as is); with a level,
 * PT_LOADs are split as makedumpfile -E -d N splits them (elf-filter.ts).
 * threads (kdump output only): worker threads compressing pages; the output
 * bytes do not depend on it (compress-pool.ts).
 */
export function convertVmcore(
  reader: VmcoreReader, out: string, format: 'elf' | 'kdump', onProgress?: (done: number, total: number) => void, compression: Codec = 'zlib',
  level?: number, threads = 1,
): ConvertResult {
  const dumpLevel = level ?? (format === 'kdump' ? 1 : 0);
  checkDumpLevel(dumpLevel, `converting "${reader.file}"`);
  const source = new ReaderPageSource(reader);
  const ranges = reader.physRanges().map((r) => ({ startPfn: Math.floor(r.start / 4096), endPfn: Math.ceil(r.end / 4096) }));
  const pages = ranges.reduce((n, r) => n + (r.endPfn - r.startPfn), 0);
  const notes = encodeNotes(reader.notes);
  const maxPfn = ranges.reduce((n, x) => Math.max(n, x.endPfn), 0);
  if (format === 'elf') {
    const filter = levelNeedsStructPages(dumpLevel) ? excludedFrames(reader, ranges, maxPfn, dumpLevel) : undefined;
    const r = writeElfVmcore(out, {
      notes,
      loads: ranges.map((x) => ({ paddr: x.startPfn * 4096, vaddr: PAGE_OFFSET + BigInt(x.startPfn * 4096), memsz: (x.endPfn - x.startPfn) * 4096 })),
      source,
      ...(level === undefined ? {} : { dumpLevel }),
      ...(filter === undefined ? {} : { excluded: filter.bitmap }),
      ...(onProgress === undefined ? {} : { onProgress: (d: number, t: number) => onProgress(d / 4096, t / 4096) }),
    });
    return {
      format, fileSize: r.fileSize, pages,
      ...(level === undefined ? {} : { pagesLeftOut: r.pagesLeftOut }),
      ...(filter === undefined ? {} : { excluded: filter.counts }),
    };
  }
  if (levelNeedsStructPages(dumpLevel) && reader.vmcoreinfo === undefined) {
    throw new VmcoreFormatError(`Cannot filter "${reader.file}" at dump level ${dumpLevel}: it has no VMCOREINFO, so its struct pages cannot be found`, {
      file: reader.file, field: 'VMCOREINFO',
    });
  }
  // The writer filters by struct page itself, a cycle of frames at a time (bounded memory).
  const r = writeKdumpCompressed(out, {
    source,
    maxPfn,
    dumpLevel,
    // The filter finds the struct pages through VMCOREINFO: the reader's, should its notes not carry it.
    ...(levelNeedsStructPages(dumpLevel) && reader.vmcoreinfo !== undefined ? { vmcoreinfo: reader.vmcoreinfo.toText() } : {}),
    ranges,
    notes,
    release: reader.vmcoreinfo?.get('OSRELEASE') ?? '',
    nrCpus: Math.max(1, reader.prstatus.length),
    compression,
    threads,
    ...(onProgress === undefined ? {} : { onProgress }),
  });
  return { format, fileSize: r.fileSize, pages, kdump: r, ...(r.excludedByClass === undefined ? {} : { excluded: r.excludedByClass }) };
}
