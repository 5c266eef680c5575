// Dump levels decided from the dumped kernel's own struct pages. makedumpfile
// 1.7.2 at -d 31 reads our first kernel's mem_map (buddy block heads, page
// cache, anonymous pages) from the ELF vmcore; the frames it leaves out of its
// kdump-compressed output (2nd bitmap clear, 1st set) must be exactly the
// frames our filter (src/dump/page-class.ts) leaves out, class by class, and
// `kdumpsim vmcore verify` must accept its output against the truth manifest,
// whose classes came from the same struct pages at the panic. A file that
// drops a page the manifest says was in use must fail.
//
// Debian's makedumpfile 1.7.2 has zlib (-c) and lzo (-l); snappy (-p) and
// zstd (-z) are disabled in that build, so those are not run here.
//
// ELF output at a dump level (makedumpfile -E -d N, and ours through
// `vmcore convert --format elf --dump-level N`): PT_LOADs are split around
// long runs of left-out pages and cut short by p_filesz; the pages each file
// holds (inside some [p_paddr, p_paddr + p_filesz)) must be the same set,
// verify must accept ours at that level, and libkdumpfile must read it.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KdumpCompressedReader } from '../../src/dump/kdump-compressed-reader.js';
import { writeKdumpCompressed } from '../../src/dump/kdump-compressed-writer.js';
import { ReaderPageSource, convertVmcore, excludedFrames } from '../../src/dump/convert.js';
import { openVmcore, type VmcoreReader } from '../../src/dump/vmcore-reader.js';
import { ReaderPhysMemory } from '../../src/dump/kernel-vm.js';
import { PAGE_CLASSES, classifyFrames, type PageClass } from '../../src/dump/page-class.js';
import { verifyVmcore } from '../../src/dump/verify.js';
import { encodeNotes } from '../../src/dump/elf-note.js';
import { vmcoreVerify } from '../../src/cli/vmcore-commands.js';
import { ElfVmcoreReader } from '../../src/dump/elf-vmcore-reader.js';
import { PT_LOAD } from '../../src/dump/elf.js';
import { PFN_EXCLUDED } from '../../src/dump/elf-filter.js';
import { vmcoreInfo } from '../../src/cli/vmcore-commands.js';
import { makeDump, probeCommand, probePythonModules, removeDump, requireTool, run, runPythonJson, type InteropDump, type PageCounts, leftOutFrames } from './tools.js';

const haveMakedumpfile = requireTool('makedumpfile', 'makedumpfile', () => probeCommand('makedumpfile', ['-v']));
const haveKdumpfile = requireTool('libkdumpfile (python module kdumpfile)', 'python3-libkdumpfile', () => probePythonModules('kdumpfile'));

let dump: InteropDump | undefined;
/** Our filter's decision at level 31 on the ELF vmcore: frame -> class. */
const ours = new Map<number, PageClass>();
const ourCounts: Partial<Record<PageClass, number>> = {};
let spans: { startPfn: number; endPfn: number }[] = [];

function withReader<T>(file: string, fn: (r: VmcoreReader) => T): T {
  const r = openVmcore(file);
  try {
    return fn(r);
  } finally {
    r.close();
  }
}

/** Frames a kdump-compressed file describes but leaves out. */
const leftOut = (file: string): Set<number> => leftOutFrames(file, spans);

/** Frames of the dump's spans an ELF file holds: inside [p_paddr, p_paddr + p_filesz) of some PT_LOAD. */
function heldByElf(file: string): Set<number> {
  const e = new ElfVmcoreReader(file);
  try {
    const held = new Set<number>();
    for (const p of e.programHeaders) {
      if (p.type !== PT_LOAD) continue;
      const a = Number(p.paddr / 4096n);
      const b = Number((p.paddr + p.filesz) / 4096n);
      for (let pfn = a; pfn < b; pfn++) if (spans.some((s) => pfn >= s.startPfn && pfn < s.endPfn)) held.add(pfn);
    }
    return held;
  } finally {
    e.close();
  }
}

/** The direct-map PT_LOADs of an ELF file as [paddr, filesz, memsz]. */
function directMapLoads(file: string): [bigint, bigint, bigint][] {
  const e = new ElfVmcoreReader(file);
  try {
    return e.programHeaders.filter((p) => p.type === PT_LOAD && p.vaddr < 0xffff_ffff_8000_0000n).map((p) => [p.paddr, p.filesz, p.memsz]);
  } finally {
    e.close();
  }
}

function countByClass(frames: Iterable<number>): Partial<Record<PageClass | 'unclassified', number>> {
  const c: Partial<Record<PageClass | 'unclassified', number>> = {};
  for (const p of frames) {
    const k = ours.get(p) ?? 'unclassified';
    c[k] = (c[k] ?? 0) + 1;
  }
  return c;
}

beforeAll(() => {
  dump = makeDump('dump-levels');
  withReader(dump.vmcore, (r) => {
    spans = r.physRanges().map((x) => ({ startPfn: Math.floor(x.start / 4096), endPfn: Math.ceil(x.end / 4096) }));
    const { bitmap } = excludedFrames(r, spans, dump!.maxPfn, 31);
    const classes = classifyFrames(r.vmcoreinfo!, new ReaderPhysMemory(r), r.file, spans);
    for (const cls of PAGE_CLASSES) {
      for (const [a, b] of classes[cls] ?? []) {
        for (let p = a; p < b; p++) {
          ours.set(p, cls);
          ourCounts[cls] = (ourCounts[cls] ?? 0) + 1;
          expect((bitmap[p >>> 3]! >> (p & 7)) & 1).toBe(1);
        }
      }
    }
  });
}, 120_000);
afterAll(() => removeDump(dump));

describe('our dump-level filter on the simulator\'s vmcore', () => {
  it('finds free, page-cache and user pages in the first kernel\'s mem_map, as the truth manifest recorded them at the panic', () => {
    // The workload's runs are anonymous, page cache (with and without private data) and slab;
    // everything memblock left free went to the buddy allocator.
    expect(ourCounts.free).toBeGreaterThan(150_000);
    expect(ourCounts.cache).toBeGreaterThan(0);
    expect(ourCounts['cache-private']).toBeGreaterThan(0);
    expect(ourCounts.user).toBeGreaterThan(0);
    expect(ourCounts.hwpoison ?? 0).toBe(0);
    // The same struct pages, read from the dump file, give the manifest's classes.
    withReader(dump!.vmcore, (r) => {
      expect(classifyFrames(r.vmcoreinfo!, new ReaderPhysMemory(r), r.file, dump!.truth.ranges.map(([a, b]) => ({ startPfn: a, endPfn: b }))))
        .toEqual(dump!.truth.classes);
    });
  });

  it('convert --dump-level 31 leaves out exactly those frames, and verify accepts the file at the level it records', () => {
    const out = path.join(dump!.dir, 'ours.d31');
    const res = withReader(dump!.vmcore, (r) => convertVmcore(r, out, 'kdump', undefined, 'zlib', 31));
    expect(res.excluded).toEqual(ourCounts);
    expect([...leftOut(out)].sort((a, b) => a - b)).toEqual([...ours.keys()].sort((a, b) => a - b));
    const rep = withReader(out, (r) => verifyVmcore(r, dump!.truth));
    expect(rep.dumpLevel).toBe(31);
    expect(rep.firstMismatches).toEqual([]);
    expect(rep.pagesExcluded).toEqual(ourCounts);
    // Checked as an unfiltered dump (level 0), every left-out page is reported with what it was.
    const strict = withReader(out, (r) => verifyVmcore(r, dump!.truth, { dumpLevel: 0, maxListed: 1_000_000 }));
    expect(strict.mismatches).toBe(ours.size);
    expect(new Set(strict.firstMismatches.map((m) => m.was))).toEqual(new Set(Object.keys(ourCounts)));
    // Level 2 keeps cache pages with private data, user pages and free pages.
    const l2 = path.join(dump!.dir, 'ours.d2');
    const r2 = withReader(dump!.vmcore, (r) => convertVmcore(r, l2, 'kdump', undefined, 'zlib', 2));
    expect(r2.excluded).toEqual({ cache: ourCounts.cache });
    expect(withReader(l2, (r) => verifyVmcore(r, dump!.truth)).mismatches).toBe(0);
  });
});

describe('the kdump writer\'s struct-page filter, a cycle of frames at a time', () => {
  it('cycles of 512 and 4096 frames (free blocks of 1024 frames straddle them) write the same file as one cycle and as the whole-dump bitmap', () => {
    // Free runs of 1024 frames and more: buddy blocks of order 10, each across a 512-frame cycle boundary,
    // so with 512-frame cycles the filter must carry a block into the next cycle.
    const free = dump!.truth.classes?.free ?? [];
    expect(free.some(([a, b]) => b - a >= 1024)).toBe(true);
    const files = withReader(dump!.vmcore, (r) => {
      const base = {
        source: new ReaderPageSource(r), maxPfn: dump!.maxPfn, ranges: spans, notes: encodeNotes(r.notes), release: dump!.release,
        nrCpus: 2, compression: 'zlib' as const, dumpLevel: 31,
      };
      const out: Buffer[] = [];
      const whole = excludedFrames(r, spans, dump!.maxPfn, 31).bitmap;
      for (const [name, extra] of [['bitmap', { excluded: whole }], ['default', {}], ['c512', { cyclePfns: 512 }], ['c4096', { cyclePfns: 4096 }]] as const) {
        const f = path.join(dump!.dir, `cyc-${name}.kdump`);
        const res = writeKdumpCompressed(f, { ...base, ...extra });
        if (name !== 'bitmap') expect(res.excludedByClass).toEqual(ourCounts);
        out.push(fs.readFileSync(f));
      }
      return out;
    });
    for (const f of files.slice(1)) expect(f.equals(files[0]!)).toBe(true);
  });
});

describe.skipIf(!haveMakedumpfile)('makedumpfile -d 31 on the simulator\'s vmcore', () => {
  const outputs = new Map<string, string>();
  function makedumpfile(flag: string): string {
    const have = outputs.get(flag);
    if (have !== undefined) return have;
    const out = path.join(dump!.dir, `mdf${flag}.d31`);
    const r = run('makedumpfile', [flag, '-d', '31', dump!.vmcore, out]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    outputs.set(flag, out);
    return out;
  }

  for (const [flag, codec] of [['-c', 'zlib'], ['-l', 'lzo']] as const) {
    it(`${flag} (${codec}) leaves out exactly the frames our filter does, class by class`, () => {
      const mdf = leftOut(makedumpfile(flag));
      const onlyMdf = [...mdf].filter((p) => !ours.has(p));
      const onlyOurs = [...ours.keys()].filter((p) => !mdf.has(p));
      expect(onlyMdf.slice(0, 10)).toEqual([]);
      expect(onlyOurs.slice(0, 10)).toEqual([]);
      expect(countByClass(mdf)).toEqual(ourCounts);
      // And the header records the level it used.
      const k = new KdumpCompressedReader(makedumpfile(flag));
      expect(k.dumpLevel).toBe(31);
      k.close();
    });

    it(`kdumpsim vmcore verify accepts makedumpfile ${flag} -d 31 output against the truth manifest`, () => {
      const out = makedumpfile(flag);
      const rep = withReader(out, (r) => verifyVmcore(r, dump!.truth));
      expect(rep.firstMismatches).toEqual([]);
      expect(rep.pagesExcluded).toEqual(ourCounts);
      expect(rep.pagesEqual + ours.size).toBe(rep.pagesChecked);
      const cli = vmcoreVerify(out, dump!.truthPath, false);
      expect(cli.ok).toBe(true);
      expect(cli.text).toMatch(/^OK: /);
      expect(cli.text).toContain(`left out as dump level 31 allows: ${ourCounts.free} free`);
    });
  }

  it('a file that drops an in-use page as if it were zero fails verify, naming the page', () => {
    const src = makedumpfile('-c');
    // A non-zero page no class covers (kernel data): the tamperer claims it was zero.
    const victim = Number(Object.keys(dump!.truth.pages).find((k) => !ours.has(Number(k)) && dump!.truth.alternatives[k] === undefined));
    expect(Number.isInteger(victim)).toBe(true);
    const tampered = path.join(dump!.dir, 'tampered.d31');
    withReader(src, (r) => {
      const k = r as KdumpCompressedReader;
      const inner = new ReaderPageSource(r);
      const excluded = new Uint8Array(Math.ceil(k.maxMapnr / 8));
      for (const p of leftOut(src)) excluded[p >>> 3]! |= 1 << (p & 7);
      writeKdumpCompressed(tampered, {
        source: {
          presentFrames: (a, b) => inner.presentFrames(a, b),
          readFrame: (pfn, dst) => (pfn === victim ? dst.fill(0, 0, 4096) : inner.readFrame(pfn, dst)),
        },
        maxPfn: k.maxMapnr,
        ranges: spans,
        notes: encodeNotes(r.notes),
        release: k.release,
        nrCpus: k.nrCpus,
        compression: 'zlib',
        excluded,
        excludeZero: true,
        dumpLevel: 31,
      });
    });
    const rep = withReader(tampered, (r) => verifyVmcore(r, dump!.truth));
    expect(rep.mismatches).toBe(1);
    expect(rep.firstMismatches[0]).toMatchObject({ pfn: victim, problem: 'excluded', was: 'in use' });
    // The genuinely zero pages it also dropped are fine at a level with bit 1.
    expect(rep.pagesExcluded.zero).toBeGreaterThan(0);
    const cli = vmcoreVerify(tampered, dump!.truthPath, false);
    expect(cli.ok).toBe(false);
    expect(cli.text).toContain(`page 0x${(victim * 4096).toString(16)}: excluded (the page was in use, which dump level 31 keeps)`);
  });
});

describe('ELF output at dump levels (makedumpfile -E -d N)', () => {
  const ourElf = new Map<number, string>();
  function oursAt(level: number): string {
    const have = ourElf.get(level);
    if (have !== undefined) return have;
    const out = path.join(dump!.dir, `ours.elf.d${level}`);
    withReader(dump!.vmcore, (r) => convertVmcore(r, out, 'elf', undefined, 'zlib', level));
    ourElf.set(level, out);
    return out;
  }
  const allFrames = (): number[] => spans.flatMap((s) => Array.from({ length: s.endPfn - s.startPfn }, (_, i) => s.startPfn + i));

  it('convert --format elf --dump-level 31 leaves out only frames the level drops, keeping short runs as makedumpfile does', () => {
    const file = oursAt(31);
    const held = heldByElf(file);
    const zero = (pfn: number): boolean => dump!.truth.pages[pfn] === undefined;
    const leftOut = allFrames().filter((p) => !held.has(p));
    expect(leftOut.length).toBeGreaterThan(200_000);
    // Every frame left out is one level 31 drops: of an excluded class, or zero.
    expect(leftOut.filter((p) => !ours.has(p) && !zero(p)).slice(0, 10)).toEqual([]);
    // Frames kept although the level drops them sit in runs shorter than PFN_EXCLUDED before a kept frame.
    const droppable = (p: number): boolean => ours.has(p) || zero(p);
    for (const p of allFrames().filter((x) => held.has(x) && droppable(x)).slice(0, 2000)) {
      let q = p;
      while (droppable(q) && held.has(q)) q++;
      expect(held.has(q) && !droppable(q), `frame ${p} is kept but no kept frame follows its run`).toBe(true);
      let start = p;
      while (start - 1 >= 0 && droppable(start - 1) && held.has(start - 1)) start--;
      expect(q - start).toBeLessThan(PFN_EXCLUDED);
    }
    // The CLI's verify at the level: every page in the file equals the manifest, every one left out was allowed to be.
    const rep = withReader(file, (r) => verifyVmcore(r, dump!.truth, { dumpLevel: 31 }));
    expect(rep.firstMismatches).toEqual([]);
    expect(rep.pagesEqual + leftOut.length).toBe(rep.pagesChecked);
    const cli = vmcoreVerify(file, dump!.truthPath, false, 31);
    expect(cli.ok).toBe(true);
    expect(cli.text).toMatch(/left out as dump level 31 allows: \d+ free/);
    // Checked as an unfiltered dump (an ELF records no level), the pages left out fail.
    const strict = withReader(file, (r) => verifyVmcore(r, dump!.truth));
    expect(strict.mismatches).toBe(leftOut.length);
    // vmcore info shows the split PT_LOADs, p_filesz short of p_memsz.
    const info = JSON.parse(vmcoreInfo(file, true)) as { segments: { type: string; filesz: string; memsz: string }[] };
    const loads = info.segments.filter((x) => x.type === 'LOAD');
    expect(loads.length).toBeGreaterThan(2);
    expect(loads.some((x) => BigInt(x.filesz) < BigInt(x.memsz))).toBe(true);
    expect(vmcoreInfo(file, false)).toMatch(/LOAD +0x0+ 0x0*100000 0xffff888000100000 0x0000000000 0x0000f00000/);
  });

  it('level 1 leaves out only long zero runs; level 0 is /proc/vmcore as is', () => {
    const held1 = heldByElf(oursAt(1));
    const left1 = allFrames().filter((p) => !held1.has(p));
    expect(left1.length).toBeGreaterThan(0);
    expect(left1.filter((p) => dump!.truth.pages[p] !== undefined)).toEqual([]);
    expect(withReader(oursAt(1), (r) => verifyVmcore(r, dump!.truth, { dumpLevel: 1 })).mismatches).toBe(0);
    expect(heldByElf(oursAt(0)).size).toBe(allFrames().length);
  });

  describe.skipIf(!haveMakedumpfile)('against makedumpfile -E', () => {
    for (const level of [1, 16, 31]) {
      it(`-d ${level}: makedumpfile's file and ours hold the same pages, in the same direct-map PT_LOADs`, () => {
        const mdf = path.join(dump!.dir, `mdf.elf.d${level}`);
        const r = run('makedumpfile', ['-E', '-d', String(level), dump!.vmcore, mdf]);
        expect(r.status, r.stdout + r.stderr).toBe(0);
        const theirs = heldByElf(mdf);
        const mine = heldByElf(oursAt(level));
        expect(theirs.size).toBeLessThan(allFrames().length);
        expect([...theirs].filter((p) => !mine.has(p)).slice(0, 10)).toEqual([]);
        expect([...mine].filter((p) => !theirs.has(p)).slice(0, 10)).toEqual([]);
        expect(mine.size).toBe(theirs.size);
        expect(directMapLoads(oursAt(level))).toEqual(directMapLoads(mdf));
        // And verify accepts makedumpfile's file at the level too.
        expect(withReader(mdf, (x) => verifyVmcore(x, dump!.truth, { dumpLevel: level })).firstMismatches).toEqual([]);
      });
    }
  });

  describe.skipIf(!haveKdumpfile)('libkdumpfile', () => {
    it('reads every page our -d 31 ELF holds as the manifest says, and no page it left out', () => {
      const rep = runPythonJson<{ format: string; present: PageCounts; leftOut: { checked: number; noData: number; quirkZero: number; readable: number; problems: unknown[] } }>(
        'check_kdumpfile_filtered.py', [oursAt(31), dump!.truthPath],
      );
      expect(rep.format).toBe('elf');
      expect(rep.present.problems).toEqual([]);
      expect(rep.present.differ).toBe(0);
      expect(rep.present.missing).toBe(0);
      expect(rep.present.nonZeroEqual).toBe(rep.present.nonZeroChecked);
      expect(rep.present.zeroEqual).toBe(rep.present.zeroChecked);
      expect(rep.present.nonZeroChecked).toBeGreaterThan(1000);
      expect(rep.leftOut.problems).toEqual([]);
      expect(rep.leftOut.readable).toBe(0);
      expect(rep.leftOut.checked).toBe(allFrames().length - heldByElf(oursAt(31)).size);
      // libkdumpfile 0.5.1 reads the page before a PT_LOAD's start as zeros: one per split at most.
      expect(rep.leftOut.quirkZero).toBeLessThan(directMapLoads(oursAt(31)).length);
      expect(rep.leftOut.noData + rep.leftOut.quirkZero).toBe(rep.leftOut.checked);
    });
  });
});
