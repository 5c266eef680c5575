// sme_enable(): whether this kernel turns on Secure Memory Encryption, decided
// as the kernel decides it, from CPUID Fn8000_001F, the hypervisor bit,
// SYSCFG[MemEncryptionModEn] and mem_encrypt= (absent: the Kconfig default).

import type { Cpu } from '../platform/cpu/cpu.js';
import { CPUID_ECX_HYPERVISOR, CPUID_MEM_ENCRYPT_LEAF, CPUID_MEM_ENCRYPT_SME } from '../platform/cpu/cpuid.js';
import { MSR_AMD64_SYSCFG, SYSCFG_MEM_ENCRYPT } from '../platform/cpu/msr.js';
import type { Cmdline } from './cmdline.js';
import type { KernelProfile } from './profile.js';

export interface SmeDecision {
  active: boolean;
  /** sme_me_mask: 1 << C-bit when active, else 0. */
  mask: bigint;
  cbit: number;
  /** Why, in a few words (for the causal chain). */
  reason: string;
}

export function smeEnable(cpu: Cpu, cmdline: Cmdline, profile: KernelProfile): SmeDecision {
  const off = (reason: string, cbit = 0): SmeDecision => ({ active: false, mask: 0n, cbit, reason });
  if (!profile.mechanisms.memEncrypt) return off('kernel built without AMD memory encryption');
  if (cpu.cpuid(0x8000_0000)[0] < CPUID_MEM_ENCRYPT_LEAF) return off('CPU has no memory-encryption leaf');
  const [eax, ebx] = cpu.cpuid(CPUID_MEM_ENCRYPT_LEAF);
  const cbit = ebx & 0x3f;
  if ((eax & CPUID_MEM_ENCRYPT_SME) === 0) return off('CPU does not support SME', cbit);
  if ((cpu.cpuid(1)[2] & CPUID_ECX_HYPERVISOR) !== 0) return off('running under a hypervisor', cbit);
  if ((cpu.rdmsr(MSR_AMD64_SYSCFG) & SYSCFG_MEM_ENCRYPT) === 0n) return off('firmware left SYSCFG[MemEncryptionModEn] clear', cbit);
  const arg = cmdline.get('mem_encrypt');
  const on = arg === 'on' ? true : arg === 'off' ? false : profile.mechanisms.memEncryptDefaultOn;
  if (!on) return off(arg === 'off' ? 'mem_encrypt=off' : 'no mem_encrypt=on on the command line', cbit);
  return { active: true, mask: 1n << BigInt(cbit), cbit, reason: `mem_encrypt=${arg === 'on' ? 'on' : '(default on)'}, SME enabled by firmware` };
}

/** The line that announces active encryption, worded per era. */
export function smeBanner(profile: KernelProfile): string {
  switch (profile.mechanisms.memEncryptBanner) {
    case 'sme-active': return 'AMD Secure Memory Encryption (SME) active';
    case 'features-amd': return 'AMD Memory Encryption Features active: SME';
    case 'features': return 'Memory Encryption Features active: AMD SME';
  }
}

/** The C-bit as a bit of a page-table entry's high word. */
export function cbitHi(d: SmeDecision): number {
  return d.active ? (1 << (d.cbit - 32)) >>> 0 : 0;
}
