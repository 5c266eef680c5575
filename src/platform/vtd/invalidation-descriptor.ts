// Queued-invalidation descriptors (ref §1.5): 128 bits, or 256 when
// IQA.DW is set, of which the first 128 carry every field modelled. The type
// is in bits 3:0 (with bits 11:9 as its high part). Field positions not in
// the reference follow the VT-d specification (and Linux's QI_* macros):
//   context-cache (1): G 5:4, DID 31:16, SID 47:32, FM 49:48
//   IOTLB (2): G 5:4, DW 6, DR 7, DID 31:16; hi: AM 5:0, IH 6, ADDR 63:12
//   interrupt-entry cache (4): G 4 (1 = index-selective), IM 31:27, IIDX 47:32
//   invalidation wait (5): IF 4, SW 5, FN 6, PD 7, status data 63:32; hi: status address 63:2
//   PASID-IOTLB (6): G 5:4 (3 = page-selective), DID 31:16, PASID 51:32; hi as IOTLB
//   PASID-cache (7): G 5:4 (0 domain, 1 PASID, 3 global), DID 31:16, PASID 51:32

import { bit, bits, flag, wordsToBytes } from './entry-bytes.js';

export const DESC_CONTEXT = 1;
export const DESC_IOTLB = 2;
export const DESC_DEVICE_TLB = 3;
export const DESC_IEC = 4;
export const DESC_WAIT = 5;
export const DESC_PASID_IOTLB = 6;
export const DESC_PASID_CACHE = 7;
export const DESC_PASID_DEVICE_TLB = 8;
export const DESC_PAGE_GROUP_RESPONSE = 9;

export const PC_DOMAIN = 0;
export const PC_PASID = 1;
export const PC_GLOBAL = 3;

export type InvDescriptor =
  | { readonly type: 'context'; readonly granularity: number; readonly did: number; readonly sid: number; readonly fm: number }
  | { readonly type: 'iotlb'; readonly granularity: number; readonly did: number; readonly addr: number; readonly am: number; readonly ih: boolean; readonly drain: boolean }
  | { readonly type: 'iec'; readonly indexSelective: boolean; readonly index: number; readonly im: number }
  | { readonly type: 'wait'; readonly statusWrite: boolean; readonly interrupt: boolean; readonly fence: boolean; readonly statusData: number; readonly statusAddr: number }
  | { readonly type: 'pasid-iotlb'; readonly pageSelective: boolean; readonly did: number; readonly pasid: number; readonly addr: number; readonly am: number }
  | { readonly type: 'pasid-cache'; readonly granularity: number; readonly did: number; readonly pasid: number }
  /** Device-TLB, PASID device-TLB and page-group responses: no cache of ours to act on. */
  | { readonly type: 'no-effect'; readonly code: number };

const DESC_NAMES: Readonly<Record<number, string>> = {
  [DESC_CONTEXT]: 'context-cache', [DESC_IOTLB]: 'iotlb', [DESC_DEVICE_TLB]: 'device-tlb', [DESC_IEC]: 'interrupt-entry-cache',
  [DESC_WAIT]: 'invalidation-wait', [DESC_PASID_IOTLB]: 'pasid-iotlb', [DESC_PASID_CACHE]: 'pasid-cache',
  [DESC_PASID_DEVICE_TLB]: 'pasid-device-tlb', [DESC_PAGE_GROUP_RESPONSE]: 'page-group-response',
};

export function descriptorName(code: number): string {
  return DESC_NAMES[code] ?? `type-${code}`;
}

/** The two words of a descriptor (the upper 128 bits of a wide one are zero). */
export function encodeDescriptor(d: InvDescriptor): [bigint, bigint] {
  switch (d.type) {
    case 'context':
      return [BigInt(DESC_CONTEXT) | (BigInt(d.granularity & 3) << 4n) | (BigInt(d.did & 0xffff) << 16n)
        | (BigInt(d.sid & 0xffff) << 32n) | (BigInt(d.fm & 3) << 48n), 0n];
    case 'iotlb':
      return [BigInt(DESC_IOTLB) | (BigInt(d.granularity & 3) << 4n) | flag(d.drain, 6) | flag(d.drain, 7) | (BigInt(d.did & 0xffff) << 16n),
        BigInt(d.am & 0x3f) | flag(d.ih, 6) | (BigInt(d.addr) & 0xffff_ffff_ffff_f000n)];
    case 'iec':
      return [BigInt(DESC_IEC) | flag(d.indexSelective, 4) | (BigInt(d.im & 0x1f) << 27n) | (BigInt(d.index & 0xffff) << 32n), 0n];
    case 'wait':
      return [BigInt(DESC_WAIT) | flag(d.interrupt, 4) | flag(d.statusWrite, 5) | flag(d.fence, 6) | (BigInt(d.statusData >>> 0) << 32n),
        BigInt(d.statusAddr) & ~3n];
    case 'pasid-iotlb':
      return [BigInt(DESC_PASID_IOTLB) | (BigInt(d.pageSelective ? 3 : 2) << 4n) | (BigInt(d.did & 0xffff) << 16n) | (BigInt(d.pasid & 0xf_ffff) << 32n),
        BigInt(d.am & 0x3f) | (BigInt(d.addr) & 0xffff_ffff_ffff_f000n)];
    case 'pasid-cache':
      return [BigInt(DESC_PASID_CACHE) | (BigInt(d.granularity & 3) << 4n) | (BigInt(d.did & 0xffff) << 16n) | (BigInt(d.pasid & 0xf_ffff) << 32n), 0n];
    case 'no-effect':
      return [BigInt(d.code & 0xf) | (BigInt((d.code >> 4) & 7) << 9n), 0n];
  }
}

/** A descriptor as the bytes software puts in the queue (`wide`: 256-bit slot). */
export function descriptorBytes(d: InvDescriptor, wide = false): Uint8Array {
  const [lo, hi] = encodeDescriptor(d);
  return wordsToBytes(wide ? [lo, hi, 0n, 0n] : [lo, hi]);
}

/** The type code of a descriptor's first word. */
export function descriptorCode(lo: bigint): number {
  return bits(lo, 0, 4) | (bits(lo, 9, 3) << 4);
}

/** Decodes a descriptor; undefined for a type the unit does not know. */
export function decodeDescriptor(lo: bigint, hi: bigint): InvDescriptor | undefined {
  const code = descriptorCode(lo);
  switch (code) {
    case DESC_CONTEXT:
      return { type: 'context', granularity: bits(lo, 4, 2), did: bits(lo, 16, 16), sid: bits(lo, 32, 16), fm: bits(lo, 48, 2) };
    case DESC_IOTLB:
      return { type: 'iotlb', granularity: bits(lo, 4, 2), did: bits(lo, 16, 16), addr: Number(hi & 0xffff_ffff_ffff_f000n), am: bits(hi, 0, 6), ih: bit(hi, 6), drain: bit(lo, 6) || bit(lo, 7) };
    case DESC_IEC:
      return { type: 'iec', indexSelective: bit(lo, 4), index: bits(lo, 32, 16), im: bits(lo, 27, 5) };
    case DESC_WAIT:
      return { type: 'wait', interrupt: bit(lo, 4), statusWrite: bit(lo, 5), fence: bit(lo, 6), statusData: bits(lo, 32, 32), statusAddr: Number(hi & ~3n) };
    case DESC_PASID_IOTLB:
      return { type: 'pasid-iotlb', pageSelective: bits(lo, 4, 2) === 3, did: bits(lo, 16, 16), pasid: bits(lo, 32, 20), addr: Number(hi & 0xffff_ffff_ffff_f000n), am: bits(hi, 0, 6) };
    case DESC_PASID_CACHE:
      return { type: 'pasid-cache', granularity: bits(lo, 4, 2), did: bits(lo, 16, 16), pasid: bits(lo, 32, 20) };
    case DESC_DEVICE_TLB:
    case DESC_PASID_DEVICE_TLB:
    case DESC_PAGE_GROUP_RESPONSE:
      return { type: 'no-effect', code };
    default:
      return undefined;
  }
}

/** Convenience builders with Linux-like defaults. */
export const invContextGlobal = (): InvDescriptor => ({ type: 'context', granularity: 1, did: 0, sid: 0, fm: 0 });
export const invIotlbGlobal = (): InvDescriptor => ({ type: 'iotlb', granularity: 1, did: 0, addr: 0, am: 0, ih: false, drain: true });
export const invIecGlobal = (): InvDescriptor => ({ type: 'iec', indexSelective: false, index: 0, im: 0 });
export const invWait = (statusAddr: number, statusData: number, interrupt = false): InvDescriptor =>
  ({ type: 'wait', statusWrite: true, interrupt, fence: true, statusData, statusAddr });
