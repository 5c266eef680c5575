// The path a device's DMA takes to memory. Without an IOMMU the bus address
// is the physical address; IOMMU models replace this port and translate.

import type { MemoryController } from './memory-controller.js';

export type DmaResult = { ok: true; pa: number } | { ok: false; fault: string; detail: string };

export interface DmaPort {
  write(device: string, busAddr: number, data: Uint8Array): DmaResult;
  read(device: string, busAddr: number, dst: Uint8Array): DmaResult;
}

/**
 * Devices address physical memory directly. A device has no key of its own:
 * it sees DRAM as it is, unless its bus address carries the C-bit, which the
 * memory controller honours for DMA as for CPU accesses (SME).
 */
export class DirectDma implements DmaPort {
  readonly #mc: MemoryController;
  readonly #limit: number;
  /** The C-bit as a bus-address value and the key it selects, when memory encryption is enabled. */
  readonly #cbit: { value: number; keyId: number } | undefined;

  constructor(mc: MemoryController, cbit?: { bit: number; keyId: number }) {
    this.#mc = mc;
    this.#limit = mc.dram.size;
    this.#cbit = cbit === undefined ? undefined : { value: 2 ** cbit.bit, keyId: cbit.keyId };
  }

  #decode(busAddr: number): { pa: number; keyId: number } {
    const c = this.#cbit;
    if (c !== undefined && Math.floor(busAddr / c.value) % 2 === 1) return { pa: busAddr - c.value, keyId: c.keyId };
    return { pa: busAddr, keyId: 0 };
  }

  write(device: string, busAddr: number, data: Uint8Array): DmaResult {
    const { pa, keyId } = this.#decode(busAddr);
    if (pa + data.length > this.#limit) return { ok: false, fault: 'master-abort', detail: `no memory at 0x${busAddr.toString(16)}` };
    const w = this.#mc.write(pa, data, { kind: 'device', name: device }, { keyId });
    if (!w.ok) return { ok: false, fault: w.fault, detail: w.detail };
    return { ok: true, pa };
  }

  read(device: string, busAddr: number, dst: Uint8Array): DmaResult {
    void device;
    const { pa, keyId } = this.#decode(busAddr);
    if (pa + dst.length > this.#limit) return { ok: false, fault: 'master-abort', detail: `no memory at 0x${busAddr.toString(16)}` };
    this.#mc.read(pa, dst, { keyId });
    return { ok: true, pa };
  }
}
