// The IOTLB: translations cached per (domain id, 4 KiB IOVA page), as the
// hardware tags them by domain. Entries outlive changes to the page tables
// in memory until INVALIDATE_IOMMU_PAGES or INVALIDATE_IOMMU_ALL drops them;
// that staleness is the point of modelling it. Capacity is fixed and the
// oldest entry goes first, so memory stays bounded and replay exact.

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
  readonly capacity: number;
  readonly #entries = new Map<string, IotlbEntry>();

  constructor(capacity = DEFAULT_IOTLB_CAPACITY) {
    if (!(capacity >= 1)) throw new RangeError(`Cannot build IOTLB: capacity ${capacity} is not positive`);
    this.capacity = capacity;
  }

  get size(): number {
    return this.#entries.size;
  }

  lookup(domainId: number, iovaPfn: number): IotlbEntry | undefined {
    return this.#entries.get(`${domainId}:${iovaPfn}`);
  }

  fill(e: IotlbEntry): void {
    const key = `${e.domainId}:${e.iovaPfn}`;
    this.#entries.delete(key);
    if (this.#entries.size >= this.capacity) {
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, e);
  }

  /** Drops the domain's entries whose IOVA lies in [first, end); returns how many. */
  invalidate(domainId: number, first: bigint, end: bigint): number {
    let n = 0;
    for (const [key, e] of this.#entries) {
      if (e.domainId !== domainId) continue;
      const iova = BigInt(e.iovaPfn) * 4096n;
      if (iova >= first && iova < end) {
        this.#entries.delete(key);
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
