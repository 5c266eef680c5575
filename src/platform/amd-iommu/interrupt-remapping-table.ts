// Interrupt Remapping Table entries (ref §3.5): 32-bit legacy entries, or
// 128-bit entries when Control.GAEn is set. A table holds 2^IntTabLen
// entries from the DTE's IRT root; the interrupt's index (MSI data bits
// 10:0, or the IO-APIC RTE's remappable index) selects one.

export const IRTE_LEGACY_BYTES = 4;
export const IRTE_GA_BYTES = 16;
/** The "allocated, not yet programmed" value Linux leaves in legacy entries. */
export const IRTE_LEGACY_ALLOCATED = 0xffff_ffff;

export interface IrteFields {
  /** RemapEn: the entry is valid. */
  readonly remapEn: boolean;
  /** SupIOPF: suppress the fault event when the entry is not valid. */
  readonly supIopf: boolean;
  readonly intType: number;
  readonly rqEoi: boolean;
  /** Destination mode: false physical, true logical. */
  readonly dm: boolean;
  readonly destination: number;
  readonly vector: number;
  /** GA format only: the interrupt is posted to a guest vAPIC (not modelled). */
  readonly guestMode: boolean;
}

export const EMPTY_IRTE: IrteFields = Object.freeze({
  remapEn: false, supIopf: false, intType: 0, rqEoi: false, dm: false, destination: 0, vector: 0, guestMode: false,
});

const b = (v: boolean, n: number): number => (v ? 1 << n : 0);

export function encodeIrteLegacy(f: IrteFields): number {
  return (b(f.remapEn, 0) | b(f.supIopf, 1) | ((f.intType & 7) << 2) | b(f.rqEoi, 5) | b(f.dm, 6)
    | ((f.destination & 0xff) << 8) | ((f.vector & 0xff) << 16)) >>> 0;
}

export function decodeIrteLegacy(w: number): IrteFields {
  return {
    remapEn: (w & 1) !== 0, supIopf: (w & 2) !== 0, intType: (w >>> 2) & 7, rqEoi: (w & 0x20) !== 0, dm: (w & 0x40) !== 0,
    destination: (w >>> 8) & 0xff, vector: (w >>> 16) & 0xff, guestMode: false,
  };
}

/** The two 64-bit halves of a GA entry (lo at the lower address). */
export function encodeIrteGa(f: IrteFields, gaTag = 0, gaRootPtr = 0): { lo: bigint; hi: bigint } {
  const lo = BigInt(b(f.remapEn, 0) | b(f.supIopf, 1) | ((f.intType & 7) << 2) | b(f.rqEoi, 5) | b(f.dm, 6) | b(f.guestMode, 7))
    | (BigInt(f.destination & 0xff_ffff) << 8n) | (BigInt(gaTag >>> 0) << 32n);
  const hi = BigInt(f.vector & 0xff) | (BigInt(gaRootPtr) & 0x000f_ffff_ffff_f000n) | (BigInt((f.destination >>> 24) & 0xff) << 56n);
  return { lo, hi };
}

export function decodeIrteGa(lo: bigint, hi: bigint): IrteFields {
  const l = Number(lo & 0xffff_ffffn);
  return {
    remapEn: (l & 1) !== 0, supIopf: (l & 2) !== 0, intType: (l >>> 2) & 7, rqEoi: (l & 0x20) !== 0, dm: (l & 0x40) !== 0,
    guestMode: (l & 0x80) !== 0,
    destination: ((l >>> 8) | (Number((hi >> 56n) & 0xffn) << 24)) >>> 0,
    vector: Number(hi & 0xffn),
  };
}

/** Bytes of one entry in the given format. */
export function irteBytes(ga: boolean): number {
  return ga ? IRTE_GA_BYTES : IRTE_LEGACY_BYTES;
}

/** An entry as bytes in memory, in the given format. */
export function encodeIrte(f: IrteFields, ga: boolean): Uint8Array {
  const out = new Uint8Array(irteBytes(ga));
  const dv = new DataView(out.buffer);
  if (ga) {
    const { lo, hi } = encodeIrteGa(f);
    dv.setBigUint64(0, lo, true);
    dv.setBigUint64(8, hi, true);
  } else {
    dv.setUint32(0, encodeIrteLegacy(f), true);
  }
  return out;
}

export function decodeIrte(bytes: Uint8Array, ga: boolean): IrteFields {
  const need = irteBytes(ga);
  if (bytes.length < need) throw new RangeError(`Cannot decode IRTE: ${bytes.length} bytes, need ${need}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, need);
  return ga ? decodeIrteGa(dv.getBigUint64(0, true), dv.getBigUint64(8, true)) : decodeIrteLegacy(dv.getUint32(0, true));
}

/** The IRTE index an MSI (or an IO-APIC message) carries: data bits 10:0. */
export function irteIndexFromMsiData(data: number): number {
  return data & 0x7ff;
}

/** The request an interrupt source sends: its remappable index. */
export interface InterruptRequest {
  readonly index: number;
}

export type RemapResult =
  | { readonly ok: true; readonly vector: number; readonly destination: number; readonly destMode: 'physical' | 'logical'; readonly intType: number; readonly index: number }
  | {
    readonly ok: false;
    /**
     * remapping-off: IommuEn clear, the IOMMU leaves the message alone.
     * not-remapped: the DTE forwards it unmapped (V=0, IV=0 or IntCtl=1).
     * blocked: IntCtl says abort. illegal-dte: reserved IntCtl or IntTabLen.
     * index-out-of-range, irte-not-valid, guest-mode (posted; not modelled),
     * hardware-error (table outside memory): the interrupt is dropped.
     */
    readonly reason: 'remapping-off' | 'not-remapped' | 'blocked' | 'illegal-dte' | 'index-out-of-range' | 'irte-not-valid' | 'guest-mode' | 'hardware-error';
    readonly detail: string;
  };
