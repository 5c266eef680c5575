import { describe, it, expect } from 'vitest';
import { Machine } from '../../../src/platform/machine.js';
import { attachAmdIommu } from '../../../src/platform/amd-iommu/attach.js';
import { AmdIommuDma } from '../../../src/platform/amd-iommu/iommu-dma.js';
import { AMD_IOMMU_DEFAULT_MMIO_BASE, REG_EFR, DEFAULT_EFR } from '../../../src/platform/amd-iommu/registers.js';

const nic = { name: 'nic0', bdf: '0000:03:00.0', mmioBase: 0xfe00_0000, packetIntervalNs: 1000, packetBytes: 64 };

describe('attachAmdIommu', () => {
  it('maps the register file and puts the IOMMU in front of device DMA', () => {
    const m = new Machine({ memoryBytes: 2 ** 26, cpus: 1, seed: 1, nics: [nic] });
    const { iommu, dma } = attachAmdIommu(m, { devids: { '0000:03:00.0': 0x300 } });
    expect(m.dma).toBe(dma);
    expect(m.dma).toBeInstanceOf(AmdIommuDma);
    expect(dma.devidOf('0000:03:00.0')).toBe(0x300);
    expect(m.mmio.read(AMD_IOMMU_DEFAULT_MMIO_BASE + REG_EFR, 8)).toBe(DEFAULT_EFR);
    expect(m.trace.find('iommu-attach', iommu.name)).toHaveLength(1);
  });

  it('refuses a machine device without a device id, and a device id out of range', () => {
    const m = new Machine({ memoryBytes: 2 ** 26, cpus: 1, seed: 1, nics: [nic] });
    expect(() => attachAmdIommu(m, { devids: {} })).toThrow(/nic0 \(0000:03:00.0\) has no device id/);
    expect(() => attachAmdIommu(m, { devids: { '0000:03:00.0': 0x1_0000 } })).toThrow(RangeError);
  });
});
