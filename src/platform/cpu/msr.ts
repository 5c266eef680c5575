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
/** SYSCFG bit 25: VMPL support, set together with SNP_EN. */
export const SYSCFG_SNP_VMPL_EN = 1n << 25n;
/** Physical start of the RMP (bookkeeping area included); locked once SYSCFG.SNP_EN is set. */
export const MSR_AMD64_RMP_BASE = 0xc001_0132;
/** Physical inclusive last byte of a contiguous RMP (0 in segmented mode); locked with RMP_BASE. */
export const MSR_AMD64_RMP_END = 0xc001_0133;
/** RMP_CFG: bit 0 segmented RMP, bits 13:8 segment shift; locked with RMP_BASE. */
export const MSR_AMD64_RMP_CFG = 0xc001_0136;
/** VM_HSAVE_PA: the SEV firmware requires 0 on every CPU before SNP_INIT. */
export const MSR_VM_HSAVE_PA = 0xc001_0117;
