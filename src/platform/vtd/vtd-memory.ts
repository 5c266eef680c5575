// The remapping unit's own path to memory: table walks, descriptor fetches
// and invalidation-wait status writes. Addresses in its registers and
// entries may carry the SME C-bit when the machine has memory encryption;
// the bit selects the key exactly as it does for DMA (see dma-port.ts).

import type { MemoryController, WriteResult } from '../memory-controller.js';

export interface VtdCBit {
  readonly bit: number;
  readonly keyId: number;
}

export class VtdMemory {
  readonly mc: MemoryController;
  readonly requesterName: string;
  readonly #cbitValue: number | undefined;
  readonly #keyId: number;
  readonly #qword = new Uint8Array(8);
  readonly #qdv = new DataView(this.#qword.buffer);

  constructor(mc: MemoryController, requesterName: string, cbit?: VtdCBit) {
    this.mc = mc;
    this.requesterName = requesterName;
    this.#cbitValue = cbit === undefined ? undefined : 2 ** cbit.bit;
    this.#keyId = cbit?.keyId ?? 0;
  }

  /** Splits an address into a physical address and the key its C-bit selects. */
  locate(addr: number): { pa: number; keyId: number } {
    const c = this.#cbitValue;
    if (c !== undefined && Math.floor(addr / c) % 2 === 1) return { pa: addr - c, keyId: this.#keyId };
    return { pa: addr, keyId: 0 };
  }

  backed(pa: number, length: number): boolean {
    return Number.isSafeInteger(pa) && pa >= 0 && pa + length <= this.mc.dram.size;
  }

  /** Fills `dst`; false (dst untouched) when there is no memory there. */
  read(addr: number, dst: Uint8Array): boolean {
    const { pa, keyId } = this.locate(addr);
    if (!this.backed(pa, dst.length)) return false;
    this.mc.read(pa, dst, { keyId });
    return true;
  }

  readQword(addr: number): bigint | undefined {
    if (!this.read(addr, this.#qword)) return undefined;
    return this.#qdv.getBigUint64(0, true);
  }

  /** Reads `n` consecutive qwords, or undefined when any lies outside memory. */
  readWords(addr: number, n: number): bigint[] | undefined {
    const buf = new Uint8Array(n * 8);
    if (!this.read(addr, buf)) return undefined;
    const dv = new DataView(buf.buffer);
    return Array.from({ length: n }, (_, i) => dv.getBigUint64(i * 8, true));
  }

  /** Writes as the unit (a status write); the memory controller's write guard applies. */
  write(addr: number, data: Uint8Array): WriteResult | 'no-memory' {
    const { pa, keyId } = this.locate(addr);
    if (!this.backed(pa, data.length)) return 'no-memory';
    return this.mc.write(pa, data, { kind: 'device', name: this.requesterName }, { keyId });
  }
}
