// Split dumps on read: makedumpfile --split writes several kdump-compressed
// files, each a whole file with both bitmaps over every frame, marked split
// and holding the frames of its [start_pfn_64, end_pfn_64). Our reader takes
// the parts, in any order, as one dump: every page equals what the ELF
// vmcore holds, `vmcore verify` passes against the truth manifest, `vmcore
// info` lists the parts, `vmcore convert` joins them into one file; a missing
// part or a file that is not a part is refused with exit 2.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KdumpCompressedReader } from '../../src/dump/kdump-compressed-reader.js';
import { SplitKdumpReader } from '../../src/dump/split-kdump-reader.js';
import { openVmcore, openVmcoreFiles } from '../../src/dump/vmcore-reader.js';
import { verifyVmcore } from '../../src/dump/verify.js';
import { VmcoreFormatError } from '../../src/util/errors.js';
import { cli } from '../helpers/cli.js';
import { makeDump, manifestCounts, probeCommand, removeDump, requireTool, run, type InteropDump } from './tools.js';

const haveMakedumpfile = requireTool('makedumpfile', 'makedumpfile', () => probeCommand('makedumpfile', ['-v']));

let dump: InteropDump | undefined;
let parts: string[] = [];
let parts31: string[] = [];

function split(names: string[], args: string[]): string[] {
  const files = names.map((n) => path.join(dump!.dir, n));
  const m = run('makedumpfile', ['--split', ...args, dump!.vmcore, ...files], 120_000);
  if (m.status !== 0) throw new Error(`makedumpfile --split failed (${m.status}): ${m.stderr}`);
  return files;
}

beforeAll(() => {
  if (!haveMakedumpfile) return;
  dump = makeDump('split');
  // A small split block so the dumpable pages spread over all three parts.
  parts = split(['p1', 'p2', 'p3'], ['-c', '-d', '1', '--splitblock-size', '4']);
  parts31 = split(['q1', 'q2'], ['-l', '-d', '31']);
}, 180_000);
afterAll(() => removeDump(dump));

describe.skipIf(!haveMakedumpfile)('makedumpfile --split output read as one dump', () => {
  it('each part is marked split with its own frame range; the ranges tile the dump', () => {
    const ranges = parts.map((f) => {
      const k = new KdumpCompressedReader(f);
      try {
        expect(k.split).toBeDefined();
        return { ...k.split!, pages: k.dumpedPages, max: k.maxMapnr };
      } finally {
        k.close();
      }
    });
    expect(ranges[0]!.startPfn).toBe(0);
    expect(ranges[1]!.startPfn).toBe(ranges[0]!.endPfn);
    expect(ranges[2]!.startPfn).toBe(ranges[1]!.endPfn);
    expect(ranges[2]!.endPfn).toBe(ranges[2]!.max);
    for (const r of ranges) expect(r.pages).toBeGreaterThan(0); // every part holds data
  });

  it('every frame reads as the ELF vmcore has it, whatever order the parts come in', () => {
    const elf = openVmcore(dump!.vmcore);
    const sp = openVmcoreFiles([parts[2]!, parts[0]!, parts[1]!]);
    try {
      expect(sp).toBeInstanceOf(SplitKdumpReader);
      const a = new Uint8Array(4096);
      const b = new Uint8Array(4096);
      let checked = 0;
      for (const r of elf.physRanges()) {
        for (let p = r.start / 4096; p < r.end / 4096; p++) {
          const s1 = elf.readPage(p, a);
          const s2 = sp.readPage(p, b);
          if (s2 !== s1 || !Buffer.from(a).equals(Buffer.from(b))) throw new Error(`frame 0x${p.toString(16)}: ELF ${s1}, split ${s2}`);
          checked++;
        }
      }
      expect(checked).toBe(manifestCounts(dump!.truth).total); // every RAM frame the dump describes
      expect((sp as SplitKdumpReader).dumpedPages).toBe(checked);
    } finally {
      elf.close();
      sp.close();
    }
  });

  it('verify accepts the -d 31 parts at the level they record, and the -d 1 parts', () => {
    for (const files of [parts, parts31]) {
      const r = openVmcoreFiles(files);
      try {
        const rep = verifyVmcore(r, dump!.truth);
        expect(rep.mismatches).toBe(0);
        expect(rep.pagesChecked).toBeGreaterThan(0);
      } finally {
        r.close();
      }
    }
    const v = cli(['vmcore', 'verify', ...parts31, '--truth', dump!.truthPath]);
    expect(v.stderr).toBe('');
    expect(v.status).toBe(0);
    expect(v.stdout).toContain('left out as dump level 31 allows');
  });

  it('vmcore info lists the parts; vmcore convert joins them into one kdump file equal to a direct conversion', () => {
    const info = JSON.parse(cli(['vmcore', 'info', ...parts, '--json']).stdout) as { format: string; splitParts: { file: string; pages: number }[] };
    expect(info.format).toBe('kdump');
    expect(info.splitParts.map((p) => p.file)).toEqual(parts);
    const joined = path.join(dump!.dir, 'joined.kdump');
    const direct = path.join(dump!.dir, 'direct.kdump');
    const c = cli(['vmcore', 'convert', ...parts, joined, '--format', 'kdump', '--compress', 'lzo']);
    expect(c.stderr).toBe('');
    expect(c.status).toBe(0);
    expect(cli(['vmcore', 'convert', dump!.vmcore, direct, '--format', 'kdump', '--compress', 'lzo']).status).toBe(0);
    expect(fs.readFileSync(joined).equals(fs.readFileSync(direct))).toBe(true);
  });

  it('refuses a set with a part missing, or a file that is not a part, with exit 2', () => {
    expect(() => new SplitKdumpReader([parts[0]!, parts[2]!])).toThrow(VmcoreFormatError);
    expect(() => new SplitKdumpReader([parts[0]!, parts[1]!])).toThrow(/short of max_mapnr .*a part is missing/);
    const r = cli(['vmcore', 'info', parts[0]!, parts[2]!]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/frames 0x[0-9a-f]+ to 0x[0-9a-f]+ are in no part/);
    const whole = path.join(dump!.dir, 'whole.kdump');
    expect(run('makedumpfile', ['-c', '-d', '1', dump!.vmcore, whole], 120_000).status).toBe(0);
    const w = cli(['vmcore', 'verify', parts[0]!, whole, '--truth', dump!.truthPath]);
    expect(w.status).toBe(2);
    expect(w.stderr).toContain('does not mark it split');
  });
});
