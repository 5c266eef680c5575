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
import { makeDump, probeCommand, removeDump, requireTool, run, type InteropDump } from './tools.js';

const haveMakedumpfile = requireTool('makedumpfile', 'makedumpfile', () => probeCommand('makedumpfile', ['-v']));

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

/** Frames a kdump-compressed file describes (1st bitmap) but leaves out (2nd bitmap clear). */
function leftOut(file: string): Set<number> {
  const k = new KdumpCompressedReader(file);
  try {
    const out = new Set<number>();
    for (const s of spans) {
      for (let p = s.startPfn; p < s.endPfn; p++) {
        const b = k.bits(p);
        if (b.inMemory && !b.dumped) out.add(p);
      }
    }
    return out;
  } finally {
    k.close();
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
