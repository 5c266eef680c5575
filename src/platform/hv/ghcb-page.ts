// The GHCB page: a 4 KiB page the guest shares (C-bit clear) so the
// hypervisor can read the exit it asks for and write back the answer.
// Offsets and NAE exit codes: ref/sme-sev-kexec.md §3.4. A field counts as
// supplied only when its bit in the valid bitmap is set (bit = offset / 8).

export const GHCB_PAGE_BYTES = 4096;

/** Save-area offsets used here. RAX's offset follows the save-area order (ours; the reference lists the others). */
export const GHCB_OFF_RAX = 0x1f8;
export const GHCB_OFF_SW_EXIT_CODE = 0x390;
export const GHCB_OFF_SW_EXIT_INFO_1 = 0x398;
export const GHCB_OFF_SW_EXIT_INFO_2 = 0x3a0;
export const GHCB_OFF_SW_SCRATCH = 0x3a8;
export const GHCB_OFF_VALID_BITMAP = 0x3f0;
export const GHCB_VALID_BITMAP_BYTES = 16;
export const GHCB_OFF_SHARED_BUFFER = 0x800;
export const GHCB_SHARED_BUFFER_BYTES = 2032;
export const GHCB_OFF_PROTOCOL_VERSION = 0xffa;
export const GHCB_OFF_USAGE = 0xffc;
export const GHCB_DEFAULT_USAGE = 0;

/** NAE exit codes (SW_EXITCODE). */
export const SVM_VMGEXIT_MMIO_READ = 0x8000_0001;
export const SVM_VMGEXIT_MMIO_WRITE = 0x8000_0002;
export const SVM_VMGEXIT_NMI_COMPLETE = 0x8000_0003;
export const SVM_VMGEXIT_AP_HLT_LOOP = 0x8000_0004;
export const SVM_VMGEXIT_AP_JUMP_TABLE = 0x8000_0005;
export const SVM_VMGEXIT_PSC = 0x8000_0010;
export const SVM_VMGEXIT_GUEST_REQUEST = 0x8000_0011;
export const SVM_VMGEXIT_EXT_GUEST_REQUEST = 0x8000_0012;
export const SVM_VMGEXIT_AP_CREATION = 0x8000_0013;
export const SVM_VMGEXIT_SNP_RUN_VMPL = 0x8000_0018;
export const SVM_VMGEXIT_HV_FEATURES = 0x8000_fffd;
export const SVM_VMGEXIT_TERM_REQUEST = 0x8000_fffe;
export const SVM_VMGEXIT_UNSUPPORTED_EVENT = 0x8000_ffff;

/** AP jump table SW_EXITINFO1. */
export const AP_JUMP_TABLE_SET = 0;
export const AP_JUMP_TABLE_GET = 1;

/** AP creation events (SW_EXITINFO1 bits 15:0). */
export const SVM_VMGEXIT_AP_CREATE_ON_INIT = 0;
export const SVM_VMGEXIT_AP_CREATE = 1;
export const SVM_VMGEXIT_AP_DESTROY = 2;

/**
 * What the hypervisor writes back: SW_EXITINFO1 0 = done, 2 = error with the
 * reason in SW_EXITINFO2. The reason numbers follow the order of the GHCB
 * specification's list as we know it (not in the reference; ours).
 */
export const GHCB_RESULT_OK = 0;
export const GHCB_RESULT_ERROR = 2;
export const GHCB_ERR_NOT_REGISTERED = 1;
export const GHCB_ERR_INVALID_USAGE = 2;
export const GHCB_ERR_INVALID_SCRATCH_AREA = 3;
export const GHCB_ERR_MISSING_INPUT = 4;
export const GHCB_ERR_INVALID_INPUT = 5;
export const GHCB_ERR_INVALID_EVENT = 6;

/** Page state change descriptor (in the shared buffer): 8-byte header, then 8-byte entries. */
export const PSC_HEADER_BYTES = 8;
export const PSC_ENTRY_BYTES = 8;
/** Entries that fit in the shared buffer (the specification's maximum). */
export const PSC_MAX_ENTRIES = 253;
/** PSC failure reported in SW_EXITINFO2 (ours: the reference gives no value). */
export const PSC_ERROR_INVALID_ENTRY = 1n << 32n;

const NAE_NAMES: Readonly<Record<number, string>> = {
  [SVM_VMGEXIT_MMIO_READ]: 'MMIO read',
  [SVM_VMGEXIT_MMIO_WRITE]: 'MMIO write',
  [SVM_VMGEXIT_NMI_COMPLETE]: 'NMI complete',
  [SVM_VMGEXIT_AP_HLT_LOOP]: 'AP HLT loop (AP reset hold)',
  [SVM_VMGEXIT_AP_JUMP_TABLE]: 'AP jump table',
  [SVM_VMGEXIT_PSC]: 'page state change',
  [SVM_VMGEXIT_GUEST_REQUEST]: 'guest request',
  [SVM_VMGEXIT_EXT_GUEST_REQUEST]: 'extended guest request',
  [SVM_VMGEXIT_AP_CREATION]: 'AP creation',
  [SVM_VMGEXIT_SNP_RUN_VMPL]: 'run at VMPL',
  [SVM_VMGEXIT_HV_FEATURES]: 'hypervisor features',
  [SVM_VMGEXIT_TERM_REQUEST]: 'termination request',
  [SVM_VMGEXIT_UNSUPPORTED_EVENT]: 'unsupported event',
};

export function naeExitName(code: number): string {
  return NAE_NAMES[code] ?? `exit code 0x${code.toString(16)}`;
}

/** The fields a GHCB exit carries, as the guest fills them in. */
export interface GhcbRequest {
  readonly exitCode: number;
  readonly info1: bigint;
  readonly info2: bigint;
  readonly scratch?: bigint;
  readonly rax?: bigint;
  /** Written at 0xFFA; the negotiated protocol version in mainline. */
  readonly protocolVersion?: number;
  readonly usage?: number;
  /** Bytes for the shared buffer (a PSC descriptor, MMIO data). */
  readonly sharedBuffer?: Uint8Array;
}

function setValid(page: Uint8Array, off: number): void {
  const bit = off / 8;
  page[GHCB_OFF_VALID_BITMAP + (bit >> 3)]! |= 1 << (bit & 7);
}

export function ghcbFieldValid(page: Uint8Array, off: number): boolean {
  const bit = off / 8;
  return ((page[GHCB_OFF_VALID_BITMAP + (bit >> 3)]! >> (bit & 7)) & 1) === 1;
}

/** A whole GHCB page holding `req`, its fields marked valid. */
export function encodeGhcb(req: GhcbRequest): Uint8Array {
  const page = new Uint8Array(GHCB_PAGE_BYTES);
  const dv = new DataView(page.buffer);
  const put = (off: number, v: bigint): void => {
    dv.setBigUint64(off, BigInt.asUintN(64, v), true);
    setValid(page, off);
  };
  put(GHCB_OFF_SW_EXIT_CODE, BigInt(req.exitCode >>> 0));
  put(GHCB_OFF_SW_EXIT_INFO_1, req.info1);
  put(GHCB_OFF_SW_EXIT_INFO_2, req.info2);
  if (req.scratch !== undefined) put(GHCB_OFF_SW_SCRATCH, req.scratch);
  if (req.rax !== undefined) put(GHCB_OFF_RAX, req.rax);
  if (req.sharedBuffer !== undefined) {
    if (req.sharedBuffer.length > GHCB_SHARED_BUFFER_BYTES) throw new RangeError(`Cannot encode GHCB: shared buffer of ${req.sharedBuffer.length} bytes exceeds ${GHCB_SHARED_BUFFER_BYTES}`);
    page.set(req.sharedBuffer, GHCB_OFF_SHARED_BUFFER);
  }
  dv.setUint16(GHCB_OFF_PROTOCOL_VERSION, req.protocolVersion ?? 2, true);
  dv.setUint32(GHCB_OFF_USAGE, req.usage ?? GHCB_DEFAULT_USAGE, true);
  return page;
}

export function ghcbU64(page: Uint8Array, off: number): bigint {
  return new DataView(page.buffer, page.byteOffset, page.byteLength).getBigUint64(off, true);
}

/** What the hypervisor answered: SW_EXITINFO1 and SW_EXITINFO2 of a page read back. */
export function decodeGhcbResult(page: Uint8Array): { info1: bigint; info2: bigint } {
  return { info1: ghcbU64(page, GHCB_OFF_SW_EXIT_INFO_1), info2: ghcbU64(page, GHCB_OFF_SW_EXIT_INFO_2) };
}

/** SW_EXITINFO1 of an AP creation request. */
export function apCreationInfo1(apicId: number, vmpl: number, event: number): bigint {
  return (BigInt(apicId >>> 0) << 32n) | (BigInt(vmpl & 0xff) << 16n) | BigInt(event & 0xffff);
}

/** One PSC descriptor entry: cur_page 11:0, GFN 51:12, operation 55:52, page size bit 56. */
export interface PscEntry {
  readonly gfn: number;
  readonly op: number;
  readonly pageSize: 0 | 1;
  readonly curPage?: number;
}

export function encodePscDescriptor(entries: readonly PscEntry[], cur = 0): Uint8Array {
  if (entries.length === 0 || entries.length > PSC_MAX_ENTRIES) throw new RangeError(`Cannot encode PSC descriptor: ${entries.length} entries is out of range 1..${PSC_MAX_ENTRIES}`);
  const b = new Uint8Array(PSC_HEADER_BYTES + entries.length * PSC_ENTRY_BYTES);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, cur, true);
  dv.setUint16(2, entries.length - 1, true);
  entries.forEach((e, i) => {
    const v = BigInt(e.curPage ?? 0) | ((BigInt(e.gfn) & ((1n << 40n) - 1n)) << 12n) | (BigInt(e.op & 0xf) << 52n) | (BigInt(e.pageSize) << 56n);
    dv.setBigUint64(PSC_HEADER_BYTES + i * PSC_ENTRY_BYTES, v, true);
  });
  return b;
}

export function decodePscEntry(v: bigint): PscEntry & { reserved: number } {
  return {
    curPage: Number(v & 0xfffn),
    gfn: Number((v >> 12n) & ((1n << 40n) - 1n)),
    op: Number((v >> 52n) & 0xfn),
    pageSize: Number((v >> 56n) & 1n) as 0 | 1,
    reserved: Number((v >> 57n) & 0x7fn),
  };
}
