// CPUID leaves a processor reports, built from a few facts about the part.
// Later models (SME/SEV on AMD) add their leaves on top.

import type { Cpu } from './cpu.js';

export type CpuVendor = 'AuthenticAMD' | 'GenuineIntel';

export interface CpuidFacts {
  vendor: CpuVendor;
  /** Physical address bits (CPUID 0x80000008 EAX[7:0]). */
  physBits: number;
  /** 1 GiB pages (CPUID 0x80000001 EDX bit 26). */
  gbPages: boolean;
  /** AMD memory encryption as CPUID Fn8000_001F reports it; absent on parts without it. */
  memEncrypt?: { sme: boolean; sev: boolean; sevEs: boolean; snp: boolean; cbit: number; physReduction: number };
}

/** CPUID.8000001FH:EAX bits. */
export const CPUID_MEM_ENCRYPT_SME = 1 << 0;
export const CPUID_MEM_ENCRYPT_SEV = 1 << 1;
export const CPUID_MEM_ENCRYPT_SEV_ES = 1 << 3;
export const CPUID_MEM_ENCRYPT_SNP = 1 << 4;
export const CPUID_MEM_ENCRYPT_LEAF = 0x8000_001f;
/** CPUID.01H:ECX bit 31: running under a hypervisor. */
export const CPUID_ECX_HYPERVISOR = 1 << 31;

/** CPUID.80000001H:EDX bits. */
export const CPUID_EXT_EDX_NX = 1 << 20;
export const CPUID_EXT_EDX_PAGE1GB = 1 << 26;
export const CPUID_EXT_EDX_LM = 1 << 29;
/** CPUID.01H:EDX bits. */
export const CPUID_EDX_APIC = 1 << 9;
export const CPUID_EDX_PAE = 1 << 6;

function vendorWords(v: CpuVendor): [number, number, number] {
  const b = Buffer.from(v, 'latin1');
  // The 12 characters come back in EBX, EDX, ECX order.
  return [b.readUInt32LE(0), b.readUInt32LE(4), b.readUInt32LE(8)];
}

export function programCpuid(cpu: Cpu, f: CpuidFacts): void {
  const [ebx, edx, ecx] = vendorWords(f.vendor);
  cpu.setCpuid(0, 0, [0x10, ebx, ecx, edx]);
  cpu.setCpuid(1, 0, [0x00a2_0f10, (cpu.apicId << 24) >>> 0, 0, CPUID_EDX_APIC | CPUID_EDX_PAE]);
  const me = f.memEncrypt;
  cpu.setCpuid(0x8000_0000, 0, [me ? CPUID_MEM_ENCRYPT_LEAF : 0x8000_0008, ebx, ecx, edx]);
  if (me) {
    const eax = (me.sme ? CPUID_MEM_ENCRYPT_SME : 0) | (me.sev ? CPUID_MEM_ENCRYPT_SEV : 0) |
      (me.sevEs ? CPUID_MEM_ENCRYPT_SEV_ES : 0) | (me.snp ? CPUID_MEM_ENCRYPT_SNP : 0);
    cpu.setCpuid(CPUID_MEM_ENCRYPT_LEAF, 0, [eax, (me.cbit & 0x3f) | ((me.physReduction & 0x3f) << 6), 0, 0]);
  }
  const extEdx = CPUID_EXT_EDX_NX | CPUID_EXT_EDX_LM | (f.gbPages ? CPUID_EXT_EDX_PAGE1GB : 0);
  cpu.setCpuid(0x8000_0001, 0, [0, 0, 0, extEdx >>> 0]);
  cpu.setCpuid(0x8000_0008, 0, [(48 << 8) | f.physBits, 0, 0, 0]);
}
