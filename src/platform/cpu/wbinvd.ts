// WBINVD: write back and invalidate the CPU's caches. The model keeps no
// caches; what matters is that it happened, and when (SEV firmware refuses
// some commands until every CPU has flushed since the last guest activity).

import type { Cpu } from './cpu.js';
import type { Trace } from '../trace.js';

export function wbinvd(cpu: Cpu, now: number, trace: Trace, why: string): void {
  cpu.lastWbinvdNs = now;
  trace.record(`cpu${cpu.id}`, 'wbinvd', `CPU ${cpu.id}: WBINVD (${why})`);
}
