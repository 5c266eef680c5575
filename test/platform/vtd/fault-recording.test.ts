import { describe, it, expect } from 'vitest';
import { Rig, ROOT, NIC_BDF, NIC_SID, payload } from './rig.js';
import { slLeaf } from '../../../src/platform/vtd/second-level-table.js';
import {
  REG_FSTS, REG_FECTL, REG_FEDATA, REG_FEADDR, REG_CCMD, CC_GLOBAL, ccmdValue, FSTS_PPF, FSTS_PFO, FSTS_FRI_SHIFT, ECTL_IP, ECTL_IM,
} from '../../../src/platform/vtd/registers.js';
import { FR_CONTEXT_NOT_PRESENT, FR_ROOT_NOT_PRESENT, faultReasonText } from '../../../src/platform/vtd/fault-reasons.js';
import { FRCD_F } from '../../../src/platform/vtd/fault-recording.js';

const FAULT_ADDR = 0x1234_5678;

/** Translation on with an empty root table: every bus is absent. */
function emptyRoot(opts: ConstructorParameters<typeof Rig>[0] = {}): Rig {
  const r = new Rig(opts);
  r.setRootTable(ROOT);
  r.enableTranslation();
  return r;
}

/** What Linux's fault handler does: walk records from FRI while F is set, clear each, then clear PFO/PPF. */
function serviceFaults(r: Rig): number {
  const fsts = r.read32(REG_FSTS);
  let handled = 0;
  if ((fsts & FSTS_PPF) !== 0) {
    let i = (fsts >>> FSTS_FRI_SHIFT) & 0xff;
    for (;;) {
      const hiOff = r.unit.faultRegOffset + i * 16 + 8;
      if ((r.read64(hiOff) & FRCD_F) === 0n) break;
      r.reg32(hiOff + 4, 0x8000_0000); // write 1 to F (the top dword)
      handled++;
      i = (i + 1) % r.unit.faults.count;
    }
  }
  r.reg32(REG_FSTS, FSTS_PFO | FSTS_PPF | (1 << 7));
  return handled;
}

describe('VT-d fault recording', () => {
  it('records a DMA from a bus with no root entry as fault reason 1, with source id and address; the write does not land', () => {
    const r = emptyRoot();
    const res = r.dma.write(NIC_BDF, FAULT_ADDR, payload(64, 0x77));
    expect(res).toMatchObject({ ok: false, fault: 'dmar-fault' });
    expect(r.deviceWrites).toEqual([]);
    expect(faultReasonText(FR_ROOT_NOT_PRESENT)).toBe('Present bit in root entry is clear');
    const rec = r.faultRecord(0);
    expect(rec).toEqual({ valid: true, sourceId: NIC_SID, reason: FR_ROOT_NOT_PRESENT, address: 0x1234_5000, index: 0, read: false, pasid: undefined });
    // "DMAR: DRHD: handling fault status reg 2": PPF set, FRI 0.
    expect(r.read32(REG_FSTS)).toBe(FSTS_PPF);
    const t = r.m.trace.find('vtd-dma-fault');
    expect(t).toHaveLength(1);
    expect(t[0]!.data).toMatchObject({ sid: NIC_SID, bdf: '03:00.0', reason: 1, addr: 0x1234_5000, read: false, slot: 0 });
    // A read sets T.
    r.dma.read(NIC_BDF, 0x8000, new Uint8Array(4));
    expect(r.faultRecord(1)).toMatchObject({ read: true, address: 0x8000 });
    expect(r.read32(REG_FSTS)).toBe(FSTS_PPF); // FRI still names the first pending record
  });

  it('advances FRI to where the next pending fault was recorded once software has cleared the earlier ones', () => {
    const r = emptyRoot();
    r.dma.write(NIC_BDF, 0x1000, payload(4, 1));
    expect(serviceFaults(r)).toBe(1);
    expect(r.read32(REG_FSTS)).toBe(0);
    r.dma.write(NIC_BDF, 0x2000, payload(4, 1));
    // "fault status reg 102": FRI 1, PPF.
    expect(r.read32(REG_FSTS)).toBe((1 << FSTS_FRI_SHIFT) | FSTS_PPF);
    expect(r.faultRecord(1)).toMatchObject({ valid: true, address: 0x2000 });
  });

  it('sets PFO when the next record is still full and loses faults until software clears it', () => {
    const r = emptyRoot();
    const n = r.unit.faults.count;
    for (let i = 0; i < n; i++) r.dma.write(NIC_BDF, 0x1000 * (i + 1), payload(4, 1));
    expect(r.read32(REG_FSTS) & FSTS_PFO).toBe(0);
    r.dma.write(NIC_BDF, 0x10_0000, payload(4, 1));
    expect(r.read32(REG_FSTS) & (FSTS_PFO | FSTS_PPF)).toBe(FSTS_PFO | FSTS_PPF);
    expect(r.m.trace.find('vtd-fault-overflow')).toHaveLength(1);
    r.dma.write(NIC_BDF, 0x20_0000, payload(4, 1));
    expect(r.unit.faultsLost).toBe(2);
    expect(r.unit.faultsRecorded).toBe(n);
    // Every record still holds its original fault.
    expect(r.faultRecord(0).address).toBe(0x1000);
    expect(serviceFaults(r)).toBe(n);
    expect(r.read32(REG_FSTS)).toBe(0);
    r.dma.write(NIC_BDF, 0x30_0000, payload(4, 1));
    expect(r.faultRecord(0)).toMatchObject({ valid: true, address: 0x30_0000 });
  });

  it('does not record qualified faults of a context entry with FPD set, but still blocks the DMA', () => {
    const r = new Rig();
    const pt = r.newTable();
    r.nicContext(pt, 1, { fpd: true });
    r.map(pt, 0x1000, slLeaf(0x30_0000, { read: true, write: false }));
    r.setRootTable(ROOT);
    r.enableTranslation();
    expect(r.dma.write(NIC_BDF, 0x1000, payload(4, 1)).ok).toBe(false);
    expect(r.dma.write(NIC_BDF, 0x1000, payload(4, 1)).ok).toBe(false);
    expect(r.bytes(0x30_0000, 4)).toEqual(payload(4, 0));
    expect(r.read32(REG_FSTS)).toBe(0);
    expect(r.unit.faultsSuppressed).toBe(2);
    expect(r.m.trace.find('vtd-fault-suppressed')).toHaveLength(1);
    // A non-present context entry's FPD bit counts too (QEMU reads it from the entry as found).
    r.setContext(0, { present: false, fpd: true });
    r.reg64(REG_CCMD, ccmdValue(CC_GLOBAL));
    expect(r.dma.write(NIC_BDF, 0x1000, payload(4, 1)).ok).toBe(false);
    expect(r.unit.faultsSuppressed).toBe(3);
    r.setContext(0, { present: false, fpd: false });
    expect(r.dma.write(NIC_BDF, 0x1000, payload(4, 1)).ok).toBe(false);
    expect(r.faultRecord(0)).toMatchObject({ reason: FR_CONTEXT_NOT_PRESENT });
  });

  it('raises the fault event through FEADDR/FEDATA when unmasked, and holds it in FECTL.IP while masked', () => {
    const r = emptyRoot({ fabric: true });
    const lapic = r.fabric!.lapic(0);
    r.reg32(REG_FEDATA, 0x44);
    r.reg32(REG_FEADDR, 0xfee0_0000);
    // Masked (power-on): IP set, nothing delivered.
    r.dma.write(NIC_BDF, 0x1000, payload(4, 1));
    expect(r.read32(REG_FECTL)).toBe((ECTL_IM | ECTL_IP) >>> 0);
    expect(lapic.arrivals(0x44)).toBe(0);
    // Unmasking delivers the held event.
    r.reg32(REG_FECTL, 0);
    expect(lapic.arrivals(0x44)).toBe(1);
    expect(r.read32(REG_FECTL)).toBe(0);
    // A second fault while PPF is still pending raises nothing new.
    r.dma.write(NIC_BDF, 0x2000, payload(4, 1));
    expect(lapic.arrivals(0x44)).toBe(1);
    serviceFaults(r);
    r.dma.write(NIC_BDF, 0x3000, payload(4, 1));
    expect(lapic.arrivals(0x44)).toBe(2);
    expect(r.m.trace.find('vtd-interrupt-delivered').map((e) => e.data?.cause)).toEqual(['fault-event', 'fault-event']);
  });
});
