// `kdumpsim run --dump-level` (the capture kernel's makedumpfile -d) and
// `vmcore convert --threads`: a filtered kdump file that verify accepts at the
// level it records, ELF split as makedumpfile -E -d N splits it, from `run`
// and from `vmcore convert --format elf --dump-level N`, and threaded conversion
// giving the same bytes as the single-thread path.

import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cli, smallScenarioDir } from '../helpers/cli.js';
import { KdumpCompressedReader } from '../../src/dump/kdump-compressed-reader.js';

let dir = '';
beforeAll(() => {
  dir = smallScenarioDir('cli-pipeline', { name: 'cli-dump-pipeline', seed: 5 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('kdumpsim run --dump-level', () => {
  it('--format kdump --dump-level 31 leaves out free, cache and user pages; verify accepts it at the recorded level', () => {
    const core = join(dir, 'd31.kdump');
    const truth = join(dir, 'd31.truth');
    const r = cli(['run', join(dir, 'small.yaml'), '--vmcore', core, '--format', 'kdump', '--compress', 'lzo', '--dump-level', '31', '--truth', truth]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`vmcore: ${core} (kdump-compressed, `);
    const k = new KdumpCompressedReader(core);
    let dumped: number;
    try {
      expect(k.dumpLevel).toBe(31);
      expect(k.compression).toBe('lzo');
      dumped = k.dumpedPages;
    } finally {
      k.close();
    }
    const full = join(dir, 'd1.kdump');
    expect(cli(['run', join(dir, 'small.yaml'), '--vmcore', full, '--format', 'kdump', '--dump-level', '1']).status).toBe(0);
    const k1 = new KdumpCompressedReader(full);
    try {
      expect(k1.dumpLevel).toBe(1);
      expect(dumped).toBeLessThan(k1.dumpedPages / 2); // most of a small machine's memory is free
    } finally {
      k1.close();
    }
    const v = cli(['vmcore', 'verify', core, '--truth', truth]);
    expect(v.status).toBe(0);
    expect(v.stdout).toContain('left out as dump level 31 allows');
    expect(v.stdout).toMatch(/\d+ free/);
  });

  // The run's oracle knows the level: pages whose class it drops were allowed to be left out.
  it('the run\'s own verdict is dump-complete at --dump-level 31, and the chain counts what the level left out', () => {
    const r = cli(['run', join(dir, 'small.yaml'), '--vmcore', join(dir, 'v31.kdump'), '--format', 'kdump', '--dump-level', '31', '--json']);
    const j = JSON.parse(r.stdout) as { verdict: string; chain: string[] };
    expect(j.verdict).toBe('dump-complete');
    expect(j.chain).toContainEqual(expect.stringMatching(/oracle: \d+ pages left out as dump level 31 allows/));
  });

  it('--format elf --dump-level 31 splits the PT_LOADs as makedumpfile -E does; the verdict and verify hold at that level', () => {
    const core = join(dir, 'r31.elf');
    const truth = join(dir, 'r31.truth');
    const r = cli(['run', join(dir, 'small.yaml'), '--vmcore', core, '--format', 'elf', '--dump-level', '31', '--truth', truth, '--json']);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout) as { verdict: string; chain: string[] };
    expect(j.verdict).toBe('dump-complete');
    expect(j.chain).toContainEqual(expect.stringMatching(/oracle: \d+ pages left out as dump level 31 allows/));
    const full = join(dir, 'r1.elf');
    expect(cli(['run', join(dir, 'small.yaml'), '--vmcore', full, '--dump-level', '1']).status).toBe(0);
    const loads = (f: string): number => (JSON.parse(cli(['vmcore', 'info', f, '--json']).stdout) as { segments: unknown[] }).segments.length;
    expect(loads(core)).toBeGreaterThan(loads(full));
    expect(cli(['vmcore', 'verify', core, '--truth', truth, '--dump-level', '31']).status).toBe(0);
    expect(cli(['vmcore', 'verify', core, '--truth', truth]).status).toBe(1);
  });

  it('refuses a level without a file to filter, and bad levels, with exit 2', () => {
    const none = cli(['run', join(dir, 'small.yaml'), '--format', 'elf', '--dump-level', '2']);
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('Cannot use --dump-level 2 without --vmcore');
    expect(cli(['run', join(dir, 'small.yaml'), '--format', 'kdump', '--dump-level', '32']).status).toBe(2);
  });
});

describe('kdumpsim vmcore convert --format elf --dump-level', () => {
  it('writes a filtered ELF vmcore that verify accepts at the level given, and not without it', () => {
    const elf = join(dir, 'e-in.elf');
    const truth = join(dir, 'e-in.truth');
    expect(cli(['run', join(dir, 'small.yaml'), '--vmcore', elf, '--truth', truth]).status).toBe(0);
    const out = join(dir, 'e31.elf');
    const c = cli(['vmcore', 'convert', elf, out, '--format', 'elf', '--dump-level', '31']);
    expect(c.stderr).toBe('');
    expect(c.status).toBe(0);
    expect(c.stdout.startsWith(`${out}: ELF, `)).toBe(true);
    expect(c.stdout).toMatch(/\(\d+ pages left out past p_filesz; the level's filter: \d+ free/);
    const ok = cli(['vmcore', 'verify', out, '--truth', truth, '--dump-level', '31']);
    expect(ok.stdout).toMatch(/^OK: /);
    expect(ok.status).toBe(0);
    // An ELF file records no level: checked as unfiltered, the pages it left out fail.
    expect(cli(['vmcore', 'verify', out, '--truth', truth]).status).toBe(1);
    const info = cli(['vmcore', 'info', out]);
    expect(info.status).toBe(0);
    expect(info.stdout).toContain('Program headers:');
    expect(cli(['vmcore', 'convert', elf, join(dir, 'e32.elf'), '--format', 'elf', '--dump-level', '32']).status).toBe(2);
  });
});

describe('kdumpsim vmcore convert --threads', () => {
  it('writes the same file with 2 threads as with 1, at level 1 and 31', () => {
    const elf = join(dir, 'in.elf');
    expect(cli(['run', join(dir, 'small.yaml'), '--vmcore', elf]).status).toBe(0);
    for (const level of ['1', '31']) {
      const one = join(dir, `t1-${level}.kdump`);
      const two = join(dir, `t2-${level}.kdump`);
      const a = cli(['vmcore', 'convert', elf, one, '--format', 'kdump', '--dump-level', level]);
      const b = cli(['vmcore', 'convert', elf, two, '--format', 'kdump', '--dump-level', level, '--threads', '2']);
      expect(a.status).toBe(0);
      expect(b.stderr).toBe('');
      expect(b.status).toBe(0);
      expect(readFileSync(two).equals(readFileSync(one))).toBe(true);
    }
  });

  it('refuses --threads for ELF output and out-of-range counts with exit 2', () => {
    const elf = join(dir, 'in.elf');
    const r = cli(['vmcore', 'convert', elf, join(dir, 'z.elf'), '--format', 'elf', '--threads', '2']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('Cannot use --threads 2: it applies to --format kdump only');
    expect(cli(['vmcore', 'convert', elf, join(dir, 'z.kdump'), '--format', 'kdump', '--threads', '0']).status).toBe(2);
    expect(cli(['vmcore', 'convert', elf, join(dir, 'z.kdump'), '--format', 'kdump', '--threads', '65']).status).toBe(2);
    expect(cli(['vmcore', 'convert', elf, '--format', 'kdump']).status).toBe(2);
  });
});
