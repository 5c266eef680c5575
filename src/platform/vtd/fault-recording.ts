// Primary fault logging (ref §2.6): CAP.NFR+1 fault recording registers of
// 128 bits at CAP.FRO×16. Hardware fills them round-robin; a record stays
// until software writes 1 to its F bit. A fault that finds its next slot
// still full sets FSTS.PFO and is lost, and while PFO is set every further
// fault is lost too (QEMU's reading; the reference lists PFO only as
// "primary fault overflow"). PPF is the OR of the F bits; FRI names the
// record that made PPF go from 0 to 1.
//
// Record layout (lo = bits 63:0, hi = bits 127:64): FI (fault address
// 63:12, or the interrupt index in 63:48), SID hi 15:0, PP hi 31, FR hi
// 39:32, PV hi 59:40, T hi 62 (set for reads), F hi 63.

import { bit, bits } from './entry-bytes.js';

export const FRCD_BYTES = 16;
export const FRCD_F = 1n << 63n;
export const FRCD_T = 1n << 62n;
export const FRCD_PP = 1n << 31n;

export interface FaultRecordFields {
  readonly sourceId: number;
  readonly reason: number;
  /** DMA faults: the faulting page address. */
  readonly address: number;
  /** Interrupt faults: the interrupt index. */
  readonly index?: number;
  /** T: the request was a read (DMA Read in software's words). */
  readonly read: boolean;
  readonly pasid?: number;
}

export function encodeFaultRecord(f: FaultRecordFields): { lo: bigint; hi: bigint } {
  const lo = f.index !== undefined ? BigInt(f.index & 0xffff) << 48n : BigInt(f.address) & 0xffff_ffff_ffff_f000n;
  const hi = BigInt(f.sourceId & 0xffff) | (f.pasid !== undefined ? FRCD_PP | (BigInt(f.pasid & 0xf_ffff) << 40n) : 0n)
    | (BigInt(f.reason & 0xff) << 32n) | (f.read ? FRCD_T : 0n) | FRCD_F;
  return { lo, hi };
}

export interface DecodedFaultRecord {
  readonly valid: boolean;
  readonly sourceId: number;
  readonly reason: number;
  readonly address: number;
  readonly index: number;
  readonly read: boolean;
  readonly pasid: number | undefined;
}

/** A record as software reads it (both halves). */
export function decodeFaultRecord(lo: bigint, hi: bigint): DecodedFaultRecord {
  return {
    valid: bit(hi, 63), sourceId: bits(hi, 0, 16), reason: bits(hi, 32, 8), address: Number(lo & 0xffff_ffff_ffff_f000n),
    index: bits(lo, 48, 16), read: bit(hi, 62), pasid: bit(hi, 31) ? bits(hi, 40, 20) : undefined,
  };
}

export type RecordOutcome =
  | { readonly kind: 'recorded'; readonly slot: number; /** PPF went from 0 to 1 with this record. */ readonly first: boolean }
  | { readonly kind: 'overflow'; readonly slot: number }
  | { readonly kind: 'lost-pfo' };

export class FaultRecorder {
  readonly count: number;
  readonly #lo: bigint[];
  readonly #hi: bigint[];
  #next = 0;
  pfo = false;
  fri = 0;

  constructor(count: number) {
    if (!(Number.isInteger(count) && count >= 1 && count <= 256)) throw new RangeError(`Cannot build fault recorder: ${count} records is not 1..256`);
    this.count = count;
    this.#lo = new Array<bigint>(count).fill(0n);
    this.#hi = new Array<bigint>(count).fill(0n);
  }

  get ppf(): boolean {
    return this.#hi.some((h) => (h & FRCD_F) !== 0n);
  }

  /** The slot the next fault goes to. */
  get nextSlot(): number {
    return this.#next;
  }

  record(f: FaultRecordFields): RecordOutcome {
    if (this.pfo) return { kind: 'lost-pfo' };
    const slot = this.#next;
    if ((this.#hi[slot]! & FRCD_F) !== 0n) {
      this.pfo = true;
      return { kind: 'overflow', slot };
    }
    const first = !this.ppf;
    const { lo, hi } = encodeFaultRecord(f);
    this.#lo[slot] = lo;
    this.#hi[slot] = hi;
    if (first) this.fri = slot;
    this.#next = (slot + 1) % this.count;
    return { kind: 'recorded', slot, first };
  }

  read(slot: number): { lo: bigint; hi: bigint } {
    return { lo: this.#lo[slot] ?? 0n, hi: this.#hi[slot] ?? 0n };
  }

  /** Software writes the high half: only F reacts (write 1 to clear). Returns whether a record was cleared. */
  writeHigh(slot: number, value: bigint): boolean {
    const hi = this.#hi[slot];
    if (hi === undefined || (value & FRCD_F) === 0n || (hi & FRCD_F) === 0n) return false;
    this.#hi[slot] = hi & ~FRCD_F;
    return true;
  }

  reset(): void {
    this.#lo.fill(0n);
    this.#hi.fill(0n);
    this.#next = 0;
    this.pfo = false;
    this.fri = 0;
  }
}
