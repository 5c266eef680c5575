// The memory controller: the only path to DRAM for CPUs and devices. It owns
// the encryption key slots (slot 0 is "no encryption"; later slots hold the
// SME host key and guest keys) and lets observers see who wrote where.

import type { PhysicalMemory } from './physical-memory.js';

export type Requester =
  | { readonly kind: 'cpu'; readonly id: number }
  | { readonly kind: 'device'; readonly name: string };

/** A cipher bound to a key slot: transforms bytes in place; the tweak is their physical address. */
export interface KeySlot {
  readonly name: string;
  encrypt(pa: number, data: Uint8Array): void;
  decrypt(pa: number, data: Uint8Array): void;
}

export type WriteObserver = (pa: number, length: number, requester: Requester) => void;

export interface AccessOptions {
  /** Key slot to apply; 0 (the default) is plaintext access. */
  readonly keyId?: number;
}

export class MemoryController {
  readonly dram: PhysicalMemory;
  #slots = new Map<number, KeySlot>();
  #observers: WriteObserver[] = [];
  bytesRead = 0;
  bytesWritten = 0;
  #scratch = new Uint8Array(4096);

  constructor(dram: PhysicalMemory) {
    this.dram = dram;
  }

  /** Programs a key slot (id >= 1). */
  setKeySlot(id: number, slot: KeySlot): void {
    if (!(id >= 1)) throw new RangeError(`Cannot program key slot ${id}: slot 0 is the plaintext slot`);
    this.#slots.set(id, slot);
  }

  keySlot(id: number): KeySlot | undefined {
    return this.#slots.get(id);
  }

  addWriteObserver(fn: WriteObserver): () => void {
    this.#observers.push(fn);
    return () => {
      const i = this.#observers.indexOf(fn);
      if (i >= 0) this.#observers.splice(i, 1);
    };
  }

  read(pa: number, dst: Uint8Array, opts?: AccessOptions): void {
    this.bytesRead += dst.length;
    this.dram.read(pa, dst);
    const keyId = opts?.keyId ?? 0;
    if (keyId !== 0) this.#slot(keyId).decrypt(pa, dst);
  }

  write(pa: number, src: Uint8Array, requester: Requester, opts?: AccessOptions): void {
    this.bytesWritten += src.length;
    const keyId = opts?.keyId ?? 0;
    if (keyId === 0) this.dram.write(pa, src);
    else if ((pa % 4096) + src.length <= 4096) {
      // Within one frame: encrypt in place in DRAM, no intermediate copy.
      const off = pa % 4096;
      const frame = this.dram.frameForWrite((pa - off) / 4096).subarray(off, off + src.length);
      frame.set(src);
      this.#slot(keyId).encrypt(pa, frame);
    } else {
      // Encrypt a copy (the caller's buffer stays plaintext); one scratch buffer serves every write.
      if (this.#scratch.length < src.length) this.#scratch = new Uint8Array(Math.max(src.length, 2 * this.#scratch.length));
      const enc = this.#scratch.subarray(0, src.length);
      enc.set(src);
      this.#slot(keyId).encrypt(pa, enc);
      this.dram.write(pa, enc);
    }
    for (const o of this.#observers) o(pa, src.length, requester);
  }

  /**
   * Zeroes memory as seen through key slot `keyId`: plaintext zeros (frames
   * dropped, cheap) for slot 0, the encryption of zeros otherwise.
   */
  zero(pa: number, length: number, requester: Requester, opts?: AccessOptions): void {
    const keyId = opts?.keyId ?? 0;
    if (keyId !== 0) {
      this.write(pa, new Uint8Array(length), requester, opts);
      return;
    }
    this.dram.zero(pa, length);
    this.bytesWritten += length;
    for (const o of this.#observers) o(pa, length, requester);
  }

  #slot(id: number): KeySlot {
    const s = this.#slots.get(id);
    if (s === undefined) throw new Error(`Memory access used key slot ${id}, which was never programmed`);
    return s;
  }
}
