import { describe, it, expect } from 'vitest';
import { Rig, DEVID, DOMAIN, CBIT, HOST, EVENT_LOG, MiB } from './rig.js';
import { invalidateAllPages } from '../../../src/platform/amd-iommu/command-buffer.js';
import { EV_IO_PAGE_FAULT, EV_ILLEGAL_DEV_TABLE_ENTRY, EV_RMP_PAGE_FAULT, EVF_PE, EVF_PR, EVF_RW } from '../../../src/platform/amd-iommu/event-log.js';
import { REG_EVENT_LOG_TAIL, REG_STATUS, STATUS_EVENT_LOG_INT } from '../../../src/platform/amd-iommu/registers.js';
import { snpMachine, enableSnp } from '../snp/helpers.js';
import { writeRmpEntry, EMPTY_RMP_ENTRY } from '../../../src/platform/snp/rmp.js';

const IOVA = 0x4000_1000; // 1 GiB + 4 KiB: level-3 index 1, level-2 index 0, level-1 index 1
const PA = 0x30_0000;
const PA2 = 0x31_0000;
const payload = (n: number, v: number): Uint8Array => new Uint8Array(n).fill(v);

function translatingRig(opts: { memEncrypt?: boolean } = {}): { r: Rig; root: number } {
  const r = new Rig(opts);
  const root = r.newTable();
  r.translatingDte(root, 3);
  r.map(root, IOVA, Rig.leaf(PA));
  r.enable();
  return { r, root };
}

describe('AMD IOMMU DMA translation', () => {
  it('passes DMA through untranslated while IommuEn is clear', () => {
    const r = new Rig();
    const res = r.dma.write('nic0', 0x5000, payload(64, 0x11));
    expect(res).toEqual({ ok: true, pa: 0x5000 });
    expect(r.bytes(0x5000, 64)).toEqual(payload(64, 0x11));
    expect(r.iommu.translations).toBe(0);
  });

  it('translates a write through a 3-level table to the mapped page', () => {
    const { r } = translatingRig();
    const res = r.dma.write('nic0', IOVA + 0x80, payload(256, 0xab));
    expect(res).toEqual({ ok: true, pa: PA + 0x80 });
    expect(r.bytes(PA + 0x80, 256)).toEqual(payload(256, 0xab));
    expect(r.deviceWrites).toEqual([{ pa: PA + 0x80, length: 256, name: 'nic0' }]); // and nowhere else
    const dte = r.m.trace.find('iommu-dte-fetch')[0]!;
    expect(dte.data).toMatchObject({ devid: DEVID, mode: 3, domainId: DOMAIN });
    expect(r.m.trace.find('iommu-iotlb-fill')[0]!.data).toMatchObject({ iova: IOVA, page: PA, domainId: DOMAIN });
    // Reads come back through the same mapping.
    const dst = new Uint8Array(16);
    expect(r.dma.read('nic0', IOVA + 0x80, dst)).toEqual({ ok: true, pa: PA + 0x80 });
    expect(dst).toEqual(payload(16, 0xab));
  });

  it('splits a transfer across pages and maps each separately', () => {
    const { r, root } = translatingRig();
    r.map(root, IOVA + 0x1000, Rig.leaf(PA2));
    expect(r.dma.write('nic0', IOVA + 0xff0, payload(32, 0x5c)).ok).toBe(true);
    expect(r.bytes(PA + 0xff0, 16)).toEqual(payload(16, 0x5c));
    expect(r.bytes(PA2, 16)).toEqual(payload(16, 0x5c));
  });

  it('honours the C-bit in the leaf: the page is written with the host key', () => {
    const r = new Rig({ memEncrypt: true });
    const root = r.newTable();
    r.translatingDte(root, 3);
    r.map(root, IOVA, Rig.leaf(PA + 2 ** CBIT));
    r.enable();
    expect(r.dma.write('nic0', IOVA, payload(32, 0x42))).toEqual({ ok: true, pa: PA });
    expect(r.bytes(PA, 32, Rig.hostKey)).toEqual(payload(32, 0x42));
    expect(r.bytes(PA, 32)).not.toEqual(payload(32, 0x42)); // DRAM holds ciphertext
  });

  it('keeps a stale translation in the IOTLB until INVALIDATE_IOMMU_PAGES', () => {
    const { r, root } = translatingRig();
    expect(r.dma.write('nic0', IOVA, payload(8, 1)).ok).toBe(true);
    // The driver remaps the page but does not flush yet.
    r.putQword(r.leafAddress(root, IOVA), Rig.leaf(PA2));
    expect(r.dma.write('nic0', IOVA, payload(8, 2))).toEqual({ ok: true, pa: PA });
    expect(r.bytes(PA, 8)).toEqual(payload(8, 2));
    expect(r.bytes(PA2, 8)).toEqual(payload(8, 0));
    // A flush of another domain changes nothing.
    r.submit(invalidateAllPages(DOMAIN + 1));
    r.settle();
    expect(r.dma.write('nic0', IOVA, payload(8, 3))).toEqual({ ok: true, pa: PA });
    r.submit({ op: 'invalidate-iommu-pages', domainId: DOMAIN, pasid: 0, address: BigInt(IOVA), size: false, pde: false, guest: false });
    r.settle();
    expect(r.dma.write('nic0', IOVA, payload(8, 4))).toEqual({ ok: true, pa: PA2 });
    expect(r.bytes(PA2, 8)).toEqual(payload(8, 4));
    const inv = r.m.trace.find('iommu-cmd').filter((e) => e.data?.['op'] === 'INVALIDATE_IOMMU_PAGES');
    expect(inv.map((e) => e.data?.['dropped'])).toEqual([0, 1]);
  });

  it('keeps a stale DTE until INVALIDATE_DEVTAB_ENTRY', () => {
    const { r } = translatingRig();
    expect(r.dma.write('nic0', IOVA, payload(8, 1)).ok).toBe(true);
    r.setDte(DEVID, { valid: true, translationValid: true, mode: 0, ir: false, iw: false, domainId: DOMAIN });
    expect(r.dma.write('nic0', IOVA, payload(8, 2))).toEqual({ ok: true, pa: PA });
    r.submit({ op: 'invalidate-devtab-entry', devid: DEVID });
    r.settle();
    // Mode 0 with IW clear: the write is refused now.
    expect(r.dma.write('nic0', IOVA, payload(8, 3))).toMatchObject({ ok: false, fault: 'io-page-fault' });
    expect(r.m.trace.find('iommu-dte-fetch')).toHaveLength(2);
  });

  it('aborts a DMA to an unmapped IOVA and logs IO_PAGE_FAULT in the event log in memory', () => {
    const { r } = translatingRig();
    const bad = IOVA + 0x20_0000;
    const res = r.dma.write('nic0', bad, payload(64, 0xee));
    expect(res).toMatchObject({ ok: false, fault: 'io-page-fault' });
    expect(r.deviceWrites.filter((w) => w.name === 'nic0')).toEqual([]);
    expect(r.read64(REG_EVENT_LOG_TAIL)).toBe(16n);
    expect(r.read64(REG_STATUS) & STATUS_EVENT_LOG_INT).toBe(STATUS_EVENT_LOG_INT);
    const [ev, ...rest] = r.events();
    expect(rest).toEqual([]);
    expect(ev).toMatchObject({ type: EV_IO_PAGE_FAULT, name: 'IO_PAGE_FAULT', devid: DEVID, domainId: DOMAIN, address: bad, flags: EVF_RW });
    // The entry really is in memory at the log base.
    expect(r.qword(EVENT_LOG + 8)).toBe(BigInt(bad));
    const chain = r.m.trace.events.filter((e) => e.source === 'iommu0').map((e) => e.kind);
    expect(chain.indexOf('iommu-event')).toBeLessThan(chain.indexOf('iommu-io-page-fault'));
  });

  it('refuses a write to a read-only mapping with PR|PE set', () => {
    const { r, root } = translatingRig();
    r.map(root, IOVA + 0x1000, Rig.leaf(PA2, { ir: true, iw: false }));
    const dst = new Uint8Array(8);
    expect(r.dma.read('nic0', IOVA + 0x1000, dst).ok).toBe(true);
    expect(r.dma.write('nic0', IOVA + 0x1000, payload(8, 9))).toMatchObject({ ok: false, fault: 'io-page-fault' });
    expect(r.events()[0]).toMatchObject({ type: EV_IO_PAGE_FAULT, flags: EVF_PR | EVF_PE | EVF_RW });
    expect(r.bytes(PA2, 8)).toEqual(payload(8, 0));
  });

  it('aborts a transfer that crosses into an unmapped page without landing any of it', () => {
    const { r } = translatingRig();
    expect(r.dma.write('nic0', IOVA + 0xff0, payload(32, 7)).ok).toBe(false);
    expect(r.bytes(PA + 0xff0, 16)).toEqual(payload(16, 0));
  });

  it('passes DMA through for an invalid DTE or one without TV', () => {
    const r = new Rig();
    r.enable();
    r.setDte(DEVID, { valid: false });
    r.setDte(0x0400, { valid: true, translationValid: false, domainId: 9 });
    expect(r.dma.write('nic0', 0x6000, payload(4, 1))).toEqual({ ok: true, pa: 0x6000 });
    expect(r.dma.write('disk0', 0x7000, payload(4, 1))).toEqual({ ok: true, pa: 0x7000 });
  });

  it('logs ILLEGAL_DEV_TABLE_ENTRY for reserved mode 7 and for a devid past the table', () => {
    const r = new Rig();
    r.enable();
    r.setDte(DEVID, { valid: true, translationValid: true, mode: 7, domainId: 1 });
    expect(r.dma.write('nic0', 0x6000, payload(4, 1))).toMatchObject({ ok: false, fault: 'illegal-dte' });
    const r2 = new Rig({ spec: { devids: { nic0: 0xffff } } });
    r2.enable();
    expect(r2.dma.write('nic0', 0x6000, payload(4, 1))).toMatchObject({ ok: false, fault: 'illegal-dte' });
    for (const x of [r, r2]) expect(x.events().map((e) => e.type)).toEqual([EV_ILLEGAL_DEV_TABLE_ENTRY]);
  });

  it('reports an unmapped requester name as a failed transfer', () => {
    const r = new Rig();
    r.enable();
    expect(r.dma.write('ghost', 0x6000, payload(4, 1))).toMatchObject({ ok: false, fault: 'unknown-requester' });
  });

  it('reports an RMP refusal of a translated DMA write as rmp-violation and logs RMP_PAGE_FAULT', () => {
    const m = snpMachine({ cpus: 1 });
    const r = new Rig({ machine: m });
    const root = r.newTable();
    r.translatingDte(root, 3);
    r.map(root, IOVA, Rig.leaf(PA));
    r.enable();
    enableSnp(m);
    writeRmpEntry(m.mc, m.rmp!, PA / 4096, { ...EMPTY_RMP_ENTRY, assigned: true, asid: 1 });
    const res = r.dma.write('nic0', IOVA, payload(16, 0x77));
    expect(res).toMatchObject({ ok: false, fault: 'rmp-violation' });
    expect(r.bytes(PA, 16)).toEqual(payload(16, 0));
    expect(r.events()[0]).toMatchObject({ type: EV_RMP_PAGE_FAULT, name: 'RMP_PAGE_FAULT', devid: DEVID, address: IOVA });
    expect(m.trace.find('rmp-violation', 'nic0')).toHaveLength(1);
    expect(m.trace.find('iommu-rmp-fault')).toHaveLength(1);
  });

  it('evicts the oldest IOTLB entry at capacity', () => {
    const r = new Rig({ spec: { iotlbCapacity: 2 } });
    const root = r.newTable();
    r.translatingDte(root, 3);
    for (let i = 0; i < 3; i++) r.map(root, IOVA + i * 4096, Rig.leaf(PA + i * 4096));
    r.enable();
    for (let i = 0; i < 3; i++) r.dma.write('nic0', IOVA + i * 4096, payload(4, 1));
    expect(r.iommu.iotlb.size).toBe(2);
    expect(r.iommu.iotlb.lookup(DOMAIN, IOVA / 4096)).toBeUndefined();
  });

  it('keeps HOST writes of tables separate from device traffic (sanity of the rig)', () => {
    const r = new Rig();
    r.m.mc.write(MiB, payload(4, 1), HOST);
    expect(r.bytes(MiB, 4)).toEqual(payload(4, 1));
  });
});
