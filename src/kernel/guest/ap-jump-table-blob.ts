// The 2021 RFC's AP parking code, which the kernel copies onto the AP jump
// table page (ref/sme-sev-kexec.md §3.7). The page is owned by the firmware,
// writable by the OS and survives into the next kernel, so a parked AP is
// still running intact code when that kernel wakes it. Layout of the page:
//
//   0x00  u16 reset IP, u16 reset CS   (the next kernel rewrites these)
//   0x04  u16 offset of the blob's GDT
//   0x10  ap_park: stack at the page end, then the MSR-protocol AP reset hold
//   0x30  the hold loop: resumed after VMGEXIT, checks 0x007 with data != 0
//   0x50  a far jump (EA ip cs) patched with the reset vector on wake-up
//   0x60  GDT: null, CS16 0x08 (base = page, 0x9b), DS16 0x10 (base = page,
//         0x93), RM_DS 0x18 (base 0, 0x93)
//
// The code runs in 16-bit protected mode with segment base = the page's
// GPA, which is why the page must sit below 4 GiB. The instruction bytes
// are a stand-in (they contain the VMGEXIT encoding F3 0F 01 D9 before each
// resume point); the GDT descriptors are encoded as the CPU reads them.

import type { SevGuestVm } from '../../platform/hv/sev-guest-vm.js';
import type { Vcpu } from '../../platform/hv/vcpu.js';
import { MSR_AMD64_SEV_ES_GHCB, GHCB_MSR_AP_RESET_HOLD_RESP, apResetHoldRequest, ghcbMsrData, ghcbMsrInfo } from '../../platform/hv/ghcb-msr.js';
import { hex } from '../../util/hex.js';

export const APJT_RESET_IP = 0x00;
export const APJT_RESET_CS = 0x02;
export const APJT_GDT_OFFSET = 0x04;
export const SEV_APJT_ENTRY = 0x10;
export const APJT_HOLD_LOOP = 0x30;
export const APJT_FAR_JUMP = 0x50;
export const APJT_GDT = 0x60;
export const SEV_APJT_CS16 = 0x08;
export const SEV_APJT_DS16 = 0x10;
export const SEV_RM_DS = 0x18;
const BLOB_BYTES = 0x80;

/** A GDT descriptor: limit 0xffff, `base`, access byte, 16-bit (flags 0). */
function descriptor(base: number, access: number): Uint8Array {
  const d = new Uint8Array(8);
  d[0] = 0xff; d[1] = 0xff;
  d[2] = base & 0xff; d[3] = (base >>> 8) & 0xff; d[4] = (base >>> 16) & 0xff;
  d[5] = access;
  d[6] = 0;
  d[7] = (base >>> 24) & 0xff;
  return d;
}

/** The blob as the kernel copies it to the table at `tableGpa`, with the reset vector already in its header. */
export function apJumpTableBlob(tableGpa: number, reset: { ip: number; cs: number }): Uint8Array {
  const b = new Uint8Array(BLOB_BYTES).fill(0x90);
  const dv = new DataView(b.buffer);
  dv.setUint16(APJT_RESET_IP, reset.ip, true);
  dv.setUint16(APJT_RESET_CS, reset.cs, true);
  dv.setUint16(APJT_GDT_OFFSET, APJT_GDT, true);
  b.fill(0, 6, SEV_APJT_ENTRY);
  // ap_park: mov esp, 0x1000; then the hold request and VMGEXIT just before the loop.
  b.set([0x66, 0xbc, 0x00, 0x10, 0x00, 0x00], SEV_APJT_ENTRY);
  b.set([0xf3, 0x0f, 0x01, 0xd9], APJT_HOLD_LOOP - 4);
  b.set([0xf3, 0x0f, 0x01, 0xd9], APJT_FAR_JUMP - 4);
  b.set([0xea, 0, 0, 0, 0], APJT_FAR_JUMP);
  b.set(new Uint8Array(8), APJT_GDT);
  b.set(descriptor(tableGpa, 0x9b), APJT_GDT + SEV_APJT_CS16);
  b.set(descriptor(tableGpa, 0x93), APJT_GDT + SEV_APJT_DS16);
  b.set(descriptor(0, 0x93), APJT_GDT + SEV_RM_DS);
  return b;
}

/**
 * Tells the VM what the blob's bytes do, once the kernel has written them
 * to the table page. Only the code ranges are checked when an AP runs them:
 * the header and the far jump are rewritten by design.
 */
export function placeApJumpTableBlob(vm: SevGuestVm, tableGpa: number, blob: Uint8Array): void {
  const source = `vm${vm.asid}/ap-jump-table`;
  const hold = (v: Vcpu): void => {
    v.cpu.wrmsr(MSR_AMD64_SEV_ES_GHCB, apResetHoldRequest());
    v.vmgexit({ resumeAt: tableGpa + APJT_HOLD_LOOP });
  };
  vm.code.place(tableGpa + SEV_APJT_ENTRY, 'AP jump table blob: ap_park', blob.subarray(SEV_APJT_ENTRY, APJT_HOLD_LOOP), (v) => {
    vm.trace.record(source, 'ap-park', `vCPU ${v.index} runs ap_park at CS16:${hex(SEV_APJT_ENTRY)} (16-bit protected mode, segment base ${hex(tableGpa)}); AP reset hold 0x006`,
      { vcpu: v.index, table: tableGpa });
    hold(v);
  });
  vm.code.place(tableGpa + APJT_HOLD_LOOP, 'AP jump table blob: hold loop', blob.subarray(APJT_HOLD_LOOP, APJT_FAR_JUMP), (v) => {
    const r = v.cpu.rdmsr(MSR_AMD64_SEV_ES_GHCB);
    if (!(ghcbMsrInfo(r) === GHCB_MSR_AP_RESET_HOLD_RESP && ghcbMsrData(r) !== 0n)) {
      hold(v);
      return;
    }
    // Woken by a SIPI: copy the reset vector into the far jump and leave protected mode.
    const vec = new Uint8Array(4);
    const rd = v.read(tableGpa + APJT_RESET_IP, vec, { encrypted: true });
    if (!rd.ok) return;
    const dv = new DataView(vec.buffer);
    const ip = dv.getUint16(0, true);
    const cs = dv.getUint16(2, true);
    const patch = Uint8Array.of(0xea, vec[0]!, vec[1]!, vec[2]!, vec[3]!);
    v.write(tableGpa + APJT_FAR_JUMP, patch, { encrypted: true });
    vm.trace.record(v.source, 'ap-jump-table-vector',
      `vCPU ${v.index} read reset vector ${hex(cs)}:${hex(ip)} from the AP jump table at GPA ${hex(tableGpa)} (RFC blob; far jump patched, CR0 0x60000010)`,
      { vcpu: v.index, table: tableGpa, bytes: Array.from(vec, (x) => x.toString(16).padStart(2, '0')).join(' '), ip, cs, start: cs * 16 + ip, via: 'blob' });
    v.cpu.regs.cs = BigInt(cs);
    v.cpu.regs.rip = BigInt(ip);
    v.cpu.regs.eflags = 2n;
    v.cr0 = 0x6000_0010n;
    v.csBase = BigInt(cs * 16);
    v.jump(cs * 16 + ip, `far jump to the reset vector ${hex(cs)}:${hex(ip)}`);
  });
}
