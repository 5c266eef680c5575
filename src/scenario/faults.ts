// The fault catalogue: each fault acts through the platform's own mechanisms
// (a device write, a CPU that cannot take an NMI, a different reservation)
// at a phase of the run. Phases are recognised from the trace as the run
// reaches them, so the kernel models know nothing about faults.

import type { Machine } from '../platform/machine.js';
import type { TraceEvent } from '../platform/trace.js';
import type { FirstKernel } from '../kernel/first-kernel.js';
import type { KexecImage } from '../kernel/kexec-file-load.js';
import { InputError } from '../util/errors.js';
import { size } from './build.js';
import type { Fault, FaultPhase } from './schema.js';
import { SEV_CMD_NAMES, SEV_RET_NAMES, sevReturnName } from '../platform/psp/sev-codes.js';
import { REG_DEV_TAB_BASE, REG_CMD_BUF_BASE, REG_EVENT_LOG_BASE, REG_EXCL_BASE, REG_EXCL_LIMIT } from '../platform/amd-iommu/registers.js';

/** Which trace event marks the start of each phase (before-panic is applied by the run loop directly). */
const PHASE_EVENT: Record<Exclude<FaultPhase, 'before-panic'>, (e: TraceEvent) => boolean> = {
  'nmi-shootdown': (e) => e.kind === 'step' && e.detail.startsWith('panic on CPU'),
  purgatory: (e) => e.kind === 'digest-ok',
  'crash-kernel-init': (e) => e.source === 'crash-kernel' && e.kind === 'step' && e.detail.startsWith('capture kernel'),
};

/** Faults that change the machine before anything boots. */
export function applyBootFaults(m: Machine, faults: readonly Fault[]): void {
  for (const f of faults) {
    if (f.kind === 'psp-command-fails' && f.phase === 'boot') pspCommandFails(m, f);
    if (f.kind !== 'cpu-ignores-nmi') continue;
    const cpu = m.cpus[f.cpu];
    if (cpu === undefined) throw new InputError(`Cannot inject cpu-ignores-nmi: CPU ${f.cpu} does not exist (the machine has ${m.cpus.length})`);
    cpu.nmiBlocked = true;
    m.trace.record(`cpu${cpu.id}`, 'fault', `fault injected: CPU ${cpu.id} has NMIs blocked and will not take the crash NMI`);
  }
}

/** The command line with the crashkernel-size fault applied. */
export function applyCmdlineFaults(cmdline: string, faults: readonly Fault[]): string {
  let out = cmdline;
  for (const f of faults) {
    if (f.kind !== 'crashkernel-size') continue;
    out = out.split(/\s+/).filter((w) => !w.startsWith('crashkernel=')).concat(`crashkernel=${f.size}`).join(' ');
  }
  return out;
}

/**
 * Arms the faults that strike at a phase: those of phase before-panic strike
 * now; the others when the trace shows their phase beginning.
 */
export function armPhaseFaults(m: Machine, k: FirstKernel, image: KexecImage, faults: readonly Fault[]): void {
  for (const f of faults) {
    let strike: (() => void) | undefined;
    if (f.kind === 'stray-dma') strike = () => strayDma(m, image, f);
    else if (f.kind === 'psp-command-fails') strike = () => pspCommandFails(m, f);
    else if (f.kind === 'iommu-torn-write') strike = () => iommuTornWrite(m, f);
    if (strike === undefined || !('phase' in f)) continue;
    if (f.phase === 'boot') continue; // armed by applyBootFaults
    if (f.phase === 'before-panic') {
      strike();
      continue;
    }
    const starts = PHASE_EVENT[f.phase];
    let done = false;
    const unsubscribe = m.trace.subscribe((e) => {
      if (done || !starts(e)) return;
      done = true;
      strike();
      unsubscribe();
    });
  }
  void k;
}

function pspCommandFails(m: Machine, f: Extract<Fault, { kind: 'psp-command-fails' }>): void {
  if (m.psp === undefined) throw new InputError('Cannot inject psp-command-fails: the machine has no PSP (machine.cpu.snp)');
  const cmd = Number(Object.entries(SEV_CMD_NAMES).find(([, n]) => n === f.command)![0]);
  const status = typeof f.status === 'number' ? f.status : Number(Object.entries(SEV_RET_NAMES).find(([, n]) => n === f.status)![0]);
  m.psp.firmware.failNext(cmd, status);
  m.trace.record('psp', 'fault', `fault injected (${f.phase}): the next ${f.command} fails with ${sevReturnName(status)} (0x${status.toString(16)})`, { cmd, status });
}

const TORN_REGISTERS: Readonly<Record<Extract<Fault, { kind: 'iommu-torn-write' }>['register'], number>> = {
  DevTabBase: REG_DEV_TAB_BASE, CmdBufBase: REG_CMD_BUF_BASE, EventLogBase: REG_EVENT_LOG_BASE,
  CompletionStoreBase: REG_EXCL_BASE, CompletionStoreLimit: REG_EXCL_LIMIT,
};

function iommuTornWrite(m: Machine, f: Extract<Fault, { kind: 'iommu-torn-write' }>): void {
  if (m.amdIommu === undefined) throw new InputError('Cannot inject iommu-torn-write: the machine has no AMD IOMMU (machine.iommu)');
  const offset = TORN_REGISTERS[f.register] + (f.half === 'high' ? 4 : 0);
  m.amdIommu.loseNextWrite(offset);
  m.trace.record(m.amdIommu.name, 'fault', `fault injected (${f.phase}): the ${f.half} half of the next ${f.register} write will be lost`, { offset });
}

function strayDma(m: Machine, image: KexecImage, f: Extract<Fault, { kind: 'stray-dma' }>): void {
  const offset = size(f.offset, 'faults.offset');
  let pa: number;
  let what: string;
  if (typeof f.target === 'string') {
    const seg = image.segments.find((x) => x.name === f.target);
    if (seg === undefined) throw new InputError(`Cannot inject stray-dma: kexec loaded no "${f.target}" segment`);
    pa = seg.pa + Math.min(offset, Math.max(0, seg.size - f.length));
    what = `the kexec ${f.target} segment`;
  } else {
    pa = size(f.target.pa, 'faults.target.pa') + offset;
    what = 'memory';
  }
  if (pa + f.length > m.dram.size) throw new InputError(`Cannot inject stray-dma: 0x${pa.toString(16)} (+${f.length}) is outside DRAM`);
  m.mc.write(pa, new Uint8Array(f.length).fill(0xcc), { kind: 'device', name: f.device });
  m.trace.record(f.device, 'fault', `fault injected (${f.phase}): stray DMA from ${f.device} writes ${f.length} bytes into ${what} at 0x${pa.toString(16)}`, { pa });
}
