// Scalable-mode PASID structures (ref §2.3). The PASID directory holds
// 64-bit entries indexed by PASID bits 19:6, each pointing at a PASID table
// of 64 512-bit entries indexed by PASID bits 5:0. A PASID entry names the
// translation (PGTT), the second-level table root and width, and the domain.

import { ADDR_FIELD_MASK, bit, bits, flag, pageField, wordsToBytes } from './entry-bytes.js';

export const PASID_DIR_ENTRY_BYTES = 8;
export const PASID_ENTRY_BYTES = 64;
export const PASIDS_PER_TABLE = 64;

/** PGTT values (word 0 bits 8:6). */
export const PGTT_FIRST_LEVEL = 1;
export const PGTT_SECOND_LEVEL = 2;
export const PGTT_NESTED = 3;
export const PGTT_PASS_THROUGH = 4;

/** Reserved bits of a directory entry (11:2). */
export const PASID_DIR_RESERVED = 0xffcn;

export interface PasidDirEntry {
  readonly present: boolean;
  readonly fpd: boolean;
  readonly pasidTable: number;
}

export function encodePasidDirEntry(e: PasidDirEntry): bigint {
  return flag(e.present, 0) | flag(e.fpd, 1) | (BigInt(e.pasidTable) & ADDR_FIELD_MASK);
}

export function decodePasidDirEntry(w: bigint): PasidDirEntry {
  return { present: bit(w, 0), fpd: bit(w, 1), pasidTable: pageField(w) };
}

export interface PasidEntry {
  readonly present: boolean;
  readonly fpd: boolean;
  /** Second-level AW (same encoding as a legacy context entry's). */
  readonly addressWidth: number;
  readonly pgtt: number;
  readonly slptptr: number;
  readonly domainId: number;
  /** First-level table pointer (word 2, bits 63:12); carried, not walked. */
  readonly flptptr: number;
}

export const EMPTY_PASID_ENTRY: PasidEntry = Object.freeze({
  present: false, fpd: false, addressWidth: 0, pgtt: 0, slptptr: 0, domainId: 0, flptptr: 0,
});

export function encodePasidEntry(e: PasidEntry): bigint[] {
  const w0 = flag(e.present, 0) | flag(e.fpd, 1) | (BigInt(e.addressWidth & 7) << 2n) | (BigInt(e.pgtt & 7) << 6n)
    | (BigInt(e.slptptr) & ADDR_FIELD_MASK);
  return [w0, BigInt(e.domainId & 0xffff), BigInt(e.flptptr) & ADDR_FIELD_MASK, 0n, 0n, 0n, 0n, 0n];
}

export function decodePasidEntry(w: readonly bigint[]): PasidEntry {
  const [w0 = 0n, w1 = 0n, w2 = 0n] = w;
  return {
    present: bit(w0, 0), fpd: bit(w0, 1), addressWidth: bits(w0, 2, 3), pgtt: bits(w0, 6, 3), slptptr: pageField(w0),
    domainId: bits(w1, 0, 16), flptptr: pageField(w2),
  };
}

export function pasidEntryBytes(e: PasidEntry): Uint8Array {
  return wordsToBytes(encodePasidEntry(e));
}

/** Where `pasid`'s directory entry lives. */
export function pasidDirEntryAddress(dir: number, pasid: number): number {
  return dir + Math.floor(pasid / PASIDS_PER_TABLE) * PASID_DIR_ENTRY_BYTES;
}

/** Where `pasid`'s entry lives in its PASID table. */
export function pasidEntryAddress(table: number, pasid: number): number {
  return table + (pasid % PASIDS_PER_TABLE) * PASID_ENTRY_BYTES;
}
