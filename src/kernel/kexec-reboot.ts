// A normal kexec (`kexec -l` then `kexec -e`): user space normally stops the
// VMs first; the running kernel then shuts its devices down — the NIC is
// reset, the CCP driver shuts the SEV firmware down — and jumps to the new
// kernel without a platform reset, so SYSCFG, the RMP MSRs, the RMP's
// contents (a still-running guest's entries included) and the memory key all
// carry over. The new kernel boots on the machine as it finds it.

import { NIC_CTRL, CTRL_RST } from '../platform/pci/rx-nic.js';
import { FirstKernel, type FirstKernelConfig } from './first-kernel.js';
import { sevFirmwareShutdown } from './ccp-shutdown.js';
import { stopSnpGuests } from './kvm-snp.js';

/** `stopped`: user space stopped the VMs before `kexec -e`; `running`: kexec -e with them still running. */
export type GuestsAtKexec = 'stopped' | 'running';

export function kexecReboot(k: FirstKernel, next: FirstKernelConfig, guests: GuestsAtKexec = 'stopped'): FirstKernel {
  const m = k.machine;
  if (guests === 'stopped') stopSnpGuests(k);
  // kernel_kexec() -> device_shutdown(): drivers quiesce their devices.
  for (const d of k.drivers) m.mmio.write(d.mmioBase + NIC_CTRL, BigInt(CTRL_RST));
  const fw = sevFirmwareShutdown(k, { panic: false });
  if (fw.snp !== 'not-initialized') k.step(`kexec -e: SEV firmware ${fw.snp === 'shut-down' ? 'shut down' : 'still SNP-initialised'}`);
  // native_machine_shutdown(): x86_platform.iommu_shutdown turns the IOMMU off.
  k.iommu?.shutdown();
  k.log.printk('kexec_core: Starting new kernel');
  k.running = false;
  k.step(`kexec -e: jumping to ${next.profile.release} without a platform reset`);
  return new FirstKernel(m, next);
}
