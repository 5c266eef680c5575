import { describe, it, expect } from 'vitest';
import { startApsIntoResetHold } from '../../../src/platform/hv/guest-firmware.js';
import { IPI_LATENCY_NS } from '../../../src/platform/hv/sev-guest-vm.js';
import { SVM_VMGEXIT_AP_JUMP_TABLE, SVM_VMGEXIT_AP_HLT_LOOP, GHCB_RESULT_ERROR, GHCB_ERR_INVALID_INPUT } from '../../../src/platform/hv/ghcb-page.js';
import { hostMachine, guest, placeCode, writeResetVector, ghcbExchange, JUMP_TABLE, TRAMPOLINE, BSP_GHCB } from './rig.js';

function wake(vm: ReturnType<typeof guest>, apicId = 1, vector = 0x09): void {
  const bsp = vm.vcpus[0]!;
  bsp.sendIpi(apicId, 'init');
  bsp.sendIpi(apicId, 'sipi', vector);
  vm.machine.clock.advance(4 * IPI_LATENCY_NS);
}

describe('AP reset hold and the AP jump table (SEV-ES)', () => {
  it('the firmware parks each AP with MSR 0x006 (version 2); it stays parked until a SIPI', () => {
    const vm = guest(hostMachine(), 'sev-es', { firmware: true });
    startApsIntoResetHold(vm);
    const ap = vm.vcpus[1]!;
    expect(ap.runState).toBe('reset-hold');
    expect(ap.hold).toEqual({ via: 'msr' });
    const msr = vm.trace.find('ghcb-msr', ap.source).map((e) => e.data?.['request']);
    expect(msr).toEqual([0x002, 0x006]); // SEV_INFO first, then the hold
    // An INIT alone does nothing to a held AP.
    vm.vcpus[0]!.sendIpi(1, 'init');
    vm.machine.clock.advance(4 * IPI_LATENCY_NS);
    expect(ap.runState).toBe('reset-hold');
  });

  it('a SIPI through the hypervisor answers 0x007 with a non-zero result and the AP starts at the reset vector read from the jump table', () => {
    const vm = guest(hostMachine(), 'sev-es', { firmware: true });
    startApsIntoResetHold(vm);
    const ran: number[] = [];
    placeCode(vm, TRAMPOLINE, 'kernel trampoline', ran, (v) => v.hlt());
    // IP 0x0000, CS 0x0900: real-mode address 0x9000.
    writeResetVector(vm.vcpus[0]!, 0x0000, 0x0900);
    wake(vm);
    expect(ran).toEqual([1]);
    const ap = vm.vcpus[1]!;
    const resp = vm.trace.find('ghcb-msr', ap.source).at(-1)!;
    expect(resp.data).toMatchObject({ request: 0x006, response: 0x007, result: 1 });
    const vec = vm.trace.find('ap-jump-table-vector', ap.source);
    expect(vec).toHaveLength(1);
    expect(vec[0]!.data).toMatchObject({ table: JUMP_TABLE, bytes: '00 00 00 09', ip: 0, cs: 0x900, start: TRAMPOLINE });
    const jump = vm.trace.find('jump', ap.source).at(-1)!;
    expect(jump.data).toMatchObject({ gpa: TRAMPOLINE });
    // The causal order: hold answered, vector read, jump taken.
    expect(vm.trace.events.indexOf(resp)).toBeLessThan(vm.trace.events.indexOf(vec[0]!));
    expect(vm.trace.events.indexOf(vec[0]!)).toBeLessThan(vm.trace.events.indexOf(jump));
  });

  it('the AP goes where the jump table bytes say, not where the SIPI vector points', () => {
    const vm = guest(hostMachine(), 'sev-es', { firmware: true });
    startApsIntoResetHold(vm);
    const atA: number[] = [];
    const atB: number[] = [];
    placeCode(vm, 0x9000, 'A', atA);
    placeCode(vm, 0xa100, 'B', atB);
    writeResetVector(vm.vcpus[0]!, 0x0100, 0x0a00); // 0xa000 + 0x100
    wake(vm, 1, 0x09);
    expect(atA).toEqual([]);
    expect(atB).toEqual([1]);
  });

  it('a wake without a SIPI (result 0) sends the AP back into the hold', () => {
    const vm = guest(hostMachine(), 'sev-es', { firmware: true });
    startApsIntoResetHold(vm);
    const ap = vm.vcpus[1]!;
    vm.spuriousWake(ap);
    expect(ap.runState).toBe('reset-hold');
    const ex = vm.trace.find('ghcb-msr', ap.source).map((e) => [e.data?.['request'], e.data?.['response'] ?? null, e.data?.['result'] ?? null]);
    expect(ex).toEqual([[0x002, 0x001, null], [0x006, null, null], [0x006, 0x007, 0], [0x006, null, null]]);
    expect(vm.trace.find('ap-jump-table-vector')).toHaveLength(0);
  });

  it('with protocol version 1 the firmware holds through the GHCB (NAE 0x80000004); the SIPI sets SW_EXITINFO2', () => {
    const vm = guest(hostMachine(), 'sev-es', { firmware: true, ghcbVersions: { min: 1, max: 1 } });
    startApsIntoResetHold(vm);
    const ap = vm.vcpus[1]!;
    expect(ap.hold).toMatchObject({ via: 'ghcb' });
    const ran: number[] = [];
    placeCode(vm, TRAMPOLINE, 'kernel trampoline', ran);
    writeResetVector(vm.vcpus[0]!, 0, 0x0900);
    wake(vm);
    expect(ran).toEqual([1]);
    const nae = vm.trace.find('ghcb-nae', ap.source).filter((e) => e.data?.['exitCode'] === SVM_VMGEXIT_AP_HLT_LOOP);
    expect(nae.map((e) => e.data?.['result'] ?? 'held')).toEqual(['held', 1]);
  });

  it('code the new kernel overwrote is not there to resume: an AP parked in kernel memory triple-faults', () => {
    const vm = guest(hostMachine(), 'sev-es');
    const ap = vm.vcpus[1]!;
    const ran: number[] = [];
    // Bring the AP up from its launch VMSA... it has no firmware here, so start it by hand as a kernel AP.
    placeCode(vm, 0x20_000, 'old kernel park loop', ran);
    ap.setRunState('running');
    ap.cpu.wrmsr(0xc001_0130, 0x006n);
    expect(ap.vmgexit({ resumeAt: 0x20_000 }).kind).toBe('held');
    // The next kernel reuses that memory.
    vm.vcpus[0]!.write(0x20_000, new Uint8Array(32).fill(0xcc), { encrypted: true });
    wake(vm);
    expect(ran).toEqual([]);
    expect(ap.runState).toBe('stopped');
    expect(vm.trace.find('triple-fault', ap.source)).toHaveLength(1);
  });
});

describe('AP jump table NAE event 0x80000005', () => {
  it('SET stores the GPA, GET returns it, any other SW_EXITINFO1 is an invalid-input error', () => {
    const vm = guest(hostMachine(), 'sev-es');
    const bsp = vm.vcpus[0]!;
    const set = ghcbExchange(bsp, BSP_GHCB, { exitCode: SVM_VMGEXIT_AP_JUMP_TABLE, info1: 0n, info2: 0x1f_1000n });
    expect(set.result).toEqual({ kind: 'continue' });
    expect(set.info1).toBe(0n);
    expect(vm.apJumpTableGpa).toBe(0x1f_1000n);
    const get = ghcbExchange(bsp, BSP_GHCB, { exitCode: SVM_VMGEXIT_AP_JUMP_TABLE, info1: 1n, info2: 0n });
    expect(get.info1).toBe(0n);
    expect(get.info2).toBe(0x1f_1000n);
    const bad = ghcbExchange(bsp, BSP_GHCB, { exitCode: SVM_VMGEXIT_AP_JUMP_TABLE, info1: 7n, info2: 0n });
    expect(bad.info1).toBe(BigInt(GHCB_RESULT_ERROR));
    expect(bad.info2).toBe(BigInt(GHCB_ERR_INVALID_INPUT));
    expect(vm.trace.find('ghcb-nae').map((e) => e.data?.['op'] ?? e.data?.['error'])).toEqual(['set', 'get', GHCB_ERR_INVALID_INPUT]);
  });

  it('a GHCB the guest wrote with the C-bit set reads as ciphertext to the hypervisor: the exit is not understood', () => {
    const vm = guest(hostMachine(), 'sev-es');
    const bsp = vm.vcpus[0]!;
    const page = new Uint8Array(4096);
    page.set([5, 0, 0, 0x80], 0x390);
    bsp.write(BSP_GHCB, page, { encrypted: true });
    bsp.cpu.wrmsr(0xc001_0130, BigInt(BSP_GHCB));
    bsp.vmgexit();
    expect(vm.apJumpTableGpa).toBe(0n);
    expect(vm.trace.find('ghcb-nae')[0]!.data?.['exitCode']).not.toBe(SVM_VMGEXIT_AP_JUMP_TABLE);
  });
});
