// One SEV guest and the hypervisor that runs it. The guest's memory is a
// contiguous run of host pages (GPA g is HPA hostBase + g) encrypted with a
// key of its own, in a memory-controller key slot per ASID; each vCPU's
// register state lives in a VMSA page after guest memory. For SEV-ES and SNP
// the CPU saves and loads the VMSA through the guest's key, so this class's
// host-side API refuses register access and a raw read of the VMSA yields
// ciphertext; that is why the hypervisor cannot emulate INIT or SIPI for such
// a guest, and why the guest parks its own APs (ref/sme-sev-kexec.md §3.2).
// For SNP the guest's pages are assigned to its ASID in the RMP, PVALIDATE
// sets Validated, and accesses are checked the way the CPU checks them.
//
// Choices where the reference is silent are marked "(our choice)".

import type { Machine } from '../machine.js';
import { Cpu, type CpuidLeaf } from '../cpu/cpu.js';
import type { Requester, WriteResult } from '../memory-controller.js';
import { AddressTweakedCipher } from '../memory-cipher.js';
import { MSR_AMD64_SEV, MSR_EFER } from '../cpu/msr.js';
import { CPUID_ECX_HYPERVISOR, CPUID_MEM_ENCRYPT_LEAF, CPUID_MEM_ENCRYPT_SEV, CPUID_MEM_ENCRYPT_SEV_ES, CPUID_MEM_ENCRYPT_SNP } from '../cpu/cpuid.js';
import { rmpupdate, pvalidate, RMP_RC_FAIL_INPUT, type PvalidateResult, type RmpInsnResult } from '../snp/rmp-instructions.js';
import { rmpGoverningEntry, readRmpEntry, writeRmpEntry, rmpCovers, type RmpLocation } from '../snp/rmp.js';
import { hex } from '../../util/hex.js';
import { Vcpu, VC_EXIT_PAGE_NOT_VALIDATED, VC_EXIT_NPF, type GuestAccessResult, type IpiKind, type VcpuHost, type VcpuRunState, type VmgexitResult } from './vcpu.js';
import { GuestCode } from './guest-code.js';
import { MmioBus, VgaTextConsole, VGA_TEXT_BASE, VGA_TEXT_BYTES } from './mmio-bus.js';
import { rmpadjustVmsa } from './rmpadjust.js';
import {
  VMSA_BYTES, SEV_FEATURE_SNP_ACTIVE, encodeVmsa, decodeVmsa, resetVmsaState, startVmsaState, vmsaEntryGpa, vmsaFromRegisters,
  applyVmsaToRegisters, type VmsaState,
} from './vmsa.js';
import {
  MSR_AMD64_SEV_ES_GHCB, GHCB_MSR_AP_RESET_HOLD_REQ, GHCB_MSR_AP_RESET_HOLD_RESP, GHCB_HV_FT_SNP, GHCB_HV_FT_SNP_AP_CREATION,
  PSC_OP_PRIVATE, PSC_OP_SHARED, PSC_ERROR_HV_GENERIC, PSC_ERR_INVALID_GFN, PSC_ERR_INVALID_OP, PSC_ERR_NOT_SNP,
  apResetHoldResponse, ghcbMsrInfo,
} from './ghcb-msr.js';
import { GHCB_OFF_SW_EXIT_INFO_1, SVM_VMGEXIT_AP_HLT_LOOP, SVM_VMGEXIT_AP_CREATE, SVM_VMGEXIT_AP_DESTROY, GHCB_ERR_INVALID_INPUT } from './ghcb-page.js';
import { handleGhcbExit, handleMsrProtocol, type ExitOutcome, type GuestKind, type HvServices } from './ghcb-protocol.js';

export type { GuestKind } from './ghcb-protocol.js';

/** Guest key slots on the memory controller: 16 + ASID (ours; slot 1 is the host key). */
export const GUEST_KEY_SLOT_BASE = 16;
export function guestKeySlot(asid: number): number {
  return GUEST_KEY_SLOT_BASE + asid;
}

/** Virtual time from an IPI (or an AP creation) to the target vCPU acting on it (a stand-in). */
export const IPI_LATENCY_NS = 1_000;
/** The GPA KVM records in the RMP for launch VMSAs, which the guest never maps. */
export const SNP_LAUNCH_VMSA_GPA = 0xffff_ffff_f000;

/** SEV_STATUS bits a guest reads. */
export const SEV_STATUS_SEV = 1n << 0n;
export const SEV_STATUS_SEV_ES = 1n << 1n;
export const SEV_STATUS_SNP = 1n << 2n;

export interface SevGuestVmConfig {
  readonly type: GuestKind;
  /** The guest's ASID (1..1023); picks its key slot. */
  readonly asid: number;
  /** Bytes of guest RAM, from GPA 0. */
  readonly memoryBytes: number;
  /** Host-physical address of GPA 0; VMSA pages follow guest RAM. */
  readonly hostBase: number;
  readonly vcpus: number;
  /** GHCB protocol versions the hypervisor offers (default 1..2). */
  readonly ghcbVersions?: { readonly min: number; readonly max: number };
  /** C-bit position reported by SEV_INFO and CPUID (default: the machine's, else 51). */
  readonly cbit?: number;
  /** SNP: offer AP creation in the hypervisor features (default true). */
  readonly snpApCreation?: boolean;
  /**
   * SNP: guest RAM starts validated (default true), standing for the launch
   * measuring the image in and the guest firmware accepting the rest.
   */
  readonly snpValidateAtLaunch?: boolean;
  /**
   * SNP: on an access whose C-bit disagrees with the RMP, the hypervisor
   * converts the page the way the access asked (KVM's implicit conversion,
   * default true); false stops the vCPU on such a nested page fault.
   */
  readonly implicitConversion?: boolean;
  /** Distinguishes launches with the same ASID (a new launch draws a new key). */
  readonly launchNonce?: number;
  /** Initial contents, encrypted with the guest key by the launch (guest firmware, kernel). */
  readonly image?: readonly { readonly gpa: number; readonly bytes: Uint8Array }[];
  /**
   * Where an SEV-ES AP's launch VMSA starts it (flat GPA): the guest
   * firmware's AP entry. Default: the architectural reset vector, which no
   * guest memory backs here.
   */
  readonly apLaunchEntryGpa?: number;
}

export type RegisterAccess = { ok: true; state: VmsaState } | { ok: false; fault: 'guest-state-protected'; detail: string };

const HOST: Requester = { kind: 'cpu', id: 0 };
const LAUNCH: Requester = { kind: 'device', name: 'psp' };

export class SevGuestVm implements VcpuHost, HvServices {
  readonly machine: Machine;
  readonly config: SevGuestVmConfig;
  readonly type: GuestKind;
  readonly asid: number;
  /** Key slot of the guest key (0 for an unencrypted guest). */
  readonly keyId: number;
  readonly memoryBytes: number;
  readonly hostBase: number;
  readonly ghcbMin: number;
  readonly ghcbMax: number;
  readonly cbit: number;
  readonly sevFeatures: bigint;
  readonly vcpus: Vcpu[] = [];
  /** Code the guest placed in its memory, which vCPUs run when they start or resume there. */
  readonly code: GuestCode<Vcpu>;
  readonly hvSource: string;
  /** The AP jump table GPA the hypervisor holds for the VM (set by the guest's firmware or kernel). */
  apJumpTableGpa = 0n;
  /** Set once the guest asked to be terminated. */
  termination: { set: number; code: number; vcpu: number; via: string } | undefined;
  /** The guest's MMIO ranges and their emulated devices. */
  readonly mmio = new MmioBus();
  /** The VGA text console every VM here has (ours), at 0xB8000 in the legacy VGA hole. */
  readonly vga: VgaTextConsole;
  readonly #cpuid = new Map<string, CpuidLeaf>();
  readonly #implicitConversion: boolean;
  readonly #apCreation: boolean;

  constructor(machine: Machine, config: SevGuestVmConfig) {
    this.machine = machine;
    this.config = config;
    this.type = config.type;
    this.asid = config.asid;
    this.memoryBytes = config.memoryBytes;
    this.hostBase = config.hostBase;
    this.hvSource = `vm${config.asid}/hv`;
    const v = config.ghcbVersions ?? { min: 1, max: 2 };
    this.ghcbMin = v.min;
    this.ghcbMax = v.max;
    this.cbit = config.cbit ?? machine.memEncryptMaskBit ?? 51;
    this.sevFeatures = config.type === 'snp' ? SEV_FEATURE_SNP_ACTIVE : 0n;
    this.#implicitConversion = config.implicitConversion ?? true;
    this.#apCreation = config.snpApCreation ?? true;
    this.#checkConfig();
    this.vga = new VgaTextConsole(machine.trace, `vm${config.asid}/vga`);
    this.mmio.map(VGA_TEXT_BASE, VGA_TEXT_BYTES, this.vga);

    this.keyId = config.type === 'none' ? 0 : guestKeySlot(config.asid);
    if (this.keyId !== 0) {
      // The security processor draws a fresh key for each launch.
      machine.mc.setKeySlot(this.keyId, new AddressTweakedCipher(`SEV guest key (ASID ${config.asid})`, machine.config.seed, `sev-guest:${config.asid}:${config.launchNonce ?? 0}`));
    }
    this.code = new GuestCode<Vcpu>({
      fetch: (gpa, length, encrypted) => {
        if (gpa + length > this.memoryBytes) return undefined;
        const b = new Uint8Array(length);
        machine.mc.read(this.hostBase + gpa, b, { keyId: encrypted ? this.keyId : 0 });
        return b;
      },
    });
    this.#buildCpuid(machine.bsp);
    for (const img of config.image ?? []) {
      if (img.gpa + img.bytes.length > this.memoryBytes) throw new RangeError(`Cannot launch guest: image at GPA ${hex(img.gpa)} runs past guest memory (${hex(this.memoryBytes)})`);
      machine.mc.write(this.hostBase + img.gpa, img.bytes, LAUNCH, { keyId: this.keyId, guardExempt: true });
    }
    for (let i = 0; i < config.vcpus; i++) this.#createVcpu(i);
    if (config.type === 'snp') this.#assignRmp();
    machine.trace.record(this.hvSource, 'vm-launch',
      `${config.type} guest ASID ${config.asid}: ${config.vcpus} vCPUs, ${hex(config.memoryBytes)} bytes at HPA ${hex(config.hostBase)}, GHCB protocol ${this.ghcbMin}..${this.ghcbMax}`,
      { asid: config.asid, type: config.type, vcpus: config.vcpus, hostBase: config.hostBase, memoryBytes: config.memoryBytes, keyId: this.keyId });
  }

  get protectedState(): boolean {
    return this.type === 'sev-es' || this.type === 'snp';
  }

  get trace(): Machine['trace'] {
    return this.machine.trace;
  }

  gpaToHpa(gpa: number): number {
    return this.hostBase + gpa;
  }

  /** Host-physical address of vCPU `i`'s launch VMSA page. */
  launchVmsaHpa(i: number): number {
    return this.hostBase + this.memoryBytes + i * VMSA_BYTES;
  }

  vcpuByApicId(apicId: number): Vcpu | undefined {
    return this.vcpus.find((v) => v.apicId === apicId);
  }

  /** The physical CPU a vCPU runs on (round robin; ours). */
  pcpuOf(v: Vcpu): Cpu {
    return this.machine.cpus[v.index % this.machine.cpus.length]!;
  }

  guestCpuid(fn: number, subleaf: number): CpuidLeaf {
    return this.#cpuid.get(`${fn >>> 0}:${subleaf}`) ?? [0, 0, 0, 0];
  }

  hvFeatures(): bigint {
    if (this.ghcbMax < 2 || this.type !== 'snp') return 0n;
    return GHCB_HV_FT_SNP | (this.#apCreation ? GHCB_HV_FT_SNP_AP_CREATION : 0n);
  }

  // The hypervisor's view ------------------------------------------------------

  /** What KVM's register ioctls would return: refused for SEV-ES and SNP, whose VMSA is encrypted. */
  hostReadRegisters(v: Vcpu): RegisterAccess {
    if (this.protectedState) return this.#refuseRegs(v, 'read');
    if (v.vmsaHpa === undefined) return { ok: false, fault: 'guest-state-protected', detail: `vCPU ${v.index} has no VMSA` };
    const b = new Uint8Array(VMSA_BYTES);
    this.machine.mc.read(v.vmsaHpa, b);
    return { ok: true, state: decodeVmsa(b) };
  }

  hostWriteRegisters(v: Vcpu, state: VmsaState): RegisterAccess {
    if (this.protectedState) return this.#refuseRegs(v, 'write');
    if (v.vmsaHpa === undefined) return { ok: false, fault: 'guest-state-protected', detail: `vCPU ${v.index} has no VMSA` };
    this.machine.mc.write(v.vmsaHpa, encodeVmsa(state), HOST);
    return { ok: true, state };
  }

  /** The VMSA page's bytes as the host reads them: no key, so ciphertext for SEV-ES and SNP. */
  hostReadVmsa(v: Vcpu): Uint8Array | undefined {
    if (v.vmsaHpa === undefined) return undefined;
    const b = new Uint8Array(VMSA_BYTES);
    this.machine.mc.read(v.vmsaHpa, b);
    return b;
  }

  /** A raw host store into the VMSA page (the RMP refuses it for SNP). */
  hostWriteVmsa(v: Vcpu, offset: number, bytes: Uint8Array): WriteResult {
    if (v.vmsaHpa === undefined) throw new RangeError(`Cannot write VMSA of vCPU ${v.index}: it has none`);
    return this.machine.mc.write(v.vmsaHpa + offset, bytes, HOST);
  }

  hostRead(gpa: number, length: number): Uint8Array {
    const b = new Uint8Array(length);
    this.machine.mc.read(this.hostBase + gpa, b);
    return b;
  }

  hostWrite(gpa: number, bytes: Uint8Array): WriteResult {
    return this.machine.mc.write(this.hostBase + gpa, bytes, HOST);
  }

  /** Resumes a vCPU parked in the AP reset hold without a SIPI (response data 0: it must hold again). */
  spuriousWake(v: Vcpu): void {
    this.#wake(v, 0n, 'woken without a SIPI');
  }

  #refuseRegs(v: Vcpu, what: 'read' | 'write'): RegisterAccess {
    const detail = `Cannot ${what} registers of vCPU ${v.index}: ${this.type} guest state is in a VMSA encrypted with the guest key`;
    this.trace.record(this.hvSource, 'vcpu-state-protected', detail, { vcpu: v.index, op: what });
    return { ok: false, fault: 'guest-state-protected', detail };
  }

  // HvServices --------------------------------------------------------------------

  changePageState(v: Vcpu, gfn: number, op: number): { ok: true } | { ok: false; error: number; detail: string } {
    if (this.type !== 'snp') return { ok: false, error: PSC_ERR_NOT_SNP, detail: 'not an SNP guest' };
    const gpa = gfn * 4096;
    if (!(gpa < this.memoryBytes)) return { ok: false, error: PSC_ERR_INVALID_GFN, detail: `GFN ${hex(gfn)} is outside guest memory` };
    if (op !== PSC_OP_PRIVATE && op !== PSC_OP_SHARED) return { ok: false, error: PSC_ERR_INVALID_OP, detail: `operation ${op} is unknown` };
    const r = rmpupdate(this.machine, this.pcpuOf(v), this.hostBase + gpa, op === PSC_OP_PRIVATE
      ? { gpa, assigned: true, pageSize: 0, immutable: false, asid: this.asid }
      : { gpa: 0, assigned: false, pageSize: 0, immutable: false, asid: 0 });
    if (!r.ok) return { ok: false, error: PSC_ERROR_HV_GENERIC | ('rc' in r ? r.rc : 0xff), detail: r.detail };
    this.trace.record(this.hvSource, 'page-state', `GPA ${hex(gpa)} made ${op === PSC_OP_PRIVATE ? 'private (assigned, not validated)' : 'shared'}`, { gpa, op, asid: this.asid });
    return { ok: true };
  }

  mmioAccess(v: Vcpu, gpa: number, size: number, write: boolean, value: bigint): { ok: true; value: bigint } | { ok: false; detail: string } {
    const r = this.mmio.find(gpa, size);
    if (r === undefined || gpa < r.base || gpa + size > r.base + r.size) return { ok: false, detail: `vCPU ${v.index}: GPA ${hex(gpa)} (+${size}) is not in an MMIO range` };
    if (write) {
      r.device.write(gpa - r.base, size, value);
      return { ok: true, value };
    }
    return { ok: true, value: r.device.read(gpa - r.base, size) };
  }

  terminate(v: Vcpu, set: number, code: number, via: string): void {
    this.termination = { set, code, vcpu: v.index, via };
    this.trace.record(this.hvSource, 'vm-terminated', `guest ASID ${this.asid} asked to terminate (${via}): reason set ${set} code ${code}`, { asid: this.asid, vcpu: v.index, set, code, via });
    for (const x of this.vcpus) if (x.runState !== 'stopped') this.#setState(x, 'stopped', 'VM terminated');
  }

  apCreate(caller: Vcpu, target: Vcpu, event: number, vmsaGpa: number): number | undefined {
    if (event === SVM_VMGEXIT_AP_DESTROY) {
      target.vmsaHpa = undefined;
      target.pendingVmsaHpa = undefined;
      target.hold = undefined;
      this.#setState(target, 'no-vmsa', `AP DESTROY from vCPU ${caller.index}`);
      return undefined;
    }
    if (target === caller) return GHCB_ERR_INVALID_INPUT;
    const hpa = this.hostBase + vmsaGpa;
    if (event !== SVM_VMGEXIT_AP_CREATE) {
      target.pendingVmsaHpa = hpa;
      return undefined;
    }
    // The target is kicked out of whatever it ran and re-entered from the new VMSA.
    target.vmsaHpa = hpa;
    target.pendingVmsaHpa = undefined;
    target.hold = undefined;
    if (target.runState !== 'no-vmsa') this.#setState(target, 'no-vmsa', `AP CREATE from vCPU ${caller.index}: switching VMSA`);
    this.machine.clock.schedule(IPI_LATENCY_NS, `vm${this.asid} AP create vcpu${target.index}`, () => {
      if (this.termination === undefined && target.vmsaHpa === hpa && target.runState === 'no-vmsa') this.#enter(target, `AP CREATE with VMSA at GPA ${hex(vmsaGpa)}`);
    });
    return undefined;
  }

  // VcpuHost: the guest's instructions ------------------------------------------

  guestAccess(v: Vcpu, gpa: number, data: Uint8Array, write: boolean, encrypted: boolean): GuestAccessResult {
    this.#mustRun(v, write ? 'store' : 'load');
    if (!(Number.isSafeInteger(gpa) && gpa >= 0 && gpa + data.length <= this.memoryBytes)) {
      return { ok: false, fault: 'no-memory', gpa, detail: `GPA ${hex(gpa)} (+${data.length}) is outside guest memory (${hex(this.memoryBytes)})` };
    }
    const mmio = this.mmio.find(gpa, data.length);
    if (mmio !== undefined) {
      if (this.protectedState) {
        // The nested page tables map MMIO with a reserved bit; the NPF becomes a #VC, since the hypervisor cannot read the instruction.
        const detail = `#VC ${hex(VC_EXIT_NPF)} (NPF): ${write ? 'store' : 'load'} of ${data.length} byte${data.length === 1 ? '' : 's'} to MMIO GPA ${hex(gpa)} (${mmio.device.name})`;
        this.trace.record(v.source, 'vc', detail, { vcpu: v.index, gpa, exitCode: VC_EXIT_NPF, size: data.length, write, device: mmio.device.name });
        return { ok: false, fault: 'vc', exitCode: VC_EXIT_NPF, gpa, detail };
      }
      // (our choice) A guest without SEV-ES: the hypervisor decodes the instruction itself and emulates the access.
      let value = 0n;
      for (let i = data.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(data[i]!);
      const r = this.mmioAccess(v, gpa, data.length, write, value);
      if (!r.ok) return { ok: false, fault: 'no-memory', gpa, detail: r.detail };
      if (!write) for (let i = 0; i < data.length; i++) data[i] = Number((r.value >> BigInt(8 * i)) & 0xffn);
      return { ok: true };
    }
    if (this.type === 'snp' && data.length > 0) {
      for (let p = gpa - (gpa % 4096); p < gpa + data.length; p += 4096) {
        const f = this.#snpCheck(v, p, encrypted, write);
        if (f !== undefined) return f;
      }
    }
    const keyId = encrypted ? this.keyId : 0;
    const hpa = this.hostBase + gpa;
    const req: Requester = { kind: 'cpu', id: this.pcpuOf(v).id, asid: this.asid };
    if (!write) {
      this.machine.mc.read(hpa, data, { keyId });
      return { ok: true };
    }
    const w = this.machine.mc.write(hpa, data, req, { keyId });
    if (!w.ok) return { ok: false, fault: 'rmp-violation', gpa, detail: w.detail };
    return { ok: true };
  }

  vmgexit(v: Vcpu, resumeAt: number | undefined): VmgexitResult {
    this.#mustRun(v, 'VMGEXIT');
    if (!this.protectedState) {
      const detail = `VMGEXIT in a ${this.type} guest: #UD (no GHCB protocol without SEV-ES)`;
      this.trace.record(v.source, 'vmgexit-ud', detail, { vcpu: v.index });
      return { kind: 'invalid-opcode', detail };
    }
    // The CPU saves the guest's state into the VMSA on the way out.
    this.#saveVmsa(v, resumeAt);
    const msr = v.cpu.rdmsr(MSR_AMD64_SEV_ES_GHCB);
    const out: ExitOutcome = ghcbMsrInfo(msr) !== 0 ? handleMsrProtocol(this, v, msr) : handleGhcbExit(this, v, msr);
    switch (out.kind) {
      case 'continue':
        this.#loadVmsa(v);
        return { kind: 'continue' };
      case 'hold':
        if (resumeAt === undefined) throw new Error(`VMGEXIT on vCPU ${v.index} parked it in the AP reset hold, but the guest gave no resumeAt`);
        v.hold = out.via === 'msr' ? { via: 'msr' } : { via: 'ghcb', ghcbGpa: out.ghcbGpa };
        this.#setState(v, 'reset-hold', out.via === 'msr' ? 'AP reset hold (MSR protocol)' : 'AP reset hold (GHCB NAE AP HLT loop)');
        return { kind: 'held' };
      case 'stop':
        this.#setState(v, 'stopped', out.detail);
        return { kind: 'stopped', detail: out.detail };
      case 'terminated':
        return { kind: 'stopped', detail: 'VM terminated' };
    }
  }

  hlt(v: Vcpu): void {
    this.#mustRun(v, 'HLT');
    this.#saveVmsa(v, undefined);
    this.#setState(v, 'halted', 'HLT');
  }

  ipi(from: Vcpu, apicId: number, kind: IpiKind, vector: number): void {
    this.#mustRun(from, 'an ICR write');
    const target = this.vcpuByApicId(apicId);
    this.trace.record(from.source, 'ipi', `${kind.toUpperCase()}${kind === 'sipi' ? ` vector ${hex(vector)}` : ''} to APIC ID ${apicId}${target === undefined ? ': no such vCPU' : ''}`,
      { to: apicId, kind, vector });
    if (target === undefined) return;
    this.machine.clock.schedule(IPI_LATENCY_NS, `vm${this.asid} ${kind} vcpu${target.index}`, () => this.#deliver(target, kind, vector));
  }

  pvalidate(v: Vcpu, gpa: number, validate: boolean, pageSize: 0 | 1): PvalidateResult {
    this.#mustRun(v, 'PVALIDATE');
    if (this.type !== 'snp') {
      const detail = `pvalidate on ${v.source}: #UD, not an SNP guest`;
      this.trace.record(v.source, 'pvalidate', detail, { rc: -1 });
      return { ok: false, fault: 'invalid-opcode', detail };
    }
    if (!(Number.isSafeInteger(gpa) && gpa >= 0 && gpa < this.memoryBytes)) {
      return { ok: false, fault: 'rmp-fail', rc: RMP_RC_FAIL_INPUT, detail: `pvalidate GPA ${hex(gpa)} is outside guest memory` };
    }
    return pvalidate(this.machine, this.pcpuOf(v), { pa: this.hostBase + gpa, asid: this.asid, pageSize, validate });
  }

  rmpadjust(v: Vcpu, gpa: number, vmsa: boolean): RmpInsnResult {
    this.#mustRun(v, 'RMPADJUST');
    if (this.type !== 'snp' || !(gpa >= 0 && gpa < this.memoryBytes)) {
      return { ok: false, fault: 'invalid-opcode', detail: `rmpadjust on ${v.source}: #UD or GPA ${hex(gpa)} outside guest memory` };
    }
    return rmpadjustVmsa(this.machine, this.pcpuOf(v), { pa: this.hostBase + gpa, asid: this.asid, vmsa, source: v.source });
  }

  // Internals ---------------------------------------------------------------------

  #checkConfig(): void {
    const c = this.config;
    const bad = (why: string): never => { throw new RangeError(`Cannot launch ${c.type} guest ASID ${c.asid}: ${why}`); };
    if (!(Number.isInteger(c.asid) && c.asid >= 1 && c.asid <= 1023)) bad(`ASID ${c.asid} is out of range 1..1023`);
    if (!(c.memoryBytes > 0 && c.memoryBytes % 4096 === 0)) bad(`guest memory ${c.memoryBytes} is not a positive multiple of 4096`);
    if (!(c.hostBase >= 0 && c.hostBase % 4096 === 0)) bad(`host base ${hex(c.hostBase)} is not page aligned`);
    if (!(Number.isInteger(c.vcpus) && c.vcpus >= 1 && c.vcpus <= 256)) bad(`${c.vcpus} vCPUs is out of range 1..256`);
    if (c.hostBase + c.memoryBytes + c.vcpus * VMSA_BYTES > this.machine.dram.size) bad(`guest memory and VMSAs end past DRAM (${hex(this.machine.dram.size)})`);
    if (!(this.ghcbMin >= 1 && this.ghcbMin <= this.ghcbMax && this.ghcbMax <= 2)) bad(`GHCB protocol range ${this.ghcbMin}..${this.ghcbMax} is not within 1..2`);
    if (c.type === 'snp') {
      if (!this.machine.snpEnabled || this.machine.rmp === undefined) bad('SNP is not enabled on the host (SYSCFG.SNP_EN, RMP)');
      if (this.ghcbMax < 2) bad('SNP needs GHCB protocol version 2');
    }
  }

  #buildCpuid(host: Cpu): void {
    for (const fn of [0, 1, 0x8000_0000, 0x8000_0001, 0x8000_0008]) this.#cpuid.set(`${fn}:0`, host.cpuid(fn));
    const l1 = host.cpuid(1);
    this.#cpuid.set('1:0', [l1[0], l1[1], (l1[2] | CPUID_ECX_HYPERVISOR) >>> 0, l1[3]]);
    const ext = host.cpuid(0x8000_0000);
    this.#cpuid.set(`${0x8000_0000}:0`, [Math.max(ext[0], CPUID_MEM_ENCRYPT_LEAF) >>> 0, ext[1], ext[2], ext[3]]);
    const t = this.type;
    const eax = (t === 'none' ? 0 : CPUID_MEM_ENCRYPT_SEV) | (t === 'sev-es' || t === 'snp' ? CPUID_MEM_ENCRYPT_SEV_ES : 0) | (t === 'snp' ? CPUID_MEM_ENCRYPT_SNP : 0);
    const reduction = (host.cpuid(CPUID_MEM_ENCRYPT_LEAF)[1] >> 6) & 0x3f;
    this.#cpuid.set(`${CPUID_MEM_ENCRYPT_LEAF}:0`, [eax, (this.cbit & 0x3f) | (reduction << 6), 0, 0]);
  }

  #createVcpu(i: number): void {
    const cpu = new Cpu(i, i, i === 0);
    for (const [key, leaf] of this.#cpuid) {
      const [fn, sub] = key.split(':').map(Number) as [number, number];
      cpu.setCpuid(fn, sub, leaf);
    }
    const t = this.type;
    cpu.wrmsr(MSR_AMD64_SEV, (t === 'none' ? 0n : SEV_STATUS_SEV) | (t === 'sev-es' || t === 'snp' ? SEV_STATUS_SEV_ES : 0n) | (t === 'snp' ? SEV_STATUS_SNP : 0n));
    const bsp = i === 0;
    const state: VcpuRunState = bsp ? 'running' : t === 'snp' ? 'no-vmsa' : 'wait-for-sipi';
    const v = new Vcpu(i, cpu, `vm${this.asid}/vcpu${i}`, this, state);
    this.vcpus.push(v);
    if (!bsp && t === 'snp') return; // SNP APs get a VMSA from the guest (AP creation).
    v.vmsaHpa = this.launchVmsaHpa(i);
    const entry = !bsp && t === 'sev-es' && this.config.apLaunchEntryGpa !== undefined
      ? startVmsaState(this.config.apLaunchEntryGpa, this.sevFeatures)
      : resetVmsaState(this.sevFeatures);
    // The launch encrypts the VMSA with the guest key (LAUNCH_UPDATE_VMSA); plain SEV keeps it in the clear.
    this.machine.mc.write(v.vmsaHpa, encodeVmsa(entry), LAUNCH, { keyId: this.protectedState ? this.keyId : 0, guardExempt: true });
  }

  /** SNP launch: every guest page assigned to the ASID (validated unless configured not to), launch VMSAs marked VMSA. */
  #assignRmp(): void {
    const m = this.machine;
    const loc = m.rmp!;
    const validate = this.config.snpValidateAtLaunch ?? true;
    const assign = (hpa: number, gpa: number, vmsa: boolean, validated: boolean): void => {
      const r = rmpupdate(m, m.bsp, hpa, { gpa, assigned: true, pageSize: 0, immutable: false, asid: this.asid });
      if (!r.ok) throw new Error(`Cannot launch SNP guest ASID ${this.asid}: RMPUPDATE of HPA ${hex(hpa)} failed: ${r.detail}`);
      if (validated || vmsa) writeRmpEntry(m.mc, loc, hpa / 4096, { ...readRmpEntry(m.mc, loc, hpa / 4096), validated: true, vmsa }, LAUNCH);
    };
    for (let gpa = 0; gpa < this.memoryBytes; gpa += 4096) assign(this.hostBase + gpa, gpa, false, validate);
    assign(this.launchVmsaHpa(0), SNP_LAUNCH_VMSA_GPA, true, true);
  }

  #mustRun(v: Vcpu, what: string): void {
    if (v.runState !== 'running') throw new Error(`Cannot execute ${what} on vCPU ${v.index}: it is ${v.runState}, not running`);
  }

  #setState(v: Vcpu, to: VcpuRunState, why: string): void {
    const from = v.runState;
    v.setRunState(to);
    this.trace.record(v.source, 'vcpu-state', `vCPU ${v.index}: ${from} -> ${to} (${why})`, { asid: this.asid, vcpu: v.index, from, to });
  }

  /** The RMP check of one page for a guest access (SNP). Undefined: the access may proceed. */
  #snpCheck(v: Vcpu, pageGpa: number, encrypted: boolean, write: boolean): GuestAccessResult | undefined {
    const m = this.machine;
    const loc = m.rmp as RmpLocation;
    const hpfn = (this.hostBase + pageGpa) / 4096;
    if (!rmpCovers(loc, hpfn)) return undefined;
    const look = (): { priv: boolean; validated: boolean; assigned: boolean } => {
      const { at, entry } = rmpGoverningEntry(m.mc, loc, hpfn);
      const gpaHere = entry.gpa + (hpfn - at) * 4096;
      return { priv: entry.assigned && entry.asid === this.asid && gpaHere === pageGpa, validated: entry.validated, assigned: entry.assigned };
    };
    let e = look();
    const wrong = encrypted ? !e.priv : e.assigned;
    if (wrong) {
      const want = encrypted ? 'private' : 'shared';
      const detail = `${write ? 'store' : 'load'} with C=${encrypted ? 1 : 0} to GPA ${hex(pageGpa)}, which the RMP has ${e.assigned ? (e.priv ? 'private' : 'assigned elsewhere') : 'shared'}`;
      if (!this.#implicitConversion) {
        this.trace.record(this.hvSource, 'npf', `nested page fault (RMP): ${detail}; the vCPU is stopped`, { vcpu: v.index, gpa: pageGpa, encrypted });
        this.#setState(v, 'stopped', 'unresolved RMP nested page fault');
        return { ok: false, fault: 'npf', gpa: pageGpa, detail };
      }
      this.trace.record(this.hvSource, 'npf', `nested page fault (RMP): ${detail}; the hypervisor makes it ${want}`, { vcpu: v.index, gpa: pageGpa, encrypted, converted: want });
      const r = this.changePageState(v, pageGpa / 4096, encrypted ? PSC_OP_PRIVATE : PSC_OP_SHARED);
      if (!r.ok) {
        this.#setState(v, 'stopped', 'RMP nested page fault the hypervisor could not resolve');
        return { ok: false, fault: 'npf', gpa: pageGpa, detail: `${detail}: ${r.detail}` };
      }
      e = look();
    }
    if (encrypted && !e.validated) {
      const detail = `#VC ${hex(VC_EXIT_PAGE_NOT_VALIDATED)}: private access to GPA ${hex(pageGpa)}, which is not validated`;
      this.trace.record(v.source, 'vc', detail, { vcpu: v.index, gpa: pageGpa, exitCode: VC_EXIT_PAGE_NOT_VALIDATED });
      return { ok: false, fault: 'vc', exitCode: VC_EXIT_PAGE_NOT_VALIDATED, gpa: pageGpa, detail };
    }
    return undefined;
  }

  #vmsaKey(): number {
    return this.protectedState ? this.keyId : 0;
  }

  /** The CPU writing the vCPU's state to its VMSA on an exit; `resumeAt` becomes the saved RIP. */
  #saveVmsa(v: Vcpu, resumeAt: number | undefined): void {
    if (v.vmsaHpa === undefined) return;
    const s = vmsaFromRegisters(v.cpu.regs, {
      csBase: v.csBase, cr0: v.cr0, cr3: BigInt(v.cpu.cr3), cr4: v.cr4, efer: v.cpu.rdmsr(MSR_EFER), sevFeatures: this.sevFeatures, vmpl: 0,
    });
    if (resumeAt !== undefined) {
      s.cs = { selector: 0, base: 0n };
      s.rip = BigInt(resumeAt);
    }
    // Hardware's own store: not subject to the RMP check.
    this.machine.mc.write(v.vmsaHpa, encodeVmsa(s), { kind: 'cpu', id: this.pcpuOf(v).id, asid: this.asid }, { keyId: this.#vmsaKey(), guardExempt: true });
  }

  /** The CPU loading the vCPU's state from its VMSA on entry. */
  #loadVmsa(v: Vcpu): VmsaState {
    const b = new Uint8Array(VMSA_BYTES);
    this.machine.mc.read(v.vmsaHpa!, b, { keyId: this.#vmsaKey() });
    const s = decodeVmsa(b);
    applyVmsaToRegisters(s, v.cpu.regs);
    v.csBase = s.cs.base;
    v.cr0 = s.cr0;
    v.cr4 = s.cr4;
    v.cpu.cr3 = Number(BigInt.asUintN(52, s.cr3));
    v.cpu.msrs.set(MSR_EFER, s.efer);
    return s;
  }

  /** VMRUN of a vCPU from its VMSA: the hardware checks (SNP), loads the state and runs the code at CS.base + RIP. */
  #enter(v: Vcpu, why: string): void {
    if (v.vmsaHpa === undefined) throw new Error(`Cannot enter vCPU ${v.index}: it has no VMSA`);
    if (this.type === 'snp') {
      const loc = this.machine.rmp!;
      const e = readRmpEntry(this.machine.mc, loc, v.vmsaHpa / 4096);
      if (!(e.assigned && e.asid === this.asid && e.validated && e.vmsa)) {
        const detail = `VMRUN of vCPU ${v.index} failed: the page at HPA ${hex(v.vmsaHpa)} is not a validated VMSA page of ASID ${this.asid} in the RMP`;
        this.trace.record(this.hvSource, 'vmrun-failed', detail, { vcpu: v.index, hpa: v.vmsaHpa, vmsa: e.vmsa, validated: e.validated });
        this.#setState(v, 'stopped', 'VMRUN failed');
        return;
      }
    }
    const s = this.#loadVmsa(v);
    this.#setState(v, 'running', why);
    this.#run(v, vmsaEntryGpa(s), 'VMRUN');
  }

  jump(v: Vcpu, gpa: number, how: string): void {
    this.#mustRun(v, how);
    this.#run(v, BigInt(gpa), how);
  }

  #run(v: Vcpu, entry: bigint, how: string): void {
    const r = this.code.resolve(entry);
    if (!r.ok) {
      this.trace.record(v.source, 'triple-fault', `vCPU ${v.index} executes garbage at GPA ${hex(entry)} after ${how} (${r.detail}): triple fault`, { vcpu: v.index, gpa: hex(entry) });
      this.#setState(v, 'stopped', 'triple fault');
      return;
    }
    this.trace.record(v.source, 'jump', `vCPU ${v.index} runs ${r.name} at GPA ${hex(entry)} (${how})`, { vcpu: v.index, gpa: Number(entry), how });
    r.run(v);
  }

  #deliver(t: Vcpu, kind: IpiKind, vector: number): void {
    if (this.termination !== undefined) return;
    if (!this.protectedState) {
      if (kind === 'init') {
        if (t.vmsaHpa !== undefined) this.hostWriteRegisters(t, resetVmsaState());
        this.#setState(t, 'wait-for-sipi', 'INIT: the hypervisor reset its registers');
        return;
      }
      if (t.runState !== 'wait-for-sipi') {
        this.trace.record(t.source, 'sipi-ignored', `SIPI ignored: vCPU ${t.index} is ${t.runState}`, { vcpu: t.index, vector });
        return;
      }
      this.hostWriteRegisters(t, startVmsaState((vector & 0xff) * 4096));
      this.#enter(t, `SIPI vector ${hex(vector)}: the hypervisor loaded CS:IP`);
      return;
    }
    if (kind === 'init') {
      if (t.pendingVmsaHpa !== undefined) {
        t.vmsaHpa = t.pendingVmsaHpa;
        t.pendingVmsaHpa = undefined;
        this.#enter(t, 'INIT with the VMSA of an AP CREATE_ON_INIT');
        return;
      }
      if (t.runState === 'running' || t.runState === 'halted') {
        this.trace.record(this.hvSource, 'vcpu-reset-refused',
          `INIT to vCPU ${t.index}: the hypervisor cannot put its registers in reset state, they are in a VMSA encrypted with the guest key; the vCPU stays ${t.runState}`,
          { vcpu: t.index, ipi: 'init', state: t.runState });
      } else {
        this.trace.record(t.source, 'init-ignored', `INIT has no effect on vCPU ${t.index} (${t.runState})`, { vcpu: t.index });
      }
      return;
    }
    if (t.runState === 'reset-hold') {
      this.#wake(t, 1n, `SIPI vector ${hex(vector)} ends the AP reset hold`);
      return;
    }
    if (t.runState === 'wait-for-sipi' && this.type === 'sev-es' && !t.startedOnce) {
      t.startedOnce = true;
      this.trace.record(this.hvSource, 'vcpu-first-sipi', `first SIPI to vCPU ${t.index}: it starts from its launch VMSA; vector ${hex(vector)} is not applied`, { vcpu: t.index, vector });
      this.#enter(t, 'first SIPI: launch VMSA');
      return;
    }
    const why = t.runState === 'no-vmsa' ? 'it has no VMSA (an SNP AP starts through AP creation)' : 'CS:IP would have to be written into its encrypted VMSA';
    this.trace.record(this.hvSource, 'vcpu-reset-refused',
      `SIPI vector ${hex(vector)} to vCPU ${t.index}: the hypervisor cannot start it: ${why}; the vCPU stays ${t.runState}`,
      { vcpu: t.index, ipi: 'sipi', vector, state: t.runState });
  }

  /** Ends an AP reset hold: the response goes where the hold was asked (GHCB MSR or GHCB page), then the vCPU resumes. */
  #wake(t: Vcpu, result: bigint, why: string): void {
    if (t.runState !== 'reset-hold' || t.hold === undefined) return;
    const h = t.hold;
    t.hold = undefined;
    if (h.via === 'msr') {
      const resp = apResetHoldResponse(result);
      t.cpu.wrmsr(MSR_AMD64_SEV_ES_GHCB, resp);
      this.trace.record(t.source, 'ghcb-msr', `AP reset hold 0x006 -> 0x007: result ${result} (${why})`,
        { asid: this.asid, vcpu: t.index, request: GHCB_MSR_AP_RESET_HOLD_REQ, response: GHCB_MSR_AP_RESET_HOLD_RESP, result: Number(result), responseValue: hex(resp) });
    } else {
      const out = new Uint8Array(16);
      new DataView(out.buffer).setBigUint64(8, result, true);
      const w = this.hostWrite(h.ghcbGpa + GHCB_OFF_SW_EXIT_INFO_1, out);
      this.trace.record(t.source, 'ghcb-nae', `AP HLT loop ends: SW_EXITINFO2 = ${result} (${why})${w.ok ? '' : `; the GHCB cannot be written: ${w.detail}`}`,
        { asid: this.asid, vcpu: t.index, exitCode: SVM_VMGEXIT_AP_HLT_LOOP, ghcb: h.ghcbGpa, result: Number(result) });
    }
    this.#enter(t, why);
  }
}

