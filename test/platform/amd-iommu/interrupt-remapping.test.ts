import { describe, it, expect } from 'vitest';
import { Rig, IRT, DOMAIN, HOST } from './rig.js';
import { encodeIrte, encodeIrteLegacy, EMPTY_IRTE, type IrteFields } from '../../../src/platform/amd-iommu/interrupt-remapping-table.js';
import { INTCTL_ABORT, INTCTL_FORWARD_UNMAPPED } from '../../../src/platform/amd-iommu/device-table-entry.js';
import { EV_IO_PAGE_FAULT, EVF_I } from '../../../src/platform/amd-iommu/event-log.js';
import { CTRL_GA_EN, CTRL_IRT_CACHE_DIS } from '../../../src/platform/amd-iommu/registers.js';

const IOAPIC = 0x00a0;
const irte = (f: Partial<IrteFields>): IrteFields => ({ ...EMPTY_IRTE, remapEn: true, ...f });

function rig(control = 0n): Rig {
  const r = new Rig({ spec: { devids: { nic0: 0x300 } } });
  r.remappingDte(IOAPIC);
  r.enable(control);
  return r;
}

function putLegacy(r: Rig, index: number, f: IrteFields): void {
  r.m.mc.write(IRT + index * 4, encodeIrte(f, false), HOST);
}

describe('AMD IOMMU interrupt remapping', () => {
  it('remaps through a legacy 32-bit IRTE to its vector and destination', () => {
    const r = rig();
    putLegacy(r, 2, irte({ vector: 0x30, destination: 1 }));
    expect(r.iommu.remapInterrupt(IOAPIC, { index: 2 })).toEqual({ ok: true, vector: 0x30, destination: 1, destMode: 'physical', intType: 0, index: 2 });
    expect(r.m.trace.find('iommu-irte-fetch')[0]!.data).toMatchObject({ devid: IOAPIC, index: 2, addr: IRT + 8, ga: false });
    expect(r.m.trace.find('iommu-intr-remap')[0]!.data).toMatchObject({ vector: 0x30, destination: 1 });
  });

  it('keeps using a cached IRTE until INVALIDATE_INTERRUPT_TABLE for that device', () => {
    const r = rig();
    putLegacy(r, 0, irte({ vector: 0x30 }));
    expect(r.iommu.remapInterrupt(IOAPIC, { index: 0 })).toMatchObject({ vector: 0x30 });
    putLegacy(r, 0, irte({ vector: 0x41 }));
    expect(r.iommu.remapInterrupt(IOAPIC, { index: 0 })).toMatchObject({ vector: 0x30 });
    r.submit({ op: 'invalidate-interrupt-table', devid: 0x0300 }); // some other device
    r.settle();
    expect(r.iommu.remapInterrupt(IOAPIC, { index: 0 })).toMatchObject({ vector: 0x30 });
    r.submit({ op: 'invalidate-interrupt-table', devid: IOAPIC });
    r.settle();
    expect(r.iommu.remapInterrupt(IOAPIC, { index: 0 })).toMatchObject({ vector: 0x41 });
  });

  it('reads the IRTE from memory every time when IRTCacheDis is set', () => {
    const r = rig(CTRL_IRT_CACHE_DIS);
    putLegacy(r, 0, irte({ vector: 0x30 }));
    r.iommu.remapInterrupt(IOAPIC, { index: 0 });
    putLegacy(r, 0, irte({ vector: 0x41 }));
    expect(r.iommu.remapInterrupt(IOAPIC, { index: 0 })).toMatchObject({ vector: 0x41 });
    expect(r.iommu.irteCacheSize).toBe(0);
  });

  it('uses 128-bit IRTEs when GAEn is set, with a 32-bit destination', () => {
    const r = rig(CTRL_GA_EN);
    r.m.mc.write(IRT + 3 * 16, encodeIrte(irte({ vector: 0xec, destination: 0x1_0203, dm: true, intType: 1 }), true), HOST);
    expect(r.iommu.remapInterrupt(IOAPIC, { index: 3 })).toEqual({ ok: true, vector: 0xec, destination: 0x1_0203, destMode: 'logical', intType: 1, index: 3 });
  });

  it('leaves interrupts alone while IommuEn is clear', () => {
    const r = new Rig();
    r.remappingDte(IOAPIC);
    expect(r.iommu.remapInterrupt(IOAPIC, { index: 0 })).toMatchObject({ ok: false, reason: 'remapping-off' });
  });

  it('forwards unmapped, blocks, or drops as the DTE and IRTE say', () => {
    const r = rig();
    r.setDte(0x10, { valid: true, interruptValid: false });
    r.setDte(0x11, { valid: true, interruptValid: true, intCtl: INTCTL_FORWARD_UNMAPPED, intTabLen: 9, irtRoot: IRT });
    r.setDte(0x12, { valid: true, interruptValid: true, intCtl: INTCTL_ABORT, intTabLen: 9, irtRoot: IRT });
    r.setDte(0x13, { valid: true, interruptValid: true, intCtl: 3, intTabLen: 9, irtRoot: IRT });
    expect(r.iommu.remapInterrupt(0x10, { index: 0 })).toMatchObject({ ok: false, reason: 'not-remapped' });
    expect(r.iommu.remapInterrupt(0x11, { index: 0 })).toMatchObject({ ok: false, reason: 'not-remapped' });
    expect(r.iommu.remapInterrupt(0x12, { index: 0 })).toMatchObject({ ok: false, reason: 'blocked' });
    expect(r.iommu.remapInterrupt(0x13, { index: 0 })).toMatchObject({ ok: false, reason: 'illegal-dte' });
    expect(r.iommu.remapInterrupt(IOAPIC, { index: 512 })).toMatchObject({ ok: false, reason: 'index-out-of-range' });
    // Entry 5 was never programmed: RemapEn clear, fault logged with the I flag.
    expect(r.iommu.remapInterrupt(IOAPIC, { index: 5 })).toMatchObject({ ok: false, reason: 'irte-not-valid' });
    putLegacy(r, 6, { ...EMPTY_IRTE, supIopf: true });
    expect(r.iommu.remapInterrupt(IOAPIC, { index: 6 })).toMatchObject({ ok: false, reason: 'irte-not-valid' });
    const ev = r.events();
    expect(ev.map((e) => e.name)).toEqual(['ILLEGAL_DEV_TABLE_ENTRY', 'IO_PAGE_FAULT', 'IO_PAGE_FAULT']);
    expect(ev[2]).toMatchObject({ type: EV_IO_PAGE_FAULT, devid: IOAPIC, domainId: DOMAIN, flags: EVF_I, address: 5 });
  });

  it('remaps Linux\'s allocated-but-unprogrammed legacy marker as vector 0xff', () => {
    const r = rig();
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, 0xffff_ffff, true);
    r.m.mc.write(IRT, b, HOST);
    expect(encodeIrteLegacy(irte({ vector: 0xff, destination: 0xff, dm: true, rqEoi: true, intType: 7, supIopf: true }))).toBe(0x00ff_ff7f);
    expect(r.iommu.remapInterrupt(IOAPIC, { index: 0 })).toMatchObject({ ok: true, vector: 0xff });
  });
});
