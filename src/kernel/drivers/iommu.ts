// What the rest of the kernel asks of an IOMMU driver, whichever IOMMU the
// machine has (AMD-Vi here; Intel VT-d plugs in the same way): bring it up
// (or take over from a previous kernel), put devices in DMA domains and map
// their buffers, route the IO-APIC timer pin through interrupt remapping,
// and turn it off on a normal kexec.

import type { Machine } from '../../platform/machine.js';
import type { Cmdline } from '../cmdline.js';
import type { KernelLog } from '../dmesg.js';
import type { PhysAccess } from '../phys-access.js';
import type { KernelProfile } from '../profile.js';
import { AmdIommuDriver } from './amd-iommu/amd-iommu-driver.js';
import { IntelIommuDriver } from './intel-iommu/intel-iommu-driver.js';

/** What an IOMMU driver needs of the kernel it runs in. */
export interface IommuHost {
  readonly machine: Machine;
  readonly profile: KernelProfile;
  readonly log: KernelLog;
  readonly mem: PhysAccess;
  readonly cmdline: Cmdline;
  /** sme_me_mask: set in every table pointer and bus address the IOMMU reads (__sme_set). */
  readonly smeMask: bigint;
  /** Zeroed, aligned memory below 4 GiB (GFP_DMA32): the split 32-bit base writes need it. */
  allocDma32(bytes: number, align: number): number | undefined;
  step(detail: string, data?: Record<string, number | string | boolean>): void;
  /** A buffer a device (the IOMMU itself, say) writes by DMA: the oracle lets it change after a panic. */
  noteDmaBuffer(device: string, pa: number, length: number, purpose: string): void;
  /** Old-kernel memory a capture kernel takes over and writes (a reuse path). */
  noteReusedOldMemory(pa: number, length: number, purpose: string): void;
}

export interface IommuDriver {
  /** The IOMMU accepted SNP (amd_iommu_snp_en); false for IOMMUs without SNP. */
  readonly snpEnabled: boolean;
  /** Puts a device in a fresh DMA domain (the driver's first DMA map in a capture kernel). */
  attachDevice(bdf: string): void;
  /** dma_map_*: the bus address the device is to use for `bytes` at `pa`; undefined when the device has no domain. */
  mapDma(bdf: string, pa: number, bytes: number): number | undefined;
  /**
   * Routes IO-APIC `pin` to `vector` on `apicId` through interrupt
   * remapping, and returns the redirection entry to program for it.
   */
  routeIoApicPin(pin: number, vector: number, apicId: number): bigint;
  /** Reports what the IOMMU logged since the last call (faults, events). */
  pollEvents(): number;
  /** Turns translation off (a normal kexec or reboot). */
  shutdown(): void;
}

/** Brings up whichever IOMMU the machine has; undefined without one (or with it disabled on the command line). */
export function initIommu(h: IommuHost, opts: { kdump: boolean; wantSnp: boolean }): IommuDriver | undefined {
  if (h.machine.amdIommu !== undefined) return AmdIommuDriver.init(h, opts);
  if (h.machine.vtd !== undefined) return IntelIommuDriver.init(h, opts);
  return undefined;
}
