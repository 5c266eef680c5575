import { describe, it, expect } from 'vitest';
import { Rig, ROOT, CTX, CTX2, NIC_BDF, NIC_SID, DID, payload } from './rig.js';
import { slLeaf } from '../../../src/platform/vtd/second-level-table.js';
import {
  REG_CCMD, CC_GLOBAL, CC_DOMAIN, CC_DEVICE, CCMD_ICC, CCMD_CAIG_SHIFT, ccmdValue, iotlbRegValue, ivaValue,
  IOTLB_DOMAIN, IOTLB_PAGE, IOTLB_GLOBAL, IOTLB_IVT, IOTLB_IAIG_SHIFT,
} from '../../../src/platform/vtd/registers.js';
import { invContextGlobal, invIotlbGlobal, invWait } from '../../../src/platform/vtd/invalidation-descriptor.js';

const IOVA = 0x4000_1000;
const PA = 0x30_0000;
const PA2 = 0x31_0000;
const PA3 = 0x32_0000;

/** The NIC translating IOVA -> PA with its context in CTX; a second table (CTX2) maps IOVA -> PA3 in another domain. */
function rig(): { r: Rig; pt: number } {
  const r = new Rig();
  const pt = r.newTable();
  const pt2 = r.newTable();
  r.nicContext(pt);
  r.map(pt, IOVA, slLeaf(PA));
  r.map(pt2, IOVA, slLeaf(PA3));
  r.setContext(0, { present: true, slptptr: pt2, addressWidth: 1, domainId: DID + 1 }, CTX2);
  r.setRootTable(ROOT);
  r.enableTranslation();
  return { r, pt };
}

const landed = (r: Rig, iova = IOVA): number | undefined => {
  const res = r.dma.write(NIC_BDF, iova, payload(8, 0xee));
  return res.ok ? res.pa : undefined;
};

describe('VT-d context cache', () => {
  it('keeps using a cached context entry after the root entry changes, until a register-based invalidation', () => {
    const { r } = rig();
    expect(landed(r)).toBe(PA);
    // The driver moves bus 3 to a new context table (another domain) without flushing.
    r.setRootEntry(3, CTX2);
    expect(landed(r)).toBe(PA);
    // Domain-selective invalidation of some other domain changes nothing.
    r.reg64(REG_CCMD, ccmdValue(CC_DOMAIN, { did: DID + 5 }));
    expect(landed(r)).toBe(PA);
    // Device-selective for another device neither.
    r.reg64(REG_CCMD, ccmdValue(CC_DEVICE, { sid: 0x0400, did: DID }));
    expect(landed(r)).toBe(PA);
    // Device-selective for 03:00.0: the new context entry (domain DID+1) is walked.
    r.reg64(REG_CCMD, ccmdValue(CC_DEVICE, { sid: NIC_SID, did: DID }));
    const ccmd = r.read64(REG_CCMD);
    expect(ccmd & CCMD_ICC).toBe(0n); // done
    expect(Number((ccmd >> CCMD_CAIG_SHIFT) & 3n)).toBe(CC_DEVICE);
    expect(landed(r)).toBe(PA3);
    expect(r.m.trace.find('vtd-cc-inval').map((e) => e.data?.dropped)).toEqual([0, 0, 1]);
    expect(r.m.trace.find('vtd-context-fetch').map((e) => e.data?.did)).toEqual([DID, DID + 1]);
  });

  it('drops entries of a domain on domain-selective invalidation and all on global', () => {
    const { r } = rig();
    expect(landed(r)).toBe(PA);
    r.setRootEntry(3, CTX2);
    r.reg64(REG_CCMD, ccmdValue(CC_DOMAIN, { did: DID }));
    expect(landed(r)).toBe(PA3);
    r.setRootEntry(3, CTX);
    r.reg64(REG_CCMD, ccmdValue(CC_GLOBAL));
    expect(landed(r)).toBe(PA); // the IOTLB entry of domain DID is still there
  });

  it('matches device-selective invalidation under the function mask', () => {
    const { r } = rig();
    expect(landed(r)).toBe(PA);
    r.setRootEntry(3, CTX2);
    r.reg64(REG_CCMD, ccmdValue(CC_DEVICE, { sid: NIC_SID | 7, fm: 3 })); // 03:00.7 with function bits ignored
    expect(landed(r)).toBe(PA3);
  });
});

describe('VT-d IOTLB', () => {
  it('keeps a stale translation until a register-based IOTLB invalidation covers it', () => {
    const { r, pt } = rig();
    const iotlb = r.unit.iotlbRegOffset + 8;
    const iva = r.unit.iotlbRegOffset;
    expect(landed(r)).toBe(PA);
    r.putQword(r.leafAddress(pt, IOVA), slLeaf(PA2)); // remapped, not flushed
    expect(landed(r)).toBe(PA);
    expect(r.bytes(PA2, 8)).toEqual(payload(8, 0));
    // Another domain, and a page-selective flush of another page: no effect.
    r.reg64(iotlb, iotlbRegValue(IOTLB_DOMAIN, DID + 1));
    r.reg64(iva, ivaValue(IOVA + 0x1000));
    r.reg64(iotlb, iotlbRegValue(IOTLB_PAGE, DID));
    expect(landed(r)).toBe(PA);
    // Page-selective for this page.
    r.reg64(iva, ivaValue(IOVA));
    r.reg64(iotlb, iotlbRegValue(IOTLB_PAGE, DID));
    const v = r.read64(iotlb);
    expect(v & IOTLB_IVT).toBe(0n);
    expect(Number((v >> IOTLB_IAIG_SHIFT) & 3n)).toBe(IOTLB_PAGE);
    expect(landed(r)).toBe(PA2);
    expect(r.m.trace.find('vtd-iotlb-inval').map((e) => e.data?.dropped)).toEqual([0, 0, 1]);
  });

  it('invalidates 2^AM pages around the address, and everything on global', () => {
    const { r, pt } = rig();
    const iotlb = r.unit.iotlbRegOffset + 8;
    expect(landed(r)).toBe(PA);
    r.putQword(r.leafAddress(pt, IOVA), slLeaf(PA2));
    r.reg64(r.unit.iotlbRegOffset, ivaValue(IOVA + 0x2000, 2)); // 4 pages aligned down: 0x4000_0000..0x4000_4000
    r.reg64(iotlb, iotlbRegValue(IOTLB_PAGE, DID));
    expect(landed(r)).toBe(PA2);
    r.putQword(r.leafAddress(pt, IOVA), slLeaf(PA));
    r.reg64(iotlb, iotlbRegValue(IOTLB_GLOBAL));
    expect(landed(r)).toBe(PA);
  });

  it('keeps stale entries until queued invalidation runs, and ignores register invalidation while QI is on', () => {
    const { r, pt } = rig();
    r.enableQi();
    expect(landed(r)).toBe(PA);
    r.putQword(r.leafAddress(pt, IOVA), slLeaf(PA2));
    r.setRootEntry(3, CTX2);
    // Register-based requests are not serviced with QI on: the request bits stay set.
    r.reg64(REG_CCMD, ccmdValue(CC_GLOBAL));
    r.reg64(r.unit.iotlbRegOffset + 8, iotlbRegValue(IOTLB_GLOBAL));
    expect(r.read64(REG_CCMD) & CCMD_ICC).toBe(CCMD_ICC);
    expect(r.read64(r.unit.iotlbRegOffset + 8) & IOTLB_IVT).toBe(IOTLB_IVT);
    expect(r.m.trace.find('vtd-reg-inval-ignored')).toHaveLength(2);
    expect(landed(r)).toBe(PA);
    // Queued: IOTLB only first. Submitted but not yet executed: still stale.
    r.submit(invIotlbGlobal());
    expect(landed(r)).toBe(PA);
    r.settle();
    expect(landed(r)).toBe(PA2); // context still cached (domain DID), page re-walked
    r.submit(invContextGlobal(), invIotlbGlobal(), invWait(0x13_0000, 1));
    r.settle();
    expect(landed(r)).toBe(PA3);
  });
});
