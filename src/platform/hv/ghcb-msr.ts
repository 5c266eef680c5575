// The GHCB MSR protocol (MSR 0xC0010130): a guest writes a request to the
// MSR, executes VMGEXIT, and reads the hypervisor's response from the same
// MSR. Bits 11:0 carry the request/response code (GHCBInfo), bits 63:12 the
// data (GHCBData). Codes and field positions: ref/sme-sev-kexec.md §3.3.
// Both sides use these encoders, so a guest model and the hypervisor model
// agree on the bits without sharing any state.

export const MSR_AMD64_SEV_ES_GHCB = 0xc001_0130;

export const GHCB_MSR_INFO_MASK = 0xfffn;
export const GHCB_MSR_DATA_SHIFT = 12n;

export const GHCB_MSR_SEV_INFO_RESP = 0x001;
export const GHCB_MSR_SEV_INFO_REQ = 0x002;
export const GHCB_MSR_CPUID_REQ = 0x004;
export const GHCB_MSR_CPUID_RESP = 0x005;
export const GHCB_MSR_AP_RESET_HOLD_REQ = 0x006;
export const GHCB_MSR_AP_RESET_HOLD_RESP = 0x007;
export const GHCB_MSR_PREF_GPA_REQ = 0x010;
export const GHCB_MSR_PREF_GPA_RESP = 0x011;
export const GHCB_MSR_REG_GPA_REQ = 0x012;
export const GHCB_MSR_REG_GPA_RESP = 0x013;
export const GHCB_MSR_PSC_REQ = 0x014;
export const GHCB_MSR_PSC_RESP = 0x015;
export const GHCB_MSR_VMPL_REQ = 0x016;
export const GHCB_MSR_VMPL_RESP = 0x017;
export const GHCB_MSR_HV_FT_REQ = 0x080;
export const GHCB_MSR_HV_FT_RESP = 0x081;
export const GHCB_MSR_TERM_REQ = 0x100;

/** GHCBData meaning "no GPA" (preferred GHCB GPA response; also our refusal of a registration). */
export const GHCB_MSR_GFN_NONE = 0xf_ffff_ffff_ffffn;

/** Page-state-change operations in request bits 55:52. */
export const PSC_OP_PRIVATE = 1;
export const PSC_OP_SHARED = 2;
/** PSC response error field bit 31 (MSR bit 63): the hypervisor's own (generic) failure. */
export const PSC_ERROR_HV_GENERIC = 0x8000_0000;
/** PSC error values below bit 31 (ours: the reference fixes only the generic bit). */
export const PSC_ERR_INVALID_GFN = 1;
export const PSC_ERR_INVALID_OP = 2;
export const PSC_ERR_NOT_SNP = 3;

/** Hypervisor feature bitmap (HV features response, NAE 0x8000fffd). */
export const GHCB_HV_FT_SNP = 1n << 0n;
export const GHCB_HV_FT_SNP_AP_CREATION = 1n << 1n;
export const GHCB_HV_FT_SNP_MULTI_VMPL = 1n << 5n;

/** Termination reason sets and codes. */
export const SEV_TERM_SET_GEN = 0;
export const SEV_TERM_SET_LINUX = 1;
export const GHCB_SEV_ES_GEN_REQ = 0;
export const GHCB_SEV_ES_PROT_UNSUPPORTED = 1;
export const GHCB_SNP_UNSUPPORTED = 2;
export const GHCB_TERM_REGISTER = 0;
export const GHCB_TERM_PSC = 1;
export const GHCB_TERM_PVALIDATE = 2;

const NAMES: Readonly<Record<number, string>> = {
  [GHCB_MSR_SEV_INFO_RESP]: 'SEV_INFO response',
  [GHCB_MSR_SEV_INFO_REQ]: 'SEV_INFO request',
  [GHCB_MSR_CPUID_REQ]: 'CPUID request',
  [GHCB_MSR_CPUID_RESP]: 'CPUID response',
  [GHCB_MSR_AP_RESET_HOLD_REQ]: 'AP reset hold request',
  [GHCB_MSR_AP_RESET_HOLD_RESP]: 'AP reset hold response',
  [GHCB_MSR_PREF_GPA_REQ]: 'preferred GHCB GPA request',
  [GHCB_MSR_PREF_GPA_RESP]: 'preferred GHCB GPA response',
  [GHCB_MSR_REG_GPA_REQ]: 'register GHCB GPA request',
  [GHCB_MSR_REG_GPA_RESP]: 'register GHCB GPA response',
  [GHCB_MSR_PSC_REQ]: 'page state change request',
  [GHCB_MSR_PSC_RESP]: 'page state change response',
  [GHCB_MSR_VMPL_REQ]: 'run at VMPL request',
  [GHCB_MSR_VMPL_RESP]: 'run at VMPL response',
  [GHCB_MSR_HV_FT_REQ]: 'hypervisor features request',
  [GHCB_MSR_HV_FT_RESP]: 'hypervisor features response',
  [GHCB_MSR_TERM_REQ]: 'termination request',
};

export function ghcbMsrCodeName(code: number): string {
  return NAMES[code] ?? `unknown code 0x${code.toString(16).padStart(3, '0')}`;
}

/** GHCBInfo (bits 11:0) of an MSR value. */
export function ghcbMsrInfo(v: bigint): number {
  return Number(v & GHCB_MSR_INFO_MASK);
}

/** GHCBData (bits 63:12) of an MSR value. */
export function ghcbMsrData(v: bigint): bigint {
  return (v >> GHCB_MSR_DATA_SHIFT) & ((1n << 52n) - 1n);
}

function u64(v: bigint): bigint {
  return BigInt.asUintN(64, v);
}

// Requests (guest side) ------------------------------------------------------

export function sevInfoRequest(): bigint {
  return BigInt(GHCB_MSR_SEV_INFO_REQ);
}

/** CPUID request: register 0 EAX, 1 EBX, 2 ECX, 3 EDX in bits 31:30; function in 63:32. */
export function cpuidRequest(fn: number, reg: 0 | 1 | 2 | 3): bigint {
  return u64((BigInt(fn >>> 0) << 32n) | (BigInt(reg) << 30n) | BigInt(GHCB_MSR_CPUID_REQ));
}

export function apResetHoldRequest(): bigint {
  return BigInt(GHCB_MSR_AP_RESET_HOLD_REQ);
}

export function preferredGhcbRequest(): bigint {
  return BigInt(GHCB_MSR_PREF_GPA_REQ);
}

export function registerGhcbRequest(gfn: number): bigint {
  return u64((BigInt(gfn) << 12n) | BigInt(GHCB_MSR_REG_GPA_REQ));
}

/** Page state change of one 4 KiB page: op in bits 55:52, GFN (40 bits) in 51:12. */
export function pscRequest(gfn: number, op: typeof PSC_OP_PRIVATE | typeof PSC_OP_SHARED): bigint {
  return u64((BigInt(op) << 52n) | ((BigInt(gfn) & ((1n << 40n) - 1n)) << 12n) | BigInt(GHCB_MSR_PSC_REQ));
}

export function hvFeaturesRequest(): bigint {
  return BigInt(GHCB_MSR_HV_FT_REQ);
}

/** Termination: reason set in bits 15:12, reason code in 23:16. */
export function terminateRequest(set: number, code: number): bigint {
  return u64((BigInt(code & 0xff) << 16n) | (BigInt(set & 0xf) << 12n) | BigInt(GHCB_MSR_TERM_REQ));
}

// Responses (hypervisor side) and their decoding ------------------------------

export function sevInfoResponse(maxVersion: number, minVersion: number, cbit: number): bigint {
  return u64((BigInt(maxVersion & 0xffff) << 48n) | (BigInt(minVersion & 0xffff) << 32n) | (BigInt(cbit & 0xff) << 24n) | BigInt(GHCB_MSR_SEV_INFO_RESP));
}

export function decodeSevInfo(v: bigint): { code: number; max: number; min: number; cbit: number } {
  return { code: ghcbMsrInfo(v), max: Number((v >> 48n) & 0xffffn), min: Number((v >> 32n) & 0xffffn), cbit: Number((v >> 24n) & 0xffn) };
}

export function decodeCpuidRequest(v: bigint): { fn: number; reg: 0 | 1 | 2 | 3 } {
  return { fn: Number((v >> 32n) & 0xffff_ffffn), reg: Number((v >> 30n) & 3n) as 0 | 1 | 2 | 3 };
}

export function cpuidResponse(value: number): bigint {
  return u64((BigInt(value >>> 0) << 32n) | BigInt(GHCB_MSR_CPUID_RESP));
}

/** AP reset hold response: GHCBData 0 = woken without a SIPI (hold again), non-zero = SIPI delivered. */
export function apResetHoldResponse(result: bigint): bigint {
  return u64((result << 12n) | BigInt(GHCB_MSR_AP_RESET_HOLD_RESP));
}

export function gfnResponse(code: number, gfn: bigint): bigint {
  return u64((gfn << 12n) | BigInt(code));
}

export function decodePscRequest(v: bigint): { op: number; gfn: number } {
  return { op: Number((v >> 52n) & 0xfn), gfn: Number((v >> 12n) & ((1n << 40n) - 1n)) };
}

export function pscResponse(error: number): bigint {
  return u64((BigInt(error >>> 0) << 32n) | BigInt(GHCB_MSR_PSC_RESP));
}

/** The error field (bits 63:32) of a PSC response; 0 is success. */
export function pscResponseError(v: bigint): number {
  return Number((v >> 32n) & 0xffff_ffffn);
}

export function hvFeaturesResponse(features: bigint): bigint {
  return u64((features << 12n) | BigInt(GHCB_MSR_HV_FT_RESP));
}

export function decodeTerminate(v: bigint): { set: number; code: number } {
  return { set: Number((v >> 12n) & 0xfn), code: Number((v >> 16n) & 0xffn) };
}
