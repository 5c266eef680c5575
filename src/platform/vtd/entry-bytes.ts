// In-memory VT-d structures are little-endian 64-bit words (root and
// context entries two or four, PASID entries eight, descriptors two or
// four); these convert between the words and the bytes the memory holds.

export function wordsToBytes(words: readonly bigint[]): Uint8Array {
  const out = new Uint8Array(words.length * 8);
  const dv = new DataView(out.buffer);
  words.forEach((w, i) => dv.setBigUint64(i * 8, BigInt.asUintN(64, w), true));
  return out;
}

export function bytesToWords(bytes: Uint8Array): bigint[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const words: bigint[] = [];
  for (let i = 0; i + 8 <= bytes.length; i += 8) words.push(dv.getBigUint64(i, true));
  return words;
}

/** Bits `lo`..`lo+bits-1` of `w` as a number. */
export function bits(w: bigint, lo: number, n: number): number {
  return Number((w >> BigInt(lo)) & ((1n << BigInt(n)) - 1n));
}

export function bit(w: bigint, n: number): boolean {
  return ((w >> BigInt(n)) & 1n) === 1n;
}

export function flag(on: boolean, n: number): bigint {
  return on ? 1n << BigInt(n) : 0n;
}

/** The 4 KiB-aligned address field (bits 63:12) of a word, as a number. */
export function pageField(w: bigint): number {
  return Number(w & 0xffff_ffff_ffff_f000n);
}

export const ADDR_FIELD_MASK = 0xffff_ffff_ffff_f000n;
