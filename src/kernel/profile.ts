// A KernelProfile names which mechanisms a kernel version has. Behaviour
// differences between versions are data here, never `if (version >= x)`
// scattered through the model.

export interface KernelMechanisms {
  /**
   * crashkernel= reserved through the generic code (crash_reserve.c, x86
   * since 6.7): it logs "crashkernel reserved: ..." instead of the older
   * "Reserving ...MB of memory at ...MB for crashkernel ...".
   */
  genericCrashkernelReservation: boolean;
  /** Built with CONFIG_AMD_MEM_ENCRYPT (SME host support, 4.14 on). */
  memEncrypt: boolean;
  /** CONFIG_AMD_MEM_ENCRYPT_ACTIVE_BY_DEFAULT: SME on without mem_encrypt=on. */
  memEncryptDefaultOn: boolean;
  /** Which banner announces memory encryption (the wording changed in 5.10 and 5.19). */
  memEncryptBanner: 'sme-active' | 'features-amd' | 'features';
  /** kexec allocates crash segments and control pages decrypted under SME (9cf38d5559e8, 4.20). */
  kexecDecryptsCrashSegments: boolean;
  /** The capture kernel maps old memory with ioremap_encrypted when SME is active (4.20). */
  oldMemoryEncryptedRead: boolean;
  /** VMCOREINFO carries NUMBER(sme_mask) (5.1). */
  vmcoreinfoSmeMask: boolean;
  /** SEV-SNP host support: RMP probe and init, SNP_EN on every CPU, SNP_INIT_EX from the CCP driver (6.9). */
  snpHost: boolean;
  /** `sev=nosnp` keeps host SNP off: no RMP init, no SNP_INIT, the IOMMU never locked (6.13). */
  sevNoSnpParam: boolean;
  /**
   * The CCP driver's SNP error messages carry the return value and the
   * firmware's error code (`SEV-SNP firmware shutdown failed, rc -5, error 0xf`)
   * instead of the bare sentence (6.14).
   */
  ccpErrorDetails: boolean;
  /**
   * What a capture kernel's AMD IOMMU driver does with translation the old
   * kernel left on: `disable` it and start with empty tables (before 4.13),
   * `copy` the old device table into a new one and program new buffers
   * (4.13 to 6.17), or `reuse` the old device table, command buffer, event
   * log and completion-wait buffer in place without writing a base register,
   * keeping the old domain ids (6.18).
   */
  amdIommuKdump: 'disable' | 'copy' | 'reuse';
  /**
   * The CCP driver's panic notifier shuts the SEV firmware down with
   * IOMMU_SNP_SHUTDOWN before the capture kernel starts, polling with
   * interrupts off (8ef979584ea8, 6.9); SNP host kernels also force
   * crash_kexec_post_notifiers so it runs, and WBINVD on every CPU as the
   * NMI stops it.
   */
  snpPanicShutdown: boolean;
  /**
   * What a capture kernel's intel-iommu driver does with a VT-d unit the old
   * kernel left translating: `new-tables` (before 4.2) keeps a GCMD shadow
   * that starts at zero, so its first GCMD write turns translation off, and
   * it later enables translation over new, empty tables; `copy` (4.2 on)
   * keeps translation on and copies the old context tables, telling the
   * table format by RTADDR bit 11 (the withdrawn ECS format), so a
   * scalable-mode table is copied as if it were legacy; `copy-sm` (the 2022
   * fix, 0c5f6c0d8201) tells it by the scalable-mode bit 10 and refuses a
   * mismatch.
   */
  vtdKdump: 'new-tables' | 'copy' | 'copy-sm';
  /** The intel-iommu driver can run a unit in scalable mode (intel_iommu=sm_on, 5.0 on). */
  vtdScalableMode: boolean;
  /**
   * The wording of DMAR fault reports: `v4.0` ("dmar: DMAR:[DMA Read] ..."
   * then "DMAR:[fault reason 01] ..."), `v4.4` (one "DMAR: [DMA Read]
   * Request device ... [fault reason 06] ..." line), `pasid` (with NO_PASID
   * and 0x-prefixed numbers).
   */
  dmarFaultFormat: 'v4.0' | 'v4.4' | 'pasid';
  /**
   * Running as an SEV-ES guest (the guest kernel model, src/kernel/guest/):
   * `unguarded` lets kexec go ahead and the next kernel starts APs with
   * INIT-SIPI-SIPI, which the hypervisor cannot apply to an encrypted VMSA;
   * `refuse` is the 2024 "x86/kexec/64: Disable kexec when SEV-ES is active"
   * (machine_kexec_prepare() returns -ENOSYS); `ap-jump-table` is the 2021
   * RFC: a parking blob on the AP jump table page, MSR-protocol AP reset hold,
   * and the run-time opt-out without GHCB v2 or with the table above 4 GiB.
   */
  sevEsGuestKexec: 'unguarded' | 'refuse' | 'ap-jump-table';
  /**
   * Running as an SNP guest: `none` (no enc_kexec hooks), `unshare`
   * (3074152e56c9, 6.12: shared pages made private again, per-CPU GHCBs last,
   * with the `<=` bound that also skips the page just below each GHCB), or
   * `unshare-fixed` (the May 2025 fixes: that bound is `<`, and other APs are
   * destroyed with AP_DESTROY before unsharing).
   */
  snpGuestKexec: 'none' | 'unshare' | 'unshare-fixed';
  /**
   * The decompressor of a kexec-booted SEV-ES/SNP guest kernel, whose
   * screen_info may name a VGA text console: `none` writes to video memory
   * and its #VC handler cannot emulate the MMIO (the guest terminates);
   * `vc-mmio` is the 2021 RFC's "Add MMIO handling support to boot/compressed/
   * code" (MMIO NAE events through the GHCB), and its kexec hands the text
   * console on; `skip-video` is "x86/boot: Skip video memory access in the
   * decompressor for SEV-ES/SNP" (6.12: lines = cols = 0).
   */
  sevEsDecompressorMmio: 'none' | 'vc-mmio' | 'skip-video';
}

export interface KernelProfile {
  id: string;
  /** uname -r, as OSRELEASE carries it. */
  release: string;
  /** The "Linux version ..." banner. */
  banner: string;
  mechanisms: KernelMechanisms;
}

function profile(id: string, release: string, mechanisms: KernelMechanisms): KernelProfile {
  return {
    id,
    release,
    banner: `Linux version ${release} (kdumpsim@build) (gcc (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC`,
    mechanisms,
  };
}

/** Mechanisms of kernels since 5.19 that later profiles start from. */
const MODERN: KernelMechanisms = {
  genericCrashkernelReservation: false,
  memEncrypt: true,
  memEncryptDefaultOn: false,
  memEncryptBanner: 'features',
  kexecDecryptsCrashSegments: true,
  oldMemoryEncryptedRead: true,
  vmcoreinfoSmeMask: true,
  snpHost: false,
  sevNoSnpParam: false,
  ccpErrorDetails: false,
  amdIommuKdump: 'copy',
  snpPanicShutdown: false,
  vtdKdump: 'copy-sm',
  vtdScalableMode: true,
  dmarFaultFormat: 'pasid',
  sevEsGuestKexec: 'unguarded',
  snpGuestKexec: 'none',
  sevEsDecompressorMmio: 'none',
};

export const KERNEL_PROFILES: Readonly<Record<string, KernelProfile>> = {
  // 4.1: the last kernel before intel-iommu copied the old translation tables in a capture kernel (4.2).
  'linux-4.1': profile('linux-4.1', '4.1.0-kdumpsim', {
    ...MODERN,
    memEncrypt: false,
    memEncryptBanner: 'sme-active',
    kexecDecryptsCrashSegments: false,
    oldMemoryEncryptedRead: false,
    vmcoreinfoSmeMask: false,
    amdIommuKdump: 'disable',
    vtdKdump: 'new-tables',
    vtdScalableMode: false,
    dmarFaultFormat: 'v4.0',
  }),
  // 4.9: before AMD memory encryption (4.14) and before the capture kernel copied the AMD IOMMU's device table (4.13).
  'linux-4.9': profile('linux-4.9', '4.9.0-kdumpsim', {
    ...MODERN,
    memEncrypt: false,
    memEncryptBanner: 'sme-active',
    kexecDecryptsCrashSegments: false,
    oldMemoryEncryptedRead: false,
    vmcoreinfoSmeMask: false,
    amdIommuKdump: 'disable',
    vtdKdump: 'copy',
    vtdScalableMode: false,
    dmarFaultFormat: 'v4.4',
  }),
  // 4.19: SME hosts and plain kexec work, but kdump under SME came in 4.20 (decrypted crash
  // segments, ioremap_encrypted for old memory) and sme_mask in VMCOREINFO in 5.1.
  'linux-4.19': profile('linux-4.19', '4.19.0-kdumpsim', {
    ...MODERN,
    memEncryptBanner: 'sme-active',
    kexecDecryptsCrashSegments: false,
    oldMemoryEncryptedRead: false,
    vmcoreinfoSmeMask: false,
    vtdKdump: 'copy',
    vtdScalableMode: false,
    dmarFaultFormat: 'v4.4',
  }),
  // 5.10: scalable-mode VT-d (5.0 on) with the old table-format test in the capture kernel's copy, before
  // 0c5f6c0d8201 (6.0, and 5.15.69 / 5.19 stable) fixed kdump after a scalable-mode first kernel.
  'linux-5.10': profile('linux-5.10', '5.10.0-kdumpsim', { ...MODERN, memEncryptBanner: 'features-amd', vtdKdump: 'copy' }),
  'linux-6.1': profile('linux-6.1', '6.1.0-kdumpsim', MODERN),
  // AMD's out-of-tree SNP host tree (AMDESE "snp-host" branches, 5.19 to 6.8 bases): RMP init and SNP_INIT,
  // but no CCP panic notifier, which came with the 6.9 merge (8ef979584ea8).
  'linux-6.5-snp-host': profile('linux-6.5-snp-host', '6.5.0-rc2-snp-host-kdumpsim', { ...MODERN, snpHost: true }),
  // The 2021 RFC "x86/sev: KEXEC/KDUMP support for SEV-ES guests" on its 5.14-rc base: APs parked on the AP jump table.
  'linux-5.14-sev-es-rfc': profile('linux-5.14-sev-es-rfc', '5.14.0-rc1-sev-es-kexec-rfc', {
    ...MODERN, memEncryptBanner: 'features-amd', sevEsGuestKexec: 'ap-jump-table', sevEsDecompressorMmio: 'vc-mmio',
  }),
  // 6.9: the first SNP host kernel (RMP table init, SNP_INIT_EX from the CCP driver).
  'linux-6.9': profile('linux-6.9', '6.9.0-kdumpsim', { ...MODERN, genericCrashkernelReservation: true, snpHost: true, snpPanicShutdown: true }),
  // 6.12: SNP guest kexec (3074152e56c9) before the May 2025 fixes; kexec refused in SEV-ES guests (the 2024 Cc-stable patch).
  'linux-6.12': profile('linux-6.12', '6.12.0-kdumpsim', {
    ...MODERN, genericCrashkernelReservation: true, snpHost: true, snpPanicShutdown: true, sevEsGuestKexec: 'refuse', snpGuestKexec: 'unshare',
    sevEsDecompressorMmio: 'skip-video',
  }),
  // The current kernel: the CCP driver's detailed SNP error messages (6.14) and the AMD IOMMU kdump reuse path (6.18).
  'linux-6.18': profile('linux-6.18', '6.18.0-kdumpsim', {
    ...MODERN, genericCrashkernelReservation: true, snpHost: true, sevNoSnpParam: true, snpPanicShutdown: true, ccpErrorDetails: true, amdIommuKdump: 'reuse',
    sevEsGuestKexec: 'refuse', snpGuestKexec: 'unshare-fixed', sevEsDecompressorMmio: 'skip-video',
  }),
};

export function kernelProfile(id: string): KernelProfile {
  const p = KERNEL_PROFILES[id];
  if (p === undefined) {
    throw new RangeError(`Unknown kernel profile "${id}": known profiles are ${Object.keys(KERNEL_PROFILES).map((k) => `"${k}"`).join(', ')}`);
  }
  return p;
}
