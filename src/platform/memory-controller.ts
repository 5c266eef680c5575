// The memory controller: the only path to DRAM for CPUs and devices. It owns
// the encryption key slots (slot 0 is "no encryption"; later slots hold the
// SME host key and guest keys) and lets observers see who wrote where.

import { FRAME_SIZE, type PhysicalMemory } from './physical-memory.js';

export type Requester =
  | { readonly kind: 'cpu'; readonly id: number }
  | { readonly kind: 'device'; readonly name: string };

/** A cipher bound to a key slot: transforms a whole frame in place; the tweak is the physical address. */
export interface KeySlot {
  readonly name: string;
  encryptFrame(pa: number, frame: Uint8Array): void;
  decryptFrame(pa: number, frame: Uint8Array): void;
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
  readonly #scratch = new Uint8Array(FRAME_SIZE);
  bytesRead = 0;
  bytesWritten = 0;

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
    const keyId = opts?.keyId ?? 0;
    if (keyId === 0) {
      this.dram.read(pa, dst);
      return;
    }
    const slot = this.#slot(keyId);
    this.#eachFrame(pa, dst.length, (framePa, off, n, done) => {
      this.dram.read(framePa, this.#scratch);
      slot.decryptFrame(framePa, this.#scratch);
      dst.set(this.#scratch.subarray(off, off + n), done);
    });
  }

  write(pa: number, src: Uint8Array, requester: Requester, opts?: AccessOptions): void {
    this.bytesWritten += src.length;
    const keyId = opts?.keyId ?? 0;
    if (keyId === 0) {
      this.dram.write(pa, src);
    } else {
      const slot = this.#slot(keyId);
      this.#eachFrame(pa, src.length, (framePa, off, n, done) => {
        // Read-modify-write of the whole frame: the cipher works on frames.
        this.dram.read(framePa, this.#scratch);
        slot.decryptFrame(framePa, this.#scratch);
        this.#scratch.set(src.subarray(done, done + n), off);
        slot.encryptFrame(framePa, this.#scratch);
        this.dram.write(framePa, this.#scratch);
      });
    }
    for (const o of this.#observers) o(pa, src.length, requester);
  }

  /** Zeroes plaintext memory (used by firmware and table clears); observers see it as a write. */
  zero(pa: number, length: number, requester: Requester): void {
    this.dram.zero(pa, length);
    this.bytesWritten += length;
    for (const o of this.#observers) o(pa, length, requester);
  }

  #slot(id: number): KeySlot {
    const s = this.#slots.get(id);
    if (s === undefined) throw new Error(`Memory access used key slot ${id}, which was never programmed`);
    return s;
  }

  #eachFrame(pa: number, length: number, fn: (framePa: number, off: number, n: number, done: number) => void): void {
    let done = 0;
    while (done < length) {
      const a = pa + done;
      const framePa = a - (a % FRAME_SIZE);
      const off = a - framePa;
      const n = Math.min(FRAME_SIZE - off, length - done);
      fn(framePa, off, n, done);
      done += n;
    }
  }
}
