// ELF vmcores at a dump level, written as makedumpfile -E -d N writes them:
// PT_LOADs split around runs of at least 256 left-out pages, shorter runs
// kept with their contents, left-out pages at a segment's end past p_filesz.
// The splitter is checked against makedumpfile's write_elf_pages_cyclic loop
// transcribed as it is (a model), and the written file reads back with the
// left-out pages reported as excluded.

import { afterAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as fc from 'fast-check';
import { PFN_EXCLUDED, filterElfLoads } from '../../src/dump/elf-filter.js';
import { ElfVmcoreReader } from '../../src/dump/elf-vmcore-reader.js';
import { layoutElfVmcore, writeElfVmcore, type ElfLoadSpec } from '../../src/dump/elf-vmcore-writer.js';
import { PT_LOAD } from '../../src/dump/elf.js';
import { MapPageSource, PAGE_SIZE } from '../../src/dump/page-source.js';
import { VmcoreFormatError } from '../../src/util/errors.js';
import type { PageStatus } from '../../src/dump/vmcore-reader.js';
import { PAGE_OFFSET, patternPage, sampleNotes, tempDir } from './vmcore-fixtures.js';

const dir = tempDir('elf-dump-level');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/**
 * makedumpfile's loop (write_elf_pages_cyclic / get_loads_dumpfile_cyclic),
 * one PT_LOAD at a time, page-aligned segments: the reference.
 */
function makedumpfileModel(load: ElfLoadSpec, dumpable: (pfn: number) => boolean): ElfLoadSpec[] {
  const out: ElfLoadSpec[] = [];
  const pfnStart = load.paddr / PAGE_SIZE;
  const pfnEnd = pfnStart + load.memsz / PAGE_SIZE;
  let paddr = load.paddr;
  let vaddr = load.vaddr;
  let memsz = 0;
  let filesz = 0;
  let numExcluded = 0;
  for (let pfn = pfnStart; pfn < pfnEnd; pfn++) {
    if (!dumpable(pfn)) {
      numExcluded++;
      memsz += PAGE_SIZE;
      continue;
    }
    if (numExcluded === 0) {
      memsz += PAGE_SIZE;
      filesz += PAGE_SIZE;
      continue;
    } else if (numExcluded < PFN_EXCLUDED) {
      memsz += PAGE_SIZE;
      filesz += PAGE_SIZE * numExcluded + PAGE_SIZE;
      numExcluded = 0;
      continue;
    }
    out.push({ paddr, vaddr, memsz, filesz });
    paddr += memsz;
    vaddr += BigInt(memsz);
    numExcluded = 0;
    memsz = PAGE_SIZE;
    filesz = PAGE_SIZE;
  }
  out.push({ paddr, vaddr, memsz, filesz });
  return out;
}

function bitmapOf(frames: Iterable<number>, maxPfn: number): Uint8Array {
  const b = new Uint8Array(Math.ceil(maxPfn / 8));
  for (const p of frames) b[p >>> 3]! |= 1 << (p & 7);
  return b;
}

const BASE = 0x100;
const LOAD: ElfLoadSpec = { paddr: BASE * PAGE_SIZE, vaddr: PAGE_OFFSET + BigInt(BASE * PAGE_SIZE), memsz: 2000 * PAGE_SIZE };

const PAGES = new Map<number, Uint8Array>();
for (let p = BASE; p < BASE + 2000; p++) PAGES.set(p, patternPage(p));

/** Every frame of LOAD non-zero, except the listed ones (absent: zero). */
function sourceWithout(zero: Set<number>): MapPageSource {
  const m = new Map<number, Uint8Array>();
  for (let p = BASE; p < BASE + 2000; p++) if (!zero.has(p)) m.set(p, PAGES.get(p)!);
  return new MapPageSource(m);
}

const range = (a: number, n: number): number[] => Array.from({ length: n }, (_, i) => a + i);

describe('splitting PT_LOADs as makedumpfile -E does', () => {
  it('a run of 255 left-out pages is kept, a run of 256 splits the segment, p_vaddr follows p_paddr', () => {
    const excluded = new Set([...range(BASE + 100, 255), ...range(BASE + 600, 256)]);
    const r = filterElfLoads([LOAD], sourceWithout(new Set()), { excluded: bitmapOf(excluded, BASE + 2000), excludeZero: false });
    expect(r.loads).toEqual([
      { paddr: LOAD.paddr, vaddr: LOAD.vaddr, memsz: 856 * PAGE_SIZE, filesz: 600 * PAGE_SIZE },
      { paddr: (BASE + 856) * PAGE_SIZE, vaddr: LOAD.vaddr + BigInt(856 * PAGE_SIZE), memsz: 1144 * PAGE_SIZE, filesz: 1144 * PAGE_SIZE },
    ]);
    expect(r.pagesLeftOut).toBe(256);
  });

  it('left-out pages at the start (256 or more) give a segment with nothing in the file; at the end they are past p_filesz', () => {
    const excluded = new Set([...range(BASE, 300), ...range(BASE + 1990, 10)]);
    const r = filterElfLoads([LOAD], sourceWithout(new Set()), { excluded: bitmapOf(excluded, BASE + 2000), excludeZero: false });
    expect(r.loads.map((l) => [l.paddr / PAGE_SIZE - BASE, l.memsz / PAGE_SIZE, (l.filesz ?? -1) / PAGE_SIZE])).toEqual([[0, 300, 0], [300, 1700, 1690]]);
    expect(r.pagesLeftOut).toBe(310);
  });

  it('a segment that keeps nothing is one PT_LOAD with p_filesz 0', () => {
    const r = filterElfLoads([LOAD], sourceWithout(new Set(range(BASE, 2000))), { excludeZero: true });
    expect(r.loads).toEqual([{ ...LOAD, filesz: 0 }]);
    expect(r.pagesLeftOut).toBe(2000);
  });

  it('zero pages (listed all-zero or absent) count as left out with level bit 1, and short zero runs are kept', () => {
    const zero = new Set([...range(BASE + 10, 5), ...range(BASE + 500, 400)]);
    const m = new Map<number, Uint8Array>();
    for (let p = BASE; p < BASE + 2000; p++) {
      if (!zero.has(p)) m.set(p, patternPage(p));
      else if (p % 2 === 0) m.set(p, new Uint8Array(PAGE_SIZE)); // listed, but zero
    }
    const r = filterElfLoads([LOAD], new MapPageSource(m), { excludeZero: true });
    expect(r.loads.map((l) => [l.paddr / PAGE_SIZE - BASE, l.memsz / PAGE_SIZE, (l.filesz ?? -1) / PAGE_SIZE])).toEqual([[0, 900, 500], [900, 1100, 1100]]);
  });

  it('property: the same PT_LOADs as makedumpfile\'s loop, for random left-out runs, zero pages and several segments', () => {
    const runs = fc.array(fc.tuple(fc.integer({ min: 0, max: 1999 }), fc.integer({ min: 1, max: 600 })), { maxLength: 8 });
    fc.assert(fc.property(runs, runs, fc.boolean(), (exRuns, zeroRuns, excludeZero) => {
      const excluded = new Set(exRuns.flatMap(([a, n]) => range(BASE + a, Math.min(n, 2000 - a))));
      const zero = new Set(zeroRuns.flatMap(([a, n]) => range(BASE + a, Math.min(n, 2000 - a))));
      const source = sourceWithout(zero);
      // Two PT_LOADs: the second one starts right after a hole.
      const loads: ElfLoadSpec[] = [
        { ...LOAD, memsz: 1200 * PAGE_SIZE },
        { paddr: (BASE + 1300) * PAGE_SIZE, vaddr: PAGE_OFFSET + BigInt((BASE + 1300) * PAGE_SIZE), memsz: 700 * PAGE_SIZE },
      ];
      const got = filterElfLoads(loads, source, { excluded: bitmapOf(excluded, BASE + 2000), excludeZero });
      const dumpable = (p: number): boolean => !excluded.has(p) && !(excludeZero && zero.has(p));
      expect(got.loads).toEqual(loads.flatMap((l) => makedumpfileModel(l, dumpable)));
      expect(got.pagesLeftOut).toBe(got.loads.reduce((n, l) => n + (l.memsz - (l.filesz ?? 0)) / PAGE_SIZE, 0));
    }), { numRuns: 200 });
  });
});

describe('writing an ELF vmcore at a dump level', () => {
  const { bytes: notes } = sampleNotes();

  it('the file holds exactly the kept pages with their contents; the reader reports the others as excluded', () => {
    const excluded = new Set([...range(BASE + 100, 255), ...range(BASE + 600, 300), ...range(BASE + 1900, 100)]);
    const out = path.join(dir, 'd16.elf');
    const r = writeElfVmcore(out, { notes, loads: [LOAD], source: sourceWithout(new Set()), dumpLevel: 16, excluded: bitmapOf(excluded, BASE + 2000) });
    expect(r.pagesLeftOut).toBe(400);
    expect(r.loads.length).toBe(2);
    const e = new ElfVmcoreReader(out);
    try {
      const loads = e.programHeaders.filter((p) => p.type === PT_LOAD);
      expect(loads.map((p) => [p.paddr, p.filesz, p.memsz])).toEqual([
        [BigInt(LOAD.paddr), 600n * 4096n, 900n * 4096n],
        [BigInt((BASE + 900) * PAGE_SIZE), 1000n * 4096n, 1100n * 4096n],
      ]);
      const buf = new Uint8Array(2000 * PAGE_SIZE);
      const status: PageStatus[] = [];
      e.readPages(BASE, 2000, buf, status);
      for (let i = 0; i < 2000; i++) {
        const p = BASE + i;
        const left = (p >= BASE + 600 && p < BASE + 900) || p >= BASE + 1900;
        expect(status[i], `frame ${p}`).toBe(left ? 'excluded' : 'present');
        // Short excluded runs are kept with their real contents, as makedumpfile keeps them.
        if (!left) expect(Buffer.from(buf.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE)).equals(Buffer.from(patternPage(p)))).toBe(true);
      }
    } finally {
      e.close();
    }
  });

  it('a segment with nothing in the file has p_offset 0 and takes no space', () => {
    const l = layoutElfVmcore(100, [{ ...LOAD, filesz: 0 }, { ...LOAD, paddr: LOAD.paddr + LOAD.memsz, filesz: PAGE_SIZE }]);
    expect(l.loadOffsets[0]).toBe(0);
    expect(l.fileSize).toBe(l.loadOffsets[1]! + PAGE_SIZE);
  });

  it('without a dump level the file is /proc/vmcore as is; level 0 too', () => {
    const src = sourceWithout(new Set(range(BASE, 1000)));
    const a = writeElfVmcore(path.join(dir, 'plain.elf'), { notes, loads: [LOAD], source: src });
    const b = writeElfVmcore(path.join(dir, 'd0.elf'), { notes, loads: [LOAD], source: src, dumpLevel: 0 });
    expect(a.loads).toEqual([LOAD]);
    expect(b.loads).toEqual([LOAD]);
    expect(fs.readFileSync(path.join(dir, 'plain.elf')).equals(fs.readFileSync(path.join(dir, 'd0.elf')))).toBe(true);
  });

  it('bad input: a level that needs struct pages without VMCOREINFO, excluded frames without a level, filesz beyond memsz, a bad level', () => {
    const src = sourceWithout(new Set());
    expect(() => writeElfVmcore(path.join(dir, 'x.elf'), { notes: new Uint8Array(0), loads: [LOAD], source: src, dumpLevel: 31 })).toThrow(VmcoreFormatError);
    expect(() => writeElfVmcore(path.join(dir, 'x.elf'), { notes, loads: [LOAD], source: src, excluded: new Uint8Array(1000) })).toThrow(/without a dump level/);
    expect(() => writeElfVmcore(path.join(dir, 'x.elf'), { notes, loads: [{ ...LOAD, filesz: LOAD.memsz + PAGE_SIZE }], source: src })).toThrow(/filesz/);
    expect(() => writeElfVmcore(path.join(dir, 'x.elf'), { notes, loads: [LOAD], source: src, dumpLevel: 32 })).toThrow(/dump level 32/);
    expect(fs.existsSync(path.join(dir, 'x.elf'))).toBe(false);
  });
});
