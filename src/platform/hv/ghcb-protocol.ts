// The hypervisor's side of a VMGEXIT: the MSR protocol (GHCBInfo != 0 in
// the GHCB MSR) and the GHCB page's NAE events. Which requests a VM answers
// depends on the GHCB protocol versions it offers: version 1 has SEV_INFO,
// CPUID, termination and the GHCB-page events SEV-ES booted with (AP HLT
// loop, AP jump table); version 2 adds the MSR AP reset hold, GHCB GPA
// registration, page state change, hypervisor features and, for SNP, AP
// creation (ref/sme-sev-kexec.md §3.3-3.5). Every MSR exchange is traced as
// 'ghcb-msr' and every GHCB-page exit as 'ghcb-nae', with the codes in data.

import type { Trace } from '../trace.js';
import type { CpuidLeaf } from '../cpu/cpu.js';
import type { WriteResult } from '../memory-controller.js';
import type { Vcpu } from './vcpu.js';
import {
  GHCB_MSR_SEV_INFO_REQ, GHCB_MSR_CPUID_REQ, GHCB_MSR_AP_RESET_HOLD_REQ,
  GHCB_MSR_PREF_GPA_REQ, GHCB_MSR_PREF_GPA_RESP, GHCB_MSR_REG_GPA_REQ, GHCB_MSR_REG_GPA_RESP, GHCB_MSR_PSC_REQ,
  GHCB_MSR_HV_FT_REQ, GHCB_MSR_TERM_REQ, GHCB_MSR_GFN_NONE, MSR_AMD64_SEV_ES_GHCB,
  PSC_OP_PRIVATE, PSC_OP_SHARED,
  ghcbMsrInfo, ghcbMsrData, ghcbMsrCodeName, sevInfoResponse, decodeCpuidRequest, cpuidResponse, gfnResponse, decodePscRequest,
  pscResponse, hvFeaturesResponse, decodeTerminate,
} from './ghcb-msr.js';
import {
  GHCB_PAGE_BYTES, GHCB_OFF_SW_EXIT_CODE, GHCB_OFF_SW_EXIT_INFO_1, GHCB_OFF_SW_EXIT_INFO_2, GHCB_OFF_SW_SCRATCH, GHCB_OFF_RAX,
  GHCB_OFF_USAGE, GHCB_OFF_PROTOCOL_VERSION, GHCB_OFF_VALID_BITMAP, GHCB_OFF_SHARED_BUFFER, GHCB_SHARED_BUFFER_BYTES, GHCB_DEFAULT_USAGE,
  GHCB_RESULT_OK, GHCB_RESULT_ERROR, GHCB_ERR_INVALID_INPUT, GHCB_ERR_INVALID_EVENT, GHCB_ERR_INVALID_USAGE, GHCB_ERR_MISSING_INPUT,
  GHCB_ERR_INVALID_SCRATCH_AREA,
  SVM_VMGEXIT_AP_HLT_LOOP, SVM_VMGEXIT_AP_JUMP_TABLE, SVM_VMGEXIT_AP_CREATION, SVM_VMGEXIT_PSC, SVM_VMGEXIT_HV_FEATURES,
  SVM_VMGEXIT_TERM_REQUEST, AP_JUMP_TABLE_SET, AP_JUMP_TABLE_GET, SVM_VMGEXIT_AP_CREATE, SVM_VMGEXIT_AP_CREATE_ON_INIT,
  SVM_VMGEXIT_AP_DESTROY, SVM_VMGEXIT_MMIO_READ, SVM_VMGEXIT_MMIO_WRITE, PSC_HEADER_BYTES, PSC_ENTRY_BYTES, PSC_ERROR_INVALID_ENTRY,
  ghcbFieldValid, ghcbU64, naeExitName, decodePscEntry,
} from './ghcb-page.js';
import { hex } from '../../util/hex.js';

export type GuestKind = 'none' | 'sev' | 'sev-es' | 'snp';

/** What the handlers need of the VM and its hypervisor. */
export interface HvServices {
  readonly type: GuestKind;
  readonly asid: number;
  readonly trace: Trace;
  /** Trace source for the hypervisor's own decisions. */
  readonly hvSource: string;
  readonly ghcbMin: number;
  readonly ghcbMax: number;
  readonly cbit: number;
  readonly memoryBytes: number;
  /** SEV_FEATURES the VM was launched with (AP creation must ask for the same). */
  readonly sevFeatures: bigint;
  /** The AP jump table GPA the hypervisor stores for the VM (0: none set). */
  apJumpTableGpa: bigint;
  hvFeatures(): bigint;
  guestCpuid(fn: number, subleaf: number): CpuidLeaf;
  /** RMP change of one 4 KiB guest page; error is the PSC error value on failure. */
  changePageState(vcpu: Vcpu, gfn: number, op: number): { ok: true } | { ok: false; error: number; detail: string };
  terminate(vcpu: Vcpu, set: number, code: number, via: string): void;
  /** The host reading and writing a (shared) guest page: no key, host requester. */
  hostRead(gpa: number, length: number): Uint8Array;
  hostWrite(gpa: number, bytes: Uint8Array): WriteResult;
  /** An access to an emulated device on the VM's MMIO bus (`value` is ignored for reads). */
  mmioAccess(vcpu: Vcpu, gpa: number, size: number, write: boolean, value: bigint): { ok: true; value: bigint } | { ok: false; detail: string };
  vcpuByApicId(apicId: number): Vcpu | undefined;
  /** AP creation events; `undefined` = accepted, else a GHCB error reason. */
  apCreate(caller: Vcpu, target: Vcpu, event: number, vmsaGpa: number): number | undefined;
}

export type ExitOutcome =
  | { kind: 'continue' }
  | { kind: 'hold'; via: 'msr' }
  | { kind: 'hold'; via: 'ghcb'; ghcbGpa: number }
  | { kind: 'stop'; detail: string }
  | { kind: 'terminated' };

const CONTINUE: ExitOutcome = { kind: 'continue' };

/** Requests that need protocol version 2. */
const MSR_V2 = new Set([GHCB_MSR_AP_RESET_HOLD_REQ, GHCB_MSR_PREF_GPA_REQ, GHCB_MSR_REG_GPA_REQ, GHCB_MSR_PSC_REQ, GHCB_MSR_HV_FT_REQ]);
const NAE_V2 = new Set([SVM_VMGEXIT_AP_CREATION, SVM_VMGEXIT_PSC, SVM_VMGEXIT_HV_FEATURES]);

function traceMsr(hv: HvServices, vcpu: Vcpu, request: number, response: number | undefined, detail: string, extra: Record<string, number | string | boolean> = {}): void {
  const data: Record<string, number | string | boolean> = { asid: hv.asid, vcpu: vcpu.index, request, ...extra };
  if (response !== undefined) data['response'] = response;
  hv.trace.record(vcpu.source, 'ghcb-msr', detail, data);
}

/** Serves an MSR-protocol request found in the vCPU's GHCB MSR. */
export function handleMsrProtocol(hv: HvServices, vcpu: Vcpu, value: bigint): ExitOutcome {
  const code = ghcbMsrInfo(value);
  const cpu = vcpu.cpu;
  const respond = (resp: bigint, detail: string, extra?: Record<string, number | string | boolean>): ExitOutcome => {
    // The GHCB MSR is in the VMCB control area, which the hypervisor may write.
    cpu.wrmsr(MSR_AMD64_SEV_ES_GHCB, resp);
    traceMsr(hv, vcpu, code, ghcbMsrInfo(resp), detail, { ...extra, value: hex(value), responseValue: hex(resp) });
    return CONTINUE;
  };
  if (MSR_V2.has(code) && hv.ghcbMax < 2) return unsupported(hv, vcpu, code, value, `needs GHCB protocol version 2, the hypervisor offers ${hv.ghcbMin}..${hv.ghcbMax}`);
  switch (code) {
    case GHCB_MSR_SEV_INFO_REQ:
      return respond(sevInfoResponse(hv.ghcbMax, hv.ghcbMin, hv.cbit),
        `SEV_INFO 0x002 -> 0x001: protocol ${hv.ghcbMin}..${hv.ghcbMax}, C-bit ${hv.cbit}`, { min: hv.ghcbMin, max: hv.ghcbMax, cbit: hv.cbit });
    case GHCB_MSR_CPUID_REQ: {
      const { fn, reg } = decodeCpuidRequest(value);
      const v = hv.guestCpuid(fn, 0)[reg]!;
      return respond(cpuidResponse(v), `CPUID 0x004 -> 0x005: fn ${hex(fn)} reg ${'abcd'[reg]}x = ${hex(v >>> 0)}`, { fn, reg, result: v >>> 0 });
    }
    case GHCB_MSR_AP_RESET_HOLD_REQ:
      traceMsr(hv, vcpu, code, undefined, `AP reset hold 0x006: vCPU ${vcpu.index} parked until a SIPI`, { held: true, value: hex(value) });
      return { kind: 'hold', via: 'msr' };
    case GHCB_MSR_PREF_GPA_REQ:
      return respond(gfnResponse(GHCB_MSR_PREF_GPA_RESP, GHCB_MSR_GFN_NONE), 'preferred GHCB GPA 0x010 -> 0x011: none');
    case GHCB_MSR_REG_GPA_REQ: {
      const gfn = ghcbMsrData(value);
      const ok = gfn * 4096n < BigInt(hv.memoryBytes);
      if (ok) vcpu.registeredGhcbGpa = Number(gfn) * 4096;
      return respond(gfnResponse(GHCB_MSR_REG_GPA_RESP, ok ? gfn : GHCB_MSR_GFN_NONE),
        `register GHCB GPA 0x012 -> 0x013: GFN ${hex(gfn)} ${ok ? 'registered' : 'refused (outside guest memory)'}`, { gfn: Number(gfn), registered: ok });
    }
    case GHCB_MSR_PSC_REQ: {
      const { op, gfn } = decodePscRequest(value);
      const r = hv.changePageState(vcpu, gfn, op);
      const err = r.ok ? 0 : r.error;
      return respond(pscResponse(err), `page state change 0x014 -> 0x015: GFN ${hex(gfn)} to ${opName(op)}${r.ok ? '' : ` failed: ${r.detail}`}`, { gfn, op, error: err });
    }
    case GHCB_MSR_HV_FT_REQ: {
      const f = hv.hvFeatures();
      return respond(hvFeaturesResponse(f), `hypervisor features 0x080 -> 0x081: ${hex(f)}`, { features: Number(f) });
    }
    case GHCB_MSR_TERM_REQ: {
      const { set, code: reason } = decodeTerminate(value);
      traceMsr(hv, vcpu, code, undefined, `termination 0x100: reason set ${set} code ${reason}`, { set, code: reason, value: hex(value) });
      hv.terminate(vcpu, set, reason, 'GHCB MSR protocol');
      return { kind: 'terminated' };
    }
    default:
      return unsupported(hv, vcpu, code, value, 'not a request this hypervisor implements');
  }
}

/**
 * (our choice) A request the hypervisor does not implement has no defined
 * response code; like a VMM that returns an error for the exit, the vCPU
 * does not resume (it is stopped).
 */
function unsupported(hv: HvServices, vcpu: Vcpu, code: number, value: bigint, why: string): ExitOutcome {
  const detail = `${ghcbMsrCodeName(code)} (${hex(code)}): ${why}`;
  traceMsr(hv, vcpu, code, undefined, `GHCB MSR ${detail}; the vCPU is not resumed`, { supported: false, value: hex(value) });
  return { kind: 'stop', detail };
}

function opName(op: number): string {
  return op === PSC_OP_PRIVATE ? 'private' : op === PSC_OP_SHARED ? 'shared' : `operation ${op}`;
}

// GHCB page -----------------------------------------------------------------

/** Serves the NAE event in the GHCB page at `gpa` (the GHCB MSR's value). */
export function handleGhcbExit(hv: HvServices, vcpu: Vcpu, gpaValue: bigint): ExitOutcome {
  const nae = (detail: string, data: Record<string, number | string | boolean>): void => {
    hv.trace.record(vcpu.source, 'ghcb-nae', detail, { asid: hv.asid, vcpu: vcpu.index, ...data });
  };
  if (gpaValue % 4096n !== 0n || gpaValue + 4096n > BigInt(hv.memoryBytes)) {
    nae(`VMGEXIT with GHCB GPA ${hex(gpaValue)} outside guest memory; the vCPU is not resumed`, { ghcb: hex(gpaValue), error: 'bad-ghcb' });
    return { kind: 'stop', detail: `GHCB GPA ${hex(gpaValue)} is outside guest memory` };
  }
  const gpa = Number(gpaValue);
  if (hv.type === 'snp' && vcpu.registeredGhcbGpa !== gpa) {
    // (our choice) SNP requires the GHCB to be registered first; a different page is not served.
    const reg = vcpu.registeredGhcbGpa === undefined ? 'none registered' : `registered ${hex(vcpu.registeredGhcbGpa)}`;
    nae(`VMGEXIT with GHCB ${hex(gpa)} (${reg}); the vCPU is not resumed`, { ghcb: gpa, error: 'not-registered' });
    return { kind: 'stop', detail: `GHCB ${hex(gpa)} is not the registered one (${reg})` };
  }
  const page = hv.hostRead(gpa, GHCB_PAGE_BYTES);
  const dv = new DataView(page.buffer, page.byteOffset, page.byteLength);
  const exitCode = Number(ghcbU64(page, GHCB_OFF_SW_EXIT_CODE) & 0xffff_ffffn);
  const info1 = ghcbU64(page, GHCB_OFF_SW_EXIT_INFO_1);
  const info2 = ghcbU64(page, GHCB_OFF_SW_EXIT_INFO_2);
  const base = { ghcb: gpa, exitCode, info1: hex(info1), info2: hex(info2), protocolVersion: dv.getUint16(GHCB_OFF_PROTOCOL_VERSION, true) };

  const answer = (r1: bigint, r2: bigint, detail: string, extra: Record<string, number | string | boolean> = {}): ExitOutcome => {
    const out = new Uint8Array(16);
    const odv = new DataView(out.buffer);
    odv.setBigUint64(0, r1, true);
    odv.setBigUint64(8, BigInt.asUintN(64, r2), true);
    const w = hv.hostWrite(gpa + GHCB_OFF_SW_EXIT_INFO_1, out);
    if (!w.ok) {
      nae(`${detail}; the answer cannot be written: ${w.detail}`, { ...base, ...extra, error: 'ghcb-not-shared' });
      return { kind: 'stop', detail: `GHCB ${hex(gpa)} is not writable by the hypervisor: ${w.detail}` };
    }
    // The two fields the hypervisor returns are marked valid, as the protocol asks.
    const bm = hv.hostRead(gpa + GHCB_OFF_VALID_BITMAP, 16);
    for (const f of [GHCB_OFF_SW_EXIT_INFO_1, GHCB_OFF_SW_EXIT_INFO_2]) bm[(f / 8) >> 3]! |= 1 << ((f / 8) & 7);
    hv.hostWrite(gpa + GHCB_OFF_VALID_BITMAP, bm);
    nae(detail, { ...base, ...extra, result1: hex(r1), result2: hex(BigInt.asUintN(64, r2)) });
    return CONTINUE;
  };
  const error = (reason: number, detail: string): ExitOutcome => answer(BigInt(GHCB_RESULT_ERROR), BigInt(reason), `${naeExitName(exitCode)}: ${detail} (error ${reason})`, { error: reason });

  if (dv.getUint32(GHCB_OFF_USAGE, true) !== GHCB_DEFAULT_USAGE) return error(GHCB_ERR_INVALID_USAGE, `GHCB usage ${dv.getUint32(GHCB_OFF_USAGE, true)} is not the default`);
  for (const off of [GHCB_OFF_SW_EXIT_CODE, GHCB_OFF_SW_EXIT_INFO_1, GHCB_OFF_SW_EXIT_INFO_2]) {
    if (!ghcbFieldValid(page, off)) return error(GHCB_ERR_MISSING_INPUT, `field at ${hex(off)} is not marked valid`);
  }
  if (NAE_V2.has(exitCode) && hv.ghcbMax < 2) return error(GHCB_ERR_INVALID_EVENT, `needs GHCB protocol version 2, the hypervisor offers ${hv.ghcbMin}..${hv.ghcbMax}`);

  switch (exitCode) {
    case SVM_VMGEXIT_AP_HLT_LOOP:
      nae(`AP HLT loop: vCPU ${vcpu.index} parked until a SIPI`, { ...base, held: true });
      return { kind: 'hold', via: 'ghcb', ghcbGpa: gpa };
    case SVM_VMGEXIT_AP_JUMP_TABLE:
      if (info1 === BigInt(AP_JUMP_TABLE_SET)) {
        hv.apJumpTableGpa = info2;
        return answer(0n, info2, `AP jump table SET ${hex(info2)}`, { op: 'set', table: hex(info2) });
      }
      if (info1 === BigInt(AP_JUMP_TABLE_GET)) {
        return answer(0n, hv.apJumpTableGpa, `AP jump table GET -> ${hex(hv.apJumpTableGpa)}`, { op: 'get', table: hex(hv.apJumpTableGpa) });
      }
      return error(GHCB_ERR_INVALID_INPUT, `SW_EXITINFO1 ${hex(info1)} is neither SET (0) nor GET (1)`);
    case SVM_VMGEXIT_HV_FEATURES: {
      const f = hv.hvFeatures();
      return answer(0n, f, `hypervisor features -> ${hex(f)}`, { features: Number(f) });
    }
    case SVM_VMGEXIT_AP_CREATION: {
      if (hv.type !== 'snp' || (hv.hvFeatures() & 2n) === 0n) return error(GHCB_ERR_INVALID_EVENT, 'AP creation is not offered to this VM');
      const apicId = Number(info1 >> 32n);
      const vmpl = Number((info1 >> 16n) & 0xffn);
      const event = Number(info1 & 0xffffn);
      const target = hv.vcpuByApicId(apicId);
      if (target === undefined) return error(GHCB_ERR_INVALID_INPUT, `no vCPU has APIC ID ${apicId}`);
      if (vmpl !== 0) return error(GHCB_ERR_INVALID_INPUT, `VMPL ${vmpl} is not modelled`);
      if (event === SVM_VMGEXIT_AP_CREATE || event === SVM_VMGEXIT_AP_CREATE_ON_INIT) {
        if (!ghcbFieldValid(page, GHCB_OFF_RAX)) return error(GHCB_ERR_MISSING_INPUT, 'RAX (SEV_FEATURES) is not marked valid');
        const features = ghcbU64(page, GHCB_OFF_RAX);
        if (features !== hv.sevFeatures) return error(GHCB_ERR_INVALID_INPUT, `SEV_FEATURES ${hex(features)} differ from the VM's ${hex(hv.sevFeatures)}`);
        if (info2 % 4096n !== 0n || info2 + 4096n > BigInt(hv.memoryBytes)) return error(GHCB_ERR_INVALID_INPUT, `VMSA GPA ${hex(info2)} is not a page in guest memory`);
      } else if (event !== SVM_VMGEXIT_AP_DESTROY) {
        return error(GHCB_ERR_INVALID_INPUT, `AP creation event ${event} is unknown`);
      }
      const bad = hv.apCreate(vcpu, target, event, Number(info2));
      if (bad !== undefined) return error(bad, `AP creation event ${event} for APIC ID ${apicId} refused`);
      const what = event === SVM_VMGEXIT_AP_DESTROY ? 'DESTROY' : event === SVM_VMGEXIT_AP_CREATE ? 'CREATE' : 'CREATE_ON_INIT';
      return answer(0n, 0n, `AP creation ${what} APIC ID ${apicId}${event === SVM_VMGEXIT_AP_DESTROY ? '' : ` VMSA ${hex(info2)}`}`, { apicId, event });
    }
    case SVM_VMGEXIT_PSC:
      return pageStateChange(hv, vcpu, gpa, page, answer, error);
    case SVM_VMGEXIT_MMIO_READ:
    case SVM_VMGEXIT_MMIO_WRITE:
      return mmioExit(hv, vcpu, gpa, page, exitCode === SVM_VMGEXIT_MMIO_WRITE, info1, info2, answer, error);
    case SVM_VMGEXIT_TERM_REQUEST: {
      // (our choice) SW_EXITINFO1 carries set and code where the MSR request has them (bits 15:12, 23:16).
      const set = Number((info1 >> 12n) & 0xfn);
      const code = Number((info1 >> 16n) & 0xffn);
      nae(`termination request: reason set ${set} code ${code}`, { ...base, set, code });
      hv.terminate(vcpu, set, code, 'GHCB NAE event');
      return { kind: 'terminated' };
    }
    default:
      return error(GHCB_ERR_INVALID_EVENT, `${naeExitName(exitCode)} is not handled`);
  }
}

/** Bytes an MMIO NAE event may move (the widest MOV the #VC handler decodes; ours). */
export const MMIO_MAX_BYTES = 8;

/**
 * MMIO read (0x80000001) / write (0x80000002): SW_EXITINFO1 is the GPA,
 * SW_EXITINFO2 the byte count, SW_SCRATCH the GPA of the data, which must
 * lie in the GHCB's shared buffer (our choice, as for PSC). A write takes the
 * data from there; a read puts the device's answer there.
 */
function mmioExit(
  hv: HvServices, vcpu: Vcpu, gpa: number, page: Uint8Array, write: boolean, info1: bigint, info2: bigint,
  answer: (r1: bigint, r2: bigint, detail: string, extra?: Record<string, number | string | boolean>) => ExitOutcome,
  error: (reason: number, detail: string) => ExitOutcome,
): ExitOutcome {
  if (!ghcbFieldValid(page, GHCB_OFF_SW_SCRATCH)) return error(GHCB_ERR_MISSING_INPUT, 'SW_SCRATCH is not marked valid');
  const size = Number(info2);
  if (!(size >= 1 && size <= MMIO_MAX_BYTES)) return error(GHCB_ERR_INVALID_INPUT, `MMIO length ${hex(info2)} is not 1..${MMIO_MAX_BYTES}`);
  const scratch = ghcbU64(page, GHCB_OFF_SW_SCRATCH);
  const lo = BigInt(gpa + GHCB_OFF_SHARED_BUFFER);
  if (scratch < lo || scratch + BigInt(size) > lo + BigInt(GHCB_SHARED_BUFFER_BYTES)) return error(GHCB_ERR_INVALID_SCRATCH_AREA, `SW_SCRATCH ${hex(scratch)} is not in the GHCB shared buffer`);
  const off = Number(scratch) - gpa;
  const mmioGpa = Number(info1);
  let value = 0n;
  if (write) for (let i = size - 1; i >= 0; i--) value = (value << 8n) | BigInt(page[off + i]!);
  const r = hv.mmioAccess(vcpu, mmioGpa, size, write, value);
  if (!r.ok) return error(GHCB_ERR_INVALID_INPUT, r.detail);
  if (!write) {
    const out = new Uint8Array(size);
    for (let i = 0; i < size; i++) out[i] = Number((r.value >> BigInt(8 * i)) & 0xffn);
    hv.hostWrite(Number(scratch), out);
  }
  const what = write ? 'MMIO write' : 'MMIO read';
  return answer(BigInt(GHCB_RESULT_OK), 0n, `${what}: ${size} byte${size === 1 ? '' : 's'} at GPA ${hex(mmioGpa)} ${write ? '<-' : '->'} ${hex(r.value)}`,
    { gpa: mmioGpa, size, data: hex(r.value), op: write ? 'write' : 'read' });
}

/**
 * PSC through the GHCB: the descriptor sits in the shared buffer (SW_SCRATCH
 * points at it). Entries cur..end are processed in order; cur_entry is
 * written back as progress. 2 MiB entries are done as 512 4 KiB changes.
 */
function pageStateChange(
  hv: HvServices, vcpu: Vcpu, gpa: number, page: Uint8Array,
  answer: (r1: bigint, r2: bigint, detail: string, extra?: Record<string, number | string | boolean>) => ExitOutcome,
  error: (reason: number, detail: string) => ExitOutcome,
): ExitOutcome {
  if (hv.type !== 'snp') return error(GHCB_ERR_INVALID_EVENT, 'page state change needs an SNP guest');
  if (!ghcbFieldValid(page, GHCB_OFF_SW_SCRATCH)) return error(GHCB_ERR_MISSING_INPUT, 'SW_SCRATCH is not marked valid');
  const scratch = ghcbU64(page, GHCB_OFF_SW_SCRATCH);
  const lo = BigInt(gpa + GHCB_OFF_SHARED_BUFFER);
  // (our choice) Only a descriptor inside the GHCB's own shared buffer is accepted.
  if (scratch < lo || scratch + BigInt(PSC_HEADER_BYTES) > lo + BigInt(GHCB_SHARED_BUFFER_BYTES)) return error(GHCB_ERR_INVALID_SCRATCH_AREA, `SW_SCRATCH ${hex(scratch)} is not in the GHCB shared buffer`);
  const off = Number(scratch) - gpa;
  const dv = new DataView(page.buffer, page.byteOffset, page.byteLength);
  let cur = dv.getUint16(off, true);
  const end = dv.getUint16(off + 2, true);
  if (off + PSC_HEADER_BYTES + (end + 1) * PSC_ENTRY_BYTES > GHCB_OFF_SHARED_BUFFER + GHCB_SHARED_BUFFER_BYTES) return error(GHCB_ERR_INVALID_INPUT, `PSC end entry ${end} runs past the shared buffer`);
  let changed = 0;
  let failure: string | undefined;
  for (; cur <= end; cur++) {
    const e = decodePscEntry(dv.getBigUint64(off + PSC_HEADER_BYTES + cur * PSC_ENTRY_BYTES, true));
    const n = e.pageSize === 1 ? 512 : 1;
    for (let i = 0; i < n && failure === undefined; i++) {
      const r = hv.changePageState(vcpu, e.gfn + i, e.op);
      if (!r.ok) failure = `entry ${cur}: ${r.detail}`;
      else changed++;
    }
    if (failure !== undefined) break;
  }
  const hdr = new Uint8Array(2);
  new DataView(hdr.buffer).setUint16(0, cur, true);
  hv.hostWrite(Number(scratch), hdr);
  if (failure !== undefined) return answer(BigInt(GHCB_RESULT_OK), PSC_ERROR_INVALID_ENTRY, `page state change stopped at ${failure}`, { pages: changed, error: 'psc' });
  return answer(BigInt(GHCB_RESULT_OK), 0n, `page state change: ${changed} pages`, { pages: changed });
}
