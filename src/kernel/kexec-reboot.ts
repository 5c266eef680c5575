// A normal kexec (`kexec -l` then `kexec -e`): the running kernel shuts its
// devices down — the NIC is reset, the CCP driver shuts the SEV firmware
// down — and jumps to the new kernel without a platform reset, so SYSCFG,
// the RMP MSRs, the RMP's contents (guests' entries included: nothing
// decommissions a guest whose VMM was not stopped) and the memory key all
// carry over. The new kernel boots on the machine as it finds it.

import { NIC_CTRL, CTRL_RST } from '../platform/pci/rx-nic.js';
import { FirstKernel, type FirstKernelConfig } from './first-kernel.js';
import { sevFirmwareShutdown } from './ccp-shutdown.js';

export function kexecReboot(k: FirstKernel, next: FirstKernelConfig): FirstKernel {
  const m = k.machine;
  // kernel_kexec() -> device_shutdown(): drivers quiesce their devices.
  for (const d of k.drivers) m.mmio.write(d.mmioBase + NIC_CTRL, BigInt(CTRL_RST));
  const fw = sevFirmwareShutdown(k, { panic: false });
  if (fw.snp !== 'not-initialized') k.step(`kexec -e: SEV firmware ${fw.snp === 'shut-down' ? 'shut down' : 'still SNP-initialised'}`);
  k.log.printk('kexec_core: Starting new kernel');
  k.running = false;
  k.step(`kexec -e: jumping to ${next.profile.release} without a platform reset`);
  return new FirstKernel(m, next);
}
