// The root table (ref §2.1): one 4 KiB page of 256 128-bit entries indexed
// by PCI bus. Legacy mode: the low word holds Present (bit 0) and the context
// table pointer (63:12); the rest is reserved. Scalable mode: the low word
// points at the context table for devfn 0x00-0x7f (LCTP), the high word at
// the one for devfn 0x80-0xff (UCTP), each with its own Present bit.

import { ADDR_FIELD_MASK, bit, flag, pageField, wordsToBytes } from './entry-bytes.js';

export const ROOT_ENTRY_BYTES = 16;
export const ROOT_ENTRIES = 256;

/** Bits that must be zero in a legacy root entry. */
export const LEGACY_ROOT_RESERVED_LO = 0xffen;
/** Bits that must be zero in each half of a scalable-mode root entry. */
export const SM_ROOT_RESERVED = 0xffen;

export interface LegacyRootEntry {
  readonly present: boolean;
  readonly contextTable: number;
}

export interface ScalableRootEntry {
  /** LCTP: context table for devfn 0x00-0x7f (undefined: not present). */
  readonly lower: number | undefined;
  /** UCTP: context table for devfn 0x80-0xff (undefined: not present). */
  readonly upper: number | undefined;
}

export function encodeRootEntry(e: LegacyRootEntry): { lo: bigint; hi: bigint } {
  return { lo: flag(e.present, 0) | (BigInt(e.contextTable) & ADDR_FIELD_MASK), hi: 0n };
}

export function decodeRootEntry(lo: bigint): LegacyRootEntry {
  return { present: bit(lo, 0), contextTable: pageField(lo) };
}

export function encodeScalableRootEntry(e: ScalableRootEntry): { lo: bigint; hi: bigint } {
  const half = (t: number | undefined): bigint => (t === undefined ? 0n : 1n | (BigInt(t) & ADDR_FIELD_MASK));
  return { lo: half(e.lower), hi: half(e.upper) };
}

export function decodeScalableRootEntry(lo: bigint, hi: bigint): ScalableRootEntry {
  return { lower: bit(lo, 0) ? pageField(lo) : undefined, upper: bit(hi, 0) ? pageField(hi) : undefined };
}

/** A root entry as the 16 bytes memory holds. */
export function rootEntryBytes(e: { lo: bigint; hi: bigint }): Uint8Array {
  return wordsToBytes([e.lo, e.hi]);
}

/** Where bus `bus`'s entry lives in the root table at `root`. */
export function rootEntryAddress(root: number, bus: number): number {
  return root + (bus & 0xff) * ROOT_ENTRY_BYTES;
}
