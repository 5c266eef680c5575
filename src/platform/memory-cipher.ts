// The memory controller's cipher. AMD's engine is AES-128 with a tweak
// derived from the physical address; the tweak function is not public, so
// this stands in for it: AES-128 in counter mode whose counter is the
// physical address of each 16-byte block (plus a per-key nonce). What the
// simulator relies on holds: encryption is deterministic per key and
// address, the same plaintext at two addresses gives different ciphertext,
// ciphertext moved to another address decrypts to garbage, and reading
// without the key yields the ciphertext. (Unlike a real XEX engine a flipped
// ciphertext bit flips one plaintext bit; nothing here depends on diffusion.)

import { createCipheriv, createHash } from 'node:crypto';
import type { KeySlot } from './memory-controller.js';

export class AddressTweakedCipher implements KeySlot {
  readonly name: string;
  readonly #key: Buffer;
  readonly #nonce: bigint;
  readonly #iv = Buffer.alloc(16);
  readonly #cache = new Map<number, Uint8Array>();

  /** A key derived from `seed` and `label`, as the security processor draws one at platform reset. */
  constructor(name: string, seed: number, label: string) {
    this.name = name;
    const material = createHash('sha256').update(`kdumpsim-memory-key:${label}:${seed}`).digest();
    this.#key = material.subarray(0, 16);
    this.#nonce = material.readBigUInt64BE(16);
  }

  encrypt(pa: number, data: Uint8Array): void {
    this.#xorKeystream(pa, data);
  }

  decrypt(pa: number, data: Uint8Array): void {
    this.#xorKeystream(pa, data);
  }

  /** XORs the keystream of [pa, pa + data.length) into data, in place, a frame at a time. */
  #xorKeystream(pa: number, data: Uint8Array): void {
    let done = 0;
    while (done < data.length) {
      const a = pa + done;
      const off = a % 4096;
      const n = Math.min(4096 - off, data.length - done);
      const ks = this.#frameKeystream((a - off) / 4096);
      const d = data.subarray(done, done + n);
      let i = 0;
      if (n >= 16 && (d.byteOffset & 3) === 0 && ((ks.byteOffset + off) & 3) === 0) {
        // Whole 32-bit words, four per iteration (fast in every JIT tier), then the tail.
        const words = n >>> 2;
        const dw = new Uint32Array(d.buffer, d.byteOffset, words);
        const kw = new Uint32Array(ks.buffer, ks.byteOffset + off, words);
        let w = 0;
        for (; w + 4 <= words; w += 4) {
          dw[w]! ^= kw[w]!;
          dw[w + 1]! ^= kw[w + 1]!;
          dw[w + 2]! ^= kw[w + 2]!;
          dw[w + 3]! ^= kw[w + 3]!;
        }
        for (; w < words; w++) dw[w]! ^= kw[w]!;
        i = words * 4;
      }
      for (; i < n; i++) d[i]! ^= ks[off + i]!;
      done += n;
    }
  }

  /**
   * The keystream of one 4 KiB frame. It depends only on the key and the
   * address, so it is made 64 KiB at a time (one cipher call) and recently
   * used chunks are kept: page tables, rings and descriptors are touched
   * over and over.
   */
  #frameKeystream(pfn: number): Uint8Array {
    const chunk = Math.floor(pfn / CHUNK_FRAMES);
    let ks = this.#cache.get(chunk);
    if (ks === undefined) {
      this.#iv.writeBigUInt64BE(this.#nonce, 0);
      this.#iv.writeBigUInt64BE(BigInt(chunk) * BigInt(CHUNK_FRAMES * 256), 8);
      ks = createCipheriv('aes-128-ctr', this.#key, this.#iv).update(ZERO_CHUNK);
      if (this.#cache.size >= KEYSTREAM_CACHE_CHUNKS) this.#cache.delete(this.#cache.keys().next().value!);
      this.#cache.set(chunk, ks);
    }
    const at = (pfn - chunk * CHUNK_FRAMES) * 4096;
    return ks.subarray(at, at + 4096);
  }
}

const CHUNK_FRAMES = 16;
const ZERO_CHUNK = Buffer.alloc(CHUNK_FRAMES * 4096);
/** Chunks of keystream kept (256 MiB: a whole run's working set), oldest dropped first. */
const KEYSTREAM_CACHE_CHUNKS = 4096;
