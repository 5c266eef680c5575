// Machines and guests for the hypervisor tests: a 64 MiB AMD host with memory
// encryption (C-bit 47), a guest of 2 MiB at host 16 MiB. The SNP variant
// reserves an RMP covering every frame and turns SNP on, as the host kernel
// would before launching guests.

import { Machine } from '../../../src/platform/machine.js';
import { SevGuestVm, type GuestKind, type SevGuestVmConfig } from '../../../src/platform/hv/sev-guest-vm.js';
import { guestFirmwareImage, installGuestFirmware, type GuestFirmwareConfig } from '../../../src/platform/hv/guest-firmware.js';
import { MSR_AMD64_SEV_ES_GHCB } from '../../../src/platform/hv/ghcb-msr.js';
import { encodeGhcb, decodeGhcbResult, GHCB_PAGE_BYTES, type GhcbRequest } from '../../../src/platform/hv/ghcb-page.js';
import type { Vcpu, VmgexitResult } from '../../../src/platform/hv/vcpu.js';
import { snpMachine, enableSnp } from '../snp/helpers.js';

export const MiB = 2 ** 20;
export const HOST_BASE = 16 * MiB;
export const GUEST_BYTES = 2 * MiB;

/** Guest layout used by the tests (GPAs). */
export const FW_AP_CODE = 0x1f_0000;
export const JUMP_TABLE = 0x1f_1000;
export const AP_GHCBS = 0x1e_0000;
export const BSP_GHCB = 0x1d_0000;
export const TRAMPOLINE = 0x9000;

export const FIRMWARE: GuestFirmwareConfig = { apCodeGpa: FW_AP_CODE, apJumpTableGpa: JUMP_TABLE, apGhcbGpa: AP_GHCBS };

export function hostMachine(cpus = 2): Machine {
  return new Machine({ memoryBytes: 64 * MiB, cpus, seed: 11, nics: [], memEncrypt: { state: 'enabled', cbit: 47 } });
}

export function snpHost(cpus = 2): Machine {
  const m = snpMachine({ cpus });
  enableSnp(m);
  return m;
}

export function guest(m: Machine, type: GuestKind, opts: Partial<SevGuestVmConfig> & { firmware?: boolean } = {}): SevGuestVm {
  const { firmware, ...rest } = opts;
  const vm = new SevGuestVm(m, {
    type, asid: 5, memoryBytes: GUEST_BYTES, hostBase: HOST_BASE, vcpus: 2,
    ...(firmware === true ? { image: guestFirmwareImage(FIRMWARE), apLaunchEntryGpa: FW_AP_CODE } : {}),
    ...rest,
  });
  if (firmware === true) installGuestFirmware(vm, FIRMWARE);
  return vm;
}

/** One MSR-protocol exchange from guest code: write the request, VMGEXIT, read the answer. */
export function msrExchange(v: Vcpu, request: bigint): { result: VmgexitResult; response: bigint } {
  v.cpu.wrmsr(MSR_AMD64_SEV_ES_GHCB, request);
  const result = v.vmgexit();
  return { result, response: v.cpu.rdmsr(MSR_AMD64_SEV_ES_GHCB) };
}

/** One GHCB-page exit from guest code: fill the shared GHCB, point the MSR at it, VMGEXIT, read the answer back. */
export function ghcbExchange(v: Vcpu, ghcbGpa: number, req: GhcbRequest): { result: VmgexitResult; info1: bigint; info2: bigint; page: Uint8Array } {
  const w = v.write(ghcbGpa, encodeGhcb(req), { encrypted: false });
  if (!w.ok) throw new Error(`GHCB write failed: ${w.detail}`);
  v.cpu.wrmsr(MSR_AMD64_SEV_ES_GHCB, BigInt(ghcbGpa));
  const result = v.vmgexit();
  const page = new Uint8Array(GHCB_PAGE_BYTES);
  if (result.kind === 'continue') v.read(ghcbGpa, page, { encrypted: false });
  return { result, ...decodeGhcbResult(page), page };
}

/** Writes `bytes` as guest code at `gpa` (private) and records which vCPUs ran it. */
export function placeCode(vm: SevGuestVm, gpa: number, name: string, ran: number[], then?: (v: Vcpu) => void): Uint8Array {
  const bytes = Uint8Array.from({ length: 32 }, (_, i) => (0x40 + i + gpa) & 0xff);
  const w = vm.vcpus[0]!.write(gpa, bytes, { encrypted: true });
  if (!w.ok) throw new Error(`code write failed: ${w.detail}`);
  vm.code.place(gpa, name, bytes, (v) => {
    ran.push(v.index);
    then?.(v);
  });
  return bytes;
}

/** Writes the reset vector (IP, CS) into the jump table page, as a kernel does before waking APs. */
export function writeResetVector(v: Vcpu, ip: number, cs: number): void {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint16(0, ip, true);
  new DataView(b.buffer).setUint16(2, cs, true);
  const w = v.write(JUMP_TABLE, b, { encrypted: true });
  if (!w.ok) throw new Error(`jump table write failed: ${w.detail}`);
}
