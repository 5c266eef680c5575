// Converting a vmcore between formats: any file openVmcore reads (ELF,
// kdump-compressed) to an ELF vmcore laid out as /proc/vmcore or to a
// kdump-compressed file. Pages are read in bulk and written sparse or
// compressed; memory stays bounded whatever the dump's size.

import type { Codec } from './codecs.js';
import { encodeNotes } from './elf-note.js';
import { writeElfVmcore } from './elf-vmcore-writer.js';
import { writeKdumpCompressed, type KdumpCompressedWriteResult } from './kdump-compressed-writer.js';
import type { PageSource } from './page-source.js';
import type { VmcoreReader } from './vmcore-reader.js';
import type { PageStatus } from './vmcore-reader.js';

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
}

/** compression: the kdump output's page codec (default zlib); ignored for ELF. */
export function convertVmcore(
  reader: VmcoreReader, out: string, format: 'elf' | 'kdump', onProgress?: (done: number, total: number) => void, compression: Codec = 'zlib',
): ConvertResult {
  const source = new ReaderPageSource(reader);
  const ranges = reader.physRanges().map((r) => ({ startPfn: Math.floor(r.start / 4096), endPfn: Math.ceil(r.end / 4096) }));
  const pages = ranges.reduce((n, r) => n + (r.endPfn - r.startPfn), 0);
  const notes = encodeNotes(reader.notes);
  if (format === 'elf') {
    const r = writeElfVmcore(out, {
      notes,
      loads: ranges.map((x) => ({ paddr: x.startPfn * 4096, vaddr: PAGE_OFFSET + BigInt(x.startPfn * 4096), memsz: (x.endPfn - x.startPfn) * 4096 })),
      source,
      ...(onProgress === undefined ? {} : { onProgress: (d: number, t: number) => onProgress(d / 4096, t / 4096) }),
    });
    return { format, fileSize: r.fileSize, pages };
  }
  const r = writeKdumpCompressed(out, {
    source,
    maxPfn: ranges.reduce((n, x) => Math.max(n, x.endPfn), 0),
    ranges,
    notes,
    release: reader.vmcoreinfo?.get('OSRELEASE') ?? '',
    nrCpus: Math.max(1, reader.prstatus.length),
    compression,
    ...(onProgress === undefined ? {} : { onProgress }),
  });
  return { format, fileSize: r.fileSize, pages, kdump: r };
}
