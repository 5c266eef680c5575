// The memory controller: the only path to DRAM for CPUs and devices. It owns
// the encryption key slots (slot 0 is "no encryption"; later slots hold the
// SME host key and guest keys) and lets observers see who wrote where.

import type { PhysicalMemory } from './physical-memory.js';

export type Requester =
  /** `asid` set (non-zero): the CPU runs an SEV guest with that ASID; absent or 0: the host (hypervisor). */
  | { readonly kind: 'cpu'; readonly id: number; readonly asid?: number }
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
  /**
   * Hardware's own table updates (RMPUPDATE and PSMASH writing RMP entries,
   * the security processor writing its pages): the write guard (RMP check)
   * does not apply to them.
   */
  readonly guardExempt?: boolean;
}

/** What a write did: landed, or refused by the write guard (nothing landed). */
export type WriteResult = { ok: true } | { ok: false; fault: 'rmp-violation'; pa: number; detail: string };

/** A refusal from the write guard: the physical address of the offending page and why. */
export interface WriteRefusal {
  readonly pa: number;
  readonly detail: string;
}

/**
 * Checks a write before it lands (the SNP RMP check, installed by the
 * machine when SNP is enabled); returns undefined to let it through.
 * Reads are not checked: on hardware a host read of a guest page returns
 * ciphertext rather than faulting, which the key slots already model.
 */
export type WriteGuard = (pa: number, length: number, requester: Requester) => WriteRefusal | undefined;

const WRITE_OK: WriteResult = Object.freeze({ ok: true });

export class MemoryController {
  readonly dram: PhysicalMemory;
  #slots = new Map<number, KeySlot>();
  #observers: WriteObserver[] = [];
  bytesRead = 0;
  bytesWritten = 0;
  /** Undefined while nothing is checked (SNP off): the whole cost of the check is this one test. */
  #guard: WriteGuard | undefined;
  /** Writes the guard refused. */
  writesRefused = 0;

  constructor(dram: PhysicalMemory) {
    this.dram = dram;
    dram.setCipherResolver((id) => this.#slot(id));
  }

  /** Programs a key slot (id >= 1). */
  setKeySlot(id: number, slot: KeySlot): void {
    if (!(id >= 1)) throw new RangeError(`Cannot program key slot ${id}: slot 0 is the plaintext slot`);
    this.#slots.set(id, slot);
  }

  keySlot(id: number): KeySlot | undefined {
    return this.#slots.get(id);
  }

  /** Installs (or, with undefined, removes) the check every guarded write passes through. */
  setWriteGuard(guard: WriteGuard | undefined): void {
    this.#guard = guard;
  }

  get writeGuarded(): boolean {
    return this.#guard !== undefined;
  }

  #refuse(pa: number, length: number, requester: Requester, opts: AccessOptions | undefined): WriteResult | undefined {
    if (this.#guard === undefined || opts?.guardExempt === true) return undefined;
    const r = this.#guard(pa, length, requester);
    if (r === undefined) return undefined;
    this.writesRefused++;
    return { ok: false, fault: 'rmp-violation', pa: r.pa, detail: r.detail };
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
    if (keyId === 0) this.dram.read(pa, dst);
    else this.dram.readAs(pa, dst, keyId);
  }

  /**
   * Writes `src` at `pa`. When the write guard refuses any page of the range,
   * nothing lands (the model does not write partial ranges) and the refusal
   * is returned; callers that cannot be refused may ignore the result.
   */
  write(pa: number, src: Uint8Array, requester: Requester, opts?: AccessOptions): WriteResult {
    if (this.#guard !== undefined) {
      const refused = this.#refuse(pa, src.length, requester, opts);
      if (refused !== undefined) return refused;
    }
    this.bytesWritten += src.length;
    const keyId = opts?.keyId ?? 0;
    // DRAM stores encrypted frames as plaintext tagged with the key; raw reads produce the ciphertext.
    if (keyId === 0) this.dram.write(pa, src);
    else this.dram.writeAs(pa, src, keyId);
    for (const o of this.#observers) o(pa, src.length, requester);
    return WRITE_OK;
  }

  /**
   * Zeroes memory as seen through key slot `keyId`: plaintext zeros (frames
   * dropped, cheap) for slot 0, the encryption of zeros otherwise.
   */
  zero(pa: number, length: number, requester: Requester, opts?: AccessOptions): WriteResult {
    const keyId = opts?.keyId ?? 0;
    if (keyId !== 0) return this.write(pa, new Uint8Array(length), requester, opts);
    if (this.#guard !== undefined) {
      const refused = this.#refuse(pa, length, requester, opts);
      if (refused !== undefined) return refused;
    }
    this.dram.zero(pa, length);
    this.bytesWritten += length;
    for (const o of this.#observers) o(pa, length, requester);
    return WRITE_OK;
  }

  #slot(id: number): KeySlot {
    const s = this.#slots.get(id);
    if (s === undefined) throw new Error(`Memory access used key slot ${id}, which was never programmed`);
    return s;
  }
}
