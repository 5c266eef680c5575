// The Reverse Map Table (AMD SEV-SNP) as hardware keeps it: bytes in physical
// memory at RMP_BASE, a 16 KiB bookkeeping area followed by one 16-byte
// entry per 4 KiB page frame, read and written through the memory controller
// in plaintext (key slot 0). Only the contiguous layout is modelled; the
// segmented RMP (RMP_CFG bit 0) is not.
//
// Entry `lo` word (64-bit, little-endian, first in memory):
//   bit 0 Assigned, bit 1 page size (0 = 4 KiB, 1 = 2 MiB), bit 2 Immutable,
//   bits 11:3 reserved, bits 50:12 GPA bits 51:12, bits 60:51 ASID,
//   bit 61 VMSA, bit 62 Validated, bit 63 reserved.
// The `hi` word is opaque (Linux does not decode it); it is carried as is.

import type { MemoryController, Requester, WriteGuard, WriteRefusal } from '../memory-controller.js';
import { MSR_AMD64_RMP_BASE, MSR_AMD64_RMP_END } from '../cpu/msr.js';

/** Bytes at RMP_BASE owned by firmware/hardware before the first entry. */
export const RMP_BOOKKEEPING_BYTES = 0x4000;
export const RMP_ENTRY_BYTES = 16;
/** RMP_BASE and RMP_END are taken at 8 KiB granularity: bits 51:13. */
export const RMP_ADDR_MASK = ((1n << 52n) - 1n) & ~((1n << 13n) - 1n);
/** Largest ASID the 10-bit field holds. */
export const RMP_MAX_ASID = 0x3ff;
/** 4 KiB frames per 2 MiB page. */
export const PFNS_PER_2M = 512;

export const RMP_LO_ASSIGNED = 1n << 0n;
export const RMP_LO_PAGE_SIZE = 1n << 1n;
export const RMP_LO_IMMUTABLE = 1n << 2n;
const RMP_LO_GPA_SHIFT = 12n;
const RMP_LO_GPA_MASK = (1n << 39n) - 1n;
const RMP_LO_ASID_SHIFT = 51n;
export const RMP_LO_VMSA = 1n << 61n;
export const RMP_LO_VALIDATED = 1n << 62n;

/** A decoded RMP entry. `gpa` is a byte address (4 KiB aligned). */
export interface RmpEntry {
  readonly assigned: boolean;
  readonly pageSize: 0 | 1;
  readonly immutable: boolean;
  readonly gpa: number;
  readonly asid: number;
  readonly vmsa: boolean;
  readonly validated: boolean;
  /** The opaque second word. */
  readonly hi: bigint;
}

export const EMPTY_RMP_ENTRY: RmpEntry = Object.freeze({
  assigned: false, pageSize: 0, immutable: false, gpa: 0, asid: 0, vmsa: false, validated: false, hi: 0n,
});

export function encodeRmpEntry(e: RmpEntry): { lo: bigint; hi: bigint } {
  if (!(e.asid >= 0 && e.asid <= RMP_MAX_ASID && Number.isInteger(e.asid))) throw new RangeError(`Cannot encode RMP entry: ASID ${e.asid} is out of range 0..${RMP_MAX_ASID}`);
  if (!(e.gpa >= 0 && e.gpa < 2 ** 52 && e.gpa % 4096 === 0)) throw new RangeError(`Cannot encode RMP entry: GPA 0x${e.gpa.toString(16)} is not a 4 KiB aligned 52-bit address`);
  let lo = 0n;
  if (e.assigned) lo |= RMP_LO_ASSIGNED;
  if (e.pageSize === 1) lo |= RMP_LO_PAGE_SIZE;
  if (e.immutable) lo |= RMP_LO_IMMUTABLE;
  lo |= (BigInt(e.gpa / 4096) & RMP_LO_GPA_MASK) << RMP_LO_GPA_SHIFT;
  lo |= BigInt(e.asid) << RMP_LO_ASID_SHIFT;
  if (e.vmsa) lo |= RMP_LO_VMSA;
  if (e.validated) lo |= RMP_LO_VALIDATED;
  return { lo, hi: e.hi };
}

export function decodeRmpEntry(lo: bigint, hi: bigint): RmpEntry {
  return {
    assigned: (lo & RMP_LO_ASSIGNED) !== 0n,
    pageSize: (lo & RMP_LO_PAGE_SIZE) !== 0n ? 1 : 0,
    immutable: (lo & RMP_LO_IMMUTABLE) !== 0n,
    gpa: Number((lo >> RMP_LO_GPA_SHIFT) & RMP_LO_GPA_MASK) * 4096,
    asid: Number((lo >> RMP_LO_ASID_SHIFT) & BigInt(RMP_MAX_ASID)),
    vmsa: (lo & RMP_LO_VMSA) !== 0n,
    validated: (lo & RMP_LO_VALIDATED) !== 0n,
    hi,
  };
}

/** Where a contiguous RMP lives: `base` and inclusive `end` (bytes), and how many PFNs it covers. */
export interface RmpLocation {
  readonly base: number;
  readonly end: number;
  readonly entries: number;
}

/**
 * The RMP described by RMP_BASE/RMP_END values, or undefined when either is
 * 0 after masking or base > end (no usable RMP). Both are taken at 8 KiB
 * granularity (bits 51:13); the inclusive end is the last byte of its 8 KiB
 * granule.
 */
export function rmpLocationFromMsrs(rmpBase: bigint, rmpEnd: bigint): RmpLocation | undefined {
  const b = rmpBase & RMP_ADDR_MASK;
  const e = rmpEnd & RMP_ADDR_MASK;
  if (b === 0n || e === 0n || b > e) return undefined;
  const base = Number(b);
  const end = Number(e | 0x1fffn);
  const usable = end + 1 - base - RMP_BOOKKEEPING_BYTES;
  return { base, end, entries: usable > 0 ? Math.floor(usable / RMP_ENTRY_BYTES) : 0 };
}

/** The RMP a CPU's RMP_BASE/RMP_END MSRs describe. */
export function rmpLocationOf(cpu: { rdmsr(msr: number): bigint }): RmpLocation | undefined {
  return rmpLocationFromMsrs(cpu.rdmsr(MSR_AMD64_RMP_BASE), cpu.rdmsr(MSR_AMD64_RMP_END));
}

/** Physical address of the entry for `pfn`: RMP_BASE + 0x4000 + 16 * pfn. */
export function rmpEntryAddress(base: number, pfn: number): number {
  return base + RMP_BOOKKEEPING_BYTES + RMP_ENTRY_BYTES * pfn;
}

/** Whether the RMP has an entry for `pfn` (index range 0 .. entries - 1). */
export function rmpCovers(loc: RmpLocation, pfn: number): boolean {
  return Number.isInteger(pfn) && pfn >= 0 && pfn < loc.entries;
}

const ENTRY_BUF = new Uint8Array(RMP_ENTRY_BYTES);
const ENTRY_VIEW = new DataView(ENTRY_BUF.buffer);

function mustCover(loc: RmpLocation, pfn: number): void {
  if (!rmpCovers(loc, pfn)) throw new RangeError(`Cannot access RMP entry for PFN 0x${pfn.toString(16)}: the RMP covers ${loc.entries} PFNs`);
}

/** Reads and decodes the entry for `pfn` from simulated memory. */
export function readRmpEntry(mc: MemoryController, loc: RmpLocation, pfn: number): RmpEntry {
  mustCover(loc, pfn);
  mc.read(rmpEntryAddress(loc.base, pfn), ENTRY_BUF);
  return decodeRmpEntry(ENTRY_VIEW.getBigUint64(0, true), ENTRY_VIEW.getBigUint64(8, true));
}

/** The requester hardware's own RMP updates are attributed to. */
export const RMP_HARDWARE: Requester = { kind: 'device', name: 'rmp' };

/** Encodes and writes the entry for `pfn`; a hardware update, not subject to the RMP check. */
export function writeRmpEntry(mc: MemoryController, loc: RmpLocation, pfn: number, e: RmpEntry, requester: Requester = RMP_HARDWARE): void {
  mustCover(loc, pfn);
  const { lo, hi } = encodeRmpEntry(e);
  const buf = new Uint8Array(RMP_ENTRY_BYTES);
  const dv = new DataView(buf.buffer);
  dv.setBigUint64(0, lo, true);
  dv.setBigUint64(8, hi, true);
  mc.write(rmpEntryAddress(loc.base, pfn), buf, requester, { guardExempt: true });
}

/**
 * The entry that governs `pfn`, as `snp_lookup_rmpentry` sees it: the 2 MiB
 * entry at the aligned PFN when that is an assigned 2 MiB page, else the
 * PFN's own entry. `at` is the PFN whose entry it is.
 */
export function rmpGoverningEntry(mc: MemoryController, loc: RmpLocation, pfn: number): { at: number; entry: RmpEntry } {
  const q = pfn - (pfn % PFNS_PER_2M);
  if (rmpCovers(loc, q)) {
    const big = readRmpEntry(mc, loc, q);
    if (big.assigned && big.pageSize === 1) return { at: q, entry: big };
    if (q === pfn) return { at: pfn, entry: big };
  }
  return { at: pfn, entry: readRmpEntry(mc, loc, pfn) };
}

/**
 * The RMP check on writes, as a memory-controller write guard. A host write
 * (CPU without an ASID, or ASID 0) or a device write to a page whose
 * governing entry is assigned (to a guest, or firmware-owned) is refused. A
 * guest write (CPU with an ASID) is refused when the page is assigned to
 * another ASID or immutable; Validated and the GPA are not checked here.
 * Frames the RMP does not cover are not checked. `onRefuse` sees each
 * refusal (the machine records it in the trace).
 */
export function rmpWriteGuard(mc: MemoryController, loc: RmpLocation, onRefuse?: (r: WriteRefusal, requester: Requester) => void): WriteGuard {
  // One 2 MiB region's entries at a time: 512 * 16 bytes.
  const buf = new Uint8Array(PFNS_PER_2M * RMP_ENTRY_BYTES);
  const dv = new DataView(buf.buffer);
  return (pa, length, requester) => {
    if (length <= 0) return undefined;
    const guestAsid = requester.kind === 'cpu' ? (requester.asid ?? 0) : 0;
    const first = Math.floor(pa / 4096);
    const last = Math.min(Math.floor((pa + length - 1) / 4096), loc.entries - 1);
    for (let region = first - (first % PFNS_PER_2M); region <= last; region += PFNS_PER_2M) {
      const lo = Math.max(first, region);
      const hi = Math.min(last, region + PFNS_PER_2M - 1);
      // The aligned entry first: an assigned 2 MiB page governs every frame of the region.
      mc.read(rmpEntryAddress(loc.base, region), buf.subarray(0, RMP_ENTRY_BYTES));
      const bigLo = dv.getUint32(0, true);
      if ((bigLo & 3) === 3) {
        const why = refusal(bigLo, dv.getUint32(4, true), guestAsid);
        if (why !== undefined) return done({ pa: Math.max(pa, region * 4096), detail: `${who(requester)} write to PFN 0x${lo.toString(16)} refused: ${why} (2 MiB entry at PFN 0x${region.toString(16)})` });
        continue;
      }
      const n = hi - lo + 1;
      mc.read(rmpEntryAddress(loc.base, lo), buf.subarray(0, n * RMP_ENTRY_BYTES));
      for (let i = 0; i < n; i++) {
        const w0 = dv.getUint32(i * RMP_ENTRY_BYTES, true);
        if ((w0 & 1) === 0) continue;
        const why = refusal(w0, dv.getUint32(i * RMP_ENTRY_BYTES + 4, true), guestAsid);
        if (why !== undefined) {
          const pfn = lo + i;
          return done({ pa: Math.max(pa, pfn * 4096), detail: `${who(requester)} write to PFN 0x${pfn.toString(16)} refused: ${why}` });
        }
      }
    }
    return undefined;

    function done(r: WriteRefusal): WriteRefusal {
      onRefuse?.(r, requester);
      return r;
    }
  };
}

/** Why an assigned entry (low and high 32 bits of `lo`) refuses a write, or undefined when it does not. */
function refusal(w0: number, w1: number, guestAsid: number): string | undefined {
  const asid = (w1 >>> 19) & RMP_MAX_ASID;
  const immutable = (w0 & 4) !== 0;
  const owner = immutable && asid === 0 ? 'firmware-owned' : `assigned to ASID ${asid}${immutable ? ', immutable' : ''}`;
  if (guestAsid === 0) return `RMP entry ${owner}`;
  if (asid !== guestAsid || immutable) return `RMP entry ${owner}, not to ASID ${guestAsid}`;
  return undefined;
}

function who(r: Requester): string {
  if (r.kind === 'device') return `device ${r.name}`;
  return r.asid !== undefined && r.asid !== 0 ? `guest (ASID ${r.asid}) on cpu${r.id}` : `host cpu${r.id}`;
}
