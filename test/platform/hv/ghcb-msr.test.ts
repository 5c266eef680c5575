import { describe, it, expect } from 'vitest';
import {
  sevInfoRequest, cpuidRequest, registerGhcbRequest, preferredGhcbRequest, hvFeaturesRequest, apResetHoldRequest, terminateRequest,
  decodeSevInfo, ghcbMsrInfo, ghcbMsrData, GHCB_MSR_GFN_NONE,
} from '../../../src/platform/hv/ghcb-msr.js';
import { hostMachine, snpHost, guest, msrExchange } from './rig.js';

describe('GHCB MSR protocol: requests and their response codes', () => {
  it('SEV_INFO 0x002 answers 0x001 with max/min protocol and the C-bit in their fields', () => {
    const vm = guest(hostMachine(), 'sev-es');
    const { result, response } = msrExchange(vm.vcpus[0]!, sevInfoRequest());
    expect(result).toEqual({ kind: 'continue' });
    // [63:48] max 2, [47:32] min 1, [31:24] C-bit 47, [11:0] 0x001.
    expect(response).toBe(0x0002_0001_2f00_0001n);
    expect(decodeSevInfo(response)).toEqual({ code: 1, max: 2, min: 1, cbit: 47 });
    const ev = vm.trace.find('ghcb-msr', 'vm5/vcpu0');
    expect(ev).toHaveLength(1);
    expect(ev[0]!.data).toMatchObject({ request: 0x002, response: 0x001, min: 1, max: 2, cbit: 47 });
  });

  it('CPUID 0x004 answers 0x005 with the requested register in bits 63:32 (0x8000001F EAX shows SEV and SEV-ES)', () => {
    const vm = guest(hostMachine(), 'sev-es');
    const { response } = msrExchange(vm.vcpus[0]!, cpuidRequest(0x8000_001f, 0));
    expect(ghcbMsrInfo(response)).toBe(0x005);
    expect(Number(response >> 32n)).toBe(0b1010); // SEV (bit 1) | SEV-ES (bit 3), no SNP (bit 4)
    const ebx = msrExchange(vm.vcpus[0]!, cpuidRequest(0x8000_001f, 1)).response;
    expect(Number(ebx >> 32n) & 0x3f).toBe(47);
    const leaf1 = msrExchange(vm.vcpus[0]!, cpuidRequest(1, 2)).response;
    expect((Number(leaf1 >> 32n) >>> 31) & 1).toBe(1); // the hypervisor bit
    expect(vm.trace.find('ghcb-msr').map((e) => [e.data?.['request'], e.data?.['response']])).toEqual([[4, 5], [4, 5], [4, 5]]);
  });

  it('register GHCB GPA 0x012 echoes the GFN in 0x013, refuses a GFN outside guest memory; preferred GPA 0x011 says none', () => {
    const vm = guest(hostMachine(), 'sev-es');
    const bsp = vm.vcpus[0]!;
    const ok = msrExchange(bsp, registerGhcbRequest(0x1d0)).response;
    expect(ghcbMsrInfo(ok)).toBe(0x013);
    expect(ghcbMsrData(ok)).toBe(0x1d0n);
    expect(bsp.registeredGhcbGpa).toBe(0x1d_0000);
    const refused = msrExchange(bsp, registerGhcbRequest(0x10_0000)).response;
    expect(ghcbMsrInfo(refused)).toBe(0x013);
    expect(ghcbMsrData(refused)).toBe(GHCB_MSR_GFN_NONE);
    const pref = msrExchange(bsp, preferredGhcbRequest()).response;
    expect(pref).toBe((GHCB_MSR_GFN_NONE << 12n) | 0x011n);
  });

  it('hypervisor features 0x080 -> 0x081: SNP and AP creation for an SNP guest, nothing for SEV-ES', () => {
    const snp = guest(snpHost(), 'snp');
    expect(msrExchange(snp.vcpus[0]!, hvFeaturesRequest()).response).toBe((3n << 12n) | 0x081n);
    const es = guest(hostMachine(), 'sev-es');
    expect(msrExchange(es.vcpus[0]!, hvFeaturesRequest()).response).toBe(0x081n);
  });

  it('termination 0x100 records reason set and code, stops every vCPU, and has no response', () => {
    const vm = guest(hostMachine(), 'sev-es');
    const { result, response } = msrExchange(vm.vcpus[0]!, terminateRequest(1, 2));
    expect(result).toEqual({ kind: 'stopped', detail: 'VM terminated' });
    expect(response).toBe(0x0002_1100n); // the request is left in the MSR
    expect(vm.termination).toEqual({ set: 1, code: 2, vcpu: 0, via: 'GHCB MSR protocol' });
    expect(vm.vcpus.map((v) => v.runState)).toEqual(['stopped', 'stopped']);
    const t = vm.trace.find('vm-terminated');
    expect(t).toHaveLength(1);
    expect(t[0]!.data).toMatchObject({ set: 1, code: 2 });
    expect(vm.trace.find('ghcb-msr')[0]!.data).toMatchObject({ request: 0x100, set: 1, code: 2 });
    expect(vm.trace.find('ghcb-msr')[0]!.data).not.toHaveProperty('response');
  });

  it('VMGEXIT is #UD in a plain SEV guest (no GHCB protocol without SEV-ES)', () => {
    const vm = guest(hostMachine(), 'sev');
    expect(msrExchange(vm.vcpus[0]!, sevInfoRequest()).result.kind).toBe('invalid-opcode');
    expect(vm.trace.find('ghcb-msr')).toHaveLength(0);
  });
});

describe('GHCB protocol version negotiation', () => {
  it('a version-1 hypervisor reports max 1; the guest takes min(hv max, its max)', () => {
    const v1 = guest(hostMachine(), 'sev-es', { ghcbVersions: { min: 1, max: 1 } });
    const info = decodeSevInfo(msrExchange(v1.vcpus[0]!, sevInfoRequest()).response);
    expect(info).toMatchObject({ code: 1, min: 1, max: 1 });
    expect(Math.min(info.max, 2)).toBe(1);
    const v2 = guest(hostMachine(), 'sev-es');
    expect(decodeSevInfo(msrExchange(v2.vcpus[0]!, sevInfoRequest()).response).max).toBe(2);
  });

  it('the MSR AP reset hold is a version-2 request: under version 1 it is not answered and the vCPU stops', () => {
    const v1 = guest(hostMachine(), 'sev-es', { ghcbVersions: { min: 1, max: 1 } });
    const bsp = v1.vcpus[0]!;
    const r = msrExchange(bsp, apResetHoldRequest());
    expect(r.result.kind).toBe('stopped');
    expect(r.response).toBe(0x006n); // no 0x007 ever came back
    expect(bsp.runState).toBe('stopped');
    expect(v1.trace.find('ghcb-msr')[0]!.data).toMatchObject({ request: 0x006, supported: false });
  });

  it('under version 2 the same request parks the vCPU in the reset hold', () => {
    const vm = guest(hostMachine(), 'sev-es');
    const bsp = vm.vcpus[0]!;
    bsp.cpu.wrmsr(0xc001_0130, apResetHoldRequest());
    expect(bsp.vmgexit({ resumeAt: 0x1000 })).toEqual({ kind: 'held' });
    expect(bsp.runState).toBe('reset-hold');
    expect(vm.trace.find('ghcb-msr')[0]!.data).toMatchObject({ request: 0x006, held: true });
  });

  it('SNP refuses to launch with only version 1 on offer', () => {
    expect(() => guest(snpHost(), 'snp', { ghcbVersions: { min: 1, max: 1 } })).toThrow(/SNP needs GHCB protocol version 2/);
  });
});
