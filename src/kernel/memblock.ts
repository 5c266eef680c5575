// memblock: the boot-time physical allocator. It starts from the usable e820
// ranges; every reservation (kernel image, page tables, crash region) is cut
// out of the free list. Allocation is top-down within bounds, as memblock's
// default is.

export interface Range {
  start: number;
  end: number;
}

export class Memblock {
  #free: Range[];
  readonly total: number;

  constructor(usable: readonly Range[]) {
    const sorted = usable.map((r) => ({ ...r })).filter((r) => r.end > r.start).sort((a, b) => a.start - b.start);
    // Touching or overlapping ranges are one block, as memblock_add() merges them.
    this.#free = [];
    for (const r of sorted) {
      const last = this.#free[this.#free.length - 1];
      if (last !== undefined && r.start <= last.end) last.end = Math.max(last.end, r.end);
      else this.#free.push(r);
    }
    this.total = this.#free.reduce((n, r) => n + (r.end - r.start), 0);
  }

  get freeRanges(): readonly Range[] {
    return this.#free;
  }

  isFree(start: number, size: number): boolean {
    return this.#free.some((r) => start >= r.start && start + size <= r.end);
  }

  /** Takes [start, start+size) out of the free list; false when any part is not free. */
  reserve(start: number, size: number): boolean {
    if (!this.isFree(start, size)) return false;
    this.#cut(start, start + size);
    return true;
  }

  /** Highest `align`-aligned free block of `size` inside [min, max), taken out of the free list. */
  alloc(size: number, align: number, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
    for (let i = this.#free.length - 1; i >= 0; i--) {
      const r = this.#free[i]!;
      const hi = Math.min(r.end, max);
      const lo = Math.max(r.start, min);
      if (hi - lo < size) continue;
      const base = Math.floor((hi - size) / align) * align;
      if (base >= lo) {
        this.#cut(base, base + size);
        return base;
      }
    }
    return undefined;
  }

  /** Lowest aligned free block of `size` in [min, max) (bottom-up). */
  allocLow(size: number, align: number, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
    for (const r of this.#free) {
      const lo = Math.ceil(Math.max(r.start, min) / align) * align;
      if (lo + size <= Math.min(r.end, max)) {
        this.#cut(lo, lo + size);
        return lo;
      }
    }
    return undefined;
  }

  #cut(start: number, end: number): void {
    const out: Range[] = [];
    for (const r of this.#free) {
      if (end <= r.start || start >= r.end) {
        out.push(r);
        continue;
      }
      if (r.start < start) out.push({ start: r.start, end: start });
      if (end < r.end) out.push({ start: end, end: r.end });
    }
    this.#free = out;
  }
}
