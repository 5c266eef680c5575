// The guest firmware's part of SEV-ES AP handling (the job OVMF does): it
// reserves the AP jump table page and tells the hypervisor where it is, and
// its AP code parks every AP in the AP reset hold. When the hypervisor ends
// the hold (a SIPI from the guest's BSP), the AP reads the 4-byte reset
// vector at the start of the jump table (u16 IP at 0, u16 CS at 2; ref
// §3.6) from guest memory with the guest key and far-jumps to CS:IP in
// real-mode terms (CS * 16 + IP). The loop asks SEV_INFO for the protocol
// version and uses the MSR-protocol hold on version 2, else the GHCB NAE
// event through a per-AP GHCB page.
//
// The code is guest code like any other: bytes at `apCodeGpa`, written by
// the launch with the guest key, whose behaviour runs only while they are
// intact. The bytes are a stand-in (they contain VMGEXIT, F3 0F 01 D9).

import type { SevGuestVm } from './sev-guest-vm.js';
import type { Vcpu } from './vcpu.js';
import { IPI_LATENCY_NS } from './sev-guest-vm.js';
import {
  MSR_AMD64_SEV_ES_GHCB, GHCB_MSR_AP_RESET_HOLD_RESP, GHCB_MSR_SEV_INFO_RESP,
  apResetHoldRequest, decodeSevInfo, ghcbMsrData, ghcbMsrInfo, sevInfoRequest,
} from './ghcb-msr.js';
import { encodeGhcb, decodeGhcbResult, GHCB_PAGE_BYTES, SVM_VMGEXIT_AP_HLT_LOOP } from './ghcb-page.js';
import { hex } from '../../util/hex.js';

export interface GuestFirmwareConfig {
  /** Where the firmware's AP code lives (private, encrypted). */
  readonly apCodeGpa: number;
  /** The AP jump table page (private, encrypted, page aligned). */
  readonly apJumpTableGpa: number;
  /** Protocol version 1 only: per-AP GHCB pages (shared), AP i at apGhcbGpa + i * 4096. */
  readonly apGhcbGpa?: number;
}

/** Offsets of the firmware AP code's entry points within its bytes. */
export const FW_AP_ENTRY = 0x00;
export const FW_AP_RESUME_MSR = 0x40;
export const FW_AP_RESUME_GHCB = 0x80;
const CODE_BYTES = 0xc0;

/** The stand-in bytes of the firmware's AP code (a VMGEXIT at each resume point's predecessor). */
export function firmwareApCode(): Uint8Array {
  const b = new Uint8Array(CODE_BYTES).fill(0x90);
  for (const at of [FW_AP_RESUME_MSR, FW_AP_RESUME_GHCB]) b.set([0xf3, 0x0f, 0x01, 0xd9], at - 4);
  b.set([0xfa, 0xfc], FW_AP_ENTRY); // cli; cld
  return b;
}

/** What the launch image must hold for this firmware: its AP code, encrypted. */
export function guestFirmwareImage(cfg: GuestFirmwareConfig): { gpa: number; bytes: Uint8Array }[] {
  return [{ gpa: cfg.apCodeGpa, bytes: firmwareApCode() }];
}

/**
 * The firmware in the launched VM: registers its AP code's behaviour and
 * records the jump table with the hypervisor. Call after constructing the VM
 * with `guestFirmwareImage(cfg)` in its image and `apLaunchEntryGpa` =
 * `cfg.apCodeGpa`.
 */
export function installGuestFirmware(vm: SevGuestVm, cfg: GuestFirmwareConfig): void {
  if (cfg.apJumpTableGpa % GHCB_PAGE_BYTES !== 0) throw new RangeError(`Cannot install guest firmware: AP jump table ${hex(cfg.apJumpTableGpa)} is not page aligned`);
  const code = firmwareApCode();
  const base = cfg.apCodeGpa;
  const place = (off: number, name: string, run: (v: Vcpu) => void): void => {
    vm.code.place(base + off, name, code.subarray(off), run, true);
  };
  place(FW_AP_ENTRY, 'firmware AP entry', (v) => {
    // Ask which protocol the hypervisor speaks, then hold.
    v.cpu.wrmsr(MSR_AMD64_SEV_ES_GHCB, sevInfoRequest());
    if (v.vmgexit().kind !== 'continue') return;
    const info = decodeSevInfo(v.cpu.rdmsr(MSR_AMD64_SEV_ES_GHCB));
    const version = info.code === GHCB_MSR_SEV_INFO_RESP ? Math.min(info.max, 2) : 0;
    if (version < 1) return;
    hold(v, version);
  });
  place(FW_AP_RESUME_MSR, 'firmware AP hold loop (MSR)', (v) => {
    const r = v.cpu.rdmsr(MSR_AMD64_SEV_ES_GHCB);
    if (ghcbMsrInfo(r) === GHCB_MSR_AP_RESET_HOLD_RESP && ghcbMsrData(r) !== 0n) jumpThroughTable(vm, v, cfg);
    else hold(v, 2);
  });
  place(FW_AP_RESUME_GHCB, 'firmware AP hold loop (GHCB)', (v) => {
    const page = new Uint8Array(GHCB_PAGE_BYTES);
    const r = v.read(ghcbOf(v, cfg), page, { encrypted: false });
    if (r.ok && decodeGhcbResult(page).info2 !== 0n) jumpThroughTable(vm, v, cfg);
    else hold(v, 1);
  });

  function hold(v: Vcpu, version: number): void {
    if (version >= 2) {
      v.cpu.wrmsr(MSR_AMD64_SEV_ES_GHCB, apResetHoldRequest());
      v.vmgexit({ resumeAt: base + FW_AP_RESUME_MSR });
      return;
    }
    const g = ghcbOf(v, cfg);
    v.write(g, encodeGhcb({ exitCode: SVM_VMGEXIT_AP_HLT_LOOP, info1: 0n, info2: 0n, protocolVersion: 1 }), { encrypted: false });
    v.cpu.wrmsr(MSR_AMD64_SEV_ES_GHCB, BigInt(g));
    v.vmgexit({ resumeAt: base + FW_AP_RESUME_GHCB });
  }

  vm.apJumpTableGpa = BigInt(cfg.apJumpTableGpa);
  vm.trace.record(vm.hvSource, 'ap-jump-table-set', `guest firmware set the AP jump table to GPA ${hex(cfg.apJumpTableGpa)}`, { table: cfg.apJumpTableGpa });
}

function ghcbOf(v: Vcpu, cfg: GuestFirmwareConfig): number {
  if (cfg.apGhcbGpa === undefined) throw new RangeError('Guest firmware needs apGhcbGpa to hold APs with GHCB protocol version 1');
  return cfg.apGhcbGpa + v.index * GHCB_PAGE_BYTES;
}

/** The woken AP reads the reset vector from the jump table page and far-jumps there. */
function jumpThroughTable(vm: SevGuestVm, v: Vcpu, cfg: GuestFirmwareConfig): void {
  const bytes = new Uint8Array(4);
  const r = v.read(cfg.apJumpTableGpa, bytes, { encrypted: true });
  if (!r.ok) return;
  const dv = new DataView(bytes.buffer);
  const ip = dv.getUint16(0, true);
  const cs = dv.getUint16(2, true);
  const start = cs * 16 + ip;
  vm.trace.record(v.source, 'ap-jump-table-vector',
    `vCPU ${v.index} read reset vector ${hex(cs)}:${hex(ip)} from the AP jump table at GPA ${hex(cfg.apJumpTableGpa)}`,
    { vcpu: v.index, table: cfg.apJumpTableGpa, bytes: Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' '), ip, cs, start });
  v.cpu.regs.cs = BigInt(cs);
  v.cpu.regs.rip = BigInt(ip);
  v.csBase = BigInt(cs * 16);
  v.jump(start, `far jump to the AP jump table's reset vector ${hex(cs)}:${hex(ip)}`);
}

/**
 * The firmware's MP start-up, run on the BSP: INIT and SIPI to every AP
 * (the first SIPI starts an SEV-ES AP from its launch VMSA, i.e. the
 * firmware's AP entry, which parks it), then waiting long enough for them.
 */
export function startApsIntoResetHold(vm: SevGuestVm): void {
  const bsp = vm.vcpus[0]!;
  for (const ap of vm.vcpus.slice(1)) {
    bsp.sendIpi(ap.apicId, 'init');
    bsp.sendIpi(ap.apicId, 'sipi', 0);
  }
  vm.machine.clock.advance(4 * IPI_LATENCY_NS);
}
