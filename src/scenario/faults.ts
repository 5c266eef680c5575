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

/** Which trace event marks the start of each phase (before-panic is applied by the run loop directly). */
const PHASE_EVENT: Record<Exclude<FaultPhase, 'before-panic'>, (e: TraceEvent) => boolean> = {
  'nmi-shootdown': (e) => e.kind === 'step' && e.detail.startsWith('panic on CPU'),
  purgatory: (e) => e.kind === 'digest-ok',
  'crash-kernel-init': (e) => e.source === 'crash-kernel' && e.kind === 'step' && e.detail.startsWith('capture kernel'),
};

/** Faults that change the machine before anything boots. */
export function applyBootFaults(m: Machine, faults: readonly Fault[]): void {
  for (const f of faults) {
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
 * Arms the DMA faults: those of phase before-panic strike now; the others
 * strike when the trace shows their phase beginning.
 */
export function armDmaFaults(m: Machine, k: FirstKernel, image: KexecImage, faults: readonly Fault[]): void {
  for (const f of faults) {
    if (f.kind !== 'stray-dma') continue;
    if (f.phase === 'before-panic') {
      strayDma(m, image, f);
      continue;
    }
    const starts = PHASE_EVENT[f.phase];
    let done = false;
    const unsubscribe = m.trace.subscribe((e) => {
      if (done || !starts(e)) return;
      done = true;
      strayDma(m, image, f);
      unsubscribe();
    });
  }
  void k;
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
