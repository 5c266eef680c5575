import { describe, it, expect } from 'vitest';
import { IPI_LATENCY_NS, type SevGuestVm } from '../../../src/platform/hv/sev-guest-vm.js';
import { startApsIntoResetHold } from '../../../src/platform/hv/guest-firmware.js';
import { VMSA_OFF_RIP, VMSA_BYTES, decodeVmsa } from '../../../src/platform/hv/vmsa.js';
import { hostMachine, snpHost, guest, placeCode, writeResetVector, TRAMPOLINE } from './rig.js';

/** What the new kernel does in mainline: INIT, SIPI, SIPI with the trampoline's vector. */
function initSipiSipi(vm: SevGuestVm, apicId: number, vector: number): void {
  const bsp = vm.vcpus[0]!;
  bsp.sendIpi(apicId, 'init');
  vm.machine.clock.advance(10 * IPI_LATENCY_NS);
  bsp.sendIpi(apicId, 'sipi', vector);
  vm.machine.clock.advance(2 * IPI_LATENCY_NS);
  bsp.sendIpi(apicId, 'sipi', vector);
  vm.machine.clock.advance(2 * IPI_LATENCY_NS);
}

/** Brings AP 1 up and leaves it halted in the old kernel (HLT-loop parking, as without SEV-ES). */
function apHaltedInOldKernel(vm: SevGuestVm): void {
  const ran: number[] = [];
  placeCode(vm, 0x8000, 'old kernel AP', ran, (v) => v.hlt());
  if (vm.type === 'sev-es') {
    startApsIntoResetHold(vm);
    writeResetVector(vm.vcpus[0]!, 0, 0x0800);
    initSipiSipi(vm, 1, 0x08);
  } else {
    initSipiSipi(vm, 1, 0x08);
  }
  expect(ran).toEqual([1]);
  expect(vm.vcpus[1]!.runState).toBe('halted');
}

describe('INIT-SIPI-SIPI from the guest kernel', () => {
  it('on an SEV-ES AP the hypervisor cannot reset it: the AP never comes up and the trace says why', () => {
    const vm = guest(hostMachine(), 'sev-es', { firmware: true });
    apHaltedInOldKernel(vm);
    const ran: number[] = [];
    placeCode(vm, TRAMPOLINE, 'new kernel trampoline', ran);
    const before = vm.trace.events.length;
    initSipiSipi(vm, 1, TRAMPOLINE >> 12);
    expect(ran).toEqual([]);
    expect(vm.vcpus[1]!.runState).toBe('halted');
    const refused = vm.trace.events.slice(before).filter((e) => e.kind === 'vcpu-reset-refused');
    expect(refused.map((e) => e.data?.['ipi'])).toEqual(['init', 'sipi', 'sipi']);
    expect(refused[0]!.detail).toMatch(/cannot put its registers in reset state.*encrypted with the guest key/);
    expect(refused[1]!.detail).toMatch(/cannot start it: CS:IP would have to be written into its encrypted VMSA/);
  });

  it('on a plain SEV guest the same sequence resets the AP and starts it at vector << 12', () => {
    const vm = guest(hostMachine(), 'sev');
    apHaltedInOldKernel(vm);
    const ran: number[] = [];
    placeCode(vm, TRAMPOLINE, 'new kernel trampoline', ran);
    initSipiSipi(vm, 1, TRAMPOLINE >> 12);
    expect(ran).toEqual([1]);
    expect(vm.trace.find('vcpu-reset-refused')).toHaveLength(0);
    const states = vm.trace.find('vcpu-state', 'vm5/vcpu1').map((e) => e.data?.['to']);
    expect(states.slice(-2)).toEqual(['wait-for-sipi', 'running']);
    // The second SIPI finds it running and is ignored, as on hardware.
    expect(vm.trace.find('sipi-ignored', 'vm5/vcpu1').length).toBeGreaterThan(0);
  });

  it('an SNP AP with no VMSA does not start on a SIPI either', () => {
    const vm = guest(snpHost(), 'snp');
    const ran: number[] = [];
    placeCode(vm, TRAMPOLINE, 'trampoline', ran);
    initSipiSipi(vm, 1, TRAMPOLINE >> 12);
    expect(ran).toEqual([]);
    expect(vm.vcpus[1]!.runState).toBe('no-vmsa');
    expect(vm.trace.find('vcpu-reset-refused').at(-1)!.detail).toMatch(/has no VMSA/);
  });
});

describe('the VMSA: register state the host cannot see', () => {
  it('SEV-ES: the host API refuses register access and a raw read of the VMSA is ciphertext', () => {
    const vm = guest(hostMachine(), 'sev-es');
    const bsp = vm.vcpus[0]!;
    bsp.cpu.regs.rip = 0x1234_5678n;
    bsp.cpu.regs.rbx = 0xdead_beefn;
    bsp.hlt(); // the exit saves the state into the VMSA
    expect(vm.hostReadRegisters(bsp)).toMatchObject({ ok: false, fault: 'guest-state-protected' });
    expect(vm.hostWriteRegisters(bsp, decodeVmsa(new Uint8Array(VMSA_BYTES)))).toMatchObject({ ok: false, fault: 'guest-state-protected' });
    const raw = vm.hostReadVmsa(bsp)!;
    const rawRip = new DataView(raw.buffer).getBigUint64(VMSA_OFF_RIP, true);
    expect(rawRip).not.toBe(0x1234_5678n);
    // With the guest's key (what the CPU uses on VMRUN) the same bytes hold the state.
    const clear = new Uint8Array(VMSA_BYTES);
    vm.machine.mc.read(bsp.vmsaHpa!, clear, { keyId: vm.keyId });
    expect(decodeVmsa(clear).rip).toBe(0x1234_5678n);
    expect(decodeVmsa(clear).gprs.rbx).toBe(0xdead_beefn);
  });

  it('plain SEV: the VMSA is in the clear and the host reads the registers', () => {
    const vm = guest(hostMachine(), 'sev');
    const bsp = vm.vcpus[0]!;
    bsp.cpu.regs.rip = 0x1234_5678n;
    bsp.hlt();
    const r = vm.hostReadRegisters(bsp);
    expect(r.ok && r.state.rip).toBe(0x1234_5678n);
  });

  it('SEV-ES: a host write into the VMSA decrypts to garbage on the next entry and the AP triple-faults', () => {
    const vm = guest(hostMachine(), 'sev-es', { firmware: true });
    startApsIntoResetHold(vm);
    const ap = vm.vcpus[1]!;
    expect(vm.hostWriteVmsa(ap, VMSA_OFF_RIP, new Uint8Array(8))).toEqual({ ok: true });
    const ran: number[] = [];
    placeCode(vm, TRAMPOLINE, 'trampoline', ran);
    writeResetVector(vm.vcpus[0]!, 0, 0x0900);
    initSipiSipi(vm, 1, 9);
    expect(ran).toEqual([]);
    expect(ap.runState).toBe('stopped');
    expect(vm.trace.find('triple-fault', ap.source)).toHaveLength(1);
  });

  it('SNP: the RMP refuses the host write to the VMSA page outright', () => {
    const vm = guest(snpHost(), 'snp');
    const w = vm.hostWriteVmsa(vm.vcpus[0]!, VMSA_OFF_RIP, new Uint8Array(8));
    expect(w).toMatchObject({ ok: false, fault: 'rmp-violation' });
  });
});
