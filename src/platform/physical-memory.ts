// DRAM as sparse 4 KiB frames. Only frames something wrote exist, so a 16 TiB
// host costs what it touches. A frame that was never written reads as zeros.

export const FRAME_SIZE = 4096;
export const FRAME_SHIFT = 12;

/** DRAM frozen at one instant. */
export interface DramSnapshot {
  /** Frames that existed then, ascending. */
  readonly frames: readonly number[];
  /** A frame's bytes then (undefined: it was zero). Do not modify. */
  frame(pfn: number): Uint8Array | undefined;
  close(): void;
}

/** Frames are carved out of slabs so touching many pages does not mean many small allocations. */
const SLAB_FRAMES = 256;

/**
 * Frames of disposed memories, reused by the next machine in this thread:
 * back-to-back runs (a matrix) then recycle memory instead of making the
 * engine allocate, fault in and collect ~100 MiB per run. Bounded.
 */
const framePool: Uint8Array[] = [];
const FRAME_POOL_MAX = (512 * 2 ** 20) / FRAME_SIZE;

export class PhysicalMemory {
  readonly size: number;
  #frames = new Map<number, Uint8Array>();
  #sorted: number[] | null = [];
  #slab: ArrayBuffer | undefined;
  #slabUsed = SLAB_FRAMES;
  /** Frames given back by zero(), reused before the slab grows. */
  #spare: Uint8Array[] = [];
  /** Open snapshots: frames they share with live memory are copied before the next write. */
  #snapshots: Map<number, Uint8Array>[] = [];

  constructor(size: number) {
    if (!Number.isSafeInteger(size) || size <= 0 || size % FRAME_SIZE !== 0) {
      throw new RangeError(`Cannot create physical memory: size ${size} is not a positive multiple of ${FRAME_SIZE}`);
    }
    this.size = size;
  }

  /** Frames that exist (were written), for accounting and tests. */
  get framesPresent(): number {
    return this.#frames.size;
  }

  /** The frame's bytes if it exists; undefined means all zeros. Callers must not keep it across writes they do not own. */
  peekFrame(pfn: number): Uint8Array | undefined {
    return this.#frames.get(pfn);
  }

  /** The frame's bytes, created zeroed if absent. */
  frameForWrite(pfn: number): Uint8Array {
    let f = this.#frames.get(pfn);
    if (f !== undefined && this.#shared(pfn, f)) {
      // Copy on write: the snapshot keeps the old bytes, live memory gets its own copy.
      const copy = this.#newFrame();
      copy.set(f);
      this.#frames.set(pfn, copy);
      return copy;
    }
    if (f === undefined) {
      this.#check(pfn * FRAME_SIZE, FRAME_SIZE);
      f = this.#newFrame();
      this.#frames.set(pfn, f);
      this.#sorted = null;
    }
    return f;
  }

  read(pa: number, dst: Uint8Array): void {
    this.#check(pa, dst.length);
    const off0 = pa % FRAME_SIZE;
    if (off0 + dst.length <= FRAME_SIZE) {
      // Fast path: within one frame, which is nearly every access.
      const f = this.#frames.get((pa - off0) / FRAME_SIZE);
      if (f === undefined) dst.fill(0);
      else if (dst.length === FRAME_SIZE) dst.set(f);
      else dst.set(f.subarray(off0, off0 + dst.length));
      return;
    }
    let done = 0;
    while (done < dst.length) {
      const a = pa + done;
      const pfn = Math.floor(a / FRAME_SIZE);
      const off = a - pfn * FRAME_SIZE;
      const n = Math.min(FRAME_SIZE - off, dst.length - done);
      const f = this.#frames.get(pfn);
      if (f === undefined) dst.fill(0, done, done + n);
      else dst.set(f.subarray(off, off + n), done);
      done += n;
    }
  }

  write(pa: number, src: Uint8Array): void {
    this.#check(pa, src.length);
    const off0 = pa % FRAME_SIZE;
    if (off0 + src.length <= FRAME_SIZE) {
      this.frameForWrite((pa - off0) / FRAME_SIZE).set(src, off0);
      return;
    }
    let done = 0;
    while (done < src.length) {
      const a = pa + done;
      const pfn = Math.floor(a / FRAME_SIZE);
      const off = a - pfn * FRAME_SIZE;
      const n = Math.min(FRAME_SIZE - off, src.length - done);
      this.frameForWrite(pfn).set(src.subarray(done, done + n), off);
      done += n;
    }
  }

  /** Zeroes a range; whole frames are dropped, so clearing a huge table costs what it had touched. */
  zero(pa: number, length: number): void {
    this.#check(pa, length);
    if (length === 0) return;
    const first = Math.floor(pa / FRAME_SIZE);
    const last = Math.floor((pa + length - 1) / FRAME_SIZE);
    for (const pfn of this.presentFrames(first, last + 1)) {
      const f = this.#frames.get(pfn)!;
      const from = Math.max(pa, pfn * FRAME_SIZE) - pfn * FRAME_SIZE;
      const to = Math.min(pa + length, (pfn + 1) * FRAME_SIZE) - pfn * FRAME_SIZE;
      if (from === 0 && to === FRAME_SIZE) {
        this.#frames.delete(pfn);
        this.#sorted = null;
        if (!this.#shared(pfn, f)) {
          f.fill(0);
          this.#spare.push(f);
        }
      } else this.frameForWrite(pfn).fill(0, from, to);
    }
  }

  /** Existing frames in [startPfn, endPfn), ascending. */
  presentFrames(startPfn: number, endPfn: number): number[] {
    const s = this.#sortedFrames();
    let lo = 0;
    let hi = s.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (s[mid]! < startPfn) lo = mid + 1;
      else hi = mid;
    }
    const out: number[] = [];
    for (let i = lo; i < s.length && s[i]! < endPfn; i++) out.push(s[i]!);
    return out;
  }

  /**
   * A read-only view of DRAM as it is now, costing nothing until memory
   * changes: frames written afterwards are copied first. Close it when done.
   */
  snapshot(): DramSnapshot {
    const frames = new Map(this.#frames);
    this.#snapshots.push(frames);
    const sorted = [...frames.keys()].sort((a, b) => a - b);
    return {
      frames: sorted,
      frame: (pfn) => frames.get(pfn),
      close: () => {
        this.#snapshots = this.#snapshots.filter((x) => x !== frames);
      },
    };
  }

  #shared(pfn: number, f: Uint8Array): boolean {
    for (const snap of this.#snapshots) if (snap.get(pfn) === f) return true;
    return false;
  }

  /**
   * Gives every frame back to the pool for the next machine; this memory must
   * not be used afterwards (open snapshots keep their frames).
   */
  dispose(): void {
    const kept = new Set<Uint8Array>();
    for (const snap of this.#snapshots) for (const f of snap.values()) kept.add(f);
    for (const f of [...this.#frames.values(), ...this.#spare]) {
      if (framePool.length >= FRAME_POOL_MAX) break;
      if (!kept.has(f)) framePool.push(f);
    }
    this.#frames = new Map();
    this.#spare = [];
    this.#sorted = [];
    this.#slab = undefined;
    this.#slabUsed = SLAB_FRAMES;
  }

  #newFrame(): Uint8Array {
    const spare = this.#spare.pop();
    if (spare !== undefined) return spare;
    const pooled = framePool.pop();
    if (pooled !== undefined) {
      pooled.fill(0);
      return pooled;
    }
    if (this.#slabUsed === SLAB_FRAMES || this.#slab === undefined) {
      this.#slab = new ArrayBuffer(SLAB_FRAMES * FRAME_SIZE);
      this.#slabUsed = 0;
    }
    return new Uint8Array(this.#slab, FRAME_SIZE * this.#slabUsed++, FRAME_SIZE);
  }

  #sortedFrames(): number[] {
    if (this.#sorted === null) this.#sorted = [...this.#frames.keys()].sort((a, b) => a - b);
    return this.#sorted;
  }

  #check(pa: number, length: number): void {
    if (!(pa >= 0) || pa + length > this.size || !Number.isSafeInteger(pa)) {
      throw new RangeError(`Cannot access physical memory at 0x${pa.toString(16)} (+0x${length.toString(16)}): outside DRAM of size 0x${this.size.toString(16)}`);
    }
  }
}
