// Reading a physical range from a dump that is read a page at a time: the
// shared loop of every reader whose pages come from a page table of some kind
// (kdump-compressed files, split parts), with the same errors.

import { VmcoreFormatError } from '../util/errors.js';
import { hex } from '../util/hex.js';
import type { PageStatus } from './vmcore-reader.js';

export interface PagedDump {
  readonly file: string;
  readonly pageSize: number;
  readPage(pfn: number, dst: Uint8Array): PageStatus;
}

/** `length` bytes from physical address `paddr`; a page the dump does not hold is an error naming the address. */
export function readPhysByPages(d: PagedDump, paddr: number, length: number): Uint8Array {
  if (!Number.isSafeInteger(paddr) || paddr < 0 || !Number.isSafeInteger(length) || length < 0 || !Number.isSafeInteger(paddr + length)) {
    throw new RangeError(`Cannot read physical memory of "${d.file}": address ${paddr} and length ${length} are not a valid range`);
  }
  const ps = d.pageSize;
  const dst = new Uint8Array(length);
  const page = new Uint8Array(ps);
  let cursor = paddr;
  while (cursor < paddr + length) {
    const pfn = Math.floor(cursor / ps);
    if (d.readPage(pfn, page) === 'absent') {
      throw new VmcoreFormatError(`Cannot read physical memory at ${hex(paddr)} of "${d.file}": address ${hex(cursor)} is not in the dump`, {
        file: d.file, field: 'paddr',
      });
    }
    const inPage = cursor - pfn * ps;
    const n = Math.min(ps - inPage, paddr + length - cursor);
    dst.set(page.subarray(inPage, inPage + n), cursor - paddr);
    cursor += n;
  }
  return dst;
}
