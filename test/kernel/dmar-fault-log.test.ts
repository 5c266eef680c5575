// The DMAR fault lines each era prints, checked against the examples the
// reference quotes, and printk's rate limit.
import { describe, expect, it } from 'vitest';
import { faultRecordLines, faultStatusLine, RateLimit } from '../../src/kernel/drivers/intel-iommu/dmar-fault-log.js';
import type { DecodedFaultRecord } from '../../src/platform/vtd/fault-recording.js';

const rec = (over: Partial<DecodedFaultRecord>): DecodedFaultRecord => ({
  valid: true, sourceId: 0, reason: 1, address: 0, index: 0, read: true, pasid: undefined, ...over,
});

describe('DMAR fault report wording per era', () => {
  it('4.0: the device line and a separate reason line, reasons in decimal', () => {
    expect(faultStatusLine('v4.0', 0x102)).toBe('dmar: DRHD: handling fault status reg 102');
    expect(faultRecordLines('v4.0', rec({ sourceId: 0x0100, reason: 1, address: 0xfff80000 }))).toEqual([
      'dmar: DMAR:[DMA Read] Request device [01:00.0] fault addr fff80000',
      'DMAR:[fault reason 01] Present bit in root entry is clear',
    ]);
    expect(faultRecordLines('v4.0', rec({ reason: 0x22 }))).toEqual(['INTR-REMAP:[fault reason 34] Present field in the IRTE entry is clear']);
  });

  it('4.4: one line per record', () => {
    expect(faultStatusLine('v4.4', 2)).toBe('DMAR: DRHD: handling fault status reg 2');
    expect(faultRecordLines('v4.4', rec({ sourceId: 0x0200, reason: 6, address: 0xfffff000 }))).toEqual([
      'DMAR: [DMA Read] Request device [02:00.0] fault addr fffff000 [fault reason 06] PTE Read access is not set',
    ]);
  });

  it('current: NO_PASID or the PASID, hex numbers', () => {
    expect(faultRecordLines('pasid', rec({ sourceId: 0x80a0, reason: 0x39, address: 0xe81759000 }))).toEqual([
      'DMAR: [DMA Read NO_PASID] Request device [80:14.0] fault addr 0xe81759000 [fault reason 0x39] SM: Present bit in Root Entry is clear',
    ]);
    expect(faultRecordLines('pasid', rec({ sourceId: 0x18, reason: 5, address: 0x1000, read: false, pasid: 3 }))[0])
      .toBe('DMAR: [DMA Write PASID 0x3] Request device [00:03.0] fault addr 0x1000 [fault reason 0x05] PTE Write access is not set');
  });

  it('printk rate limit: 10 per 5 s, then silence until the interval passes', () => {
    const rl = new RateLimit();
    const allowed = Array.from({ length: 15 }, (_, i) => rl.allow(i * 1e6)).filter(Boolean).length;
    expect(allowed).toBe(10);
    expect(rl.suppressed).toBe(5);
    expect(rl.allow(5.1e9)).toBe(true);
  });
});
