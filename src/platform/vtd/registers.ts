// Intel VT-d remapping unit register file: offsets from the DRHD base and
// bit fields, laid out to be read next to ref/intel-vtd-kdump.md §1.1-1.5.
// The IOTLB and fault-recording registers move with ECAP.IRO and CAP.FRO, so
// their offsets are functions of those values.

export const VTD_DEFAULT_MMIO_BASE = 0xfed9_0000;
/** One 4 KiB page of registers, grown when CAP/ECAP place registers past it. */
export const VTD_MIN_MMIO_SIZE = 0x1000;

export const REG_VER = 0x00;
export const REG_CAP = 0x08;
export const REG_ECAP = 0x10;
export const REG_GCMD = 0x18;
export const REG_GSTS = 0x1c;
export const REG_RTADDR = 0x20;
export const REG_CCMD = 0x28;
export const REG_FSTS = 0x34;
export const REG_FECTL = 0x38;
export const REG_FEDATA = 0x3c;
export const REG_FEADDR = 0x40;
export const REG_FEUADDR = 0x44;
export const REG_AFLOG = 0x58;
export const REG_PMEN = 0x64;
export const REG_PLMBASE = 0x68;
export const REG_PLMLIMIT = 0x6c;
export const REG_PHMBASE = 0x70;
export const REG_PHMLIMIT = 0x78;
export const REG_IQH = 0x80;
export const REG_IQT = 0x88;
export const REG_IQA = 0x90;
export const REG_ICS = 0x9c;
export const REG_IECTL = 0xa0;
export const REG_IEDATA = 0xa4;
export const REG_IEADDR = 0xa8;
export const REG_IEUADDR = 0xac;
export const REG_IQER = 0xb0;
export const REG_IRTA = 0xb8;

/** Registers 64 bits wide at fixed offsets (IVA, IOTLB and FRCD halves are added from CAP/ECAP). */
export const FIXED_64BIT_REGISTERS: readonly number[] = [
  REG_CAP, REG_ECAP, REG_RTADDR, REG_CCMD, REG_AFLOG, REG_PHMBASE, REG_PHMLIMIT, REG_IQH, REG_IQT, REG_IQA, REG_IQER, REG_IRTA,
];

export const REGISTER_NAMES: Readonly<Record<number, string>> = {
  [REG_VER]: 'VER', [REG_CAP]: 'CAP', [REG_ECAP]: 'ECAP', [REG_GCMD]: 'GCMD', [REG_GSTS]: 'GSTS', [REG_RTADDR]: 'RTADDR',
  [REG_CCMD]: 'CCMD', [REG_FSTS]: 'FSTS', [REG_FECTL]: 'FECTL', [REG_FEDATA]: 'FEDATA', [REG_FEADDR]: 'FEADDR',
  [REG_FEUADDR]: 'FEUADDR', [REG_AFLOG]: 'AFLOG', [REG_PMEN]: 'PMEN', [REG_PLMBASE]: 'PLMBASE', [REG_PLMLIMIT]: 'PLMLIMIT',
  [REG_PHMBASE]: 'PHMBASE', [REG_PHMLIMIT]: 'PHMLIMIT', [REG_IQH]: 'IQH', [REG_IQT]: 'IQT', [REG_IQA]: 'IQA', [REG_ICS]: 'ICS',
  [REG_IECTL]: 'IECTL', [REG_IEDATA]: 'IEDATA', [REG_IEADDR]: 'IEADDR', [REG_IEUADDR]: 'IEUADDR', [REG_IQER]: 'IQER', [REG_IRTA]: 'IRTA',
};

/** VER as QEMU's model and many real parts report it: major 1, minor 0. */
export const DEFAULT_VER = 0x10;

// ---- GCMD / GSTS (§1.2): the same bit positions name the command and its status ----

export const GCMD_TE = 1 << 31;
export const GCMD_SRTP = 1 << 30;
export const GCMD_SFL = 1 << 29;
export const GCMD_EAFL = 1 << 28;
export const GCMD_WBF = 1 << 27;
export const GCMD_QIE = 1 << 26;
export const GCMD_IRE = 1 << 25;
export const GCMD_SIRTP = 1 << 24;
export const GCMD_CFI = 1 << 23;

export const GSTS_TES = GCMD_TE;
export const GSTS_RTPS = GCMD_SRTP;
export const GSTS_FLS = GCMD_SFL;
export const GSTS_AFLS = GCMD_EAFL;
export const GSTS_WBFS = GCMD_WBF;
export const GSTS_QIES = GCMD_QIE;
export const GSTS_IRES = GCMD_IRE;
export const GSTS_IRTPS = GCMD_SIRTP;
export const GSTS_CFIS = GCMD_CFI;

// ---- RTADDR ----

export const RTADDR_ADDR_MASK = 0xffff_ffff_ffff_f000n;
/** Scalable-mode root/context format (TTM = 01). */
export const RTADDR_SMT = 1n << 10n;

// ---- CCMD ----

export const CCMD_ICC = 1n << 63n;
export const CCMD_CIRG_SHIFT = 61n;
export const CCMD_CAIG_SHIFT = 59n;
export const CCMD_FM_SHIFT = 32n;
export const CCMD_SID_SHIFT = 16n;
/** Context-cache invalidation granularities (CIRG / CAIG / descriptor G). */
export const CC_GLOBAL = 1;
export const CC_DOMAIN = 2;
export const CC_DEVICE = 3;

// ---- IOTLB / IVA ----

export const IOTLB_IVT = 1n << 63n;
export const IOTLB_IIRG_SHIFT = 60n;
export const IOTLB_IAIG_SHIFT = 57n;
export const IOTLB_DR = 1n << 49n;
export const IOTLB_DW = 1n << 48n;
export const IOTLB_DID_SHIFT = 32n;
/** IOTLB invalidation granularities (IIRG / IAIG / descriptor G). */
export const IOTLB_GLOBAL = 1;
export const IOTLB_DOMAIN = 2;
export const IOTLB_PAGE = 3;
export const IVA_ADDR_MASK = 0xffff_ffff_ffff_f000n;
export const IVA_IH = 1n << 6n;
export const IVA_AM_MASK = 0x3fn;

// ---- FSTS / FECTL / IECTL / ICS ----

export const FSTS_PFO = 1 << 0;
export const FSTS_PPF = 1 << 1;
export const FSTS_IQE = 1 << 4;
export const FSTS_ICE = 1 << 5;
export const FSTS_ITE = 1 << 6;
export const FSTS_PRO = 1 << 7;
export const FSTS_FRI_SHIFT = 8;
/** Status bits software clears by writing 1 (PPF follows the records' F bits; FRI is read-only). */
export const FSTS_W1C = FSTS_PFO | FSTS_IQE | FSTS_ICE | FSTS_ITE | FSTS_PRO;

export const ECTL_IM = 1 << 31;
export const ECTL_IP = 1 << 30;

export const ICS_IWC = 1;

export const PMEN_EPM = 1 << 31;
export const PMEN_PRS = 1 << 0;

// ---- IQ registers ----

export const IQA_ADDR_MASK = 0xffff_ffff_ffff_f000n;
/** 256-bit descriptors (scalable-mode parts only). */
export const IQA_DW = 1n << 11n;
export const IQA_QS_MASK = 7n;
/** IQH/IQT: descriptor offset, bits 18:4. */
export const IQ_PTR_MASK = 0x7_fff0n;

// ---- IRTA ----

export const IRTA_ADDR_MASK = 0xffff_ffff_ffff_f000n;
export const IRTA_EIME = 1n << 11n;
export const IRTA_S_MASK = 0xfn;

// ---- CAP fields (§1.3) ----

export const CAP_AFL = 1n << 3n;
export const CAP_RWBF = 1n << 4n;
export const CAP_PLMR = 1n << 5n;
export const CAP_PHMR = 1n << 6n;
export const CAP_CM = 1n << 7n;
export const CAP_ZLR = 1n << 22n;
export const CAP_PSI = 1n << 39n;
export const CAP_DWD = 1n << 54n;
export const CAP_DRD = 1n << 55n;
export const CAP_FL1GP = 1n << 56n;
export const CAP_PI = 1n << 59n;
export const CAP_ESIRTPS = 1n << 62n;
export const CAP_ESRTPS = 1n << 63n;

const field = (v: bigint, lo: bigint, bits: bigint): number => Number((v >> lo) & ((1n << bits) - 1n));

export const capNd = (cap: bigint): number => field(cap, 0n, 3n);
/** Domain ids the unit supports: 2^(4 + 2·ND). */
export const capDomains = (cap: bigint): number => 2 ** (4 + 2 * capNd(cap));
export const capSagaw = (cap: bigint): number => field(cap, 8n, 5n);
/** Maximum guest address width in bits (MGAW + 1). */
export const capMgaw = (cap: bigint): number => field(cap, 16n, 6n) + 1;
/** Byte offset of the first fault recording register (FRO × 16). */
export const capFaultRegOffset = (cap: bigint): number => field(cap, 24n, 10n) * 16;
export const capSps = (cap: bigint): number => field(cap, 34n, 4n);
/** Number of fault recording registers (NFR + 1). */
export const capFaultRecords = (cap: bigint): number => field(cap, 40n, 8n) + 1;
export const capMamv = (cap: bigint): number => field(cap, 48n, 6n);

/** Builds a CAP value from its fields (flags are CAP_* bits). */
export function capValue(f: { nd: number; sagaw: number; mgaw: number; fro: number; sps: number; nfr: number; mamv: number; flags: bigint }): bigint {
  return BigInt(f.nd & 7) | (BigInt(f.sagaw & 0x1f) << 8n) | (BigInt((f.mgaw - 1) & 0x3f) << 16n) | (BigInt(f.fro & 0x3ff) << 24n)
    | (BigInt(f.sps & 0xf) << 34n) | (BigInt((f.nfr - 1) & 0xff) << 40n) | (BigInt(f.mamv & 0x3f) << 48n) | f.flags;
}

// ---- ECAP fields (§1.4) ----

export const ECAP_C = 1n << 0n;
export const ECAP_QI = 1n << 1n;
export const ECAP_DT = 1n << 2n;
export const ECAP_IR = 1n << 3n;
export const ECAP_EIM = 1n << 4n;
export const ECAP_PT = 1n << 6n;
export const ECAP_SC = 1n << 7n;
export const ECAP_PASID = 1n << 40n;
export const ECAP_SMTS = 1n << 43n;
export const ECAP_SLTS = 1n << 46n;
export const ECAP_FLTS = 1n << 47n;
export const ECAP_SMPWC = 1n << 48n;

/** Byte offset of the IVA register (IRO × 16); the IOTLB register follows at +8. */
export const ecapIotlbRegOffset = (ecap: bigint): number => field(ecap, 8n, 10n) * 16;
export const ecapMhmv = (ecap: bigint): number => field(ecap, 20n, 4n);
/** PASID width in bits (PSS + 1). */
export const ecapPasidBits = (ecap: bigint): number => field(ecap, 35n, 5n) + 1;

export function ecapValue(f: { iro: number; mhmv: number; pss: number; flags: bigint }): bigint {
  return (BigInt(f.iro & 0x3ff) << 8n) | (BigInt(f.mhmv & 0xf) << 20n) | (BigInt(f.pss & 0x1f) << 35n) | f.flags;
}

/**
 * The CAP of a typical server unit (our choice where the reference gives no
 * part): 2^16 domain ids, 39- and 48-bit AGAWs, MGAW 48, 2 MiB and 1 GiB
 * superpages, page-selective invalidation up to 2^18 pages, write/read
 * draining, 8 fault records at 0x220 (QEMU's FRCD offset). ESRTPS and
 * ESIRTPS are clear, so software must flush caches after SRTP/SIRTP.
 */
export const DEFAULT_CAP = capValue({
  nd: 6, sagaw: 0b00110, mgaw: 48, fro: 0x22, sps: 0b0011, nfr: 8, mamv: 18,
  flags: CAP_ZLR | CAP_PSI | CAP_DWD | CAP_DRD | CAP_FL1GP,
});

/** ECAP of the same part, legacy mode only: coherent walks, QI, device TLB, IR with x2APIC, pass-through, snoop control; IVA/IOTLB at 0x500. */
export const DEFAULT_ECAP = ecapValue({ iro: 0x50, mhmv: 0xf, pss: 0, flags: ECAP_C | ECAP_QI | ECAP_DT | ECAP_IR | ECAP_EIM | ECAP_PT | ECAP_SC });

/**
 * Scalable-mode support added to an ECAP: SMTS, second-level translation,
 * PASID (20 bits) and coherent scalable-mode walks. First-level translation
 * (FLTS) is not advertised because the model does not walk first-level tables.
 */
export function withScalableMode(ecap: bigint): bigint {
  return (ecap & ~(0x1fn << 35n)) | ECAP_SMTS | ECAP_SLTS | ECAP_PASID | ECAP_SMPWC | (19n << 35n);
}

// ---- value builders for software ----

/** RTADDR for a root table at `pa` (4 KiB aligned), legacy or scalable format. */
export function rtaddrValue(pa: number, scalable = false): bigint {
  if (pa % 4096 !== 0) throw new RangeError(`Cannot encode RTADDR: root table 0x${pa.toString(16)} is not 4 KiB aligned`);
  return (BigInt(pa) & RTADDR_ADDR_MASK) | (scalable ? RTADDR_SMT : 0n);
}

/** IQA for a queue at `pa` of 2^qs pages; `wide`: 256-bit descriptors. */
export function iqaValue(pa: number, qs: number, wide = false): bigint {
  if (pa % 4096 !== 0) throw new RangeError(`Cannot encode IQA: queue 0x${pa.toString(16)} is not 4 KiB aligned`);
  if (!(Number.isInteger(qs) && qs >= 0 && qs <= 7)) throw new RangeError(`Cannot encode IQA: queue size ${qs} is not 0..7`);
  return (BigInt(pa) & IQA_ADDR_MASK) | (wide ? IQA_DW : 0n) | BigInt(qs);
}

/** IRTA for a table at `pa` with 2^(s+1) entries; `eime`: 32-bit x2APIC destinations. */
export function irtaValue(pa: number, s: number, eime = false): bigint {
  if (pa % 4096 !== 0) throw new RangeError(`Cannot encode IRTA: table 0x${pa.toString(16)} is not 4 KiB aligned`);
  if (!(Number.isInteger(s) && s >= 0 && s <= 15)) throw new RangeError(`Cannot encode IRTA: size field ${s} is not 0..15`);
  return (BigInt(pa) & IRTA_ADDR_MASK) | (eime ? IRTA_EIME : 0n) | BigInt(s);
}

/** Entries of the interrupt remapping table IRTA describes: 2^(S+1). */
export function irtaEntries(irta: bigint): number {
  return 2 ** (Number(irta & IRTA_S_MASK) + 1);
}

/** A CCMD write requesting a context-cache invalidation. */
export function ccmdValue(granularity: number, opts: { did?: number; sid?: number; fm?: number } = {}): bigint {
  return CCMD_ICC | (BigInt(granularity & 3) << CCMD_CIRG_SHIFT) | (BigInt((opts.fm ?? 0) & 3) << CCMD_FM_SHIFT)
    | (BigInt((opts.sid ?? 0) & 0xffff) << CCMD_SID_SHIFT) | BigInt((opts.did ?? 0) & 0xffff);
}

/** An IOTLB-register write requesting an invalidation (page-selective also needs IVA). */
export function iotlbRegValue(granularity: number, did = 0, drain = true): bigint {
  return IOTLB_IVT | (BigInt(granularity & 3) << IOTLB_IIRG_SHIFT) | (BigInt(did & 0xffff) << IOTLB_DID_SHIFT) | (drain ? IOTLB_DR | IOTLB_DW : 0n);
}

/** IVA for a page-selective invalidation of 2^am pages at `addr`. */
export function ivaValue(addr: number, am = 0, ih = false): bigint {
  return (BigInt(addr) & IVA_ADDR_MASK) | (ih ? IVA_IH : 0n) | (BigInt(am) & IVA_AM_MASK);
}
