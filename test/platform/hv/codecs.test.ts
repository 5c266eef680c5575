import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { encodeVmsa, decodeVmsa, resetVmsaState, startVmsaState, vmsaEntryGpa, VMSA_OFF_RIP } from '../../../src/platform/hv/vmsa.js';
import {
  encodeGhcb, ghcbFieldValid, ghcbU64, encodePscDescriptor, decodePscEntry, apCreationInfo1,
  GHCB_OFF_SW_EXIT_CODE, GHCB_OFF_SW_EXIT_INFO_1, GHCB_OFF_SW_SCRATCH, GHCB_OFF_RAX, PSC_HEADER_BYTES,
} from '../../../src/platform/hv/ghcb-page.js';
import { pscRequest, decodePscRequest, cpuidRequest, decodeCpuidRequest, terminateRequest, decodeTerminate } from '../../../src/platform/hv/ghcb-msr.js';

describe('VMSA and GHCB encodings', () => {
  it('VMSA encode then decode is identity for RIP, RSP, GPRs and CS base', () => {
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.integer({ min: 0, max: 0xfffff }), (rip, rbx, base) => {
      const s = startVmsaState(base * 16);
      s.rip = rip;
      s.gprs.rbx = rbx;
      const d = decodeVmsa(encodeVmsa(s));
      expect(d).toEqual(s);
    }));
  });

  it('RIP sits at its offset; reset state enters at 0xFFFFFFF0, a start state at its GPA', () => {
    const b = encodeVmsa(startVmsaState(0x9000));
    expect(new DataView(b.buffer).getBigUint64(VMSA_OFF_RIP, true)).toBe(0n);
    expect(vmsaEntryGpa(resetVmsaState())).toBe(0xffff_fff0n);
    expect(vmsaEntryGpa(startVmsaState(0x9000))).toBe(0x9000n);
  });

  it('a GHCB marks exactly the fields it carries as valid', () => {
    const p = encodeGhcb({ exitCode: 0x8000_0005, info1: 1n, info2: 0n });
    expect(ghcbU64(p, GHCB_OFF_SW_EXIT_CODE)).toBe(0x8000_0005n);
    expect(ghcbFieldValid(p, GHCB_OFF_SW_EXIT_INFO_1)).toBe(true);
    expect(ghcbFieldValid(p, GHCB_OFF_SW_SCRATCH)).toBe(false);
    expect(ghcbFieldValid(p, GHCB_OFF_RAX)).toBe(false);
  });

  it('MSR request fields and PSC entries decode to what was encoded', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 40 - 1 }), fc.constantFrom(1, 2) as fc.Arbitrary<1 | 2>, (gfn, op) => {
      expect(decodePscRequest(pscRequest(gfn, op))).toEqual({ op, gfn });
      const d = encodePscDescriptor([{ gfn, op, pageSize: 1 }]);
      const e = decodePscEntry(new DataView(d.buffer).getBigUint64(PSC_HEADER_BYTES, true));
      expect(e).toMatchObject({ gfn, op, pageSize: 1, reserved: 0 });
    }));
    expect(decodeCpuidRequest(cpuidRequest(0x8000_001f, 3))).toEqual({ fn: 0x8000_001f, reg: 3 });
    expect(decodeTerminate(terminateRequest(1, 9))).toEqual({ set: 1, code: 9 });
    expect(apCreationInfo1(3, 0, 2)).toBe(0x3_0000_0002n);
  });
});
