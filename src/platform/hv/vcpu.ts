// A virtual CPU of an SEV guest, in two halves. The guest half is what code
// running on it has: a CPU's registers, MSRs and CPUID (`cpu`), memory
// accesses by guest-physical address with or without the C-bit, and the
// instructions VMGEXIT, HLT, PVALIDATE and RMPADJUST, plus IPIs through its
// local APIC. The hypervisor half is what KVM keeps in the VMCB control area
// and its own structures: where the VMSA is, the run state, a pending AP
// reset hold. The register state itself lives in the VMSA page and, for
// SEV-ES and SNP, only the CPU (with the guest's key) can read it.

import type { Cpu, CpuRunState } from '../cpu/cpu.js';
import type { PvalidateResult, RmpInsnResult } from '../snp/rmp-instructions.js';

/**
 * running: executing guest code; halted: HLT; wait-for-sipi: after INIT
 * (non-ES) or never started (an SEV-ES AP before its first SIPI);
 * reset-hold: parked in the AP reset hold, waiting for a SIPI through the
 * hypervisor; no-vmsa: an SNP AP with no VMSA (never created, or destroyed);
 * stopped: the VM was terminated, the vCPU triple-faulted or the hypervisor
 * gave up on it.
 */
export type VcpuRunState = 'running' | 'halted' | 'wait-for-sipi' | 'reset-hold' | 'no-vmsa' | 'stopped';

/** #VC exit code for an access to a private page that is not validated (ref §3.9.6: the fatal access). */
export const VC_EXIT_PAGE_NOT_VALIDATED = 0x404;
/**
 * #VC exit code of a nested page fault (SVM_EXIT_NPF): an SEV-ES/SNP guest
 * touching a GPA the hypervisor maps as MMIO (no RAM behind it).
 */
export const VC_EXIT_NPF = 0x400;

export type GuestAccessResult =
  | { ok: true }
  /** #VC raised in the guest; its handler decides what it means. */
  | { ok: false; fault: 'vc'; exitCode: number; gpa: number; detail: string }
  /** A nested page fault the hypervisor did not resolve: the vCPU is stopped. */
  | { ok: false; fault: 'npf'; gpa: number; detail: string }
  /** Nothing backs the GPA (outside guest memory). */
  | { ok: false; fault: 'no-memory'; gpa: number; detail: string }
  | { ok: false; fault: 'rmp-violation'; gpa: number; detail: string };

export type VmgexitResult =
  /** The hypervisor answered; the guest continues with the next instruction. */
  | { kind: 'continue' }
  /** The vCPU is parked (AP reset hold); when woken it resumes at the `resumeAt` it gave. */
  | { kind: 'held' }
  /** The VM was terminated or the hypervisor stopped the vCPU. */
  | { kind: 'stopped'; detail: string }
  /** Not an SEV-ES/SNP guest: VMGEXIT is not available. */
  | { kind: 'invalid-opcode'; detail: string };

export type IpiKind = 'init' | 'sipi';

/** What a vCPU asks of its VM (implemented by SevGuestVm). */
export interface VcpuHost {
  guestAccess(vcpu: Vcpu, gpa: number, data: Uint8Array, write: boolean, encrypted: boolean): GuestAccessResult;
  vmgexit(vcpu: Vcpu, resumeAt: number | undefined): VmgexitResult;
  hlt(vcpu: Vcpu): void;
  jump(vcpu: Vcpu, gpa: number, how: string): void;
  ipi(from: Vcpu, apicId: number, kind: IpiKind, vector: number): void;
  pvalidate(vcpu: Vcpu, gpa: number, validate: boolean, pageSize: 0 | 1): PvalidateResult;
  rmpadjust(vcpu: Vcpu, gpa: number, vmsa: boolean): RmpInsnResult;
}

/** A pending AP reset hold: by MSR protocol, or by the NAE event through a GHCB at `ghcbGpa`. */
export type ResetHold = { readonly via: 'msr' } | { readonly via: 'ghcb'; readonly ghcbGpa: number };

export class Vcpu {
  readonly index: number;
  /** The guest-visible CPU: registers, MSRs (the GHCB MSR among them), CPUID. */
  readonly cpu: Cpu;
  /** Trace source for this vCPU. */
  readonly source: string;
  readonly #host: VcpuHost;

  // Architectural state the shared Cpu type does not hold; saved in the VMSA with the rest.
  csBase = 0n;
  cr0 = 0x6000_0010n;
  cr4 = 0n;

  // Hypervisor bookkeeping (not guest state).
  #runState: VcpuRunState;
  /** Host-physical address of the VMSA the vCPU runs from; undefined for an SNP AP without one. */
  vmsaHpa: number | undefined;
  /** The GHCB GPA registered through the MSR protocol (SNP requires one). */
  registeredGhcbGpa: number | undefined;
  /** Set while parked in the AP reset hold. */
  hold: ResetHold | undefined;
  /** An SEV-ES AP has taken its first SIPI (which starts it from its launch VMSA). */
  startedOnce = false;
  /** SNP AP creation with CREATE_ON_INIT: the VMSA the next INIT starts. */
  pendingVmsaHpa: number | undefined;

  constructor(index: number, cpu: Cpu, source: string, host: VcpuHost, state: VcpuRunState) {
    this.index = index;
    this.cpu = cpu;
    this.source = source;
    this.#host = host;
    this.#runState = state;
    cpu.state = mirror(state);
  }

  get runState(): VcpuRunState {
    return this.#runState;
  }

  /** Hypervisor use: moves the vCPU to `s` (the shared Cpu's state follows). */
  setRunState(s: VcpuRunState): void {
    this.#runState = s;
    this.cpu.state = mirror(s);
  }

  get apicId(): number {
    return this.cpu.apicId;
  }

  // Guest instructions --------------------------------------------------------

  /** A load from guest-physical `gpa`; `encrypted` is the C-bit of the guest's mapping. */
  read(gpa: number, dst: Uint8Array, opts: { encrypted: boolean }): GuestAccessResult {
    return this.#host.guestAccess(this, gpa, dst, false, opts.encrypted);
  }

  /** A store to guest-physical `gpa`; `encrypted` is the C-bit of the guest's mapping. */
  write(gpa: number, src: Uint8Array, opts: { encrypted: boolean }): GuestAccessResult {
    return this.#host.guestAccess(this, gpa, src, true, opts.encrypted);
  }

  /**
   * VMGEXIT. The hypervisor looks at the GHCB MSR: a non-zero GHCBInfo is an
   * MSR-protocol request, else the value is the GPA of the GHCB page to
   * serve. `resumeAt` is the guest-physical address of the instruction after
   * VMGEXIT, where the vCPU continues when the exit parks it (required then).
   */
  vmgexit(opts: { resumeAt?: number } = {}): VmgexitResult {
    return this.#host.vmgexit(this, opts.resumeAt);
  }

  hlt(): void {
    this.#host.hlt(this);
  }

  /**
   * A jump to code at flat guest-physical `gpa`: runs what was placed there
   * if its bytes are intact, else the vCPU triple-faults. `how` names the
   * jump for the trace (e.g. "far jump to the reset vector").
   */
  jump(gpa: number, how = 'jump'): void {
    this.#host.jump(this, gpa, how);
  }

  /** An INIT or a SIPI written to the local APIC's ICR, which the hypervisor emulates. */
  sendIpi(apicId: number, kind: IpiKind, vector = 0): void {
    this.#host.ipi(this, apicId, kind, vector);
  }

  pvalidate(gpa: number, validate: boolean, pageSize: 0 | 1 = 0): PvalidateResult {
    return this.#host.pvalidate(this, gpa, validate, pageSize);
  }

  /** RMPADJUST's VMSA attribute (VMPL0 setting it for a page it owns); the only use modelled. */
  rmpadjustVmsa(gpa: number, vmsa: boolean): RmpInsnResult {
    return this.#host.rmpadjust(this, gpa, vmsa);
  }
}

function mirror(s: VcpuRunState): CpuRunState {
  switch (s) {
    case 'running': return 'running';
    case 'halted': return 'halted';
    case 'stopped': return 'shutdown';
    default: return 'wait-for-sipi';
  }
}
