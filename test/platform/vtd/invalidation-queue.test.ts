import { describe, it, expect } from 'vitest';
import { Rig, IQ, STATUS } from './rig.js';
import {
  REG_IQH, REG_IQT, REG_FSTS, REG_ICS, REG_IECTL, REG_IEDATA, REG_IEADDR, REG_GSTS, FSTS_IQE, ICS_IWC, ECTL_IP, ECTL_IM,
  GCMD_QIE, GSTS_QIES,
} from '../../../src/platform/vtd/registers.js';
import { invWait, invIecGlobal, descriptorBytes } from '../../../src/platform/vtd/invalidation-descriptor.js';

const status = (r: Rig): number => new DataView(r.bytes(STATUS, 4).buffer).getUint32(0, true);

describe('VT-d queued invalidation', () => {
  it('executes a wait descriptor after its virtual time and writes the status where software polls', () => {
    const r = new Rig();
    r.enableQi();
    expect(r.read32(REG_GSTS) & GSTS_QIES).toBe(GSTS_QIES);
    r.submit(invIecGlobal(), invWait(STATUS, 0x1));
    expect(r.read64(REG_IQT)).toBe(32n);
    expect(status(r)).toBe(0); // nothing ran yet: the unit needs time
    r.m.clock.advance(1000);
    expect(r.read64(REG_IQH)).toBe(16n);
    expect(status(r)).toBe(0);
    r.m.clock.advance(1000);
    expect(r.read64(REG_IQH)).toBe(32n);
    expect(status(r)).toBe(1);
    const w = r.m.trace.find('vtd-qi-wait');
    expect(w).toHaveLength(1);
    expect(w[0]!.data).toMatchObject({ statusAddr: STATUS, statusData: '0x1', addr: IQ + 16 });
    expect(r.m.trace.find('vtd-qi-desc').map((e) => e.data?.type)).toEqual(['interrupt-entry-cache', 'invalidation-wait']);
    expect(r.deviceWrites).toEqual([{ pa: STATUS, length: 4, name: 'dmar0' }]);
  });

  it('does nothing while QIE is clear, and resets IQH when queued invalidation is turned off', () => {
    const r = new Rig();
    r.enableQi();
    r.submit(invWait(STATUS, 7));
    r.settle();
    expect(status(r)).toBe(7);
    expect(r.read64(REG_IQH)).toBe(16n);
    r.command(GCMD_QIE, false);
    expect(r.read64(REG_IQH)).toBe(0n);
    r.write(IQ, descriptorBytes(invWait(STATUS, 9)));
    r.reg64(REG_IQT, 16n);
    r.settle();
    expect(status(r)).toBe(7); // queue disabled: not fetched
  });

  it('sets ICS.IWC on a wait with IF, and raises the invalidation event when IECTL is unmasked', () => {
    const r = new Rig({ fabric: true });
    const lapic = r.fabric!.lapic(0);
    r.enableQi();
    r.submit({ type: 'wait', statusWrite: false, interrupt: true, fence: false, statusData: 0, statusAddr: 0 });
    r.settle();
    expect(r.read32(REG_ICS)).toBe(ICS_IWC);
    expect(r.read32(REG_IECTL)).toBe((ECTL_IM | ECTL_IP) >>> 0); // masked at power-on: held
    r.reg32(REG_ICS, ICS_IWC);
    expect(r.read32(REG_ICS)).toBe(0);
    r.reg32(REG_IEDATA, 0x55);
    r.reg32(REG_IEADDR, 0xfee0_0000);
    r.reg32(REG_IECTL, 0);
    r.submit({ type: 'wait', statusWrite: false, interrupt: true, fence: false, statusData: 0, statusAddr: 0 });
    r.settle();
    expect(lapic.arrivals(0x55)).toBe(1);
  });

  it('stops on an unknown descriptor type with FSTS.IQE and IQH on it, and resumes when software clears IQE', () => {
    const r = new Rig();
    r.enableQi();
    const bad = new Uint8Array(16);
    bad[0] = 0xf; // type 15
    r.write(IQ, bad);
    r.write(IQ + 16, descriptorBytes(invWait(STATUS, 3)));
    r.reg64(REG_IQT, 32n);
    r.settle();
    expect(r.read32(REG_FSTS) & FSTS_IQE).toBe(FSTS_IQE);
    expect(r.read64(REG_IQH)).toBe(0n);
    expect(status(r)).toBe(0);
    expect(r.m.trace.find('vtd-qi-error')).toHaveLength(1);
    // Software replaces the bad descriptor and clears IQE.
    r.write(IQ, descriptorBytes(invIecGlobal()));
    r.reg32(REG_FSTS, FSTS_IQE);
    r.settle();
    expect(r.read32(REG_FSTS) & FSTS_IQE).toBe(0);
    expect(status(r)).toBe(3);
  });

  it('refuses scalable-mode descriptors on a legacy-only part, and takes 256-bit descriptors on a scalable one', () => {
    const legacy = new Rig();
    legacy.enableQi();
    legacy.submit({ type: 'pasid-cache', granularity: 3, did: 0, pasid: 0 });
    legacy.settle();
    expect(legacy.read32(REG_FSTS) & FSTS_IQE).toBe(FSTS_IQE);
    const sm = new Rig({ spec: { scalableMode: true } });
    sm.enableQi(true);
    sm.submit({ type: 'pasid-cache', granularity: 3, did: 0, pasid: 0 }, invWait(STATUS, 5));
    expect(sm.read64(REG_IQT)).toBe(64n);
    sm.settle();
    expect(sm.read64(REG_IQH)).toBe(64n);
    expect(status(sm)).toBe(5);
  });
});
