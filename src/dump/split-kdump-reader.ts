// A split dump (makedumpfile --split OUT1 OUT2 ...) read as one dump. Every
// part is a whole kdump-compressed file with the same headers and the same
// two bitmaps over all frames; its sub header marks it split and names the
// frames it holds, [start_pfn_64, end_pfn_64), and its descriptors count
// from that start. The parts, in any order, must tile [0, max_mapnr)
// without gap or overlap (a part may hold no frames at all).

import { VmcoreFormatError } from '../util/errors.js';
import { hex } from '../util/hex.js';
import type { ElfNote } from './elf-note.js';
import { KdumpCompressedReader } from './kdump-compressed-reader.js';
import type { PrStatus } from './prstatus.js';
import type { PageStatus, PhysRange, VmcoreReader } from './vmcore-reader.js';
import { readPhysByPages } from './read-phys.js';
import type { VmcoreInfo } from './vmcoreinfo.js';

export class SplitKdumpReader implements VmcoreReader {
  /** The part files joined with " + ", for messages. */
  readonly file: string;
  readonly files: readonly string[];
  readonly format = 'kdump';
  readonly pageSize: number;
  /** Sum of the parts' sizes. */
  readonly fileSize: number;
  readonly maxMapnr: number;
  readonly dumpLevel: number;
  readonly compression: string;
  readonly incomplete: boolean;
  readonly notes: readonly ElfNote[];
  readonly vmcoreinfo: VmcoreInfo | undefined;
  readonly prstatus: readonly PrStatus[];
  /** Pages with a descriptor, over all parts. */
  readonly dumpedPages: number;
  /** The parts ordered by their frame ranges. */
  readonly parts: readonly KdumpCompressedReader[];

  constructor(files: readonly string[]) {
    if (files.length === 0) throw new RangeError('Cannot open a split dump: no part files given');
    this.files = [...files];
    this.file = files.join(' + ');
    const opened: KdumpCompressedReader[] = [];
    try {
      for (const f of files) opened.push(new KdumpCompressedReader(f));
      this.parts = checkParts(opened);
    } catch (e) {
      for (const r of opened) r.close();
      throw e;
    }
    const first = this.parts[0]!;
    this.pageSize = first.pageSize;
    this.maxMapnr = first.maxMapnr;
    this.dumpLevel = first.dumpLevel;
    this.compression = first.compression;
    this.incomplete = this.parts.some((p) => p.incomplete);
    this.notes = first.notes;
    this.vmcoreinfo = first.vmcoreinfo;
    this.prstatus = first.prstatus;
    this.fileSize = this.parts.reduce((n, p) => n + p.fileSize, 0);
    this.dumpedPages = this.parts.reduce((n, p) => n + p.dumpedPages, 0);
  }

  physRanges(): readonly PhysRange[] {
    return this.parts[0]!.physRanges();
  }

  /** The part holding pfn (the last part for frames at or past max_mapnr). */
  partOf(pfn: number): KdumpCompressedReader {
    const parts = this.parts;
    let lo = 0;
    let hi = parts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (parts[mid]!.split!.startPfn <= pfn) lo = mid;
      else hi = mid - 1;
    }
    // Empty parts share their start with the next one; take the one whose range holds pfn.
    while (lo > 0 && parts[lo]!.split!.endPfn <= pfn && parts[lo]!.split!.startPfn === parts[lo]!.split!.endPfn) lo--;
    return parts[lo]!;
  }

  readPage(pfn: number, dst: Uint8Array): PageStatus {
    return this.partOf(pfn).readPage(pfn, dst);
  }

  readPages(startPfn: number, count: number, dst: Uint8Array, status: PageStatus[]): void {
    const ps = this.pageSize;
    if (dst.length < count * ps) throw new RangeError(`Cannot read ${count} pages of "${this.file}": buffer of ${dst.length} bytes is too small`);
    status.length = count;
    let part = this.partOf(startPfn);
    for (let i = 0; i < count; i++) {
      const pfn = startPfn + i;
      if (pfn >= part.split!.endPfn && pfn < this.maxMapnr) part = this.partOf(pfn);
      status[i] = part.readPage(pfn, dst.subarray(i * ps, (i + 1) * ps));
    }
  }

  readPhys(paddr: number, length: number): Uint8Array {
    return readPhysByPages(this, paddr, length);
  }

  close(): void {
    for (const p of this.parts) p.close();
  }
}

/** Orders the parts by range and checks they describe one dump and tile [0, max_mapnr). */
function checkParts(parts: KdumpCompressedReader[]): KdumpCompressedReader[] {
  const first = parts[0]!;
  for (const p of parts) {
    if (p.split === undefined) {
      throw new VmcoreFormatError(`Cannot open "${p.file}" as part of a split dump: its sub header does not mark it split (split = 0)`, {
        file: p.file, field: 'split',
      });
    }
    for (const [field, a, b] of [
      ['block_size', p.pageSize, first.pageSize], ['max_mapnr', p.maxMapnr, first.maxMapnr], ['header_version', p.headerVersion, first.headerVersion],
    ] as const) {
      if (a !== b) {
        throw new VmcoreFormatError(`Cannot open "${p.file}" as part of the split dump of "${first.file}": its ${field} ${a} differs from ${b}`, { file: p.file, field });
      }
    }
  }
  const sorted = [...parts].sort((a, b) => a.split!.startPfn - b.split!.startPfn || a.split!.endPfn - b.split!.endPfn);
  let next = 0;
  for (const p of sorted) {
    const r = p.split!;
    if (r.startPfn !== next) {
      const what = r.startPfn > next ? `frames ${hex(next)} to ${hex(r.startPfn)} are in no part` : `it overlaps the part before it, which ends at ${hex(next)}`;
      throw new VmcoreFormatError(`Cannot open split dump: part "${p.file}" holds frames ${hex(r.startPfn)} to ${hex(r.endPfn)}, and ${what}`, {
        file: p.file, field: 'start_pfn_64',
      });
    }
    next = r.endPfn;
  }
  if (next !== first.maxMapnr) {
    throw new VmcoreFormatError(`Cannot open split dump: its parts end at frame ${hex(next)}, short of max_mapnr ${hex(first.maxMapnr)}; a part is missing`, {
      file: sorted[sorted.length - 1]!.file, field: 'end_pfn_64',
    });
  }
  return sorted;
}
