// kdump-compressed writer -> reader round trips, and the bitmaps, descriptor
// ranks and header fields the writer produces checked byte by byte.

import { describe, it, expect, afterAll } from 'vitest';
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { KdumpCompressedReader } from '../../src/dump/kdump-compressed-reader.js';
import { writeKdumpCompressed, type PfnRange } from '../../src/dump/kdump-compressed-writer.js';
import {
  BitmapRank, DH_BITMAP_BLOCKS, DH_BLOCK_SIZE, DH_HEADER_VERSION, DH_MAX_MAPNR, DH_NR_CPUS, DH_STATUS, DH_SUB_HDR_SIZE,
  DUMP_DH_COMPRESSED_ZLIB, PD_SIZE, SH_MAX_MAPNR_64, SH_OFFSET_NOTE, SH_OFFSET_VMCOREINFO, SH_SIZE_NOTE, SH_SIZE_VMCOREINFO,
  bitmapTest,
} from '../../src/dump/kdump-compressed.js';
import { MapPageSource, PAGE_SIZE } from '../../src/dump/page-source.js';
import { openVmcore, type PageStatus } from '../../src/dump/vmcore-reader.js';
import { VmcoreInfo } from '../../src/dump/vmcoreinfo.js';
import { patternPage, sampleNotes, tempDir } from './vmcore-fixtures.js';

const dir = tempDir('kdump');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const RANGES: PfnRange[] = [
  { startPfn: 0x100, endPfn: 0x140 },
  { startPfn: 0x1000, endPfn: 0x1020 },
  { startPfn: 0x4000, endPfn: 0x4010 },
];
const MAX_PFN = 0x4010;

function frames(): Map<number, Uint8Array> {
  const m = new Map<number, Uint8Array>();
  for (const pfn of [0x100, 0x101, 0x110, 0x13f, 0x1000, 0x1005, 0x101f, 0x400f]) m.set(pfn, patternPage(pfn)); // compressible
  for (const pfn of [0x102, 0x1001]) m.set(pfn, new Uint8Array(randomBytes(PAGE_SIZE))); // incompressible
  for (const pfn of [0x103, 0x1002]) m.set(pfn, new Uint8Array(PAGE_SIZE)); // named but zero
  return m;
}

function inRanges(pfn: number, ranges: readonly PfnRange[]): boolean {
  return ranges.some((r) => pfn >= r.startPfn && pfn < r.endPfn);
}

describe('kdump-compressed round trip', () => {
  for (const compression of ['zlib', 'none'] as const) {
    for (const excludeZero of [false, true]) {
      it(`${compression}, excludeZero=${excludeZero}: every page reads back`, () => {
        const m = frames();
        const file = path.join(dir, `rt-${compression}-${excludeZero}.kdump`);
        const notes = sampleNotes(2);
        const stats = writeKdumpCompressed(file, {
          source: new MapPageSource(m), maxPfn: MAX_PFN, ranges: RANGES, notes: notes.bytes, release: '6.1.0-kdumpsim',
          nrCpus: 2, compression, excludeZero,
        });
        expect(fs.existsSync(file + '.part')).toBe(false);
        expect(stats.fileSize).toBe(fs.statSync(file).size);
        const nonZero = [...m.values()].filter((p) => p.some((b) => b !== 0)).length;
        const total = RANGES.reduce((n, r) => n + r.endPfn - r.startPfn, 0);
        expect(stats.pages).toBe(excludeZero ? nonZero : total);
        expect(stats.compressedPages + stats.rawPages).toBe(nonZero);
        if (compression === 'zlib') {
          expect(stats.compressedPages).toBe(8);
          expect(stats.rawPages).toBe(2);
        } else {
          expect(stats.compressedPages).toBe(0);
        }

        const r = openVmcore(file);
        try {
          expect(r).toBeInstanceOf(KdumpCompressedReader);
          const k = r as KdumpCompressedReader;
          expect(k.format).toBe('kdump');
          expect(k.pageSize).toBe(PAGE_SIZE);
          expect(k.maxMapnr).toBe(MAX_PFN);
          expect(k.release).toBe('6.1.0-kdumpsim');
          expect(k.machine).toBe('x86_64');
          expect(k.nrCpus).toBe(2);
          expect(k.incomplete).toBe(false);
          expect(k.compression).toBe(compression);
          expect(k.notes).toHaveLength(3);
          expect(k.prstatus.map((p) => p.pid)).toEqual([100, 101]);
          expect(k.vmcoreinfo?.osrelease).toBe('6.1.0-kdumpsim');
          expect(k.physRanges()).toEqual(RANGES.map((x) => ({ start: x.startPfn * PAGE_SIZE, end: x.endPfn * PAGE_SIZE })));
          const page = new Uint8Array(PAGE_SIZE);
          for (let pfn = 0; pfn < MAX_PFN + 4; pfn++) {
            const st = k.readPage(pfn, page);
            const want = m.get(pfn);
            const isZero = !want || want.every((b) => b === 0);
            if (!inRanges(pfn, RANGES)) expect(st).toBe('absent');
            else if (isZero) expect(st).toBe(excludeZero ? 'excluded' : 'present');
            else expect(st).toBe('present');
            if (want && !isZero) expect(Buffer.from(page).equals(want)).toBe(true);
            else expect(page.every((b) => b === 0)).toBe(true);
          }
          // Bulk read matches single reads.
          const bulk = new Uint8Array(0x40 * PAGE_SIZE);
          const status: PageStatus[] = [];
          k.readPages(0x100, 0x40, bulk, status);
          expect(status[0]).toBe('present');
          expect(Buffer.from(bulk.subarray(0, PAGE_SIZE)).equals(m.get(0x100)!)).toBe(true);
          expect(Buffer.from(k.readPhys(0x102 * PAGE_SIZE + 100, 8)).equals(m.get(0x102)!.subarray(100, 108))).toBe(true);
          expect(() => k.readPhys(0x200 * PAGE_SIZE, 8)).toThrow(/not in the dump/);
        } finally {
          r.close();
        }
      });
    }
  }

  it('lays out header, sub header, notes, bitmaps and descriptors as makedumpfile does', () => {
    const m = frames();
    const file = path.join(dir, 'layout.kdump');
    const notes = sampleNotes(1);
    writeKdumpCompressed(file, {
      source: new MapPageSource(m), maxPfn: MAX_PFN, ranges: RANGES, notes: notes.bytes, release: '6.1.0', nrCpus: 1, compression: 'zlib',
    });
    const b = new Uint8Array(fs.readFileSync(file));
    const v = new DataView(b.buffer);
    expect(Buffer.from(b.subarray(0, 8)).toString('latin1')).toBe('KDUMP   ');
    expect(v.getInt32(DH_HEADER_VERSION, true)).toBe(6);
    expect(Buffer.from(b.subarray(272, 278)).toString('latin1')).toBe('x86_64');
    // libkdumpfile uses the header's utsname only if sysname, nodename, release, version and machine are all set.
    for (let f = 0; f < 5; f++) expect(b[12 + 65 * f], `utsname field ${f}`).not.toBe(0);
    expect(Buffer.from(b.subarray(12 + 65 * 2, 12 + 65 * 2 + 5)).toString('latin1')).toBe('6.1.0');
    expect(v.getUint32(DH_STATUS, true)).toBe(DUMP_DH_COMPRESSED_ZLIB);
    expect(v.getInt32(DH_BLOCK_SIZE, true)).toBe(PAGE_SIZE);
    const subHdr = v.getInt32(DH_SUB_HDR_SIZE, true);
    expect(subHdr).toBe(Math.ceil((104 + notes.bytes.length) / PAGE_SIZE));
    const bitmapBlocks = v.getUint32(DH_BITMAP_BLOCKS, true);
    expect(bitmapBlocks).toBe(2 * Math.ceil(Math.ceil(MAX_PFN / 8) / PAGE_SIZE));
    expect(v.getUint32(DH_MAX_MAPNR, true)).toBe(MAX_PFN);
    expect(v.getInt32(DH_NR_CPUS, true)).toBe(1);
    expect(v.getBigUint64(PAGE_SIZE + SH_MAX_MAPNR_64, true)).toBe(BigInt(MAX_PFN));
    expect(v.getBigUint64(PAGE_SIZE + SH_OFFSET_NOTE, true)).toBe(BigInt(PAGE_SIZE + 104));
    expect(v.getBigUint64(PAGE_SIZE + SH_SIZE_NOTE, true)).toBe(BigInt(notes.bytes.length));
    expect(Buffer.from(b.subarray(PAGE_SIZE + 104, PAGE_SIZE + 104 + notes.bytes.length)).equals(notes.bytes)).toBe(true);
    const viOff = Number(v.getBigUint64(PAGE_SIZE + SH_OFFSET_VMCOREINFO, true));
    const viSize = Number(v.getBigUint64(PAGE_SIZE + SH_SIZE_VMCOREINFO, true));
    expect(VmcoreInfo.fromBytes(b.subarray(viOff, viOff + viSize)).osrelease).toBe('6.1.0-kdumpsim');
    const bm1 = (1 + subHdr) * PAGE_SIZE;
    const half = (bitmapBlocks / 2) * PAGE_SIZE;
    const bitmap1 = b.subarray(bm1, bm1 + half);
    const bitmap2 = b.subarray(bm1 + half, bm1 + 2 * half);
    for (let pfn = 0; pfn < MAX_PFN; pfn++) {
      expect(bitmapTest(bitmap1, pfn)).toBe(inRanges(pfn, RANGES));
      expect(bitmapTest(bitmap2, pfn)).toBe(inRanges(pfn, RANGES));
    }
    // Zero pages all share the first data page.
    const descOff = bm1 + 2 * half;
    const total = RANGES.reduce((n, r) => n + r.endPfn - r.startPfn, 0);
    const dataStart = descOff + PD_SIZE * total;
    const desc = (i: number): { offset: bigint; size: number; flags: number; pageFlags: bigint } => ({
      offset: v.getBigInt64(descOff + i * PD_SIZE, true),
      size: v.getUint32(descOff + i * PD_SIZE + 8, true),
      flags: v.getUint32(descOff + i * PD_SIZE + 12, true),
      pageFlags: v.getBigUint64(descOff + i * PD_SIZE + 16, true),
    });
    expect(desc(3)).toEqual({ offset: BigInt(dataStart), size: PAGE_SIZE, flags: 0, pageFlags: 0n }); // pfn 0x103, zero
    expect(desc(4)).toEqual({ offset: BigInt(dataStart), size: PAGE_SIZE, flags: 0, pageFlags: 0n }); // pfn 0x104, absent from source
    expect(b.subarray(dataStart, dataStart + PAGE_SIZE).every((x) => x === 0)).toBe(true);
    expect(desc(0).flags).toBe(DUMP_DH_COMPRESSED_ZLIB);
    expect(desc(0).offset).toBe(BigInt(dataStart + PAGE_SIZE));
    expect(desc(2)).toMatchObject({ size: PAGE_SIZE, flags: 0 }); // random page stored raw
    // compress2 format: a zlib header (CMF 0x78).
    expect(b[dataStart + PAGE_SIZE]).toBe(0x78);
  });

  it('embeds VMCOREINFO given as text when the notes have none', () => {
    const file = path.join(dir, 'vmci.kdump');
    writeKdumpCompressed(file, {
      source: new MapPageSource(new Map()), maxPfn: 16, ranges: [{ startPfn: 0, endPfn: 16 }], notes: new Uint8Array(0),
      vmcoreinfo: 'OSRELEASE=6.0.0\nPAGESIZE=4096\n', release: '6.0.0', nrCpus: 1, compression: 'zlib',
    });
    const r = new KdumpCompressedReader(file);
    try {
      expect(r.vmcoreinfo?.osrelease).toBe('6.0.0');
      expect(r.notes).toHaveLength(1);
      expect(r.readPage(3, new Uint8Array(PAGE_SIZE))).toBe('present');
    } finally {
      r.close();
    }
  });
});

describe('bitmaps and descriptor rank', () => {
  it('rank equals a reference popcount', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 600 }), fc.nat(6000), (bm, q) => {
        const rank = new BitmapRank(bm);
        let ref = 0;
        const limit = Math.min(q, bm.length * 8);
        for (let p = 0; p < limit; p++) if (bitmapTest(bm, p)) ref++;
        expect(rank.rank(q)).toBe(ref);
      }),
      { numRuns: 200 },
    );
  });

  it('written bitmaps and descriptor indexes match the ranges and pages', () => {
    const arbRanges = fc.array(fc.tuple(fc.nat(700), fc.integer({ min: 1, max: 60 })), { maxLength: 6 }).map((xs) => {
      const out: PfnRange[] = [];
      let at = 0;
      for (const [gap, len] of xs) {
        out.push({ startPfn: at + gap, endPfn: at + gap + len });
        at += gap + len;
      }
      return out;
    });
    let n = 0;
    fc.assert(
      fc.property(arbRanges, fc.array(fc.nat(3000), { maxLength: 30 }), fc.boolean(), (ranges, pfns, excludeZero) => {
        const maxPfn = Math.max(1, ...ranges.map((r) => r.endPfn));
        const m = new Map<number, Uint8Array>();
        for (const p of pfns) if (p < maxPfn && inRanges(p, ranges)) m.set(p, patternPage(p));
        const file = path.join(dir, `prop-${n++}.kdump`);
        writeKdumpCompressed(file, {
          source: new MapPageSource(m), maxPfn, ranges, notes: new Uint8Array(0), release: 'x', nrCpus: 0, compression: 'zlib', excludeZero,
        });
        const r = new KdumpCompressedReader(file);
        try {
          let rank = 0;
          const page = new Uint8Array(PAGE_SIZE);
          for (let p = 0; p < maxPfn; p++) {
            const inMemory = inRanges(p, ranges);
            const dumped = inMemory && (!excludeZero || m.has(p));
            expect(r.bits(p)).toEqual({ inMemory, dumped });
            if (dumped) expect(r.descriptorIndex(p)).toBe(rank++);
            const st = r.readPage(p, page);
            expect(st).toBe(dumped ? 'present' : inMemory ? 'excluded' : 'absent');
            if (m.has(p)) expect(Buffer.from(page).equals(m.get(p)!)).toBe(true);
          }
          expect(r.dumpedPages).toBe(rank);
        } finally {
          r.close();
          fs.rmSync(file);
        }
      }),
      { numRuns: 40 },
    );
  });
});
