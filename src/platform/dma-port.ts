// The path a device's DMA takes to memory. Without an IOMMU the bus address
// is the physical address; IOMMU models replace this port and translate.

import type { MemoryController } from './memory-controller.js';

export type DmaResult = { ok: true; pa: number } | { ok: false; fault: string; detail: string };

export interface DmaPort {
  write(device: string, busAddr: number, data: Uint8Array): DmaResult;
  read(device: string, busAddr: number, dst: Uint8Array): DmaResult;
}

/** Devices address physical memory directly; they hold no key, so they see DRAM as it is. */
export class DirectDma implements DmaPort {
  readonly #mc: MemoryController;
  readonly #limit: number;

  constructor(mc: MemoryController) {
    this.#mc = mc;
    this.#limit = mc.dram.size;
  }

  write(device: string, busAddr: number, data: Uint8Array): DmaResult {
    if (busAddr + data.length > this.#limit) return { ok: false, fault: 'master-abort', detail: `no memory at 0x${busAddr.toString(16)}` };
    this.#mc.write(busAddr, data, { kind: 'device', name: device });
    return { ok: true, pa: busAddr };
  }

  read(device: string, busAddr: number, dst: Uint8Array): DmaResult {
    void device;
    if (busAddr + dst.length > this.#limit) return { ok: false, fault: 'master-abort', detail: `no memory at 0x${busAddr.toString(16)}` };
    this.#mc.read(busAddr, dst);
    return { ok: true, pa: busAddr };
  }
}
