// Where a vmcore writer pulls page contents from. The simulator's physical
// memory, another dump, or a test fixture can all be a PageSource.

export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;

export interface PageSource {
  /** Frame numbers in [startPfn, endPfn) whose bytes may be non-zero, ascending; every other frame reads as zero. */
  presentFrames(startPfn: number, endPfn: number): Iterable<number>;
  /** Copies frame `pfn` (PAGE_SIZE bytes) into dst. */
  readFrame(pfn: number, dst: Uint8Array): void;
}

/** A PageSource over a map of frames, for tests and small tools. Frames are not copied. */
export class MapPageSource implements PageSource {
  readonly #frames: ReadonlyMap<number, Uint8Array>;
  readonly #sorted: number[];

  constructor(frames: ReadonlyMap<number, Uint8Array>) {
    for (const [pfn, bytes] of frames) {
      if (!Number.isSafeInteger(pfn) || pfn < 0 || bytes.length !== PAGE_SIZE) {
        throw new RangeError(`Cannot build page source: frame ${pfn} is not a ${PAGE_SIZE}-byte page at a valid frame number`);
      }
    }
    this.#frames = frames;
    this.#sorted = [...frames.keys()].sort((a, b) => a - b);
  }

  *presentFrames(startPfn: number, endPfn: number): Iterable<number> {
    // Binary search for the first frame >= startPfn.
    let lo = 0;
    let hi = this.#sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#sorted[mid] ?? 0) < startPfn) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.#sorted.length; i++) {
      const pfn = this.#sorted[i] ?? 0;
      if (pfn >= endPfn) break;
      yield pfn;
    }
  }

  readFrame(pfn: number, dst: Uint8Array): void {
    const f = this.#frames.get(pfn);
    if (f) dst.set(f);
    else dst.fill(0, 0, PAGE_SIZE);
  }
}
