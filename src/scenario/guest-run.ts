// The run loop for a scenario with a `guest:` section: one SEV-ES or SNP
// guest on a host whose hypervisor the platform models. The host launches
// the guest (with its firmware, for SEV-ES), the guest kernel boots and
// brings its APs up, runs a workload, loads a capture kernel, panics, and
// the capture kernel brings its APs up and reads the old kernel's memory
// through the guest key. The oracle compares every page the first kernel
// wrote with what the capture kernel read. With `guest.kexecReboot` the
// first kernel instead does a plain `kexec -e` into a second full kernel
// (machine_shutdown: APs parked or destroyed, SNP memory unshared), which
// brings every AP up again, runs its own workload and is the one that
// panics; the oracle then checks that kernel's pages. The verdict comes from what the
// models did: a refused load, a VM the guest had terminated, a dump.
//
// The oracle checks the capture kernel's reads; with a vmcore path they are
// also written as an ELF vmcore (guest-physical addresses).

import { createHash } from 'node:crypto';
import { Machine } from '../platform/machine.js';
import { MSR_AMD64_SYSCFG, SYSCFG_MFDM, SYSCFG_SNP_EN, SYSCFG_SNP_VMPL_EN } from '../platform/cpu/msr.js';
import { RMP_BOOKKEEPING_BYTES, RMP_ENTRY_BYTES } from '../platform/snp/rmp.js';
import { SevGuestVm } from '../platform/hv/sev-guest-vm.js';
import { guestFirmwareImage, installGuestFirmware, startApsIntoResetHold, type GuestFirmwareConfig } from '../platform/hv/guest-firmware.js';
import { formatTimestamp } from '../kernel/dmesg.js';
import { kernelProfile } from '../kernel/profile.js';
import { GuestKernel, seededPage, type BootResult, type DumpOutcome } from '../kernel/guest/guest-kernel.js';
import { snpKexecBegin, snpKexecFinish } from '../kernel/guest/snp-kexec.js';
import { CRASH_REGION_BYTES, FW_AP_CODE, FW_AP_GHCBS, FW_JUMP_TABLE_HIGH, FW_JUMP_TABLE_LOW, PAGE } from '../kernel/guest/layout.js';
import { writeGuestVmcore } from '../kernel/guest/guest-vmcore.js';
import { InputError } from '../util/errors.js';
import { hex } from '../util/hex.js';
import { size } from './build.js';
import { CHAIN_KINDS } from './chain.js';
import { checkExpectation } from './expect.js';
import type { Scenario, Verdict } from './schema.js';
import type { OracleReport, PageError, PageFate, PageFateRun, RunResult } from './result.js';
import type { RunOptions } from './run.js';

const MiB = 2 ** 20;
/** Where the guest's memory starts in host-physical memory (ours). */
export const GUEST_HOST_BASE = 16 * MiB;
export const GUEST_ASID = 1;

/** Trace kinds of a guest run that belong in the causal chain besides the kernels' steps. */
export const GUEST_CHAIN_KINDS: ReadonlySet<string> = new Set([
  ...CHAIN_KINDS, 'vcpu-state', 'vcpu-reset-refused', 'ap-park', 'ap-jump-table-vector', 'ap-jump-table-set', 'vm-terminated', 'vc', 'npf', 'vmrun-failed', 'mmio',
]);

/** `watch` sees the VM (and through it the machine) once it is launched: tests read the RMP and vCPUs after the run. */
export function runGuestScenario(s: Scenario, opts: RunOptions = {}, watch?: (vm: SevGuestVm) => void): RunResult {
  const g = s.guest;
  if (g === undefined) throw new InputError('Cannot run guest scenario: it has no guest section');
  const seed = opts.seed ?? s.seed;
  const hostBytes = size(s.machine.memory ?? 0, 'machine.memory');
  const guestBytes = size(g.memory, 'guest.memory');
  const jumpTable = g.jumpTableAbove4G ? FW_JUMP_TABLE_HIGH : FW_JUMP_TABLE_LOW;
  if (g.type === 'sev-es' && jumpTable + PAGE > guestBytes - CRASH_REGION_BYTES) {
    throw new InputError(`Cannot run guest scenario: the AP jump table at GPA ${hex(jumpTable)} needs guest.memory above ${hex(jumpTable + PAGE + CRASH_REGION_BYTES)}`);
  }
  if (GUEST_HOST_BASE + guestBytes + g.vcpus * PAGE > hostBytes) throw new InputError(`Cannot run guest scenario: guest.memory ${g.memory} does not fit in machine.memory ${s.machine.memory}`);

  const m = new Machine({
    memoryBytes: hostBytes, cpus: s.machine.cpus, seed, nics: [],
    memEncrypt: { state: 'enabled', cbit: s.machine.cpu.cbit },
    ...(g.type === 'snp' ? { rmp: rmpAtTop(hostBytes) } : {}),
  });
  if (g.type === 'snp') {
    // What the host kernel did before KVM launched SNP guests: MFDM, then SNP_EN on every CPU.
    for (const cpu of m.cpus) cpu.wrmsr(MSR_AMD64_SYSCFG, cpu.rdmsr(MSR_AMD64_SYSCFG) | SYSCFG_MFDM);
    for (const cpu of m.cpus) cpu.wrmsr(MSR_AMD64_SYSCFG, cpu.rdmsr(MSR_AMD64_SYSCFG) | SYSCFG_SNP_EN | SYSCFG_SNP_VMPL_EN);
    m.trace.record('host', 'step', 'SNP enabled (SYSCFG.SNP_EN), RMP covers all memory');
  }
  const fw: GuestFirmwareConfig = { apCodeGpa: FW_AP_CODE, apJumpTableGpa: jumpTable, apGhcbGpa: FW_AP_GHCBS };
  const vm = new SevGuestVm(m, {
    type: g.type, asid: GUEST_ASID, memoryBytes: guestBytes, hostBase: GUEST_HOST_BASE, vcpus: g.vcpus,
    ghcbVersions: { min: 1, max: g.ghcbVersion },
    ...(g.type === 'sev-es' ? { image: guestFirmwareImage(fw), apLaunchEntryGpa: FW_AP_CODE } : {}),
  });
  watch?.(vm);
  if (g.type === 'sev-es') {
    installGuestFirmware(vm, fw);
    startApsIntoResetHold(vm);
    m.trace.record('guest-firmware', 'step', `guest firmware parked ${g.vcpus - 1} APs in the AP reset hold; AP jump table at GPA ${hex(jumpTable)}`);
  }

  const crashBase = guestBytes - CRASH_REGION_BYTES;
  const first = new GuestKernel(vm, { profile: kernelProfile(g.profile), role: 'first', crashBase, seed });
  const crash = new GuestKernel(vm, { profile: kernelProfile(g.kexecProfile ?? g.profile), role: 'crash', crashBase, seed: seed + 1 });
  const chainExtra: string[] = [];
  let truth = new Map<number, Uint8Array>();
  const captured = new Map<number, Uint8Array>();
  let dump: DumpOutcome | undefined;
  let crashStartNs: number | null = null;
  let panicNs = 0;
  let vmcore: RunResult['vmcore'] = null;

  /** The kernels that ran, in order; the last is the one that panics. */
  const kernels = [first];
  const finish = (verdict: Verdict, report: OracleReport): RunResult => assemble(s, seed, m, kernels, crash, verdict, report, chainExtra, crashStartNs, panicNs, vmcore);
  // The SNP enc_kexec hooks (no-ops for SEV-ES and for kernels without them).
  const snpHooks = (k: GuestKernel): boolean => k.isSnp && k.profile.mechanisms.snpGuestKexec !== 'none';
  const begin = (k: GuestKernel): BootResult => snpHooks(k) ? snpKexecBegin(k) : { ok: true };
  const end = (k: GuestKernel): BootResult => snpHooks(k) ? snpKexecFinish(k) : { ok: true };

  const boot = first.boot();
  if (!boot.ok) {
    chainExtra.push(`guest kernel failed to boot: ${boot.reason}`);
    return finish('first-kernel-failed', oracleReport(truth, captured, vm, crashBase));
  }
  truth = first.runWorkload(g.workloadPages);
  let kernel = first;
  if (g.kexecReboot) {
    // kexec -l, then kexec -e into a second full kernel of the kexec profile.
    const next = new GuestKernel(vm, { profile: kernelProfile(g.kexecProfile ?? g.profile), role: 'kexec', crashBase, seed: seed + 2 });
    let nextBoot: BootResult | undefined;
    next.screenInfo = first.kexecScreenInfo();
    const l = first.kexecLoad(seededPage(seed ^ 0x6e78, 0), () => { nextBoot = next.boot(); }, 'reboot');
    if (!l.ok) {
      chainExtra.push(`kexec -l refused: ${l.reason} (-${l.errno})`);
      return finish('kexec-refused', oracleReport(truth, captured, vm, crashBase));
    }
    m.clock.advance(1_000_000);
    const e = first.kexecReboot({ begin, finish: end });
    kernels.push(next);
    const booted: BootResult = !e.ok ? e : nextBoot ?? { ok: false, reason: 'the BSP did not reach its entry' };
    if (!booted.ok) {
      const why = booted.reason;
      chainExtra.push(`kexec -e: the kexec'd kernel did not come up: ${why}`);
      return finish('first-kernel-failed', oracleReport(truth, captured, vm, crashBase));
    }
    const down = vm.vcpus.filter((v) => !next.online.has(v.index)).map((v) => v.index);
    chainExtra.push(`kexec -e: the kexec'd kernel runs with ${next.online.size} of ${vm.vcpus.length} CPUs online${down.length > 0 ? ` (CPU ${down.join(', ')} never came up)` : ''}`);
    kernel = next;
    truth = next.runWorkload(g.workloadPages);
  }
  const image = seededPage(seed ^ 0xc7a5, 0);
  crash.screenInfo = kernel.kexecScreenInfo();
  const load = kernel.kexecLoad(image, () => {
    crashStartNs = m.clock.now;
    const b = crash.boot();
    if (!b.ok) {
      chainExtra.push(`crash kernel failed to boot: ${b.reason}`);
      return;
    }
    dump = crash.readOldMemory(crashBase, (gpa, bytes) => captured.set(gpa, bytes));
  });
  if (!load.ok) {
    chainExtra.push(`kexec -p refused: ${load.reason} (-${load.errno})`);
    return finish('kexec-refused', oracleReport(truth, captured, vm, crashBase));
  }
  m.clock.advance(1_000_000);
  panicNs = m.clock.now;
  kernel.panic((k) => {
    const b = begin(k);
    return b.ok ? end(k) : b;
  });

  const report = oracleReport(truth, captured, vm, crashBase);
  if (vm.termination !== undefined) {
    chainExtra.push(`the guest was terminated (reason set ${vm.termination.set} code ${vm.termination.code}) ${crashStartNs === null ? 'before' : 'while'} the capture kernel ran: no dump`);
    return finish(crashStartNs === null ? 'first-kernel-failed' : 'crash-kernel-panic', report);
  }
  if (crashStartNs === null) {
    chainExtra.push('the capture kernel never started (the BSP did not reach its entry)');
    return finish('crash-kernel-hang', report);
  }
  if (dump === undefined || dump.state !== 'saved') {
    chainExtra.push(`capture kernel stopped: ${dump === undefined ? 'it did not boot' : dump.detail}`);
    return finish('crash-kernel-hang', report);
  }
  const down = vm.vcpus.filter((v) => !crash.online.has(v.index)).map((v) => v.index);
  if (down.length > 0) chainExtra.push(`capture kernel runs without CPU ${down.join(', ')}: ${down.length === 1 ? 'it' : 'they'} never came up`);
  chainExtra.push(`oracle: ${report.pagesCorrect} of ${report.pagesExpected} pages correct${report.pagesCiphertext ? `, ${report.pagesCiphertext} captured as ciphertext` : ''}${report.pagesWrong ? `, ${report.pagesWrong} wrong` : ''}${report.pagesMissing ? `, ${report.pagesMissing} missing` : ''}`);
  const complete = report.pagesMissing === 0 && report.pagesWrong === 0 && report.pagesCiphertext === 0;
  if (opts.vmcorePath !== undefined) {
    const w = writeGuestVmcore(opts.vmcorePath, { release: kernel.profile.release, crashTime: panicNs / 1e9, pages: captured, top: crashBase });
    vmcore = { path: opts.vmcorePath, format: 'elf', size: w.fileSize, bytesWritten: w.bytesWritten };
    chainExtra.push(`vmcore written to ${opts.vmcorePath} (ELF, ${w.pagesWritten} non-zero pages)`);
  }
  return finish(complete ? 'dump-complete' : 'dump-partial', report);
}

/** An RMP reserved at the top of host memory covering every frame (8 KiB aligned). */
function rmpAtTop(hostBytes: number): { base: number; end: number } {
  const bytes = RMP_BOOKKEEPING_BYTES + RMP_ENTRY_BYTES * (hostBytes / PAGE);
  const base = Math.floor((hostBytes - bytes - MiB) / (2 * MiB)) * 2 * MiB;
  return { base, end: base + bytes - 1 };
}

function digest(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/**
 * Ground truth against the capture: a page is correct when its bytes equal
 * what the workload wrote, ciphertext when they equal what the host reads
 * without the key, wrong otherwise, missing when never read. The page map
 * runs over host-physical memory; guest pages the first kernel did not
 * write are 'not-in-dump' (unchecked).
 */
function oracleReport(truth: ReadonlyMap<number, Uint8Array>, captured: ReadonlyMap<number, Uint8Array>, vm: SevGuestVm, crashBase: number): OracleReport {
  let correct = 0; let wrong = 0; let cipher = 0; let missing = 0;
  const errors: PageError[] = [];
  const fates = new Map<number, PageFate>();
  for (const [gpa, want] of [...truth].sort((a, b) => a[0] - b[0])) {
    const got = captured.get(gpa);
    const pfn = (vm.hostBase + gpa) / PAGE;
    let fate: PageFate;
    if (got === undefined) { missing++; fate = 'missing'; } else if (digest(got) === digest(want)) { correct++; fate = 'correct'; } else if (digest(got) === digest(vm.hostRead(gpa, PAGE))) { cipher++; fate = 'ciphertext'; } else { wrong++; fate = 'wrong'; }
    fates.set(pfn, fate);
    if (fate !== 'correct' && errors.length < 16 && captured.size > 0) errors.push({ pfn, pa: hex(pfn * PAGE), cause: `guest page ${hex(gpa)}: ${fate}` });
  }
  const top = vm.machine.dram.size / PAGE;
  const pageMap: PageFateRun[] = [];
  const push = (startPfn: number, endPfn: number, fate: PageFate): void => {
    if (endPfn <= startPfn) return;
    const last = pageMap.at(-1);
    if (last !== undefined && last.fate === fate && last.endPfn === startPfn) last.endPfn = endPfn;
    else pageMap.push({ startPfn, endPfn, fate });
  };
  let at = 0;
  for (const [pfn, fate] of [...fates].sort((a, b) => a[0] - b[0])) {
    push(at, pfn, 'not-in-dump');
    push(pfn, pfn + 1, fate);
    at = pfn + 1;
  }
  push(at, top, 'not-in-dump');
  void crashBase;
  return {
    pagesExpected: truth.size, pagesCaptured: captured.size, pagesCorrect: correct, pagesMissing: missing, pagesCiphertext: cipher,
    pagesChangedAfterPanic: 0, pagesWrong: wrong, errors, pageMap,
  };
}

function assemble(
  s: Scenario, seed: number, m: Machine, kernels: readonly GuestKernel[], crash: GuestKernel, verdict: Verdict, oracle: OracleReport,
  chainExtra: string[], crashStartNs: number | null, panicNs: number, vmcore: RunResult['vmcore'],
): RunResult {
  const chain = m.trace.events
    .filter((e) => GUEST_CHAIN_KINDS.has(e.kind))
    .map((e) => `${formatTimestamp(e.t).trim()} ${e.source}: ${e.detail}`);
  chain.push(...chainExtra);
  const result: RunResult = {
    kind: 'kdumpsim-run-result',
    scenario: s.name,
    seed,
    verdict,
    chain,
    logs: { firstKernel: kernels.flatMap((k) => k.log.formatted()), crashKernel: crash.log.formatted() },
    oracle,
    metrics: {
      firstKernelBootedNs: m.trace.events.find((e) => e.kind === 'step' && e.source === kernels[0]!.source && /CPUs online/.test(e.detail))?.t ?? 0,
      panicNs,
      crashKernelStartNs: crashStartNs,
      vmcoreSavedNs: null,
      endNs: m.clock.now,
      eventsFired: m.clock.eventsFired,
      framesTouched: m.dram.framesPresent,
      dmaPacketsAfterPanic: 0,
      dmaPacketsDropped: 0,
    },
    vmcore,
    // A guest run is small: its whole trace (GHCB exchanges, vCPU states, IPIs) is evidence.
    trace: [...m.trace.events],
    input: s,
    expectation: null,
  };
  if (s.expect !== undefined) {
    const differences = checkExpectation(s.expect, result);
    result.expectation = { met: differences.length === 0, differences };
  }
  return result;
}
