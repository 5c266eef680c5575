// A small SNP-capable machine for the RMP tests: 64 MiB of DRAM, the RMP
// reserved by firmware at 48 MiB, sized to cover every frame.

import { Machine } from '../../../src/platform/machine.js';
import { MSR_AMD64_SYSCFG, SYSCFG_MFDM, SYSCFG_SNP_EN, SYSCFG_SNP_VMPL_EN } from '../../../src/platform/cpu/msr.js';
import { RMP_BOOKKEEPING_BYTES, RMP_ENTRY_BYTES } from '../../../src/platform/snp/rmp.js';

export const MiB = 2 ** 20;
export const RMP_BASE = 48 * MiB;
export const MEMORY = 64 * MiB;
export const PFNS = MEMORY / 4096;
export const RMP_END = RMP_BASE + RMP_BOOKKEEPING_BYTES + RMP_ENTRY_BYTES * PFNS - 1;

export function snpMachine(opts: { cpus?: number; rmp?: boolean } = {}): Machine {
  return new Machine({
    memoryBytes: MEMORY, cpus: opts.cpus ?? 2, seed: 7, nics: [],
    memEncrypt: { state: 'enabled', cbit: 47 },
    ...(opts.rmp === false ? {} : { rmp: { base: RMP_BASE, end: RMP_END } }),
  });
}

/** What a host kernel's snp_rmptable_init does last: MFDM, then SNP_EN|VMPL_EN on every CPU. */
export function enableSnp(m: Machine): void {
  for (const cpu of m.cpus) cpu.wrmsr(MSR_AMD64_SYSCFG, cpu.rdmsr(MSR_AMD64_SYSCFG) | SYSCFG_MFDM);
  for (const cpu of m.cpus) cpu.wrmsr(MSR_AMD64_SYSCFG, cpu.rdmsr(MSR_AMD64_SYSCFG) | SYSCFG_SNP_EN | SYSCFG_SNP_VMPL_EN);
}
