// The guest side of the GHCB protocol: what a kernel does to talk to its
// hypervisor. An MSR-protocol call writes the request into MSR 0xC0010130,
// executes VMGEXIT and reads the answer back from the MSR; a GHCB call fills
// the shared GHCB page (C-bit clear), puts its GPA in the MSR, executes
// VMGEXIT and reads SW_EXITINFO1/2 back from the page. The hypervisor side
// traces every exchange with its codes ('ghcb-msr', 'ghcb-nae').

import type { Vcpu } from '../../platform/hv/vcpu.js';
import { MSR_AMD64_SEV_ES_GHCB } from '../../platform/hv/ghcb-msr.js';
import { encodeGhcb, decodeGhcbResult, GHCB_PAGE_BYTES, type GhcbRequest } from '../../platform/hv/ghcb-page.js';

export type CallResult<T> = { ok: true } & T | { ok: false; detail: string };

export function msrCall(v: Vcpu, request: bigint): CallResult<{ response: bigint }> {
  v.cpu.wrmsr(MSR_AMD64_SEV_ES_GHCB, request);
  const r = v.vmgexit();
  if (r.kind !== 'continue') return { ok: false, detail: r.kind === 'held' ? 'held' : r.detail };
  return { ok: true, response: v.cpu.rdmsr(MSR_AMD64_SEV_ES_GHCB) };
}

export function ghcbCall(v: Vcpu, ghcbGpa: number, req: GhcbRequest): CallResult<{ info1: bigint; info2: bigint; page: Uint8Array }> {
  const w = v.write(ghcbGpa, encodeGhcb(req), { encrypted: false });
  if (!w.ok) return { ok: false, detail: `GHCB at ${ghcbGpa.toString(16)} cannot be written: ${w.detail}` };
  v.cpu.wrmsr(MSR_AMD64_SEV_ES_GHCB, BigInt(ghcbGpa));
  const r = v.vmgexit();
  if (r.kind !== 'continue') return { ok: false, detail: r.kind === 'held' ? 'held' : r.detail };
  const page = new Uint8Array(GHCB_PAGE_BYTES);
  const rd = v.read(ghcbGpa, page, { encrypted: false });
  if (!rd.ok) return { ok: false, detail: rd.detail };
  return { ok: true, ...decodeGhcbResult(page), page };
}
