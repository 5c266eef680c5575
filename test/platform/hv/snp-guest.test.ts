import { describe, it, expect } from 'vitest';
import { readRmpEntry } from '../../../src/platform/snp/rmp.js';
import { IPI_LATENCY_NS, type SevGuestVm } from '../../../src/platform/hv/sev-guest-vm.js';
import { pscRequest, registerGhcbRequest, pscResponseError, ghcbMsrInfo, PSC_OP_PRIVATE, PSC_OP_SHARED } from '../../../src/platform/hv/ghcb-msr.js';
import {
  SVM_VMGEXIT_PSC, SVM_VMGEXIT_AP_CREATION, SVM_VMGEXIT_AP_CREATE, SVM_VMGEXIT_AP_DESTROY, GHCB_OFF_SHARED_BUFFER,
  GHCB_RESULT_ERROR, GHCB_ERR_INVALID_EVENT, apCreationInfo1, encodePscDescriptor,
} from '../../../src/platform/hv/ghcb-page.js';
import { encodeVmsa, startVmsaState, SEV_FEATURE_SNP_ACTIVE } from '../../../src/platform/hv/vmsa.js';
import { VC_EXIT_PAGE_NOT_VALIDATED } from '../../../src/platform/hv/vcpu.js';
import { snpHost, hostMachine, guest, msrExchange, ghcbExchange, placeCode, HOST_BASE, BSP_GHCB, TRAMPOLINE } from './rig.js';

const PAGE = 0x5_0000;

function rmpOf(vm: SevGuestVm, gpa: number) {
  return readRmpEntry(vm.machine.mc, vm.machine.rmp!, (HOST_BASE + gpa) / 4096);
}

/** The guest makes its GHCB page shared (PVALIDATE off, then PSC over the MSR protocol) and registers it. */
function shareAndRegisterGhcb(vm: SevGuestVm): void {
  const bsp = vm.vcpus[0]!;
  expect(bsp.pvalidate(BSP_GHCB, false).ok).toBe(true);
  expect(pscResponseError(msrExchange(bsp, pscRequest(BSP_GHCB / 4096, PSC_OP_SHARED)).response)).toBe(0);
  expect(ghcbMsrInfo(msrExchange(bsp, registerGhcbRequest(BSP_GHCB / 4096)).response)).toBe(0x013);
}

describe('SNP guest memory in the RMP', () => {
  it('launch assigns every guest page to the ASID, validated, and marks the BSP VMSA page VMSA', () => {
    const vm = guest(snpHost(), 'snp');
    expect(rmpOf(vm, PAGE)).toMatchObject({ assigned: true, asid: 5, gpa: PAGE, validated: true, vmsa: false });
    const v = readRmpEntry(vm.machine.mc, vm.machine.rmp!, vm.vcpus[0]!.vmsaHpa! / 4096);
    expect(v).toMatchObject({ assigned: true, asid: 5, vmsa: true, validated: true });
  });

  it('page state change over the MSR protocol flips assigned/shared in the RMP; PVALIDATE flips Validated', () => {
    const vm = guest(snpHost(), 'snp');
    const bsp = vm.vcpus[0]!;
    // private -> shared: rescind validation first, then ask the hypervisor.
    expect(bsp.pvalidate(PAGE, false)).toMatchObject({ ok: true, changed: true });
    expect(rmpOf(vm, PAGE)).toMatchObject({ assigned: true, validated: false });
    const toShared = msrExchange(bsp, pscRequest(PAGE / 4096, PSC_OP_SHARED));
    expect(ghcbMsrInfo(toShared.response)).toBe(0x015);
    expect(pscResponseError(toShared.response)).toBe(0);
    expect(rmpOf(vm, PAGE)).toMatchObject({ assigned: false, validated: false, asid: 0 });
    // shared -> private: hypervisor first, then PVALIDATE.
    const toPrivate = msrExchange(bsp, pscRequest(PAGE / 4096, PSC_OP_PRIVATE));
    expect(pscResponseError(toPrivate.response)).toBe(0);
    expect(rmpOf(vm, PAGE)).toMatchObject({ assigned: true, asid: 5, gpa: PAGE, validated: false });
    expect(bsp.pvalidate(PAGE, true)).toMatchObject({ ok: true, changed: true });
    expect(rmpOf(vm, PAGE)).toMatchObject({ assigned: true, validated: true });
    const ex = vm.trace.find('ghcb-msr').map((e) => [e.data?.['request'], e.data?.['response'], e.data?.['op'], e.data?.['error']]);
    expect(ex).toEqual([[0x014, 0x015, PSC_OP_SHARED, 0], [0x014, 0x015, PSC_OP_PRIVATE, 0]]);
  });

  it('a PSC for a GFN outside guest memory comes back with an error', () => {
    const vm = guest(snpHost(), 'snp');
    const r = msrExchange(vm.vcpus[0]!, pscRequest(0x10_0000, PSC_OP_SHARED));
    expect(ghcbMsrInfo(r.response)).toBe(0x015);
    expect(pscResponseError(r.response)).not.toBe(0);
  });

  it('a shared page read through a C=1 mapping is the fatal access: the hypervisor makes it private, unvalidated, and the guest takes #VC 0x404', () => {
    const vm = guest(snpHost(), 'snp');
    const bsp = vm.vcpus[0]!;
    bsp.pvalidate(PAGE, false);
    msrExchange(bsp, pscRequest(PAGE / 4096, PSC_OP_SHARED));
    expect(bsp.write(PAGE, Uint8Array.of(1, 2, 3), { encrypted: false })).toEqual({ ok: true });
    const r = bsp.read(PAGE, new Uint8Array(8), { encrypted: true });
    expect(r).toMatchObject({ ok: false, fault: 'vc', exitCode: VC_EXIT_PAGE_NOT_VALIDATED, gpa: PAGE });
    expect(vm.trace.find('npf').at(-1)!.data).toMatchObject({ gpa: PAGE, converted: 'private' });
    expect(rmpOf(vm, PAGE)).toMatchObject({ assigned: true, validated: false });
  });

  it('a private page read with C=1 is plaintext to the guest and ciphertext to the host', () => {
    const vm = guest(snpHost(), 'snp');
    const bsp = vm.vcpus[0]!;
    const secret = Uint8Array.from({ length: 64 }, (_, i) => i);
    expect(bsp.write(PAGE, secret, { encrypted: true })).toEqual({ ok: true });
    const back = new Uint8Array(64);
    bsp.read(PAGE, back, { encrypted: true });
    expect(back).toEqual(secret);
    expect(vm.hostRead(PAGE, 64)).not.toEqual(secret);
  });

  it('page state change through the GHCB: a descriptor of several entries in the shared buffer', () => {
    const vm = guest(snpHost(), 'snp');
    const bsp = vm.vcpus[0]!;
    shareAndRegisterGhcb(vm);
    for (let i = 0; i < 3; i++) bsp.pvalidate(PAGE + i * 4096, false);
    const desc = encodePscDescriptor([0, 1, 2].map((i) => ({ gfn: PAGE / 4096 + i, op: PSC_OP_SHARED, pageSize: 0 as const })));
    const r = ghcbExchange(bsp, BSP_GHCB, {
      exitCode: SVM_VMGEXIT_PSC, info1: 0n, info2: 0n, scratch: BigInt(BSP_GHCB + GHCB_OFF_SHARED_BUFFER), sharedBuffer: desc,
    });
    expect(r.info1).toBe(0n);
    expect(r.info2).toBe(0n);
    for (let i = 0; i < 3; i++) expect(rmpOf(vm, PAGE + i * 4096).assigned).toBe(false);
    // cur_entry advanced past end_entry.
    expect(new DataView(r.page.buffer).getUint16(GHCB_OFF_SHARED_BUFFER, true)).toBe(3);
  });

  it('an SNP GHCB exit through a GHCB that was not registered is not served', () => {
    const vm = guest(snpHost(), 'snp');
    const bsp = vm.vcpus[0]!;
    bsp.pvalidate(BSP_GHCB, false);
    msrExchange(bsp, pscRequest(BSP_GHCB / 4096, PSC_OP_SHARED));
    const r = ghcbExchange(bsp, BSP_GHCB, { exitCode: SVM_VMGEXIT_PSC, info1: 0n, info2: 0n });
    expect(r.result.kind).toBe('stopped');
    expect(vm.trace.find('ghcb-nae').at(-1)!.data).toMatchObject({ error: 'not-registered' });
  });
});

describe('SNP AP creation (NAE 0x80000013)', () => {
  const VMSA_GPA = 0x7_1000;

  function prepareVmsa(vm: SevGuestVm, entry: number, adjust: boolean): void {
    const bsp = vm.vcpus[0]!;
    expect(bsp.write(VMSA_GPA, encodeVmsa(startVmsaState(entry, SEV_FEATURE_SNP_ACTIVE)), { encrypted: true })).toEqual({ ok: true });
    if (adjust) expect(bsp.rmpadjustVmsa(VMSA_GPA, true).ok).toBe(true);
  }

  function create(vm: SevGuestVm, event: number, rax = SEV_FEATURE_SNP_ACTIVE) {
    return ghcbExchange(vm.vcpus[0]!, BSP_GHCB, { exitCode: SVM_VMGEXIT_AP_CREATION, info1: apCreationInfo1(1, 0, event), info2: BigInt(VMSA_GPA), rax });
  }

  it('CREATE starts the AP from the VMSA the guest prepared (CS base + RIP); DESTROY takes it away', () => {
    const vm = guest(snpHost(), 'snp');
    shareAndRegisterGhcb(vm);
    const ran: number[] = [];
    placeCode(vm, TRAMPOLINE, 'SNP trampoline', ran, (v) => v.hlt());
    prepareVmsa(vm, TRAMPOLINE, true);
    const r = create(vm, SVM_VMGEXIT_AP_CREATE);
    expect(r.info1).toBe(0n);
    vm.machine.clock.advance(2 * IPI_LATENCY_NS);
    expect(ran).toEqual([1]);
    expect(vm.vcpus[1]!.vmsaHpa).toBe(HOST_BASE + VMSA_GPA);
    const d = create(vm, SVM_VMGEXIT_AP_DESTROY);
    expect(d.info1).toBe(0n);
    expect(vm.vcpus[1]!.runState).toBe('no-vmsa');
    expect(vm.trace.find('vcpu-state', 'vm5/vcpu1').map((e) => e.data?.['to'])).toEqual(['running', 'halted', 'no-vmsa']);
  });

  it('without RMPADJUST marking the page VMSA, VMRUN of the new AP fails', () => {
    const vm = guest(snpHost(), 'snp');
    shareAndRegisterGhcb(vm);
    const ran: number[] = [];
    placeCode(vm, TRAMPOLINE, 'SNP trampoline', ran);
    prepareVmsa(vm, TRAMPOLINE, false);
    expect(create(vm, SVM_VMGEXIT_AP_CREATE).info1).toBe(0n);
    vm.machine.clock.advance(2 * IPI_LATENCY_NS);
    expect(ran).toEqual([]);
    expect(vm.vcpus[1]!.runState).toBe('stopped');
    expect(vm.trace.find('vmrun-failed')).toHaveLength(1);
  });

  it('SEV_FEATURES in RAX must match the VM; an SEV-ES guest has no AP creation', () => {
    const vm = guest(snpHost(), 'snp');
    shareAndRegisterGhcb(vm);
    prepareVmsa(vm, TRAMPOLINE, true);
    expect(create(vm, SVM_VMGEXIT_AP_CREATE, 0n).info1).toBe(BigInt(GHCB_RESULT_ERROR));
    const es = guest(hostMachine(), 'sev-es');
    const r = ghcbExchange(es.vcpus[0]!, BSP_GHCB, { exitCode: SVM_VMGEXIT_AP_CREATION, info1: apCreationInfo1(1, 0, SVM_VMGEXIT_AP_CREATE), info2: BigInt(VMSA_GPA), rax: 0n });
    expect([r.info1, r.info2]).toEqual([BigInt(GHCB_RESULT_ERROR), BigInt(GHCB_ERR_INVALID_EVENT)]);
  });
});
