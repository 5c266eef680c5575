// Damaged kdump-compressed files: each either opens (and then every page read
// gives a status or a VmcoreFormatError) or fails to open with a
// VmcoreFormatError naming the file. Nothing else may escape, nothing may
// allocate what the file merely claims.

import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { writeKdumpCompressed } from '../../src/dump/kdump-compressed-writer.js';
import {
  DH_BITMAP_BLOCKS, DH_BLOCK_SIZE, DH_MAX_MAPNR, DH_SIZE, DH_STATUS, DH_SUB_HDR_SIZE, DUMP_DH_COMPRESSED_INCOMPLETE, PD_SIZE,
  SH_MAX_MAPNR_64, SH_OFFSET_NOTE, SH_OFFSET_VMCOREINFO, SH_SIZE, SH_SIZE_NOTE,
} from '../../src/dump/kdump-compressed.js';
import { MapPageSource, PAGE_SIZE } from '../../src/dump/page-source.js';
import { openVmcore } from '../../src/dump/vmcore-reader.js';
import { VmcoreFormatError } from '../../src/util/errors.js';
import { patternPage, sampleNotes, tempDir } from './vmcore-fixtures.js';

const dir = tempDir('kdump-fuzz');
const base = path.join(dir, 'base.kdump');
const victim = path.join(dir, 'victim.kdump');
let good: Uint8Array;
let descOff = 0;
const MAX_PFN = 0x30;

beforeAll(() => {
  const frames = new Map<number, Uint8Array>();
  for (const pfn of [0x10, 0x11, 0x13, 0x20]) frames.set(pfn, patternPage(pfn));
  frames.set(0x12, new Uint8Array(randomBytes(PAGE_SIZE)));
  writeKdumpCompressed(base, {
    source: new MapPageSource(frames), maxPfn: MAX_PFN, ranges: [{ startPfn: 0x10, endPfn: 0x18 }, { startPfn: 0x20, endPfn: 0x22 }],
    notes: sampleNotes(2).bytes, release: '6.1.0', nrCpus: 2, compression: 'zlib',
  });
  good = new Uint8Array(fs.readFileSync(base));
  const v = new DataView(good.buffer);
  const subHdr = v.getInt32(DH_SUB_HDR_SIZE, true);
  descOff = (1 + subHdr + v.getUint32(DH_BITMAP_BLOCKS, true)) * PAGE_SIZE;
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

type Outcome = 'opened' | 'rejected';

/** Opens `bytes` and reads every frame; returns 'opened' or 'rejected', rethrows anything untyped. */
function exercise(bytes: Uint8Array): { outcome: Outcome; readErrors: number } {
  fs.writeFileSync(victim, bytes);
  let reader;
  try {
    reader = openVmcore(victim);
  } catch (e) {
    expectTyped(e);
    return { outcome: 'rejected', readErrors: 0 };
  }
  let readErrors = 0;
  try {
    const page = new Uint8Array(reader.pageSize);
    void reader.physRanges();
    for (let pfn = 0; pfn < MAX_PFN + 2; pfn++) {
      try {
        expect(['present', 'excluded', 'absent']).toContain(reader.readPage(pfn, page));
      } catch (e) {
        expectTyped(e);
        readErrors++;
      }
    }
    return { outcome: 'opened', readErrors };
  } finally {
    reader.close();
  }
}

function expectTyped(e: unknown): void {
  if (!(e instanceof VmcoreFormatError)) throw e;
  expect(e.file).toBe(victim);
  expect(e.message).toContain(`"${victim}"`);
  expect(e.message).not.toContain('\n');
}

function with32(bytes: Uint8Array, off: number, v: number): Uint8Array {
  const b = bytes.slice();
  new DataView(b.buffer).setUint32(off, v >>> 0, true);
  return b;
}

function with64(bytes: Uint8Array, off: number, v: bigint): Uint8Array {
  const b = bytes.slice();
  new DataView(b.buffer).setBigUint64(off, v, true);
  return b;
}

function rejectedAt(bytes: Uint8Array, field: string | RegExp): void {
  fs.writeFileSync(victim, bytes);
  let err: unknown;
  try {
    openVmcore(victim).close();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(VmcoreFormatError);
  const fe = err as VmcoreFormatError;
  expect(fe.file).toBe(victim);
  expect(fe.field).toMatch(field);
  expect(fe.offset).toBeTypeOf('number');
}

/** Reads every frame and expects exactly one VmcoreFormatError naming `field`. */
function readFails(bytes: Uint8Array, pfn: number, field: string): void {
  fs.writeFileSync(victim, bytes);
  const r = openVmcore(victim);
  try {
    let err: unknown;
    try {
      r.readPage(pfn, new Uint8Array(PAGE_SIZE));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VmcoreFormatError);
    expect((err as VmcoreFormatError).field).toBe(field);
    expect((err as VmcoreFormatError).message).toContain(`"${victim}"`);
  } finally {
    r.close();
  }
}

describe('kdump-compressed reader on damaged files', () => {
  it('opens the undamaged file and reads every page', () => {
    expect(exercise(good)).toEqual({ outcome: 'opened', readErrors: 0 });
  });

  it('truncated at any length', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: good.length - 1 }), (len) => {
        const r = exercise(good.subarray(0, len));
        // A cut anywhere is noticed: at open (metadata) or when the lost page is read.
        expect(r.outcome === 'rejected' || r.readErrors > 0).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('random bytes flipped in the headers, notes, bitmaps and descriptors', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: descOff + 8 * PD_SIZE }), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 6 }),
        (flips) => {
          const b = good.slice();
          for (const [off, x] of flips) b[off] = (b[off] ?? 0) ^ x;
          exercise(b);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('random header field values', () => {
    const fields = [DH_BLOCK_SIZE, DH_SUB_HDR_SIZE, DH_BITMAP_BLOCKS, DH_MAX_MAPNR, DH_STATUS];
    fc.assert(
      fc.property(fc.constantFrom(...fields), fc.oneof(fc.integer({ min: 0, max: 64 }), fc.constant(0xffffffff), fc.constant(0x80000000), fc.nat()), (off, v) => {
        exercise(with32(good, off, v));
      }),
      { numRuns: 200 },
    );
  });

  it('names the field for each kind of damage', () => {
    rejectedAt(with32(good, 0, 0x4d554b44), 'magic'); // "DKUM": not sniffed as kdump at all
    rejectedAt(good.subarray(0, DH_SIZE - 1), 'disk_dump_header');
    rejectedAt(with32(good, 8, 99), 'header_version');
    rejectedAt(with32(good, DH_BLOCK_SIZE, 4097), 'block_size');
    rejectedAt(with32(good, DH_BLOCK_SIZE, 1 << 30), 'block_size');
    rejectedAt(with32(good, DH_SUB_HDR_SIZE, 0x7fffffff), 'sub_hdr_size');
    rejectedAt(with32(good, DH_BITMAP_BLOCKS, 0xfffffffe), 'bitmap_blocks');
    rejectedAt(with32(good, DH_BITMAP_BLOCKS, 3), 'bitmap_blocks');
    rejectedAt(with64(good, PAGE_SIZE + SH_MAX_MAPNR_64, 0xffffffffffffffffn), 'max_mapnr_64');
    rejectedAt(with64(good, PAGE_SIZE + SH_MAX_MAPNR_64, 1n << 40n), 'max_mapnr_64');
    rejectedAt(with64(good, PAGE_SIZE + SH_SIZE_NOTE, 1n << 62n), 'size_note');
    rejectedAt(with64(good, PAGE_SIZE + SH_OFFSET_NOTE, BigInt(good.length)), 'offset_note');
    const noVmciNote = with64(good, PAGE_SIZE + SH_SIZE_NOTE, 0n);
    rejectedAt(with64(noVmciNote, PAGE_SIZE + SH_OFFSET_VMCOREINFO, 1n << 50n), 'offset_vmcoreinfo');
    // Every bit of the 2nd bitmap set: more descriptors than the file holds.
    const bm2 = descOff - PAGE_SIZE;
    const full = good.slice();
    full.fill(0xff, bm2, bm2 + PAGE_SIZE);
    full.fill(0xff, bm2 - PAGE_SIZE, bm2);
    expect(exercise(full).outcome).toBe('opened'); // 0x30 descriptors still fit this file
    const tiny = full.subarray(0, descOff + 0x20 * PD_SIZE);
    rejectedAt(tiny, '2nd bitmap');
    expect(SH_SIZE).toBe(104);
  });

  it('rejects bad descriptors when the page is read', () => {
    // Descriptor 0 is pfn 0x10 (zlib), 2 is pfn 0x12 (raw), 3 is pfn 0x13.
    readFails(with64(good, descOff, BigInt(good.length)), 0x10, 'page_desc.offset');
    readFails(with64(good, descOff, 1n << 63n), 0x10, 'page_desc.offset');
    readFails(with32(good, descOff + 8, PAGE_SIZE + 1), 0x10, 'page_desc.size');
    readFails(with32(good, descOff + 8, 0), 0x10, 'page_desc.size');
    readFails(with32(good, descOff + 8, 100), 0x10, 'page data'); // truncated zlib stream
    readFails(with32(good, descOff + 2 * PD_SIZE + 8, 100), 0x12, 'page_desc.size'); // raw but short
    readFails(with32(good, descOff + 12, 0x8), 0x10, 'page_desc.flags'); // not a codec bit
    readFails(with32(good, descOff + 12, 0x3), 0x10, 'page_desc.flags'); // two codec bits
    for (const flag of [0x2, 0x4, 0x20]) readFails(with32(good, descOff + 12, flag), 0x10, 'page data'); // zlib bytes called lzo, snappy, zstd
    readFails(with32(good, descOff + 2 * PD_SIZE + 12, 0x1), 0x12, 'page data'); // raw bytes called zlib
  });

  it('reads lost pages of an incomplete dump as excluded', () => {
    const b = with32(with64(good, descOff, 0n), DH_STATUS, 1 | DUMP_DH_COMPRESSED_INCOMPLETE);
    fs.writeFileSync(victim, b);
    const r = openVmcore(victim);
    try {
      expect((r as { incomplete?: boolean }).incomplete).toBe(true);
      expect(r.readPage(0x10, new Uint8Array(PAGE_SIZE))).toBe('excluded');
      expect(r.readPage(0x11, new Uint8Array(PAGE_SIZE))).toBe('present');
    } finally {
      r.close();
    }
  });
});

describe('openVmcore sniffing', () => {
  it('sends a short file with the KDUMP signature to the kdump reader, which names its size', () => {
    fs.writeFileSync(victim, 'KDUMP   \x01\x00\x00\x00');
    expect(() => openVmcore(victim)).toThrow(`Cannot open kdump "${victim}": the file is 12 bytes, shorter than the 464-byte disk_dump_header`);
  });
});
