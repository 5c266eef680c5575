// Device Table Entries: 256 bits (four little-endian 64-bit words) per
// device id, at DevTabBase + 32 * devid (ref §3.4). Only the fields the
// model acts on are decoded; encodeDte lets a kernel model build tables.

export const DTE_BYTES = 32;

/** IntCtl values (word 2 bits 61:60). */
export const INTCTL_ABORT = 0;
export const INTCTL_FORWARD_UNMAPPED = 1;
export const INTCTL_REMAPPED = 2;

export interface DteFields {
  /** V: the entry is valid. */
  readonly valid: boolean;
  /** TV: the translation fields are valid. */
  readonly translationValid: boolean;
  /** Mode: page-table levels, 0 = no translation; 7 is reserved. */
  readonly mode: number;
  /** Host page-table root (bits 51:12, may carry the C-bit). */
  readonly pageTableRoot: number;
  readonly ir: boolean;
  readonly iw: boolean;
  readonly domainId: number;
  /** EX: the exclusion range applies to this device (parts without SNP). */
  readonly ex: boolean;
  /** IV: the interrupt-map fields are valid. */
  readonly interruptValid: boolean;
  /** log2 of the number of IRTEs (9 = 512, 11 = 2048). */
  readonly intTabLen: number;
  /** Interrupt remapping table root (128-byte aligned, may carry the C-bit). */
  readonly irtRoot: number;
  readonly intCtl: number;
}

export const EMPTY_DTE: DteFields = Object.freeze({
  valid: false, translationValid: false, mode: 0, pageTableRoot: 0, ir: false, iw: false,
  domainId: 0, ex: false, interruptValid: false, intTabLen: 0, irtRoot: 0, intCtl: 0,
});

const bit = (w: bigint, n: bigint): boolean => ((w >> n) & 1n) === 1n;
const flag = (b: boolean, n: bigint): bigint => (b ? 1n << n : 0n);
const PT_ROOT_MASK = 0x000f_ffff_ffff_f000n;
const IRT_ROOT_MASK = 0x000f_ffff_ffff_ffc0n;

/** The four words of an entry, in memory order. */
export function dteWords(f: DteFields): [bigint, bigint, bigint, bigint] {
  const w0 = flag(f.valid, 0n) | flag(f.translationValid, 1n) | (BigInt(f.mode & 7) << 9n)
    | (BigInt(f.pageTableRoot) & PT_ROOT_MASK) | flag(f.ir, 61n) | flag(f.iw, 62n);
  const w1 = BigInt(f.domainId & 0xffff) | flag(f.ex, 39n);
  const w2 = flag(f.interruptValid, 0n) | (BigInt(f.intTabLen & 0xf) << 1n)
    | (BigInt(f.irtRoot) & IRT_ROOT_MASK) | (BigInt(f.intCtl & 3) << 60n);
  return [w0, w1, w2, 0n];
}

export function encodeDte(f: DteFields): Uint8Array {
  const out = new Uint8Array(DTE_BYTES);
  const dv = new DataView(out.buffer);
  dteWords(f).forEach((w, i) => dv.setBigUint64(i * 8, w, true));
  return out;
}

export function decodeDteWords(w: readonly bigint[]): DteFields {
  const [w0 = 0n, w1 = 0n, w2 = 0n] = w;
  return {
    valid: bit(w0, 0n),
    translationValid: bit(w0, 1n),
    mode: Number((w0 >> 9n) & 7n),
    pageTableRoot: Number(w0 & PT_ROOT_MASK),
    ir: bit(w0, 61n),
    iw: bit(w0, 62n),
    domainId: Number(w1 & 0xffffn),
    ex: bit(w1, 39n),
    interruptValid: bit(w2, 0n),
    intTabLen: Number((w2 >> 1n) & 0xfn),
    irtRoot: Number(w2 & IRT_ROOT_MASK),
    intCtl: Number((w2 >> 60n) & 3n),
  };
}

export function decodeDte(bytes: Uint8Array): DteFields {
  if (bytes.length < DTE_BYTES) throw new RangeError(`Cannot decode device table entry: ${bytes.length} bytes, need ${DTE_BYTES}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, DTE_BYTES);
  return decodeDteWords([0, 1, 2, 3].map((i) => dv.getBigUint64(i * 8, true)));
}
