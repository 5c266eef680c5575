// The run loop: boot the first kernel, run the workload, load the crash
// kernel, inject faults, panic, let the capture kernel save the dump, then
// ask the oracle. The verdict comes from what the models did, never from
// the scenario's own flags.

import { writeFileSync, renameSync } from 'node:fs';
import type { Machine } from '../platform/machine.js';
import { NS_PER_S } from '../platform/clock.js';
import { formatTimestamp } from '../kernel/dmesg.js';
import { FirstKernel } from '../kernel/first-kernel.js';
import { runWorkload } from '../kernel/workload.js';
import { kexecFileLoad, type KexecImage } from '../kernel/kexec-file-load.js';
import { panic } from '../kernel/panic.js';
import type { CrashKernel } from '../kernel/crash-kernel.js';
import { buildMachine, crashKernelProfile, duration, firstKernelConfig, size } from './build.js';
import { Oracle } from './oracle.js';
import { applyBootFaults, armPhaseFaults } from './faults.js';
import { kexecReboot } from '../kernel/kexec-reboot.js';
import { CHAIN_KINDS } from './chain.js';
import { explainCaptureIommu } from './explain.js';
import { kernelProfile } from '../kernel/profile.js';
import { checkExpectation } from './expect.js';
import { runGuestScenario } from './guest-run.js';
import type { Scenario, Verdict } from './schema.js';
import type { OracleReport, RunResult } from './result.js';
import type { Codec } from '../dump/codecs.js';

export interface RunOptions {
  /** Overrides the scenario's seed. */
  seed?: number;
  /** Write the vmcore here. */
  vmcorePath?: string;
  /** ELF (as /proc/vmcore, the default) or kdump-compressed (as makedumpfile -c -d 1). */
  vmcoreFormat?: 'elf' | 'kdump';
  /** Page codec of a kdump-compressed vmcore (default zlib). */
  vmcoreCompression?: Codec;
  /** makedumpfile's -d for a kdump-compressed vmcore (default 1). */
  dumpLevel?: number;
  /** Write the truth manifest here. */
  truthPath?: string;
  onProgress?: (done: number, total: number) => void;
  /** Lets tests and tools watch the machine (add write observers, read the trace) before anything runs. */
  onMachine?: (machine: Machine, kernel: FirstKernel) => void;
}

/** Trace kinds that belong in the causal chain besides kernel milestones. */
/** How long a run waits for a capture kernel that makes no progress before calling it hung. */
const HANG_WATCHDOG_NS = 60 * NS_PER_S;

export function runScenario(s: Scenario, opts: RunOptions = {}): RunResult {
  if (s.guest !== undefined) return runGuestScenario(s, opts);
  const seed = opts.seed ?? s.seed;
  const m = buildMachine(s, seed);
  let fk = new FirstKernel(m, firstKernelConfig(s, seed));
  /** Kernels that ran before the one that crashes (a kexec reboot), for the log. */
  const earlier: FirstKernel[] = [];
  let ck: CrashKernel | undefined;
  let crashStartNs: number | null = null;
  let oracle = new Oracle(m, fk);
  const chainExtra: string[] = [];
  applyBootFaults(m, s.faults);
  opts.onMachine?.(m, fk);
  let packetsAtHandoff = 0;
  const nicPackets = (): number => m.nics.reduce((n, x) => n + x.packetsReceived, 0);

  const finish = (verdict: Verdict, report: OracleReport | null, image?: KexecImage): RunResult => {
    if (ck !== undefined) chainExtra.unshift(...explainCaptureIommu(m, (ck as CrashKernel).cpu.id));
    const r = assemble(s, seed, m, [...earlier, fk], ck, verdict, report ?? oracle.nothingCaptured(), chainExtra, crashStartNs, image);
    oracle.release();
    // The result holds no reference to DRAM: let the next run reuse it, unless a caller is watching this machine.
    if (opts.onMachine === undefined) m.dram.dispose();
    if (oracle.taken) r.metrics.dmaPacketsAfterPanic = nicPackets() - packetsAtHandoff;
    return r;
  };

  const boot = fk.boot();
  if (!boot.ok) {
    chainExtra.push(`first kernel failed to boot: ${boot.reason}`);
    return finish('first-kernel-failed', null);
  }
  const bootedNs = m.clock.now;
  let workloadSeed = seed;
  if (s.kexecReboot !== undefined) {
    runWorkload(fk, { pages: s.workload.pages, seed });
    // kexec -e into another kernel, which is then the one that crashes.
    const base = firstKernelConfig(s, seed);
    const next = kexecReboot(fk, {
      ...base,
      profile: kernelProfile(s.kexecReboot.profile),
      cmdline: s.kexecReboot.cmdline ?? base.cmdline,
      seed: seed + 1,
    }, s.kexecReboot.guests);
    earlier.push(fk);
    fk = next;
    oracle = new Oracle(m, fk);
    const again = fk.boot();
    if (!again.ok) {
      chainExtra.push(`kexec'd kernel failed to boot: ${again.reason}`);
      return finish('first-kernel-failed', null);
    }
    workloadSeed = seed + 1;
  }

  if (!s.crashKernel.loaded) {
    // The kdump service never ran kexec -p: panic() finds no crash image and stops the machine.
    fk.step('no capture kernel loaded (kexec_crash_loaded reads 0)');
    runWorkload(fk, { pages: s.workload.pages, seed: workloadSeed });
    m.clock.advance(duration(s.panic.after, 'panic.after'));
    panic(fk, { cpu: Math.min(s.panic.cpu, m.cpus.length - 1), trigger: s.panic.trigger });
    chainExtra.push('panic: no crash kernel loaded, the machine halts with nothing saved');
    return finish('no-crash-kernel', null);
  }
  const load = kexecFileLoad(fk, {
    profile: crashKernelProfile(s),
    cmdline: s.crashKernel.cmdline,
    kernelBytes: size(s.crashKernel.kernelSize, 'crashKernel.kernelSize'),
    initrdBytes: size(s.crashKernel.initrdSize, 'crashKernel.initrdSize'),
    env: {
      ...(opts.vmcorePath === undefined ? {} : { vmcorePath: opts.vmcorePath }),
      ...(opts.vmcoreFormat === undefined ? {} : { vmcoreFormat: opts.vmcoreFormat }),
      ...(opts.vmcoreCompression === undefined ? {} : { vmcoreCompression: opts.vmcoreCompression }),
      ...(opts.dumpLevel === undefined ? {} : { dumpLevel: opts.dumpLevel }),
      ...(opts.onProgress === undefined ? {} : { onProgress: opts.onProgress }),
      minMemory: size(s.crashKernel.minMemory, 'crashKernel.minMemory'),
      onPageServed: oracle.onPageServed,
      onReuseOldMemory: oracle.onReuseOldMemory,
      onBoot: (k) => {
        ck = k;
        crashStartNs = m.clock.now;
      },
    },
  });
  if (!load.ok) {
    fk.step(`kexec -p refused: ${load.reason}`);
    for (const msg of load.messages) chainExtra.push(`kexec: ${msg}`);
    return finish('kexec-refused', null);
  }
  armPhaseFaults(m, fk, load.image, s.faults);

  // The kdump service loaded the capture kernel at boot; then the machine works until it crashes.
  const work = runWorkload(fk, { pages: s.workload.pages, seed: workloadSeed });
  // A kernel-mode fault in the workload is an oops, and with panic_on_oops (as kdump hosts run) the panic comes at once.
  if (work.oops === undefined) m.clock.advance(duration(s.panic.after, 'panic.after'));
  const panicSpec = work.oops === undefined
    ? { cpu: Math.min(s.panic.cpu, m.cpus.length - 1), trigger: s.panic.trigger }
    : { cpu: work.oops.cpu, trigger: 'oops' as const };
  panic(fk, panicSpec, {
    beforeHandoff: () => {
      oracle.snapshot();
      packetsAtHandoff = nicPackets();
    },
  });
  void bootedNs;

  const outcome = (ck as CrashKernel | undefined)?.outcome;
  if (outcome === undefined || outcome.state === 'booting') {
    // Purgatory spinning, or a CPU that triple-faulted: nothing more happens.
    m.clock.advance(HANG_WATCHDOG_NS);
    oracle.stop();
    chainExtra.push(`no progress for ${HANG_WATCHDOG_NS / NS_PER_S} s after the panic: the capture kernel never came up`);
    return finish('crash-kernel-hang', null, load.image);
  }
  oracle.stop();
  if (outcome.state === 'panicked') return finish('crash-kernel-panic', null, load.image);
  if (outcome.state === 'no-vmcore') return finish('no-dump', null, load.image);
  oracle.dumpLevel = outcome.state === 'saved' && outcome.file !== undefined ? Math.max(opts.dumpLevel ?? 1, 1) : 1;
  const report = oracle.compare(outcome.vmcore.record, outcome.vmcore.loads);
  if (oracle.pagesLeftOutByLevel > 0) chainExtra.push(`oracle: ${oracle.pagesLeftOutByLevel} pages left out as dump level ${oracle.dumpLevel} allows (their struct pages say free, cache or user)`);
  if (opts.truthPath !== undefined) {
    const tmp = opts.truthPath + '.part';
    writeFileSync(tmp, JSON.stringify(oracle.manifest(s.name, seed)) + '\n');
    renameSync(tmp, opts.truthPath);
  }
  const complete = report.pagesMissing === 0 && report.pagesWrong === 0 && report.pagesCiphertext === 0;
  chainExtra.push(`oracle: ${report.pagesCorrect} of ${report.pagesExpected} pages correct` +
    `${report.pagesChangedAfterPanic ? ` (${report.pagesChangedAfterPanic} changed by legitimate DMA after the panic)` : ''}` +
    `${report.pagesCiphertext ? `, ${report.pagesCiphertext} captured as ciphertext` : ''}` +
    `${report.pagesWrong ? `, ${report.pagesWrong} wrong` : ''}${report.pagesMissing ? `, ${report.pagesMissing} missing` : ''}`);
  return finish(complete ? 'dump-complete' : 'dump-partial', report, load.image);
}

function assemble(
  s: Scenario, seed: number, m: Machine, kernels: readonly FirstKernel[], ck: CrashKernel | undefined, verdict: Verdict,
  oracle: OracleReport, chainExtra: string[], crashStartNs: number | null, _image: KexecImage | undefined,
): RunResult {
  const trace = m.trace.events.filter((e) => CHAIN_KINDS.has(e.kind) || e.kind === 'jump' || e.kind === 'nmi' || e.kind === 'sipi' || e.kind === 'power-on');
  const chain = m.trace.events
    .filter((e) => CHAIN_KINDS.has(e.kind))
    .map((e) => `${formatTimestamp(e.t).trim()} ${e.source}: ${e.detail}`);
  chain.push(...chainExtra);
  const saved = ck?.outcome.state === 'saved' ? ck.outcome : undefined;
  const nic = m.nics[0];
  const panicEv = m.trace.events.find((e) => e.kind === 'step' && e.detail.startsWith('panic on CPU'));
  const result: RunResult = {
    kind: 'kdumpsim-run-result',
    scenario: s.name,
    seed,
    verdict,
    chain,
    // Every kernel that ran before the capture kernel (more than one after a kexec reboot).
    logs: { firstKernel: kernels.flatMap((k) => k.log.formatted()), crashKernel: ck?.log.formatted() ?? [] },
    oracle,
    metrics: {
      firstKernelBootedNs: m.trace.events.find((e) => e.kind === 'step' && e.detail.startsWith('first kernel'))?.t ?? 0,
      panicNs: panicEv?.t ?? 0,
      crashKernelStartNs: crashStartNs,
      vmcoreSavedNs: saved ? saved.vmcore.record.endNs : null,
      endNs: m.clock.now,
      eventsFired: m.clock.eventsFired,
      framesTouched: m.dram.framesPresent,
      dmaPacketsAfterPanic: 0,
      dmaPacketsDropped: nic?.dropped ?? 0,
    },
    vmcore: saved?.file ?? null,
    trace,
    input: s,
    expectation: null,
  };
  if (s.expect !== undefined) {
    const differences = checkExpectation(s.expect, result);
    result.expectation = { met: differences.length === 0, differences };
  }
  return result;
}
