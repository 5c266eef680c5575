// Interrupt Remapping Table Entries: 128 bits each, 2^(S+1) of them from
// IRTA. The reference names the fields (present, FPD, destination mode,
// redirection hint, trigger mode, delivery mode, vector, destination, SID,
// SQ, SVT) but not their positions; these follow the VT-d specification's
// remapped-format layout (also QEMU's VTD_IR_TableEntry):
//   lo: P 0, FPD 1, DM 2, RH 3, TM 4, DLM 7:5, AVAIL 11:8, IM 15 (posted
//       format), V 23:16, DST 63:32 (xAPIC: APIC id in 47:40)
//   hi: SID 15:0, SQ 17:16, SVT 19:18
// Everything else is reserved.

import { bit, bits, flag, wordsToBytes } from './entry-bytes.js';

export const IRTE_BYTES = 16;

/** Source validation types (SVT). */
export const SVT_NONE = 0;
export const SVT_SID = 1;
export const SVT_BUS = 2;

/** lo bits 14:12 and 31:24; in xAPIC mode also DST bits other than 15:8 (entry bits 39:32, 63:48). */
export const IRTE_RESERVED_LO = 0xff00_7000n;
export const IRTE_RESERVED_LO_XAPIC = 0xffff_00ff_0000_0000n;
export const IRTE_RESERVED_HI = 0xffff_ffff_fff0_0000n;
/** IM: the posted format (needs CAP.PI, which the model does not implement). */
export const IRTE_IM = 1n << 15n;

export interface IrteFields {
  readonly present: boolean;
  /** FPD: faults for this entry are not recorded. */
  readonly fpd: boolean;
  readonly destLogical: boolean;
  readonly redirectionHint: boolean;
  readonly levelTriggered: boolean;
  /** DELIVERY_* value. */
  readonly deliveryMode: number;
  readonly vector: number;
  /** x2APIC mode (IRTA.EIME): the 32-bit APIC id; xAPIC mode: the 8-bit id. */
  readonly destination: number;
  readonly sid: number;
  readonly sq: number;
  readonly svt: number;
}

export const EMPTY_IRTE: IrteFields = Object.freeze({
  present: false, fpd: false, destLogical: false, redirectionHint: false, levelTriggered: false, deliveryMode: 0,
  vector: 0, destination: 0, sid: 0, sq: 0, svt: SVT_NONE,
});

/** The two 64-bit halves; `x2apic` places the destination as EIME=1 reads it. */
export function encodeIrte(f: IrteFields, x2apic: boolean): { lo: bigint; hi: bigint } {
  const dst = x2apic ? BigInt(f.destination >>> 0) : BigInt((f.destination & 0xff) << 8);
  const lo = flag(f.present, 0) | flag(f.fpd, 1) | flag(f.destLogical, 2) | flag(f.redirectionHint, 3) | flag(f.levelTriggered, 4)
    | (BigInt(f.deliveryMode & 7) << 5n) | (BigInt(f.vector & 0xff) << 16n) | (dst << 32n);
  const hi = BigInt(f.sid & 0xffff) | (BigInt(f.sq & 3) << 16n) | (BigInt(f.svt & 3) << 18n);
  return { lo, hi };
}

export function decodeIrte(lo: bigint, hi: bigint, x2apic: boolean): IrteFields {
  const dst = bits(lo, 32, 32);
  return {
    present: bit(lo, 0), fpd: bit(lo, 1), destLogical: bit(lo, 2), redirectionHint: bit(lo, 3), levelTriggered: bit(lo, 4),
    deliveryMode: bits(lo, 5, 3), vector: bits(lo, 16, 8), destination: x2apic ? dst : (dst >>> 8) & 0xff,
    sid: bits(hi, 0, 16), sq: bits(hi, 16, 2), svt: bits(hi, 18, 2),
  };
}

export function irteBytes(f: IrteFields, x2apic: boolean): Uint8Array {
  const { lo, hi } = encodeIrte(f, x2apic);
  return wordsToBytes([lo, hi]);
}

/** Reserved bits set in an entry, or a posted-format entry: why it is unusable, or undefined. */
export function irteReservedProblem(lo: bigint, hi: bigint, x2apic: boolean): string | undefined {
  if ((lo & IRTE_IM) !== 0n) return 'posted format (IM) is not supported';
  if ((lo & IRTE_RESERVED_LO) !== 0n || (!x2apic && (lo & IRTE_RESERVED_LO_XAPIC) !== 0n)) return `reserved bits set in low word 0x${lo.toString(16)}`;
  if ((hi & IRTE_RESERVED_HI) !== 0n) return `reserved bits set in high word 0x${hi.toString(16)}`;
  if (bits(hi, 18, 2) === 3) return 'SVT 3 is reserved';
  return undefined;
}

/**
 * Source-id check: SVT 1 compares the requester id with SID, ignoring the
 * function bits SQ names (1: bit 2, 2: bits 2:1, 3: bits 2:0); SVT 2 accepts
 * requesters whose bus lies in [SID 15:8, SID 7:0].
 */
export function sourceIdAllowed(f: IrteFields, sourceId: number): boolean {
  if (f.svt === SVT_SID) {
    const ignore = [0, 0b100, 0b110, 0b111][f.sq & 3]!;
    return ((sourceId ^ f.sid) & 0xffff & ~ignore) === 0;
  }
  if (f.svt === SVT_BUS) {
    const bus = (sourceId >>> 8) & 0xff;
    return bus >= ((f.sid >>> 8) & 0xff) && bus <= (f.sid & 0xff);
  }
  return true;
}
