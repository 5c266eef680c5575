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
