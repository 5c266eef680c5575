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
  /**
   * The CCP driver's SNP error messages carry the return value and the
   * firmware's error code (`SEV-SNP firmware shutdown failed, rc -5, error 0xf`)
   * instead of the bare sentence (6.14).
   */
  ccpErrorDetails: boolean;
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
  ccpErrorDetails: false,
};

export const KERNEL_PROFILES: Readonly<Record<string, KernelProfile>> = {
  // 4.19: SME hosts and plain kexec work, but kdump under SME came in 4.20 (decrypted crash
  // segments, ioremap_encrypted for old memory) and sme_mask in VMCOREINFO in 5.1.
  'linux-4.19': profile('linux-4.19', '4.19.0-kdumpsim', {
    ...MODERN,
    memEncryptBanner: 'sme-active',
    kexecDecryptsCrashSegments: false,
    oldMemoryEncryptedRead: false,
    vmcoreinfoSmeMask: false,
  }),
  'linux-6.1': profile('linux-6.1', '6.1.0-kdumpsim', MODERN),
  // 6.9: the first SNP host kernel (RMP table init, SNP_INIT_EX from the CCP driver).
  'linux-6.9': profile('linux-6.9', '6.9.0-kdumpsim', { ...MODERN, genericCrashkernelReservation: true, snpHost: true }),
  'linux-6.12': profile('linux-6.12', '6.12.0-kdumpsim', { ...MODERN, genericCrashkernelReservation: true, snpHost: true }),
  // The current kernel: everything above, with the CCP driver's detailed SNP error messages (6.14).
  'linux-6.18': profile('linux-6.18', '6.18.0-kdumpsim', { ...MODERN, genericCrashkernelReservation: true, snpHost: true, ccpErrorDetails: true }),
};

export function kernelProfile(id: string): KernelProfile {
  const p = KERNEL_PROFILES[id];
  if (p === undefined) {
    throw new RangeError(`Unknown kernel profile "${id}": known profiles are ${Object.keys(KERNEL_PROFILES).map((k) => `"${k}"`).join(', ')}`);
  }
  return p;
}
