// The IOTLB: leaf translations cached per (domain id, IOVA page), with
// superpage leaves cached once for their whole span, as hardware tags them.
// Entries outlive changes to the page tables until an IOTLB invalidation
// (register or queued) drops them. Capacity is fixed and the oldest entry
// goes first, so memory stays bounded and replay exact.

import { levelShift } from './second-level-table.js';
import { FifoCache } from '../fifo-cache.js';

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
  readonly #cache: FifoCache<VtdIotlbEntry>;

  constructor(capacity = DEFAULT_VTD_IOTLB_CAPACITY) {
    this.#cache = new FifoCache(capacity, 'IOTLB');
  }

  get capacity(): number {
    return this.#cache.capacity;
  }

  get size(): number {
    return this.#cache.size;
  }

  /** The entry covering `iova` in domain `did`, smallest page first. */
  lookup(did: number, iova: number): VtdIotlbEntry | undefined {
    for (let level = 1; level <= 3; level++) {
      const e = this.#cache.get(key(did, level, iova));
      if (e !== undefined) return e;
    }
    return undefined;
  }

  fill(e: VtdIotlbEntry): void {
    this.#cache.set(key(e.did, e.level, e.iova), e);
  }

  /** Drops entries matching `did` (undefined: every domain) that overlap [first, end); returns how many. */
  invalidate(did: number | undefined, first = 0, end = Number.POSITIVE_INFINITY): number {
    return this.#cache.dropWhere((e) => (did === undefined || e.did === did) && e.iova < end && e.iova + 2 ** levelShift(e.level) > first);
  }

  clear(): number {
    return this.#cache.clear();
  }
}
