// Helpers for the interop tests: deciding whether a real tool is there,
// running the Python checkers, and making one small vmcore per test file.
//
// A missing tool fails the run when CI=true (the CI image must have it) and
// only skips the tool's tests elsewhere, saying what to install.

import { expect } from 'vitest';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { it } from 'vitest';
import { parseScenario } from '../../src/scenario/load.js';
import { runScenario } from '../../src/scenario/run.js';
import type { RunResult } from '../../src/scenario/result.js';
import { readTruthManifest, type TruthManifest } from '../../src/dump/truth-manifest.js';
import { kernelProfile } from '../../src/kernel/profile.js';
import { parseSize } from '../../src/util/units.js';
import { KdumpCompressedReader } from '../../src/dump/kdump-compressed-reader.js';

/** Debian's interpreter: the python3 first on PATH may be another one that cannot import kdumpfile or drgn. */
export const PYTHON = '/usr/bin/python3';
/** The Python checker scripts. */
export const PY_DIR = fileURLToPath(new URL('./py/', import.meta.url));
export const IN_CI = process.env['CI'] === 'true';

export const PAGE_OFFSET = 0xffff_8880_0000_0000n;
export const START_KERNEL_MAP = 0xffff_ffff_8000_0000n;

export interface ProbeResult {
  ok: boolean;
  /** What went wrong, for the failure or skip message. */
  detail: string;
}

function describeFailure(r: SpawnSyncReturns<string>): string {
  if (r.error) return r.error.message;
  const err = `${r.stderr ?? ''}`.trim().split('\n').slice(-1)[0] ?? '';
  return `exit ${r.status ?? r.signal}${err ? `: ${err}` : ''}`;
}

/** Probes a tool by running it; ok when it exits 0. */
export function probeCommand(cmd: string, args: readonly string[]): ProbeResult {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 20_000 });
  return r.status === 0 ? { ok: true, detail: '' } : { ok: false, detail: `${cmd} ${args.join(' ')}: ${describeFailure(r)}` };
}

/** Probes Debian's python3 for modules. */
export function probePythonModules(...modules: string[]): ProbeResult {
  return probeCommand(PYTHON, ['-B', '-c', `import ${modules.join(', ')}`]);
}

/**
 * Whether the tests that need `name` should run. When the probe fails, it
 * registers a test in the current suite that fails on CI (CI=true) and is
 * skipped elsewhere, naming the tool and `install`, and returns false so the
 * caller skips the tests that need it (`describe.skipIf(!run)`).
 */
export function requireTool(name: string, install: string, probe: () => ProbeResult): boolean {
  const r = probe();
  if (r.ok) return true;
  const msg = `${name} is not available (${r.detail}); install ${install}`;
  if (IN_CI) {
    it(`${name} is installed (required on CI)`, () => {
      throw new Error(msg);
    });
  } else {
    it.skip(`${msg}; skipped outside CI`, () => {});
  }
  return false;
}

/** Runs a checker from py/ with Debian's python3 and parses the one JSON object it prints. */
export function runPythonJson<T>(script: string, args: readonly string[]): T {
  const r = spawnSync(PYTHON, ['-B', path.join(PY_DIR, script), ...args], { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${script} ${args.join(' ')} failed: ${describeFailure(r)}\n${r.stderr}`);
  try {
    return JSON.parse(r.stdout) as T;
  } catch (e) {
    throw new Error(`${script} printed no JSON (${(e as Error).message}): ${r.stdout.slice(0, 500)}`, { cause: e });
  }
}

/** Runs a command and returns its result without throwing. */
export function run(cmd: string, args: readonly string[], timeoutMs = 60_000): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, timeout: timeoutMs });
}

/** Counts what a Python checker reports for a page-by-page comparison (truthlib.compare_pages). */
export interface PageCounts {
  nonZeroChecked: number;
  nonZeroEqual: number;
  changedAfterPanic: number;
  zeroChecked: number;
  zeroEqual: number;
  differ: number;
  missing: number;
  nonZeroMissing: number;
  problems: unknown[];
}

/** What py/check_kdumpfile.py prints. */
export interface KdumpfileReport {
  format: string;
  arch: string | null;
  utsRelease: string | null;
  utsReleaseError: string | null;
  vmcoreinfoOsrelease: string | null;
  phys: PageCounts;
  regions: (PageCounts & { start: number; end: number })[];
  outside: { checked: number; absent: number; present: number[]; quirkSkipped: number[] };
  directMap: { start: string; end: string; offset: string } | null;
  kv: {
    sampled: number;
    walkOk: number;
    readEqual: number;
    problems: unknown[];
    pgtRoot?: string;
    initUtsRelease?: string | null;
    beyondRam?: { va: string; error: string | null; message?: string };
  };
}

/** What py/check_drgn.py prints. */
export interface DrgnFault {
  error: string | null;
  message?: string;
  address?: string | null;
}

export interface DrgnReport {
  flags: string;
  isLinuxKernel: boolean;
  arch: string | null;
  phys: PageCounts;
  physGap?: DrgnFault & { pfn: number };
  virt16: { va: string; ok: boolean; equal?: boolean } & Partial<DrgnFault>;
  virt: PageCounts;
  virtGap?: DrgnFault & { va: string };
  beyondRam?: DrgnFault & { va: string };
  noVaddr?: { cleared: number; isLinuxKernel: boolean; virt: PageCounts };
}

/**
 * A small machine: 1 GiB, 2 CPUs, a NIC that keeps receiving by DMA after the
 * panic, a 160 MiB crash region. The vmcore is about 0.9 GB but sparse (some
 * 20 MB on disk) and takes well under a second to make.
 */
export const INTEROP_SCENARIO = `
name: interop
description: small machine for the real-tool interop tests
seed: 7
machine:
  memory: 1G
  cpus: 2
  devices:
    - kind: rx-nic
      name: nic0
      bdf: "00:03.0"
firstKernel:
  profile: linux-6.1
  cmdline: root=/dev/vda1 ro console=ttyS0 crashkernel=160M
crashKernel:
  profile: linux-6.1
  initrdSize: 8M
workload:
  pages: 3000
panic:
  after: 1s
  cpu: 1
  trigger: sysrq
`;

export interface InteropDump {
  dir: string;
  vmcore: string;
  truthPath: string;
  truth: TruthManifest;
  result: RunResult;
  cpus: number;
  /** Page frames of the machine's DRAM. */
  maxPfn: number;
  /** The first kernel's release (what OSRELEASE in VMCOREINFO must say). */
  release: string;
}

/** Runs the interop scenario into a fresh temp dir. Throws unless the simulator reports a complete dump. */
export function makeDump(prefix: string): InteropDump {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `kdumpsim-interop-${prefix}-`));
  const vmcore = path.join(dir, 'vmcore');
  const truthPath = path.join(dir, 'truth.json');
  const s = parseScenario(INTEROP_SCENARIO, 'interop.yaml');
  const result = runScenario(s, { vmcorePath: vmcore, truthPath });
  if (result.verdict !== 'dump-complete' || !fs.existsSync(vmcore)) {
    throw new Error(`interop scenario did not produce a complete dump: ${result.verdict}\n${result.chain.join('\n')}`);
  }
  const memory = parseSize(s.machine.memory ?? 0);
  if (memory === undefined) throw new Error(`bad machine.memory ${String(s.machine.memory)}`);
  return {
    dir,
    vmcore,
    truthPath,
    truth: readTruthManifest(truthPath),
    result,
    cpus: s.machine.cpus,
    maxPfn: memory / 4096,
    release: kernelProfile(s.firstKernel.profile).release,
  };
}

export function removeDump(d: InteropDump | undefined): void {
  if (d) fs.rmSync(d.dir, { recursive: true, force: true });
}

/** Non-zero pages the manifest lists, and all pages its ranges cover. */
export function manifestCounts(t: TruthManifest): { nonZero: number; total: number } {
  return { nonZero: Object.keys(t.pages).length, total: t.ranges.reduce((n, [a, b]) => n + (b - a), 0) };
}

/** Physical reads a checker made: every non-zero manifest page and every `zeroStride`-th zero page matched. */
export function expectPhysicalReadsMatch(
  phys: { problems: unknown[]; nonZeroChecked: number; nonZeroEqual: number; zeroChecked: number; zeroEqual: number; changedAfterPanic: number },
  truth: TruthManifest, changedAfterPanic: number, zeroStride: number,
): void {
  const { nonZero, total } = manifestCounts(truth);
  expect(phys.problems).toEqual([]);
  expect(phys.nonZeroChecked).toBe(nonZero);
  expect(phys.nonZeroEqual).toBe(nonZero);
  expect(phys.zeroChecked).toBe(Math.ceil((total - nonZero) / zeroStride));
  expect(phys.zeroEqual).toBe(phys.zeroChecked);
  expect(phys.changedAfterPanic).toBe(changedAfterPanic);
}

/** Frames a kdump-compressed file describes (1st bitmap) but leaves out (2nd bitmap clear), within `spans`. */
export function leftOutFrames(file: string, spans: readonly { startPfn: number; endPfn: number }[]): Set<number> {
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
