// A normal kexec (`kexec -l` then `kexec -e`): the running kernel shuts its
// devices down — the NIC is reset, the CCP driver shuts the SEV firmware
// down (legacy SHUTDOWN, then SNP_SHUTDOWN_EX with IOMMU_SNP_SHUTDOWN) — and
// jumps to the new kernel without a platform reset, so SYSCFG, the RMP MSRs,
// the RMP's contents and the memory key all carry over. The new kernel boots
// on the machine as it finds it.

import { NIC_CTRL, CTRL_RST } from '../platform/pci/rx-nic.js';
import { SEV_CMD_SHUTDOWN, SEV_CMD_SNP_SHUTDOWN_EX, SNP_SHUTDOWN_EX_IOMMU_SNP_SHUTDOWN, SNP_SHUTDOWN_EX_SIZE, sevReturnName } from '../platform/psp/sev-codes.js';
import { FirstKernel, type FirstKernelConfig } from './first-kernel.js';
import { CCP_DEV, pspCommand } from './snp-host.js';

export function kexecReboot(k: FirstKernel, next: FirstKernelConfig): FirstKernel {
  const m = k.machine;
  // kernel_kexec() -> device_shutdown(): drivers quiesce their devices.
  for (const d of k.drivers) m.mmio.write(d.mmioBase + NIC_CTRL, BigInt(CTRL_RST));
  if (k.snp.firmwareInitialized) {
    const buf = k.allocPage();
    pspCommand(k, m.bsp, SEV_CMD_SHUTDOWN, buf);
    const b = new Uint8Array(SNP_SHUTDOWN_EX_SIZE);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, SNP_SHUTDOWN_EX_SIZE, true);
    dv.setUint32(4, SNP_SHUTDOWN_EX_IOMMU_SNP_SHUTDOWN, true);
    k.mem.write(buf, b);
    const rc = pspCommand(k, m.bsp, SEV_CMD_SNP_SHUTDOWN_EX, buf);
    if (rc !== 0) k.log.printk(`${CCP_DEV}: SEV-SNP firmware shutdown failed, rc -5, error 0x${rc.toString(16)}`);
    k.step(`kexec -e: SNP_SHUTDOWN_EX ${rc === 0 ? 'succeeded' : `failed (${sevReturnName(rc)})`}`);
  }
  k.log.printk('kexec_core: Starting new kernel');
  k.running = false;
  k.step(`kexec -e: jumping to ${next.profile.release} without a platform reset`);
  const k2 = new FirstKernel(m, next);
  return k2;
}
