// Where the guest kernel model keeps things in guest-physical memory. Linux
// decides these at run time; the addresses below are ours, picked so the
// pieces the reference talks about sit where they matter: the real-mode
// trampolines below 1 MiB, each CPU's GHCB with its backup GHCB right after
// it (so the page just below CPU n's GHCB is CPU n-1's backup GHCB, both
// shared), one shared .bss..decrypted page, the workload's private pages,
// and the crash kernel's reservation at the top of guest RAM.

export const PAGE = 4096;

/** The first kernel's real-mode trampoline (CS 0x0800), the crash kernel's (CS 0x0900), a kexec'd kernel's (CS 0x0a00). */
export const FIRST_TRAMPOLINE = 0x8000;
export const CRASH_TRAMPOLINE = 0x9000;
export const KEXEC_TRAMPOLINE = 0xa000;
/** Offset of the SEV-ES AP entry in a trampoline (IP of the reset vector; ours). */
export const SEV_ES_TRAMPOLINE_IP = 0x40;

/** Guest firmware (OVMF's part): its AP code, the per-AP GHCBs of protocol 1, and the AP jump table. */
export const FW_AP_CODE = 0xe_0000;
export const FW_AP_GHCBS = 0xc_0000;
export const FW_JUMP_TABLE_LOW = 0xf_0000;
/** Where the firmware puts the jump table when told to place it above 4 GiB. */
export const FW_JUMP_TABLE_HIGH = 0x1_0000_0000;

/** The kernel image (stand-in bytes whose digest the oracle checks like any page). */
export const KERNEL_TEXT = 0x10_0000;
/** Per-CPU runtime data: CPU i's GHCB at PERCPU_GHCBS + i * 0x2000, its backup GHCB one page up. */
export const PERCPU_GHCBS = 0x20_0000;
/** .bss..decrypted: one page the kernel maps with the C-bit clear (a hypervisor-shared variable page). */
export const BSS_DECRYPTED = 0x30_0000;
/** SNP AP VMSAs the first kernel allocates: the second 4 KiB of an 8 KiB-aligned block per CPU. */
export const FIRST_VMSAS = 0x34_0000;
/** Where `kexec -l` stages the next kernel's entry (free memory of the running kernel, below the workload). */
export const KEXEC_IMAGE = 0x3f_0000;
/** Workload pages: private, filled with seeded bytes, the oracle's ground truth. */
export const WORKLOAD = 0x40_0000;

/** Bytes of the crash kernel reservation at the top of guest RAM (crashkernel=). */
export const CRASH_REGION_BYTES = 0x40_0000;
/** Inside the crash region: image, the crash kernel's own GHCB, its AP VMSAs. */
export const CRASH_IMAGE_OFF = 0;
export const CRASH_GHCB_OFF = 0x10_0000;
export const CRASH_VMSAS_OFF = 0x12_0000;

export function ghcbOf(cpu: number): number {
  return PERCPU_GHCBS + cpu * 0x2000;
}

export function backupGhcbOf(cpu: number): number {
  return ghcbOf(cpu) + PAGE;
}

/** The reset vector of a trampoline at `base`: IP = the SEV-ES entry offset, CS = base >> 4. */
export function resetVectorOf(base: number): { ip: number; cs: number } {
  return { ip: SEV_ES_TRAMPOLINE_IP, cs: base >> 4 };
}
