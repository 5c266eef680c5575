import { describe, it, expect } from 'vitest';
import {
  MSR_AMD64_SYSCFG, SYSCFG_SNP_EN, SYSCFG_MEM_ENCRYPT, MSR_AMD64_RMP_BASE, MSR_AMD64_RMP_END, MSR_AMD64_RMP_CFG, MSR_VM_HSAVE_PA,
} from '../../../src/platform/cpu/msr.js';
import { snpMachine, enableSnp, RMP_BASE, RMP_END } from './helpers.js';

describe('SYSCFG.SNP_EN locks the RMP MSRs', () => {
  it('before SNP_EN the RMP MSRs are writable', () => {
    const m = snpMachine();
    m.bsp.wrmsr(MSR_AMD64_RMP_BASE, 0x1000_0000n);
    expect(m.bsp.rdmsr(MSR_AMD64_RMP_BASE)).toBe(0x1000_0000n);
  });

  it('after SNP_EN writes to RMP_BASE, RMP_END and RMP_CFG are silently ignored', () => {
    const m = snpMachine();
    enableSnp(m);
    for (const cpu of m.cpus) {
      cpu.wrmsr(MSR_AMD64_RMP_BASE, 0x2000_0000n);
      cpu.wrmsr(MSR_AMD64_RMP_END, 0x2fff_ffffn);
      cpu.wrmsr(MSR_AMD64_RMP_CFG, 1n);
      expect(cpu.rdmsr(MSR_AMD64_RMP_BASE)).toBe(BigInt(RMP_BASE));
      expect(cpu.rdmsr(MSR_AMD64_RMP_END)).toBe(BigInt(RMP_END));
      expect(cpu.rdmsr(MSR_AMD64_RMP_CFG)).toBe(0n);
    }
    // Other MSRs are unaffected.
    m.bsp.wrmsr(MSR_VM_HSAVE_PA, 0n);
    expect(m.bsp.rdmsr(MSR_VM_HSAVE_PA)).toBe(0n);
  });

  it('SNP_EN is sticky: a write clearing it keeps it set, other bits change', () => {
    const m = snpMachine();
    enableSnp(m);
    m.bsp.wrmsr(MSR_AMD64_SYSCFG, SYSCFG_MEM_ENCRYPT);
    expect(m.bsp.rdmsr(MSR_AMD64_SYSCFG)).toBe(SYSCFG_MEM_ENCRYPT | SYSCFG_SNP_EN);
    expect(m.snpEnabled).toBe(true);
  });

  it('the lock is per CPU: an AP without SNP_EN can still move its RMP MSRs', () => {
    const m = snpMachine();
    m.bsp.wrmsr(MSR_AMD64_SYSCFG, m.bsp.rdmsr(MSR_AMD64_SYSCFG) | SYSCFG_SNP_EN);
    m.bsp.wrmsr(MSR_AMD64_RMP_BASE, 0n);
    m.cpus[1]!.wrmsr(MSR_AMD64_RMP_BASE, 0n);
    expect(m.bsp.rdmsr(MSR_AMD64_RMP_BASE)).toBe(BigInt(RMP_BASE));
    expect(m.cpus[1]!.rdmsr(MSR_AMD64_RMP_BASE)).toBe(0n);
  });

  it('only a platform reset (clearing the MSR map) clears it', () => {
    const m = snpMachine();
    enableSnp(m);
    m.bsp.msrs.clear();
    expect(m.bsp.rdmsr(MSR_AMD64_SYSCFG) & SYSCFG_SNP_EN).toBe(0n);
  });

  it('setting SNP_EN on the BSP turns the RMP check on and says so in the trace', () => {
    const m = snpMachine();
    expect(m.mc.writeGuarded).toBe(false);
    enableSnp(m);
    expect(m.mc.writeGuarded).toBe(true);
    expect(m.trace.find('snp-enable', 'cpu0')).toHaveLength(1);
  });
});
