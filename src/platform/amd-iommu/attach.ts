// Puts an AMD IOMMU into a machine: its register file in the MMIO space and
// its DMA path in front of every device's transfers (the machine's devices
// reach memory through `machine.dma` as it is at each transfer).

import type { Machine } from '../machine.js';
import { HOST_KEY_SLOT } from '../machine.js';
import { AmdIommu, type AmdIommuConfig } from './amd-iommu.js';
import { AmdIommuDma } from './iommu-dma.js';
import { AMD_IOMMU_DEFAULT_MMIO_BASE, AMD_IOMMU_MMIO_SIZE } from './registers.js';

export interface AmdIommuSpec extends AmdIommuConfig {
  /** Physical address of the register file. */
  readonly mmioBase?: number;
  /** Device id (bus << 8 | device << 3 | function) of each device whose DMA goes through this IOMMU. */
  readonly devids: Readonly<Record<string, number>>;
}

export interface AttachedAmdIommu {
  readonly iommu: AmdIommu;
  readonly dma: AmdIommuDma;
  readonly mmioBase: number;
}

export function attachAmdIommu(m: Machine, spec: AmdIommuSpec): AttachedAmdIommu {
  for (const nic of m.nics) {
    if (spec.devids[nic.bdf] === undefined) throw new RangeError(`Cannot attach AMD IOMMU: device ${nic.name} (${nic.bdf}) has no device id`);
  }
  const me = m.config.memEncrypt;
  const iommu = new AmdIommu(spec, {
    clock: m.clock, mc: m.mc, trace: m.trace,
    ...(me?.state === 'enabled' ? { cbit: { bit: me.cbit, keyId: HOST_KEY_SLOT } } : {}),
  });
  const dma = new AmdIommuDma(iommu, spec.devids, m.dma, m.trace);
  const mmioBase = spec.mmioBase ?? AMD_IOMMU_DEFAULT_MMIO_BASE;
  m.mmio.map(mmioBase, AMD_IOMMU_MMIO_SIZE, iommu);
  m.dma = dma;
  m.trace.record(iommu.name, 'iommu-attach', `AMD IOMMU at 0x${mmioBase.toString(16)}, EFR 0x${iommu.efr.toString(16)}`, {
    mmioBase, efr: `0x${iommu.efr.toString(16)}`, snpSup: iommu.snpSupported,
  });
  return { iommu, dma, mmioBase };
}
