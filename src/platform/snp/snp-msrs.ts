// What SYSCFG.SNP_EN does to a CPU's MSR writes: once set, the RMP MSRs
// (RMP_BASE, RMP_END, RMP_CFG) are locked and writes to them are silently
// dropped, and SNP_EN itself cannot be cleared by software. Only a platform
// reset (which clears a CPU's MSR map directly) undoes it; kexec does not.

import {
  MSR_AMD64_SYSCFG, SYSCFG_SNP_EN, MSR_AMD64_RMP_BASE, MSR_AMD64_RMP_END, MSR_AMD64_RMP_CFG,
} from '../cpu/msr.js';

export type MsrWriteFilter = (msr: number, value: bigint, old: bigint) => bigint | undefined;

/** Whether SYSCFG.SNP_EN is set on `cpu`. */
export function snpEnabledOn(cpu: { rdmsr(msr: number): bigint }): boolean {
  return (cpu.rdmsr(MSR_AMD64_SYSCFG) & SYSCFG_SNP_EN) !== 0n;
}

/**
 * The filter a CPU's `wrmsr` consults (install as `cpu.msrWriteFilter`).
 * `onSnpEnable` runs when a SYSCFG write turns SNP_EN on, just before the
 * new value is stored (the RMP MSRs are final by then: they lock with it).
 */
export function snpMsrWriteFilter(cpu: { rdmsr(msr: number): bigint }, onSnpEnable?: () => void): MsrWriteFilter {
  return (msr, value, old) => {
    if (msr === MSR_AMD64_SYSCFG) {
      if ((old & SYSCFG_SNP_EN) !== 0n) return value | SYSCFG_SNP_EN;
      if ((value & SYSCFG_SNP_EN) !== 0n) onSnpEnable?.();
      return value;
    }
    if ((msr === MSR_AMD64_RMP_BASE || msr === MSR_AMD64_RMP_END || msr === MSR_AMD64_RMP_CFG) && snpEnabledOn(cpu)) return undefined;
    return value;
  };
}
