// The DMA path through an AMD IOMMU. Devices are named in the machine; the
// IOMMU knows them by 16-bit device id (bus/device/function), so the port
// carries the name-to-id map the firmware's IVRS would describe. With
// translation off the IOMMU is not in the way and the old path is used.

import type { DmaPort, DmaResult } from '../dma-port.js';
import type { Trace } from '../trace.js';
import type { AmdIommu } from './amd-iommu.js';

export class AmdIommuDma implements DmaPort {
  readonly iommu: AmdIommu;
  readonly #devids: ReadonlyMap<string, number>;
  readonly #untranslated: DmaPort;
  readonly #trace: Trace;

  /** `untranslated`: where requests go while IommuEn is clear (the machine's direct path). */
  constructor(iommu: AmdIommu, devids: Readonly<Record<string, number>>, untranslated: DmaPort, trace: Trace) {
    for (const [name, id] of Object.entries(devids)) {
      if (!(Number.isInteger(id) && id >= 0 && id <= 0xffff)) throw new RangeError(`Cannot route DMA of "${name}" through ${iommu.name}: device id ${id} is not 0..0xffff`);
    }
    this.iommu = iommu;
    this.#devids = new Map(Object.entries(devids));
    this.#untranslated = untranslated;
    this.#trace = trace;
  }

  devidOf(device: string): number | undefined {
    return this.#devids.get(device);
  }

  write(device: string, busAddr: number, data: Uint8Array): DmaResult {
    return this.#access(device, busAddr, data, true);
  }

  read(device: string, busAddr: number, dst: Uint8Array): DmaResult {
    return this.#access(device, busAddr, dst, false);
  }

  #access(device: string, busAddr: number, buf: Uint8Array, write: boolean): DmaResult {
    if (!this.iommu.translationEnabled) return write ? this.#untranslated.write(device, busAddr, buf) : this.#untranslated.read(device, busAddr, buf);
    const devid = this.#devids.get(device);
    if (devid === undefined) {
      const detail = `${device} has no device id behind ${this.iommu.name}`;
      this.#trace.record(this.iommu.name, 'iommu-unknown-requester', detail, { device });
      return { ok: false, fault: 'unknown-requester', detail };
    }
    return this.iommu.dma(device, devid, busAddr, buf, write);
  }
}
