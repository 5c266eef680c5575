// DRAM as sparse 4 KiB frames. Only frames something wrote exist, so a 16 TiB
// host costs what it touches. A frame that was never written reads as zeros.
//
// Encrypted frames are stored as plaintext tagged with the key slot that
// encrypts them; every raw observation (read, frameForWrite, snapshots)
// produces the ciphertext on demand, so what DRAM "holds" is exactly the
// ciphertext while a reader with the right key costs no cipher work.

export const FRAME_SIZE = 4096;
export const FRAME_SHIFT = 12;
/** Zeroing at most this many frames looks each one up instead of using the sorted frame list. */
const SHORT_ZERO_FRAMES = 1024;

/** A cipher the memory controller lends DRAM to produce ciphertext on demand. */
export interface FrameCipher {
  encrypt(pa: number, data: Uint8Array): void;
  decrypt(pa: number, data: Uint8Array): void;
}

/** DRAM frozen at one instant. */
export interface DramSnapshot {
  /** Frames that existed then, ascending. */
  readonly frames: readonly number[];
  /** A frame's raw bytes then, as DRAM held them (undefined: it was zero). Do not modify. */
  frame(pfn: number): Uint8Array | undefined;
  /** The frame as stored then: bytes and the key slot they are plaintext under (0: raw). Do not modify. */
  stored(pfn: number): { bytes: Uint8Array; keyId: number } | undefined;
  close(): void;
}

interface SnapshotState {
  frames: Map<number, Uint8Array>;
  tags: Map<number, number>;
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
  #snapshots: SnapshotState[] = [];
  /** Frames stored as plaintext under a key slot: pfn -> slot. */
  #tags = new Map<number, number>();
  #cipher: ((keyId: number) => FrameCipher) | undefined;

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

  /** Lets DRAM turn stored plaintext into the ciphertext it stands for. */
  setCipherResolver(fn: (keyId: number) => FrameCipher): void {
    this.#cipher = fn;
  }

  /** The frame's raw bytes if it exists (undefined: all zeros). A copy when the frame is stored as plaintext. */
  peekFrame(pfn: number): Uint8Array | undefined {
    const f = this.#frames.get(pfn);
    const tag = this.#tags.get(pfn);
    if (f === undefined || tag === undefined) return f;
    const raw = f.slice();
    this.#cipherFor(tag).encrypt(pfn * FRAME_SIZE, raw);
    return raw;
  }

  /** The frame's raw bytes to write into, created zeroed if absent (a stored-plaintext frame becomes ciphertext first). */
  frameForWrite(pfn: number): Uint8Array {
    const tag = this.#tags.get(pfn);
    const f = this.#own(pfn);
    if (tag !== undefined) {
      this.#cipherFor(tag).encrypt(pfn * FRAME_SIZE, f);
      this.#tags.delete(pfn);
    }
    return f;
  }

  /** Reads through key slot `keyId`: stored plaintext under that key is copied, anything else decrypted. */
  readAs(pa: number, dst: Uint8Array, keyId: number): void {
    this.#check(pa, dst.length);
    let done = 0;
    while (done < dst.length) {
      const a = pa + done;
      const off = a % FRAME_SIZE;
      const pfn = (a - off) / FRAME_SIZE;
      const n = Math.min(FRAME_SIZE - off, dst.length - done);
      const part = dst.subarray(done, done + n);
      const f = this.#frames.get(pfn);
      if (f !== undefined && this.#tags.get(pfn) === keyId) part.set(f.subarray(off, off + n));
      else {
        this.read(a, part);
        this.#cipherFor(keyId).decrypt(a, part);
      }
      done += n;
    }
  }

  /** Writes through key slot `keyId`: frames end up stored as plaintext under that key. */
  writeAs(pa: number, src: Uint8Array, keyId: number): void {
    this.#check(pa, src.length);
    let done = 0;
    while (done < src.length) {
      const a = pa + done;
      const off = a % FRAME_SIZE;
      const pfn = (a - off) / FRAME_SIZE;
      const n = Math.min(FRAME_SIZE - off, src.length - done);
      const tag = this.#tags.get(pfn);
      const f = this.#own(pfn);
      if (tag !== keyId && n !== FRAME_SIZE) {
        // The rest of the frame must read the same through the new key: re-express it as plaintext under `keyId`.
        if (tag !== undefined) this.#cipherFor(tag).encrypt(pfn * FRAME_SIZE, f);
        this.#cipherFor(keyId).decrypt(pfn * FRAME_SIZE, f);
      }
      f.set(src.subarray(done, done + n), off);
      this.#tags.set(pfn, keyId);
      done += n;
    }
  }

  /** Whether frame `pfn` holds what it held when `snap` was taken (no cipher work when both store the same way). */
  sameAsSnapshot(pfn: number, snap: DramSnapshot): boolean {
    const now = this.#frames.get(pfn);
    const then = snap.stored(pfn);
    if (now === undefined || then === undefined) return now === undefined && then === undefined;
    const tag = this.#tags.get(pfn) ?? 0;
    if (now === then.bytes && tag === then.keyId) return true;
    if (tag === then.keyId) return Buffer.compare(now, then.bytes) === 0;
    const a = this.peekFrame(pfn)!;
    const b = snap.frame(pfn)!;
    return Buffer.compare(a, b) === 0;
  }

  #cipherFor(keyId: number): FrameCipher {
    const c = this.#cipher?.(keyId);
    if (c === undefined) throw new Error(`DRAM has no cipher for key slot ${keyId}`);
    return c;
  }

  /** The live frame, created if absent, copied first if a snapshot shares it; its storage (tag) is unchanged. */
  #own(pfn: number): Uint8Array {
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
      const pfn = (pa - off0) / FRAME_SIZE;
      const f = this.#frames.get(pfn);
      if (f === undefined) dst.fill(0);
      else if (dst.length === FRAME_SIZE) dst.set(f);
      else dst.set(f.subarray(off0, off0 + dst.length));
      const tag = f === undefined ? undefined : this.#tags.get(pfn);
      if (tag !== undefined) this.#cipherFor(tag).encrypt(pa, dst);
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
      else {
        dst.set(f.subarray(off, off + n), done);
        const tag = this.#tags.get(pfn);
        if (tag !== undefined) this.#cipherFor(tag).encrypt(a, dst.subarray(done, done + n));
      }
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
    // A short range is checked frame by frame: sorting every frame for it costs far more (and zeroing invalidates the order).
    const frames = last - first < SHORT_ZERO_FRAMES
      ? Array.from({ length: last - first + 1 }, (_, i) => first + i).filter((pfn) => this.#frames.has(pfn))
      : this.presentFrames(first, last + 1);
    for (const pfn of frames) {
      const f = this.#frames.get(pfn)!;
      const from = Math.max(pa, pfn * FRAME_SIZE) - pfn * FRAME_SIZE;
      const to = Math.min(pa + length, (pfn + 1) * FRAME_SIZE) - pfn * FRAME_SIZE;
      if (from === 0 && to === FRAME_SIZE) {
        this.#frames.delete(pfn);
        this.#tags.delete(pfn);
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
    const state: SnapshotState = { frames: new Map(this.#frames), tags: new Map(this.#tags) };
    this.#snapshots.push(state);
    const sorted = [...state.frames.keys()].sort((a, b) => a - b);
    return {
      frames: sorted,
      frame: (pfn) => {
        const f = state.frames.get(pfn);
        const tag = state.tags.get(pfn);
        if (f === undefined || tag === undefined) return f;
        const raw = f.slice();
        this.#cipherFor(tag).encrypt(pfn * FRAME_SIZE, raw);
        return raw;
      },
      stored: (pfn) => {
        const f = state.frames.get(pfn);
        return f === undefined ? undefined : { bytes: f, keyId: state.tags.get(pfn) ?? 0 };
      },
      close: () => {
        this.#snapshots = this.#snapshots.filter((x) => x !== state);
      },
    };
  }

  #shared(pfn: number, f: Uint8Array): boolean {
    for (const snap of this.#snapshots) if (snap.frames.get(pfn) === f) return true;
    return false;
  }

  /**
   * Gives every frame back to the pool for the next machine; this memory must
   * not be used afterwards (open snapshots keep their frames).
   */
  dispose(): void {
    const kept = new Set<Uint8Array>();
    for (const snap of this.#snapshots) for (const f of snap.frames.values()) kept.add(f);
    for (const f of [...this.#frames.values(), ...this.#spare]) {
      if (framePool.length >= FRAME_POOL_MAX) break;
      if (!kept.has(f)) framePool.push(f);
    }
    this.#frames = new Map();
    this.#tags = new Map();
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
