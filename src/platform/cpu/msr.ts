// Model-specific registers the models use, by their architectural numbers.

export const MSR_IA32_APIC_BASE = 0x0000_001b;
/** IA32_APIC_BASE bit 8: this is the bootstrap processor. */
export const APIC_BASE_BSP = 1n << 8n;
/** IA32_APIC_BASE bit 11: xAPIC global enable. */
export const APIC_BASE_ENABLE = 1n << 11n;
export const MSR_EFER = 0xc000_0080;
export const EFER_SCE = 1n << 0n;
export const EFER_LME = 1n << 8n;
export const EFER_LMA = 1n << 10n;
export const EFER_NXE = 1n << 11n;
/** AMD SYSCFG: memory-encryption and SNP enables, set by firmware (and, for SNP, the kernel). */
export const MSR_AMD64_SYSCFG = 0xc001_0010;
export const SYSCFG_MFDM = 1n << 19n;
/** MemEncryptionModEn: the memory-encryption features may be used. */
export const SYSCFG_MEM_ENCRYPT = 1n << 23n;
export const SYSCFG_SNP_EN = 1n << 24n;
/** SEV_STATUS: read by a guest to learn what it runs under (0 on a host). */
export const MSR_AMD64_SEV = 0xc001_0131;
