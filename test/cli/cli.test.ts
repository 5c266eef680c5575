import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { rmSync, writeFileSync, openSync, writeSync, closeSync, truncateSync, statSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, smallScenarioDir } from '../helpers/cli.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- JSON parsed from the CLI is checked field by field */
import { openVmcore } from '../../src/dump/vmcore-reader.js';
import { ElfVmcoreReader } from '../../src/dump/elf-vmcore-reader.js';

let dir = '';
beforeAll(() => {
  dir = smallScenarioDir('cli', { name: 'cli-small', seed: 3, nic: true });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('kdumpsim run', () => {
  it('plain-host: --json gives dump-complete with every page correct, and vmcore verify agrees', () => {
    const core = join(dir, 'plain.vmcore');
    const truth = join(dir, 'plain.truth');
    const r = cli(['run', 'scenarios/plain-host.yaml', '--json', '--vmcore', core, '--truth', truth]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout) as Record<string, any>;
    expect(j['verdict']).toBe('dump-complete');
    expect(Array.isArray(j['chain'])).toBe(true);
    expect(j['logs'].firstKernel.length).toBeGreaterThan(5);
    expect(j['logs'].crashKernel.length).toBeGreaterThan(5);
    for (const k of ['pagesExpected', 'pagesCaptured', 'pagesCorrect', 'pagesMissing', 'pagesCiphertext', 'pagesChangedAfterPanic']) expect(typeof j['oracle'][k]).toBe('number');
    expect(j['oracle'].pagesExpected).toBeGreaterThan(2_000_000);
    expect(j['oracle'].pagesCorrect).toBe(j['oracle'].pagesExpected);
    const v = cli(['vmcore', 'verify', core, '--truth', truth]);
    expect(v.status).toBe(0);
    expect(v.stdout).toMatch(/^OK: 2031328 of 2031328 pages/);
  });

  it('a vmcore changed after the fact fails verify with exit 1, naming the page', () => {
    const core = join(dir, 's.vmcore');
    const truth = join(dir, 's.truth');
    expect(cli(['run', join(dir, 'small.yaml'), '--vmcore', core, '--truth', truth]).status).toBe(0);
    const t = JSON.parse(readFileSync(truth, 'utf8')) as { pages: Record<string, string> };
    const pfn = Number(Object.keys(t.pages)[10]);
    const reader = openVmcore(core) as ElfVmcoreReader;
    const seg = reader.programHeaders.find((p) => p.type === 1 && Number(p.paddr) <= pfn * 4096 && pfn * 4096 < Number(p.paddr + p.memsz) && p.vaddr < 0xffffffff80000000n)!;
    reader.close();
    const fd = openSync(core, 'r+');
    writeSync(fd, Buffer.from('corrupted!'), 0, 10, Number(seg.offset) + (pfn * 4096 - Number(seg.paddr)) + 100);
    closeSync(fd);
    const v = cli(['vmcore', 'verify', core, '--truth', truth]);
    expect(v.status).toBe(1);
    expect(v.stdout).toContain(`page 0x${(pfn * 4096).toString(16)}: differs`);
  });

  it('--format kdump saves a kdump-compressed vmcore that verify and info read', () => {
    const core = join(dir, 's.kdump');
    const truth = join(dir, 's.kdump.truth');
    const r = cli(['run', join(dir, 'small.yaml'), '--vmcore', core, '--format', 'kdump', '--truth', truth]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('(kdump-compressed, ');
    expect(readFileSync(core).subarray(0, 8).toString('latin1')).toBe('KDUMP   ');
    expect(cli(['vmcore', 'verify', core, '--truth', truth]).status).toBe(0);
    const info = JSON.parse(cli(['vmcore', 'info', core, '--json']).stdout) as Record<string, unknown>;
    expect(info['format']).toBe('kdump');
    expect(cli(['run', join(dir, 'small.yaml'), '--format', 'zip']).status).toBe(2);
  });

  it('text output tells the story and exits 0 when the expectation holds', () => {
    const r = cli(['run', join(dir, 'small.yaml')]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Kernel panic - not syncing: sysrq triggered crash');
    expect(r.stdout).toContain('dump-complete');
    expect(r.stdout).toContain('expectation met');
  });

  it('an unmet expectation exits 1 and says what differed', () => {
    writeFileSync(join(dir, 'wrong.yaml'), readFileSync(join(dir, 'small.yaml'), 'utf8').replace('verdict: dump-complete', 'verdict: crash-kernel-panic'));
    const r = cli(['run', join(dir, 'wrong.yaml')]);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('verdict: expected crash-kernel-panic, got dump-complete');
  });

  it('a malformed scenario exits 2 with file:line:col', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'name: x\nmachine:\n  memory: lots\n');
    const r = cli(['run', bad]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${bad}:3:11: machine.memory`);
  });

  it('a missing scenario file exits 2', () => {
    const r = cli(['run', join(dir, 'nope.yaml')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('Cannot read scenario');
  });

  it('bad usage exits 2', () => {
    expect(cli(['run']).status).toBe(2);
    expect(cli(['frobnicate']).status).toBe(2);
    expect(cli(['run', 'scenarios/plain-host.yaml', '--seed', 'abc']).status).toBe(2);
  });

  it('--help teaches and exits 0', () => {
    const r = cli(['run', '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Exit status');
    expect(r.stdout).toContain('--vmcore');
  });
});

describe('kdumpsim demo', () => {
  it('tells the SNP host story: the locked IOMMU and why, then each fix, ending in a verified dump; exits 0', () => {
    const r = cli(['demo']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('1. The host panics while its SNP guests run');
    expect(r.stdout).toContain('ccp 0000:23:00.1: SEV-SNP firmware shutdown failed');
    expect(r.stdout).toMatch(/why: iommu0: \d+ writes to base registers ignored under SNP enforcement \(DevTabBase, /);
    expect(r.stdout).toMatch(/why: ioapic0: \d+ timer interrupts remapped through the old kernel's IRQ table to CPU 0 \(halted\)/);
    expect(r.stdout).toMatch(/AMD-Vi: Completion-Wait loop timed out {2}\(x\d+/);
    expect(r.stdout).toContain('Kernel panic - not syncing: timer doesn\'t work through Interrupt-remapped IO-APIC');
    expect(r.stdout).toContain('verdict: crash-kernel-panic: no dump');
    expect(r.stdout).toMatch(/2\. Fix[^\n]*\n[^\n]*SNP_SHUTDOWN_EX with IOMMU_SNP_SHUTDOWN succeeded[^\n]*\n\s+verdict: dump-complete: (\d+) of \1 pages correct/);
    expect(r.stdout).toContain('AMD-Vi: Reused DEV table from previous kernel.');
    expect(r.stdout).toMatch(/OK: (\d+) of \1 pages match the truth manifest/);
    // Then the doctor on a real SNP host's files: the same failure, read from its files and reproduced by the model.
    expect(r.stdout).toMatch(/4\. A real host[^\n]*\n\s+Not ready: a crash now would end in a capture kernel panic/);
    expect(r.stdout).toMatch(/on its console and in the model's run, commands\/console-log:7: .*Kernel panic - not syncing: timer doesn't work/);
    expect(r.stdout).toContain('read: machine.cpu.snp.guests = 2 [commands/snp-guests:1]');
    expect(r.stdout).toContain('fix, confirmed by a re-run: a 6.18 (or 6.17.8) capture kernel');
  });
});

describe('kdumpsim vmcore info/read on good and bad files', () => {
  it('info and read work on our vmcore', () => {
    const core = join(dir, 'i.vmcore');
    const truth = join(dir, 'i.truth');
    expect(cli(['run', join(dir, 'small.yaml'), '--vmcore', core, '--truth', truth]).status).toBe(0);
    const info = cli(['vmcore', 'info', core, '--json']);
    expect(info.status).toBe(0);
    const j = JSON.parse(info.stdout) as Record<string, any>;
    expect(j['osrelease']).toBe('6.1.0-kdumpsim');
    expect(j['cpus']).toHaveLength(2);
    const t = JSON.parse(readFileSync(truth, 'utf8')) as { pages: Record<string, string> };
    const pfn = Number(Object.keys(t.pages)[0]);
    const raw = cli(['vmcore', 'read', core, '--phys', `0x${(pfn * 4096).toString(16)}`, '--size', '4K']);
    expect(raw.status).toBe(0);
    expect(raw.stdoutBytes.length).toBe(4096);
    const hx = cli(['vmcore', 'read', core, '--phys', String(pfn * 4096), '--size', '32', '--hex']);
    expect(hx.stdout.split('\n')[0]).toMatch(new RegExp(`^0*${(pfn * 4096).toString(16)}  `));
  });

  it('garbage, truncated, empty and missing files exit 2 with the file named', () => {
    const garbage = join(dir, 'garbage');
    writeFileSync(garbage, Buffer.from('this is not a vmcore at all, just text'.repeat(50)));
    const empty = join(dir, 'empty');
    writeFileSync(empty, '');
    const core = join(dir, 't.vmcore');
    expect(cli(['run', join(dir, 'small.yaml'), '--vmcore', core]).status).toBe(0);
    truncateSync(core, Math.floor(statSync(core).size / 3));
    for (const f of [garbage, empty, core, join(dir, 'missing')]) {
      const r = cli(['vmcore', 'info', f]);
      expect(r.status, f).toBe(2);
      expect(r.stderr, f).toContain(f);
    }
  });

  it('read refuses unbounded sizes and absent addresses', () => {
    const core = join(dir, 'i.vmcore');
    expect(cli(['vmcore', 'read', core, '--phys', '0', '--size', '64G']).status).toBe(2);
    const r = cli(['vmcore', 'read', core, '--phys', '0x10', '--size', '16']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('not in any PT_LOAD');
  });
});
