// An IOMMU's own path to memory (AMD-Vi and VT-d alike): table walks,
// command and descriptor fetches, event-log entries, completion and status
// writes. Addresses it is given (base registers, table entries) may carry the
// SME C-bit, as the kernel programs them; the bit selects the host key exactly
// as it does for DMA.

import type { MemoryController, WriteResult } from './memory-controller.js';

/** The C-bit position and the key slot it selects, when memory encryption is on. */
export interface CBit {
  readonly bit: number;
  readonly keyId: number;
}

export interface Located {
  /** Physical address with the C-bit removed. */
  readonly pa: number;
  readonly keyId: number;
}

export class IommuMemory {
  readonly mc: MemoryController;
  readonly requesterName: string;
  readonly #cbitValue: number | undefined;
  readonly #keyId: number;
  readonly #qword = new Uint8Array(8);
  readonly #qdv = new DataView(this.#qword.buffer);

  constructor(mc: MemoryController, requesterName: string, cbit?: CBit) {
    this.mc = mc;
    this.requesterName = requesterName;
    this.#cbitValue = cbit === undefined ? undefined : 2 ** cbit.bit;
    this.#keyId = cbit?.keyId ?? 0;
  }

  /** Splits an address into physical address and key. */
  locate(addr: number): Located {
    const c = this.#cbitValue;
    if (c !== undefined && Math.floor(addr / c) % 2 === 1) return { pa: addr - c, keyId: this.#keyId };
    return { pa: addr, keyId: 0 };
  }

  /** The range lies inside DRAM (outside it the fabric master-aborts). */
  backed(pa: number, length: number): boolean {
    return Number.isSafeInteger(pa) && pa >= 0 && pa + length <= this.mc.dram.size;
  }

  /** Reads `dst.length` bytes; false (dst untouched) when there is no memory there. */
  read(addr: number, dst: Uint8Array): boolean {
    const { pa, keyId } = this.locate(addr);
    if (!this.backed(pa, dst.length)) return false;
    this.mc.read(pa, dst, { keyId });
    return true;
  }

  /** A little-endian 64-bit word, or undefined when there is no memory there. */
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

  /**
   * Writes as the IOMMU. `ownStructure`: the IOMMU updating one of its own
   * buffers (event log, completion-store page), which SNP firmware makes
   * firmware-owned yet the IOMMU may still write, so the RMP check is skipped.
   */
  write(addr: number, data: Uint8Array, ownStructure = false): WriteResult | 'no-memory' {
    const { pa, keyId } = this.locate(addr);
    if (!this.backed(pa, data.length)) return 'no-memory';
    return this.mc.write(pa, data, { kind: 'device', name: this.requesterName }, { keyId, guardExempt: ownStructure });
  }
}
