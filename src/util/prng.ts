// A small, fast, seedable generator (xoshiro128**) so every run with the same
// seed produces the same bytes.

export class Prng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number, stream = 0) {
    // splitmix32 expands the seed into four non-zero words.
    let s = (seed ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#a = next() | 1;
    this.#b = next();
    this.#c = next();
    this.#d = next();
  }

  /** A uniform 32-bit unsigned integer. */
  nextU32(): number {
    const r = Math.imul(rotl(Math.imul(this.#b, 5), 7), 9) >>> 0;
    const t = this.#b << 9;
    this.#c ^= this.#a;
    this.#d ^= this.#b;
    this.#b ^= this.#c;
    this.#a ^= this.#d;
    this.#c ^= t;
    this.#d = rotl(this.#d, 11);
    return r;
  }

  /** Uniform integer in [0, n). */
  below(n: number): number {
    if (n <= 2 ** 32) return Math.floor((this.nextU32() / 2 ** 32) * n);
    return Math.floor((this.nextU32() * 2 ** 21 + (this.nextU32() >>> 11)) / 2 ** 53 * n);
  }

  /** Fills `dst` with random bytes (length a multiple of 4 is fastest). */
  fill(dst: Uint8Array): void {
    const words = dst.length >>> 2;
    let a = this.#a;
    let b = this.#b;
    let c = this.#c;
    let d = this.#d;
    const aligned = dst.byteOffset % 4 === 0;
    const w = aligned ? new Uint32Array(dst.buffer, dst.byteOffset, words) : undefined;
    const dv = aligned ? undefined : new DataView(dst.buffer, dst.byteOffset, dst.length);
    for (let i = 0; i < words; i++) {
      const x = Math.imul(b, 5);
      const r = Math.imul((x << 7) | (x >>> 25), 9) >>> 0;
      const t = b << 9;
      c ^= a;
      d ^= b;
      b ^= c;
      a ^= d;
      c ^= t;
      d = (d << 11) | (d >>> 21);
      if (w !== undefined) w[i] = r;
      else dv!.setUint32(i * 4, r, true);
    }
    this.#a = a;
    this.#b = b;
    this.#c = c;
    this.#d = d;
    for (let i = words * 4; i < dst.length; i++) dst[i] = this.nextU32() & 0xff;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
