// A cache of fixed capacity whose oldest entry goes first: what the IOMMUs'
// IOTLBs need, so memory stays bounded and a replay evicts exactly the same
// entries. Entries stay until evicted or dropped, however the tables they
// were read from change: that staleness is why the caches are modelled.

export class FifoCache<V> {
  readonly capacity: number;
  readonly #entries = new Map<string, V>();

  constructor(capacity: number, what: string) {
    if (!(capacity >= 1)) throw new RangeError(`Cannot build ${what}: capacity ${capacity} is not positive`);
    this.capacity = capacity;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: string): V | undefined {
    return this.#entries.get(key);
  }

  /** Stores `v` as the newest entry, evicting the oldest when full. */
  set(key: string, v: V): void {
    this.#entries.delete(key);
    if (this.#entries.size >= this.capacity) {
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, v);
  }

  /** Drops every entry `drop` picks; returns how many. */
  dropWhere(drop: (v: V) => boolean): number {
    let n = 0;
    for (const [k, v] of this.#entries) {
      if (drop(v)) {
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
