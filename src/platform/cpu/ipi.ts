// Inter-processor interrupts as the local APIC delivers them: INIT parks a CPU
// in wait-for-SIPI, a SIPI starts it at vector << 12, an NMI runs the handler
// of whatever kernel owns the CPU (and is held off in wait-for-SIPI).

import type { Trace } from '../trace.js';
import type { Cpu } from './cpu.js';
import type { EntryPoints } from '../entry-points.js';

export function deliverInit(cpu: Cpu, trace: Trace): void {
  trace.record(`cpu${cpu.id}`, 'init', `INIT: CPU ${cpu.id} enters wait-for-SIPI`);
  cpu.state = 'wait-for-sipi';
  cpu.nmiHandler = undefined;
}

/** A SIPI starts a CPU waiting for one at physical address vector << 12. */
export function deliverSipi(cpu: Cpu, vector: number, code: EntryPoints, trace: Trace): void {
  if (cpu.state !== 'wait-for-sipi') {
    trace.record(`cpu${cpu.id}`, 'sipi-ignored', `SIPI ignored: CPU ${cpu.id} is ${cpu.state}`);
    return;
  }
  const pa = (vector & 0xff) * 4096;
  trace.record(`cpu${cpu.id}`, 'sipi', `SIPI vector 0x${vector.toString(16)}: CPU ${cpu.id} starts at 0x${pa.toString(16)}`, { pa });
  cpu.state = 'running';
  code.execute(cpu, pa);
}

/** Returns true when the NMI was taken (the handler ran). */
export function deliverNmi(cpu: Cpu, trace: Trace): boolean {
  if (cpu.state === 'wait-for-sipi' || cpu.state === 'shutdown' || cpu.nmiBlocked) {
    cpu.nmisLatched++;
    trace.record(`cpu${cpu.id}`, 'nmi-blocked', `NMI not taken: CPU ${cpu.id} ${cpu.nmiBlocked ? 'has NMIs blocked' : `is ${cpu.state}`}`);
    return false;
  }
  trace.record(`cpu${cpu.id}`, 'nmi', `NMI taken by CPU ${cpu.id}`);
  if (cpu.state === 'halted') cpu.state = 'running';
  if (cpu.nmiHandler === undefined) {
    cpu.state = 'shutdown';
    trace.record(`cpu${cpu.id}`, 'triple-fault', `CPU ${cpu.id} has no NMI handler: triple fault`);
    return false;
  }
  cpu.nmiHandler(cpu);
  return true;
}
