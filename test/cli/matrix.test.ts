import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from '../helpers/cli.js';
import type { MatrixResult } from '../../src/scenario/matrix-result.js';

let dir = '';
const tiny = (expect64: string): string => `
name: cli-tiny
base:
  name: cli-tiny
  machine:
    preset: small-host
    devices: [{ kind: rx-nic, packetInterval: 1ms, ringEntries: 64 }]
  crashKernel: { initrdSize: 8M }
  workload: { pages: 300 }
  panic: { after: 50ms }
axes:
  - name: crashkernel
    values:
      64M:
        firstKernel: { crashkernel: 64M }
        expect: { verdict: ${expect64} }
      160M:
        firstKernel: { crashkernel: 160M }
        expect: { verdict: dump-complete }
  - name: profile
    path: crashKernel.profile
    values: [linux-6.1, linux-6.12]
`;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kdumpsim-cli-matrix-'));
  writeFileSync(join(dir, 'tiny.yaml'), tiny('crash-kernel-panic'));
  writeFileSync(join(dir, 'wrong.yaml'), tiny('dump-complete'));
  writeFileSync(join(dir, 'bad.yaml'), 'name: bad\nbase: nowhere.yaml\naxes:\n  - name: a\n    path: seed\n    values: [1]\n    colour: red\n');
  writeFileSync(join(dir, 'not-json.json'), '{ nope');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('kdumpsim matrix (end to end)', () => {
  it('matrix-plain.yaml: shards 1/3, 2/3, 3/3 merged equal the unsharded --jobs 2 run, byte for byte', () => {
    const whole = cli(['matrix', 'scenarios/matrix-plain.yaml', '--json', '--jobs', '2', '--quiet']);
    expect(whole.stderr).toBe('');
    expect(whole.status).toBe(0);
    const m = JSON.parse(whole.stdout) as MatrixResult;
    expect(m.total).toBe(18);
    expect(m.rows[0]).toBe('crashkernel');
    // The capture kernel runs out of memory in 64M; 160M and 256M save a complete dump.
    for (const c of m.cells) {
      expect(c.verdict).toBe(c.coords['crashkernel'] === '64M' ? 'crash-kernel-panic' : 'dump-complete');
      expect(c.expectationMet).toBe(true);
    }
    const files: string[] = [];
    for (const i of [1, 2, 3]) {
      const r = cli(['matrix', 'scenarios/matrix-plain.yaml', '--json', '--shard', `${i}/3`]);
      expect(r.status).toBe(0);
      // Not a terminal: one plain progress line per cell on stderr, none on stdout.
      expect(r.stderr.trim().split('\n')).toHaveLength(6);
      const f = join(dir, `shard-${i}.json`);
      writeFileSync(f, r.stdout);
      files.push(f);
    }
    const junit = join(dir, 'merged.xml');
    const merged = cli(['matrix', 'merge', ...files.reverse(), '--json', '--junit', junit]);
    expect(merged.stderr).toBe('');
    expect(merged.status).toBe(0);
    expect(merged.stdout).toBe(whole.stdout);
    const xml = readFileSync(junit, 'utf8');
    expect(xml.match(/<testsuite /g)).toHaveLength(1);
    expect(xml.match(/<testcase /g)).toHaveLength(18);
    expect(xml).toContain('failures="0"');
  });

  it('prints the support table and summary, exit 0 when every expectation holds', () => {
    const r = cli(['matrix', join(dir, 'tiny.yaml')]);
    expect(r.status).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('Matrix cli-tiny: 4 cells (crashkernel 2 × profile 2)');
    expect(r.stdout).toMatch(/profile: │ linux-6\.1\s+│ linux-6\.12/);
    const row64 = lines.find((l) => l.startsWith('64M'))!;
    expect(row64.match(/crash-kernel-panic/g)).toHaveLength(2);
    // Under each verdict, the decisive step.
    expect(lines[lines.indexOf(row64) + 1]).toMatch(/capture kernel has \d+ MiB, its initramfs needs 96 MiB: out of memory/);
    const row160 = lines.find((l) => l.startsWith('160M'))!;
    expect(lines[lines.indexOf(row160) + 1]).toMatch(/(\d+)\/\1 pages correct/);
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('4 cells: 2 dump-complete, 2 crash-kernel-panic; expectations met in 4 of 4');
    expect(r.stderr).toMatch(/^\[1\/4\] crashkernel=64M,profile=linux-6\.1: crash-kernel-panic$/m);
  });

  it('exit 1 when a cell\'s expectation fails: the table marks it, JUnit has failures, --html writes a page', () => {
    const junit = join(dir, 'wrong.xml');
    const html = join(dir, 'wrong.html');
    const r = cli(['matrix', join(dir, 'wrong.yaml'), '--junit', junit, '--html', html, '--quiet', '--jobs', '2']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('crash-kernel-panic ✗');
    expect(r.stdout).toContain('Expectations not met:');
    expect(r.stdout).toContain('crashkernel=64M,profile=linux-6.1: verdict: expected dump-complete, got crash-kernel-panic');
    expect(r.stdout).toMatch(/expectations met in 2 of 4$/m);
    const xml = readFileSync(junit, 'utf8');
    expect(xml).toMatch(/<testsuite name="cli-tiny" tests="4" failures="2"/);
    expect(xml.match(/<failure /g)).toHaveLength(2);
    expect(existsSync(html)).toBe(true);
    expect(readFileSync(html, 'utf8')).toMatch(/^<!doctype html>/i);
  });

  it('exit 2 on bad input: a broken matrix file (file:line:col), a bad --shard or --jobs, a bad or incomplete merge', () => {
    const bad = cli(['matrix', join(dir, 'bad.yaml')]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/bad\.yaml:7:5: axes\.0: unknown key "colour"/);
    expect(bad.stdout).toBe('');
    for (const args of [['--shard', '4/3'], ['--shard', 'x'], ['--jobs', '0']]) {
      const r = cli(['matrix', join(dir, 'tiny.yaml'), ...args]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/kdumpsim: Cannot use --(shard|jobs)/);
    }
    const notJson = cli(['matrix', 'merge', join(dir, 'not-json.json')]);
    expect(notJson.status).toBe(2);
    expect(notJson.stderr).toMatch(/Cannot read matrix result ".*not-json\.json": not JSON/);
    const one = cli(['matrix', join(dir, 'tiny.yaml'), '--shard', '1/2', '--json', '--quiet']);
    expect(one.status).toBe(0);
    writeFileSync(join(dir, 'half.json'), one.stdout);
    const gap = cli(['matrix', 'merge', join(dir, 'half.json')]);
    expect(gap.status).toBe(2);
    expect(gap.stderr).toMatch(/2 of 4 cells missing/);
    const missing = cli(['matrix', join(dir, 'absent.yaml')]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/Cannot read matrix ".*absent\.yaml"/);
  });
});
