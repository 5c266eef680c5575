// Context entries (ref §2.2-2.3): what the unit knows about one requester
// (bus, devfn). Legacy entries are 128 bits, 256 to a 4 KiB table indexed by
// devfn. Scalable-mode entries are 256 bits, 128 to a table, so a bus needs
// two tables (the root entry's LCTP and UCTP halves) indexed by devfn & 0x7f.

import { ADDR_FIELD_MASK, bit, bits, flag, pageField, wordsToBytes } from './entry-bytes.js';

export const CONTEXT_ENTRY_BYTES = 16;
export const SM_CONTEXT_ENTRY_BYTES = 32;

/** Translation types (lo bits 3:2). */
export const TT_MULTI_LEVEL = 0;
export const TT_MULTI_LEVEL_DEVTLB = 1;
export const TT_PASS_THROUGH = 2;

/** Reserved bits of a legacy entry, the masks QEMU checks (ref §2.2). */
export const LEGACY_CONTEXT_RESERVED_LO = 0xff0n;
export const LEGACY_CONTEXT_RESERVED_HI = 0xffff_ffff_ff00_0080n;
/** Reserved bits of a scalable-mode entry: lo 8:5, hi 63:21 (bit 20 is RID_PRIV), and all of the upper 128 bits. */
export const SM_CONTEXT_RESERVED_LO = 0x1e0n;
export const SM_CONTEXT_RESERVED_HI = 0xffff_ffff_ffe0_0000n;

export interface LegacyContextEntry {
  readonly present: boolean;
  /** FPD: qualified faults from this device are not recorded. */
  readonly fpd: boolean;
  readonly translationType: number;
  /** Second-level page-table root (bits 63:12). */
  readonly slptptr: number;
  /** AW: the AGAW; the walk has AW + 2 levels and covers 30 + 9·AW bits. */
  readonly addressWidth: number;
  readonly domainId: number;
}

export const EMPTY_CONTEXT: LegacyContextEntry = Object.freeze({
  present: false, fpd: false, translationType: TT_MULTI_LEVEL, slptptr: 0, addressWidth: 0, domainId: 0,
});

export function encodeContextEntry(e: LegacyContextEntry): { lo: bigint; hi: bigint } {
  return {
    lo: flag(e.present, 0) | flag(e.fpd, 1) | (BigInt(e.translationType & 3) << 2n) | (BigInt(e.slptptr) & ADDR_FIELD_MASK),
    hi: BigInt(e.addressWidth & 7) | (BigInt(e.domainId & 0xffff) << 8n),
  };
}

export function decodeContextEntry(lo: bigint, hi: bigint): LegacyContextEntry {
  return {
    present: bit(lo, 0), fpd: bit(lo, 1), translationType: bits(lo, 2, 2), slptptr: pageField(lo),
    addressWidth: bits(hi, 0, 3), domainId: bits(hi, 8, 16),
  };
}

export function contextEntryBytes(e: LegacyContextEntry): Uint8Array {
  const { lo, hi } = encodeContextEntry(e);
  return wordsToBytes([lo, hi]);
}

export interface ScalableContextEntry {
  readonly present: boolean;
  readonly fpd: boolean;
  /** DTE: device-TLB (ATS) enabled. */
  readonly deviceTlb: boolean;
  /** PASIDE: requests with PASID are allowed. */
  readonly pasidEnable: boolean;
  /** PRE: page requests allowed. */
  readonly pageRequest: boolean;
  /** PDTS: the PASID directory has 2^(PDTS+7) entries. */
  readonly pdts: number;
  readonly pasidDirectory: number;
  /** The PASID requests without one are translated with. */
  readonly ridPasid: number;
}

export const EMPTY_SM_CONTEXT: ScalableContextEntry = Object.freeze({
  present: false, fpd: false, deviceTlb: false, pasidEnable: false, pageRequest: false, pdts: 0, pasidDirectory: 0, ridPasid: 0,
});

export function encodeScalableContextEntry(e: ScalableContextEntry): [bigint, bigint, bigint, bigint] {
  const w0 = flag(e.present, 0) | flag(e.fpd, 1) | flag(e.deviceTlb, 2) | flag(e.pasidEnable, 3) | flag(e.pageRequest, 4)
    | (BigInt(e.pdts & 7) << 9n) | (BigInt(e.pasidDirectory) & ADDR_FIELD_MASK);
  return [w0, BigInt(e.ridPasid & 0xf_ffff), 0n, 0n];
}

export function decodeScalableContextEntry(w: readonly bigint[]): ScalableContextEntry {
  const [w0 = 0n, w1 = 0n] = w;
  return {
    present: bit(w0, 0), fpd: bit(w0, 1), deviceTlb: bit(w0, 2), pasidEnable: bit(w0, 3), pageRequest: bit(w0, 4),
    pdts: bits(w0, 9, 3), pasidDirectory: pageField(w0), ridPasid: bits(w1, 0, 20),
  };
}

export function scalableContextEntryBytes(e: ScalableContextEntry): Uint8Array {
  return wordsToBytes(encodeScalableContextEntry(e));
}

/** Where devfn's entry lives in `table` (for scalable mode, the LCTP or UCTP table that covers it). */
export function contextEntryAddress(table: number, devfn: number, scalable: boolean): number {
  return scalable ? table + (devfn & 0x7f) * SM_CONTEXT_ENTRY_BYTES : table + (devfn & 0xff) * CONTEXT_ENTRY_BYTES;
}

/** PASID directory entries a scalable-mode context entry allows: 2^(PDTS+7). */
export function pasidDirectoryEntries(pdts: number): number {
  return 2 ** ((pdts & 7) + 7);
}
