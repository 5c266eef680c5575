import { describe, it, expect } from 'vitest';
import { Rig, ROOT, payload } from './rig.js';
import { encodeScalableRootEntry, rootEntryAddress, rootEntryBytes } from '../../../src/platform/vtd/root-table.js';
import { scalableContextEntryBytes, contextEntryAddress, EMPTY_SM_CONTEXT } from '../../../src/platform/vtd/context-entry.js';
import {
  encodePasidDirEntry, pasidEntryBytes, pasidDirEntryAddress, pasidEntryAddress, EMPTY_PASID_ENTRY, PGTT_SECOND_LEVEL,
  PGTT_PASS_THROUGH, PGTT_FIRST_LEVEL, type PasidEntry,
} from '../../../src/platform/vtd/pasid-table.js';
import { slLeaf } from '../../../src/platform/vtd/second-level-table.js';
import {
  FR_SM_ROOT_NOT_PRESENT, FR_SM_PASID_ENTRY_INVALID, FR_SM_SL_PERMISSION, FR_SM_PASID_DIR_NOT_PRESENT, faultReasonText,
} from '../../../src/platform/vtd/fault-reasons.js';
import { invWait } from '../../../src/platform/vtd/invalidation-descriptor.js';

const BUS = 0x80;
const LOW = '80:02.0'; // devfn 0x10: LCTP half
const HIGH = '80:14.0'; // devfn 0xa0: UCTP half
const LCT = 0x11_0000;
const UCT = 0x11_1000;
const PDIR = 0x15_0000;
const PTAB = 0x15_1000;
const RID_PASID = 0;
const SM_DID = 9;
const IOVA = 0x4000_1000;
const PA = 0x30_0000;
const PA2 = 0x31_0000;

function smRig(opts: { upper?: boolean; pasid?: Partial<PasidEntry> } = {}): { r: Rig; pt: number } {
  const r = new Rig({ spec: { scalableMode: true } });
  const pt = r.newTable();
  r.map(pt, IOVA, slLeaf(PA));
  r.write(rootEntryAddress(ROOT, BUS), rootEntryBytes(encodeScalableRootEntry({ lower: LCT, upper: opts.upper === false ? undefined : UCT })));
  const ctx = { ...EMPTY_SM_CONTEXT, present: true, pdts: 0, pasidDirectory: PDIR, ridPasid: RID_PASID };
  r.write(contextEntryAddress(LCT, 0x10, true), scalableContextEntryBytes(ctx));
  r.write(contextEntryAddress(UCT, 0xa0, true), scalableContextEntryBytes(ctx));
  r.putQword(pasidDirEntryAddress(PDIR, RID_PASID), encodePasidDirEntry({ present: true, fpd: false, pasidTable: PTAB }));
  r.write(pasidEntryAddress(PTAB, RID_PASID), pasidEntryBytes({
    ...EMPTY_PASID_ENTRY, present: true, pgtt: PGTT_SECOND_LEVEL, addressWidth: 1, slptptr: pt, domainId: SM_DID, ...opts.pasid,
  }));
  r.setRootTable(ROOT, true);
  r.enableTranslation();
  return { r, pt };
}

describe('VT-d scalable-mode translation (requests without PASID)', () => {
  it('walks root (LCTP/UCTP) -> scalable context -> PASID directory -> PASID entry -> second-level table', () => {
    const { r } = smRig();
    expect(r.unit.latchedRoot).toEqual({ addr: ROOT, scalable: true });
    expect(r.dma.write(LOW, IOVA + 4, payload(8, 0x21))).toEqual({ ok: true, pa: PA + 4 });
    expect(r.dma.write(HIGH, IOVA + 8, payload(8, 0x22))).toEqual({ ok: true, pa: PA + 8 });
    expect(r.bytes(PA + 4, 4)).toEqual(payload(4, 0x21));
    const ctx = r.m.trace.find('vtd-context-fetch');
    expect(ctx.map((e) => e.data?.contextEntry)).toEqual([LCT + 0x10 * 32, UCT + (0xa0 - 0x80) * 32]);
    expect(ctx[0]!.data).toMatchObject({ mode: 'scalable', ridPasid: RID_PASID });
    expect(r.m.trace.find('vtd-pasid-fetch')[0]!.data).toMatchObject({ pasid: RID_PASID, did: SM_DID, pgtt: PGTT_SECOND_LEVEL });
    expect(r.m.trace.find('vtd-iotlb-fill')[0]!.data).toMatchObject({ did: SM_DID });
  });

  it('faults 0x39 for a device in the upper half when the root entry has only an LCTP', () => {
    const { r } = smRig({ upper: false });
    expect(r.dma.write(LOW, IOVA, payload(8, 1)).ok).toBe(true);
    expect(r.dma.read(HIGH, 0xe81759000, new Uint8Array(8)).ok).toBe(false);
    expect(r.faultRecord(0)).toMatchObject({ valid: true, reason: FR_SM_ROOT_NOT_PRESENT, sourceId: 0x80a0, read: true, address: 0xe81759000 });
    expect(faultReasonText(FR_SM_ROOT_NOT_PRESENT)).toBe('SM: Present bit in Root Entry is clear');
  });

  it('keeps a cached PASID entry until a PASID-cache invalidation, and the IOTLB entry until a PASID-IOTLB one', () => {
    const { r, pt } = smRig();
    r.enableQi(true);
    expect(r.dma.write(LOW, IOVA, payload(8, 1)).ok).toBe(true);
    // The PASID entry moves to another domain; the page is remapped.
    const pt2 = r.newTable();
    r.map(pt2, IOVA, slLeaf(PA2));
    r.write(pasidEntryAddress(PTAB, RID_PASID), pasidEntryBytes({
      ...EMPTY_PASID_ENTRY, present: true, pgtt: PGTT_SECOND_LEVEL, addressWidth: 1, slptptr: pt2, domainId: SM_DID + 1,
    }));
    expect(r.dma.write(LOW, IOVA, payload(8, 2))).toMatchObject({ pa: PA });
    r.submit({ type: 'pasid-cache', granularity: 1, did: SM_DID, pasid: RID_PASID }, invWait(0x13_0000, 1));
    r.settle();
    expect(r.m.trace.find('vtd-pasid-cache-inval')[0]!.data).toMatchObject({ dropped: 1 });
    expect(r.dma.write(LOW, IOVA, payload(8, 3))).toMatchObject({ pa: PA2 });
    // Same domain as before, stale page: only the PASID-IOTLB flush helps.
    r.submit({ type: 'pasid-cache', granularity: 3, did: 0, pasid: 0 });
    r.settle();
    r.write(pasidEntryAddress(PTAB, RID_PASID), pasidEntryBytes({
      ...EMPTY_PASID_ENTRY, present: true, pgtt: PGTT_SECOND_LEVEL, addressWidth: 1, slptptr: pt, domainId: SM_DID + 1,
    }));
    expect(r.dma.write(LOW, IOVA, payload(8, 4))).toMatchObject({ pa: PA2 });
    r.submit({ type: 'pasid-iotlb', pageSelective: true, did: SM_DID + 1, pasid: RID_PASID, addr: IOVA, am: 0 });
    r.settle();
    expect(r.dma.write(LOW, IOVA, payload(8, 5))).toMatchObject({ pa: PA });
  });

  it('passes PGTT 4 through, refuses first-level PGTT (not advertised) with 0x5b, and reports SL permission as 0x79', () => {
    expect(smRig({ pasid: { pgtt: PGTT_PASS_THROUGH } }).r.dma.write(LOW, 0x9000, payload(4, 1))).toEqual({ ok: true, pa: 0x9000 });
    const fl = smRig({ pasid: { pgtt: PGTT_FIRST_LEVEL } }).r;
    expect(fl.dma.write(LOW, IOVA, payload(4, 1)).ok).toBe(false);
    expect(fl.faultRecord(0)).toMatchObject({ reason: FR_SM_PASID_ENTRY_INVALID });
    const { r } = smRig();
    expect(r.dma.write(LOW, IOVA + 0x1000, payload(4, 1)).ok).toBe(false); // unmapped page
    expect(r.faultRecord(0)).toMatchObject({ reason: FR_SM_SL_PERMISSION, address: IOVA + 0x1000 });
  });

  it('faults 0x51 when the PASID directory entry is absent', () => {
    const { r } = smRig();
    r.putQword(pasidDirEntryAddress(PDIR, RID_PASID), 0n);
    r.unit.dmaRemapper.pasids.invalidate(undefined);
    expect(r.dma.write(LOW, IOVA, payload(4, 1)).ok).toBe(false);
    expect(r.faultRecord(0)).toMatchObject({ reason: FR_SM_PASID_DIR_NOT_PRESENT });
  });
});
