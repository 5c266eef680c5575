// An IOMMU's own path to memory (AMD-Vi and VT-d alike): table walks,
// command and descriptor fetches, event-log entries, completion and status
// writes. Addresses it is given (base registers, table entries) may carry the
// SME C-bit, as the kernel programs them; the bit selects the host key exactly
// as it does for DMA.

import type { MemoryController, WriteResult } from './memory-controller.js';
import type { DmaResult } from './dma-port.js';

/** One page of a DMA transfer as the IOMMU translated it, or the result that stops the transfer. */
export type PageTranslation = { ok: true; addr: number } | { ok: false; result: DmaResult };

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
   * One DMA transfer from `requester` starting at bus address `start`. Every
   * page is translated (by the IOMMU's `translate`) and found in DRAM before
   * anything moves, so a fault leaves memory untouched; then it is read or
   * written as the device's, page by page. A write the memory controller
   * refuses stops the transfer with what `refused` makes of it.
   */
  dma(
    requester: string, start: number, buf: Uint8Array, write: boolean, translate: (busAddr: number) => PageTranslation,
    refused: (at: { busAddr: number; pa: number }, why: Extract<WriteResult, { ok: false }>) => DmaResult,
  ): DmaResult {
    const chunks: { pa: number; keyId: number; off: number; len: number }[] = [];
    let off = 0;
    do {
      const a = start + off;
      const len = Math.min(buf.length - off, 4096 - (a % 4096));
      const t = translate(a);
      if (!t.ok) return t.result;
      const loc = this.locate(t.addr);
      if (!this.backed(loc.pa, len)) return { ok: false, fault: 'master-abort', detail: `no memory at 0x${loc.pa.toString(16)}` };
      chunks.push({ pa: loc.pa, keyId: loc.keyId, off, len });
      off += len;
    } while (off < buf.length);
    for (const c of chunks) {
      const part = buf.subarray(c.off, c.off + c.len);
      if (!write) {
        this.mc.read(c.pa, part, { keyId: c.keyId });
        continue;
      }
      const w = this.mc.write(c.pa, part, { kind: 'device', name: requester }, { keyId: c.keyId });
      if (!w.ok) return refused({ busAddr: start + c.off, pa: c.pa }, w);
    }
    return { ok: true, pa: chunks[0]!.pa };
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
