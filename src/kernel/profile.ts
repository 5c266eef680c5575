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

export const KERNEL_PROFILES: Readonly<Record<string, KernelProfile>> = {
  'linux-6.1': profile('linux-6.1', '6.1.0-kdumpsim', {
    genericCrashkernelReservation: false,
  }),
  'linux-6.12': profile('linux-6.12', '6.12.0-kdumpsim', {
    genericCrashkernelReservation: true,
  }),
};

export function kernelProfile(id: string): KernelProfile {
  const p = KERNEL_PROFILES[id];
  if (p === undefined) {
    throw new RangeError(`Unknown kernel profile "${id}": known profiles are ${Object.keys(KERNEL_PROFILES).map((k) => `"${k}"`).join(', ')}`);
  }
  return p;
}
