// `kdumpsim doctor` from the command line: exit codes, JSON and HTML output,
// this machine, and a bundle on read-only storage left exactly as it was.
import { describe, expect, it } from 'vitest';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, ROOT } from '../helpers/cli.js';

const F10 = join(ROOT, 'test', 'fixtures', 'doctor', 'F10-no-reservation-ubuntu-range');
const F7 = join(ROOT, 'test', 'fixtures', 'doctor', 'F7-sev-off-in-bios');

function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else out.push(`${p} ${st.size} ${st.mtimeMs} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`);
    }
    out.push(`${d}/ ${statSync(d).mtimeMs}`);
  };
  walk(dir);
  return out;
}

describe('kdumpsim doctor', () => {
  it('a bundle that is not ready: exit 1, the fix line on stdout', () => {
    const r = cli(['doctor', F10]);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('Not ready');
    expect(r.stdout).toContain('crashkernel=192M');
  });

  it('a ready bundle: exit 0; --json parses and carries the evidence', () => {
    const r = cli(['doctor', F7, '--json']);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout) as { kind: string; readiness: string; model: { lines: { field: string; evidence: { file: string }[] }[] } };
    expect(j.kind).toBe('kdumpsim-doctor-report');
    expect(j.readiness).toBe('ready');
    expect(j.model.lines.find((l) => l.field === 'machine.cpu.memoryEncryption')?.evidence[0]?.file).toBe('commands/kernel-log');
  });

  it('--html writes a self-contained report', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kdumpsim-doctor-'));
    try {
      const r = cli(['doctor', F10, '--html', join(dir, 'r.html')]);
      expect(r.status).toBe(1);
      const html = readFileSync(join(dir, 'r.html'), 'utf8');
      expect(html).toContain("default-src 'none'");
      expect(html).toContain('crashkernel=192M');
      expect(html).not.toMatch(/<script/i);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('on a read-only copy of a bundle it changes nothing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kdumpsim-doctor-ro-'));
    const copy = join(dir, 'bundle');
    cpSync(F10, copy, { recursive: true });
    const makeMode = (mode: number): void => {
      const walk = (d: string): void => {
        for (const name of readdirSync(d)) {
          const p = join(d, name);
          if (statSync(p).isDirectory()) walk(p);
          chmodSync(p, statSync(p).isDirectory() ? mode | 0o111 : mode);
        }
        chmodSync(d, mode | 0o111);
      };
      walk(copy);
    };
    try {
      makeMode(0o444);
      const before = snapshot(copy);
      const r = cli(['doctor', copy, '--json']);
      expect(r.status).toBe(1);
      expect(snapshot(copy)).toEqual(before);
    } finally {
      makeMode(0o644);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('on this machine: completes, says what it read, exits 0 or 1 (never 2 for a missing optional file)', () => {
    const r = cli(['doctor', '--verbose'], { timeoutMs: 300_000 });
    expect([0, 1]).toContain(r.status);
    expect(r.stdout).toContain('What was read');
    expect(r.stdout).toMatch(/\d+ of \d+ sources read/);
    expect(r.stdout).toContain('/proc/cpuinfo');
  });

  it('--console adds a console capture to this machine\'s facts; with a bundle it is refused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kdumpsim-console-'));
    try {
      const log = join(dir, 'serial.log');
      writeFileSync(log, 'INFO [    0.006403] AMD-Vi: Copied DEV table from previous kernel.\nALERT [    0.115337] AMD-Vi: Completion-Wait loop timed out\n');
      const r = cli(['doctor', '--console', log, '--json'], { timeoutMs: 300_000 });
      expect([0, 1]).toContain(r.status);
      const j = JSON.parse(r.stdout) as { facts: { captureLog: { kind: string; evidence: { file: string; line: number } }[] } };
      expect(j.facts.captureLog.map((h) => `${h.kind} ${h.evidence.line}`)).toEqual(['amd-vi-kdump 1', 'completion-wait-timeout 2']);
      const refused = cli(['doctor', F10, '--console', log]);
      expect(refused.status).toBe(2);
      expect(refused.stderr).toContain('Cannot use --console with a bundle');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--collect writes a bundle that the doctor then reads', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kdumpsim-collect-'));
    try {
      const c = cli(['doctor', '--collect', join(dir, 'b.tar.gz')]);
      expect(c.status).toBe(0);
      expect(c.stdout).toMatch(/wrote .*b\.tar\.gz: \d+ of \d+ sources read/);
      const again = cli(['doctor', '--collect', join(dir, 'b.tar.gz')]);
      expect(again.status).toBe(2);
      const r = cli(['doctor', join(dir, 'b.tar.gz'), '--json'], { timeoutMs: 300_000 });
      expect([0, 1]).toContain(r.status);
      expect((JSON.parse(r.stdout) as { origin: string }).origin).toContain('b.tar.gz');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a bundle of garbage: could not tell (exit 2), each unreadable source named with its reason', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kdumpsim-garbage-'));
    try {
      writeFileSync(join(dir, 'MANIFEST.json'), '{"kdumpsim-bundle": 1}');
      mkdirSync(join(dir, 'proc'));
      writeFileSync(join(dir, 'proc', 'cpuinfo'), Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 131 + 7) % 256)));
      writeFileSync(join(dir, 'proc', 'cmdline'), 'garbage\n');
      const r = cli(['doctor', dir]);
      expect(r.status).toBe(2);
      expect(r.stdout).toContain('Could not tell');
      expect(r.stdout).toContain("/proc/cpuinfo: no 'vendor_id' line");
      expect(r.stdout).toMatch(/needed +commands\/kernel-log: missing/);
      expect(r.stdout).not.toContain('Changes that give a complete dump');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('bad input: a path that is no bundle exits 2 naming it', () => {
    const r = cli(['doctor', join(ROOT, 'package.json')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('package.json');
  });
});
