import { describe, it, expect } from 'vitest';
import { Rig, ROOT, NIC_BDF, NIC_SID, DID, CBIT, payload } from './rig.js';
import { slLeaf } from '../../../src/platform/vtd/second-level-table.js';
import { TT_PASS_THROUGH } from '../../../src/platform/vtd/context-entry.js';
import { FR_BEYOND_MGAW, FR_CONTEXT_INVALID, FR_READ, FR_WRITE, FR_PTE_RESERVED } from '../../../src/platform/vtd/fault-reasons.js';
import { Machine } from '../../../src/platform/machine.js';
import { attachVtd } from '../../../src/platform/vtd/attach.js';
import { sourceIdFromBdf } from '../../../src/platform/vtd/vtd-dma.js';

const IOVA3 = 0x4000_1000; // 3-level: L3 index 1, L2 index 0, L1 index 1
const IOVA4 = 0x80_4020_3000; // 4-level: L4 index 1, L3 index 1, L2 index 1, L1 index 3
const PA = 0x30_0000;
const PA2 = 0x31_0000;

function translating(levels: 3 | 4, iova: number, opts: { memEncrypt?: boolean; leaf?: bigint } = {}): Rig {
  const r = new Rig(opts.memEncrypt === true ? { memEncrypt: true } : {});
  const pt = r.newTable();
  r.nicContext(pt, levels - 2);
  r.map(pt, iova, opts.leaf ?? slLeaf(PA), levels);
  r.setRootTable(ROOT);
  r.enableTranslation();
  return r;
}

describe('VT-d DMA translation', () => {
  it('uses the bus address as the physical address while translation is off', () => {
    const r = new Rig();
    r.setRootTable(ROOT); // tables latched but TE clear
    expect(r.dma.write(NIC_BDF, 0x5000, payload(64, 0x11))).toEqual({ ok: true, pa: 0x5000 });
    expect(r.bytes(0x5000, 64)).toEqual(payload(64, 0x11));
    expect(r.unit.dmaRemapper.translations).toBe(0);
    expect(r.deviceWrites).toEqual([{ pa: 0x5000, length: 64, name: NIC_BDF }]);
  });

  it('translates a write through root -> context -> 3-level second-level table to the mapped page', () => {
    const r = translating(3, IOVA3);
    expect(r.dma.write(NIC_BDF, IOVA3 + 0x80, payload(256, 0xab))).toEqual({ ok: true, pa: PA + 0x80 });
    expect(r.bytes(PA + 0x80, 256)).toEqual(payload(256, 0xab));
    expect(r.deviceWrites).toEqual([{ pa: PA + 0x80, length: 256, name: NIC_BDF }]); // and nowhere else
    expect(r.m.trace.find('vtd-context-fetch')[0]!.data).toMatchObject({ sid: NIC_SID, mode: 'legacy', did: DID, aw: 1 });
    expect(r.m.trace.find('vtd-iotlb-fill')[0]!.data).toMatchObject({ did: DID, iova: IOVA3, frame: PA, level: 1 });
    const dst = new Uint8Array(16);
    expect(r.dma.read(NIC_BDF, IOVA3 + 0x80, dst)).toEqual({ ok: true, pa: PA + 0x80 });
    expect(dst).toEqual(payload(16, 0xab));
  });

  it('translates through a 4-level (48-bit) table', () => {
    const r = translating(4, IOVA4);
    expect(r.dma.write(NIC_BDF, IOVA4 + 8, payload(8, 0x44))).toEqual({ ok: true, pa: PA + 8 });
    expect(r.bytes(PA + 8, 8)).toEqual(payload(8, 0x44));
  });

  it('splits a transfer across pages and translates each', () => {
    const r = new Rig();
    const pt = r.newTable();
    r.nicContext(pt);
    r.map(pt, IOVA3, slLeaf(PA));
    r.map(pt, IOVA3 + 0x1000, slLeaf(PA2));
    r.setRootTable(ROOT);
    r.enableTranslation();
    expect(r.dma.write(NIC_BDF, IOVA3 + 0xff0, payload(32, 0x5c)).ok).toBe(true);
    expect(r.bytes(PA + 0xff0, 16)).toEqual(payload(16, 0x5c));
    expect(r.bytes(PA2, 16)).toEqual(payload(16, 0x5c));
  });

  it('maps a 2 MiB superpage leaf at level 2', () => {
    const r = new Rig();
    const pt = r.newTable();
    r.nicContext(pt);
    r.map(pt, 0x4020_0000, slLeaf(0x60_0000, { read: true, write: true }, true), 3, 2);
    r.setRootTable(ROOT);
    r.enableTranslation();
    expect(r.dma.write(NIC_BDF, 0x4020_0000 + 0x12_3456, payload(4, 9))).toEqual({ ok: true, pa: 0x60_0000 + 0x12_3456 });
    expect(r.m.trace.find('vtd-iotlb-fill')[0]!.data).toMatchObject({ level: 2, iova: 0x4020_0000, frame: 0x60_0000 });
  });

  it('faults a write to a read-only page with reason 5 and a read of a write-only page with reason 6', () => {
    const r = new Rig();
    const pt = r.newTable();
    r.nicContext(pt);
    r.map(pt, IOVA3, slLeaf(PA, { read: true, write: false }));
    r.map(pt, IOVA3 + 0x1000, slLeaf(PA2, { read: false, write: true }));
    r.setRootTable(ROOT);
    r.enableTranslation();
    expect(r.dma.write(NIC_BDF, IOVA3, payload(8, 1))).toMatchObject({ ok: false, fault: 'dmar-fault' });
    expect(r.bytes(PA, 8)).toEqual(payload(8, 0));
    expect(r.dma.read(NIC_BDF, IOVA3 + 0x1000, new Uint8Array(8))).toMatchObject({ ok: false });
    expect(r.faultRecord(0)).toMatchObject({ reason: FR_WRITE, read: false, address: IOVA3 });
    expect(r.faultRecord(1)).toMatchObject({ reason: FR_READ, read: true, address: IOVA3 + 0x1000 });
  });

  it('faults an IOVA beyond the context AGAW with reason 4 and reserved PTE bits with reason 0xc', () => {
    const r = new Rig();
    const pt = r.newTable();
    r.nicContext(pt); // AW 1: 39 bits
    r.map(pt, IOVA3, slLeaf(PA) | 0x4n); // bit 2 is reserved
    r.setRootTable(ROOT);
    r.enableTranslation();
    expect(r.dma.write(NIC_BDF, 2 ** 39, payload(8, 1)).ok).toBe(false);
    expect(r.dma.write(NIC_BDF, IOVA3, payload(8, 1)).ok).toBe(false);
    expect(r.faultRecord(0)).toMatchObject({ reason: FR_BEYOND_MGAW, address: 2 ** 39 });
    expect(r.faultRecord(1)).toMatchObject({ reason: FR_PTE_RESERVED });
  });

  it('passes a pass-through context entry untranslated, and refuses an AW the unit does not support', () => {
    const r = new Rig();
    r.nicContext(0, 2, { translationType: TT_PASS_THROUGH, domainId: 1 });
    r.setRootTable(ROOT);
    r.enableTranslation();
    expect(r.dma.write(NIC_BDF, 0x7000, payload(8, 7))).toEqual({ ok: true, pa: 0x7000 });
    expect(r.unit.dmaRemapper.iotlb.size).toBe(0);
    const bad = new Rig();
    bad.nicContext(bad.newTable(), 3); // AGAW 3 (57-bit) is not in SAGAW 0b00110
    bad.setRootTable(ROOT);
    bad.enableTranslation();
    expect(bad.dma.write(NIC_BDF, 0x7000, payload(8, 7)).ok).toBe(false);
    expect(bad.faultRecord(0)).toMatchObject({ reason: FR_CONTEXT_INVALID });
  });

  it('honours the C-bit in a leaf: the device write is encrypted with the host key', () => {
    const r = translating(3, IOVA3, { memEncrypt: true, leaf: slLeaf(PA + 2 ** CBIT) });
    expect(r.dma.write(NIC_BDF, IOVA3, payload(32, 0x42))).toEqual({ ok: true, pa: PA });
    expect(r.bytes(PA, 32, Rig.hostKey)).toEqual(payload(32, 0x42));
    expect(r.bytes(PA, 32)).not.toEqual(payload(32, 0x42)); // DRAM holds ciphertext
  });

  it('routes a NIC by its BDF string: packets land where the IOMMU maps its ring and buffers', () => {
    const m = new Machine({
      memoryBytes: 64 * 2 ** 20, cpus: 1, seed: 9, cpuVendor: 'GenuineIntel',
      nics: [{ name: 'nic0', bdf: NIC_BDF, mmioBase: 0xfe00_0000, packetIntervalNs: 1000, packetBytes: 128 }],
    });
    const { unit } = attachVtd(m);
    expect(sourceIdFromBdf('0000:03:00.0')).toBe(NIC_SID);
    expect(sourceIdFromBdf('03:1f.7')).toBe(0x3ff);
    expect(sourceIdFromBdf('nic0')).toBeUndefined();
    const host = { kind: 'cpu', id: 0 } as const;
    const put = (pa: number, v: bigint): void => {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setBigUint64(0, v, true);
      m.mc.write(pa, b, host);
    };
    // Root/context/page tables by hand: ring at IOVA 0x1000 -> PA 0x50_0000, buffer IOVA 0x2000 -> PA 0x51_0000.
    const [root, ctx, l3, l2, l1] = [0x40_0000, 0x40_1000, 0x40_2000, 0x40_3000, 0x40_4000];
    put(root + 3 * 16, BigInt(ctx) | 1n);
    put(ctx, BigInt(l3) | 1n);
    put(ctx + 8, 1n | (BigInt(DID) << 8n));
    put(l3, BigInt(l2) | 3n);
    put(l2, BigInt(l1) | 3n);
    put(l1 + 8, 0x50_0000n | 3n);
    put(l1 + 16, 0x51_0000n | 3n);
    put(0x50_0000, 0x2000n); // descriptor 0: buffer at IOVA 0x2000
    m.mmio.write(0xfed9_0000 + 0x20, BigInt(root), 8);
    m.mmio.write(0xfed9_0000 + 0x18, BigInt(1 << 30), 4);
    m.mmio.write(0xfed9_0000 + 0x18, BigInt(1 << 31 >>> 0), 4);
    const nicReg = (off: number, v: number): void => m.mmio.write(0xfe00_0000 + off, BigInt(v));
    nicReg(0x2800, 0x1000);
    nicReg(0x2808, 16 * 4);
    nicReg(0x2810, 0);
    nicReg(0x2818, 1);
    nicReg(0x0000, 2);
    m.clock.advance(1500);
    expect(m.nics[0]!.packetsReceived).toBe(1);
    const got = new Uint8Array(8);
    m.mc.read(0x51_0000, got);
    expect(new DataView(got.buffer).getUint32(0, false)).toBe(0x6b64736d); // "kdsm" header
    expect(unit.dmaRemapper.translations).toBeGreaterThan(0);
  });
});
