// The IOTLB: leaf translations cached per (domain id, IOVA page), with
// superpage leaves cached once for their whole span, as hardware tags them.
// Entries outlive changes to the page tables until an IOTLB invalidation
// (register or queued) drops them. Capacity is fixed and the oldest entry
// goes first, so memory stays bounded and replay exact.

import { levelShift } from './second-level-table.js';

export interface VtdIotlbEntry {
  readonly did: number;
  /** 1 for a 4 KiB leaf, 2 for 2 MiB, 3 for 1 GiB. */
  readonly level: number;
  /** IOVA of the start of the span the entry maps. */
  readonly iova: number;
  /** Address the span starts at (may carry the C-bit). */
  readonly frame: number;
  readonly read: boolean;
  readonly write: boolean;
}

export const DEFAULT_VTD_IOTLB_CAPACITY = 4096;

const key = (did: number, level: number, iova: number): string => `${did}:${level}:${Math.floor(iova / 2 ** levelShift(level))}`;

export class VtdIotlb {
  readonly capacity: number;
  readonly #entries = new Map<string, VtdIotlbEntry>();

  constructor(capacity = DEFAULT_VTD_IOTLB_CAPACITY) {
    if (!(capacity >= 1)) throw new RangeError(`Cannot build IOTLB: capacity ${capacity} is not positive`);
    this.capacity = capacity;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The entry covering `iova` in domain `did`, smallest page first. */
  lookup(did: number, iova: number): VtdIotlbEntry | undefined {
    for (let level = 1; level <= 3; level++) {
      const e = this.#entries.get(key(did, level, iova));
      if (e !== undefined) return e;
    }
    return undefined;
  }

  fill(e: VtdIotlbEntry): void {
    const k = key(e.did, e.level, e.iova);
    this.#entries.delete(k);
    if (this.#entries.size >= this.capacity) {
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
    this.#entries.set(k, e);
  }

  /** Drops entries matching `did` (undefined: every domain) that overlap [first, end); returns how many. */
  invalidate(did: number | undefined, first = 0, end = Number.POSITIVE_INFINITY): number {
    let n = 0;
    for (const [k, e] of this.#entries) {
      if (did !== undefined && e.did !== did) continue;
      const eEnd = e.iova + 2 ** levelShift(e.level);
      if (e.iova < end && eEnd > first) {
        this.#entries.delete(k);
        n++;
      }
    }
    return n;
  }

  clear(): number {
    const n = this.#entries.size;
    this.#entries.clear();
    return n;
  }
}
