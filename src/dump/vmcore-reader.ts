// What every dump format offers once opened: notes, VMCOREINFO, CPU registers
// and physical pages. openVmcore() picks the format from the file's magic.

import * as fs from 'node:fs';
import { VmcoreFormatError } from '../util/errors.js';
import type { ElfNote } from './elf-note.js';
import { ElfVmcoreReader } from './elf-vmcore-reader.js';
import { isFlattenedSignature } from './flattened.js';
import { KdumpCompressedReader } from './kdump-compressed-reader.js';
import type { PrStatus } from './prstatus.js';
import { SplitKdumpReader } from './split-kdump-reader.js';
import type { VmcoreInfo } from './vmcoreinfo.js';

/** excluded: inside p_memsz but past p_filesz (filtered out); absent: no segment covers it. */
export type PageStatus = 'present' | 'excluded' | 'absent';

export interface PhysRange {
  start: number;
  end: number;
}

export interface VmcoreReader {
  readonly file: string;
  readonly format: 'elf' | string;
  readonly pageSize: number;
  readonly fileSize: number;
  readonly notes: readonly ElfNote[];
  readonly vmcoreinfo: VmcoreInfo | undefined;
  readonly prstatus: readonly PrStatus[];
  /** Physical ranges described by the dump, [start, end) byte addresses, ascending, merged. */
  physRanges(): readonly PhysRange[];
  /** Reads frame pfn into dst; returns its status (dst zero-filled unless 'present'). */
  readPage(pfn: number, dst: Uint8Array): PageStatus;
  /**
   * Reads `count` consecutive frames from `startPfn` into dst (count pages
   * long) and their statuses into `status`; one large read where the frames
   * share a segment, so scanning a whole dump is not a syscall per page.
   */
  readPages(startPfn: number, count: number, dst: Uint8Array, status: PageStatus[]): void;
  /** Reads `length` bytes at a physical address; throws VmcoreFormatError naming the address if any part is absent. */
  readPhys(paddr: number, length: number): Uint8Array;
  close(): void;
}

const SNIFF_BYTES = 16;

function describeMagic(head: Uint8Array): string {
  const bytes = Array.from(head, (b) => b.toString(16).padStart(2, '0')).join(' ');
  const text = Array.from(head, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
  return `"${bytes}" ("${text}")`;
}

export function openVmcore(path: string): VmcoreReader {
  const fd = fs.openSync(path, 'r');
  let head: Uint8Array;
  try {
    const buf = new Uint8Array(SNIFF_BYTES);
    const n = fs.readSync(fd, buf, 0, SNIFF_BYTES, 0);
    head = buf.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
  if (head.length >= 4 && head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46) {
    return new ElfVmcoreReader(path);
  }
  if (head.length >= 8 && Buffer.from(head.subarray(0, 8)).toString('latin1') === 'KDUMP   ') {
    return new KdumpCompressedReader(path);
  }
  if (isFlattenedSignature(head)) {
    throw new VmcoreFormatError(
      `Cannot open vmcore "${path}": it is in makedumpfile's flattened format (makedumpfile -F); ` +
        `rearrange it first with \`kdumpsim vmcore convert ${path} OUT --format kdump\` or \`makedumpfile -R OUT < ${path}\``,
      { file: path, offset: 0, field: 'magic' },
    );
  }
  if (head.length === 0) {
    throw new VmcoreFormatError(`Cannot open vmcore "${path}": the file is empty`, { file: path, offset: 0 });
  }
  throw new VmcoreFormatError(`Cannot open vmcore "${path}": unknown format, first bytes are ${describeMagic(head)}`, {
    file: path,
    offset: 0,
    field: 'magic',
  });
}

/**
 * Opens one vmcore file, or several as the parts of one split dump
 * (makedumpfile --split), in any order.
 */
export function openVmcoreFiles(paths: readonly string[]): VmcoreReader {
  if (paths.length === 1) return openVmcore(paths[0]!);
  return new SplitKdumpReader(paths);
}
