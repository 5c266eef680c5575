// The IOTLB: translations cached per (domain id, 4 KiB IOVA page), as the
// hardware tags them by domain. Entries outlive changes to the page tables
// in memory until INVALIDATE_IOMMU_PAGES or INVALIDATE_IOMMU_ALL drops them;
// that staleness is the point of modelling it. Capacity is fixed and the
// oldest entry goes first, so memory stays bounded and replay exact.

import { FifoCache } from '../fifo-cache.js';

export interface IotlbEntry {
  readonly domainId: number;
  /** IOVA page number (IOVA / 4096). */
  readonly iovaPfn: number;
  /** System address of the 4 KiB page (may carry the C-bit). */
  readonly page: number;
  readonly ir: boolean;
  readonly iw: boolean;
}

export const DEFAULT_IOTLB_CAPACITY = 4096;

export class Iotlb {
  readonly #cache: FifoCache<IotlbEntry>;

  constructor(capacity = DEFAULT_IOTLB_CAPACITY) {
    this.#cache = new FifoCache(capacity, 'IOTLB');
  }

  get capacity(): number {
    return this.#cache.capacity;
  }

  get size(): number {
    return this.#cache.size;
  }

  lookup(domainId: number, iovaPfn: number): IotlbEntry | undefined {
    return this.#cache.get(`${domainId}:${iovaPfn}`);
  }

  fill(e: IotlbEntry): void {
    this.#cache.set(`${e.domainId}:${e.iovaPfn}`, e);
  }

  /** Drops the domain's entries whose IOVA lies in [first, end); returns how many. */
  invalidate(domainId: number, first: bigint, end: bigint): number {
    return this.#cache.dropWhere((e) => {
      const iova = BigInt(e.iovaPfn) * 4096n;
      return e.domainId === domainId && iova >= first && iova < end;
    });
  }

  clear(): number {
    return this.#cache.clear();
  }
}
