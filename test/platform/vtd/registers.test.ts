import { describe, it, expect } from 'vitest';
import { Rig, ROOT, ROOT2, NIC_BDF, payload } from './rig.js';
import {
  REG_VER, REG_CAP, REG_CCMD, CC_GLOBAL, ccmdValue, REG_ECAP, REG_GCMD, REG_GSTS, REG_RTADDR, REG_FECTL, REG_IECTL, REG_PMEN, REG_IRTA,
  GCMD_TE, GCMD_QIE, GCMD_IRE, GCMD_CFI, GCMD_EAFL, GCMD_SRTP, GCMD_WBF, GSTS_TES, GSTS_RTPS, GSTS_QIES, GSTS_IRES, GSTS_CFIS,
  GSTS_AFLS, GSTS_IRTPS, GCMD_SIRTP, GSTS_WBFS, ECTL_IM, PMEN_EPM, PMEN_PRS, DEFAULT_CAP, DEFAULT_ECAP, ECAP_SMTS, RTADDR_SMT,
  capFaultRecords, capFaultRegOffset, ecapIotlbRegOffset, capSagaw, capMgaw, capDomains, rtaddrValue, irtaValue,
} from '../../../src/platform/vtd/registers.js';
import { slLeaf } from '../../../src/platform/vtd/second-level-table.js';

describe('VT-d register file', () => {
  it('reports VER, CAP and ECAP, and places FRCD and IOTLB registers where CAP.FRO and ECAP.IRO say', () => {
    const r = new Rig();
    expect(r.read32(REG_VER)).toBe(0x10);
    expect(r.read64(REG_CAP)).toBe(DEFAULT_CAP);
    expect(r.read64(REG_ECAP)).toBe(DEFAULT_ECAP);
    expect(capFaultRegOffset(DEFAULT_CAP)).toBe(0x220);
    expect(capFaultRecords(DEFAULT_CAP)).toBe(8);
    expect(ecapIotlbRegOffset(DEFAULT_ECAP)).toBe(0x500);
    expect(capSagaw(DEFAULT_CAP)).toBe(0b00110);
    expect(capMgaw(DEFAULT_CAP)).toBe(48);
    expect(capDomains(DEFAULT_CAP)).toBe(65536);
    expect(r.unit.faultRegOffset).toBe(0x220);
    expect(r.unit.iotlbRegOffset).toBe(0x500);
    // Read-only: writes do not change them.
    r.reg64(REG_CAP, 0n);
    expect(r.read64(REG_CAP)).toBe(DEFAULT_CAP);
    // Scalable mode shows in ECAP only when configured.
    expect(DEFAULT_ECAP & ECAP_SMTS).toBe(0n);
    expect(new Rig({ spec: { scalableMode: true } }).read64(REG_ECAP) & ECAP_SMTS).toBe(ECAP_SMTS);
  });

  it('reflects persistent GCMD bits in GSTS, reads GCMD as zero, and clears them when software drops them from its shadow', () => {
    const r = new Rig();
    expect(r.read32(REG_GSTS)).toBe(0);
    expect(r.command(GCMD_TE, true) & GSTS_TES).toBe(GSTS_TES);
    expect(r.read32(REG_GCMD)).toBe(0); // write-only
    expect(r.command(GCMD_QIE, true) & (GSTS_TES | GSTS_QIES)).toBe(GSTS_TES | GSTS_QIES);
    expect(r.command(GCMD_IRE, true) & GSTS_IRES).toBe(GSTS_IRES);
    expect(r.command(GCMD_CFI, true) & GSTS_CFIS).toBe(GSTS_CFIS);
    // EAFL needs CAP.AFL, which the default part lacks: no status.
    expect(r.command(GCMD_EAFL, true) & GSTS_AFLS).toBe(0);
    // A write without TE (a shadow that lost it) turns translation off.
    const s = r.command(GCMD_TE, false);
    expect(s & GSTS_TES).toBe(0);
    expect(s & GSTS_QIES).toBe(GSTS_QIES);
    // WBF completes at once: WBFS never reads as set.
    expect(r.oneShot(GCMD_WBF) & GSTS_WBFS).toBe(0);
    const gcmd = r.m.trace.find('vtd-gcmd');
    expect(gcmd.at(-2)!.data).toMatchObject({ te: false, teChanged: true });
  });

  it('reads RTADDR back as written, keeping the SMT bit only on a scalable-mode part', () => {
    const r = new Rig();
    r.reg64(REG_RTADDR, rtaddrValue(0x1234_5000) | 0xfffn);
    expect(r.read64(REG_RTADDR)).toBe(0x1234_5000n);
    r.reg64(REG_RTADDR, rtaddrValue(0x1234_5000, true));
    expect(r.read64(REG_RTADDR)).toBe(0x1234_5000n); // SMT is reserved without ECAP.SMTS
    const sm = new Rig({ spec: { scalableMode: true } });
    sm.reg64(REG_RTADDR, rtaddrValue(0x1234_5000, true));
    expect(sm.read64(REG_RTADDR)).toBe(0x1234_5000n | RTADDR_SMT);
    // Two 32-bit halves compose the register, as a 32-bit driver would write it.
    r.reg32(REG_RTADDR, 0x6789_a000);
    r.reg32(REG_RTADDR + 4, 0x1);
    expect(r.read64(REG_RTADDR)).toBe(0x1_6789_a000n);
    expect(r.read32(REG_RTADDR + 4)).toBe(1);
  });

  it('latches the root table only on SRTP: a later RTADDR write changes nothing until the next SRTP', () => {
    const r = new Rig();
    const pt = r.newTable();
    r.nicContext(pt);
    r.map(pt, 0x1000, slLeaf(0x30_0000));
    r.setRootTable(ROOT);
    r.enableTranslation();
    expect(r.read32(REG_GSTS) & GSTS_RTPS).toBe(GSTS_RTPS);
    expect(r.unit.latchedRoot).toEqual({ addr: ROOT, scalable: false });
    // Software points RTADDR at an empty table but does not set SRTP.
    r.reg64(REG_RTADDR, rtaddrValue(ROOT2));
    expect(r.read64(REG_RTADDR)).toBe(BigInt(ROOT2));
    expect(r.dma.write(NIC_BDF, 0x1000, payload(8, 1))).toEqual({ ok: true, pa: 0x30_0000 });
    expect(r.unit.latchedRoot.addr).toBe(ROOT);
    // SRTP latches the new table; the context cached from the old one is still used (no ESRTPS) ...
    r.oneShot(GCMD_SRTP);
    expect(r.unit.latchedRoot.addr).toBe(ROOT2);
    expect(r.m.trace.find('vtd-srtp').at(-1)!.data).toMatchObject({ rootTable: ROOT2, translationEnabled: true, dropped: 0 });
    expect(r.dma.write(NIC_BDF, 0x1000, payload(8, 2)).ok).toBe(true);
    expect(r.m.trace.find('vtd-context-fetch')).toHaveLength(1);
    // ... until the context cache is invalidated; then the empty table's missing root entry faults.
    r.reg64(REG_CCMD, ccmdValue(CC_GLOBAL));
    expect(r.dma.write(NIC_BDF, 0x2000, payload(8, 3))).toMatchObject({ ok: false, fault: 'dmar-fault' });
    expect(r.faultRecord(0)).toMatchObject({ valid: true, reason: 1, sourceId: 0x300 });
  });

  it('drops cached translations on SRTP when CAP.ESRTPS says hardware does', () => {
    const r = new Rig({ spec: { cap: DEFAULT_CAP | (1n << 63n) } });
    const pt = r.newTable();
    r.nicContext(pt);
    r.map(pt, 0x1000, slLeaf(0x30_0000));
    r.setRootTable(ROOT);
    r.enableTranslation();
    expect(r.dma.write(NIC_BDF, 0x1000, payload(8, 1)).ok).toBe(true);
    r.setRootTable(ROOT2);
    expect(r.m.trace.find('vtd-srtp').at(-1)!.data).toMatchObject({ dropped: 2 }); // context + IOTLB entry
    expect(r.dma.write(NIC_BDF, 0x1000, payload(8, 2)).ok).toBe(false);
  });

  it('latches IRTA on SIRTP, keeping EIME only when ECAP.EIM is set', () => {
    const r = new Rig();
    r.reg64(REG_IRTA, irtaValue(0x40_0000, 0xf, true));
    expect(r.read64(REG_IRTA)).toBe(0x40_0000n | (1n << 11n) | 0xfn);
    expect(r.unit.latchedIrta.entries).toBe(2); // not latched yet
    expect(r.oneShot(GCMD_SIRTP) & GSTS_IRTPS).toBe(GSTS_IRTPS);
    expect(r.unit.latchedIrta).toEqual({ addr: 0x40_0000, entries: 65536, x2apic: true });
    const noEim = new Rig({ spec: { ecap: DEFAULT_ECAP & ~(1n << 4n) } });
    noEim.reg64(REG_IRTA, irtaValue(0x40_0000, 0xf, true));
    expect(noEim.read64(REG_IRTA)).toBe(0x40_0000n | 0xfn);
  });

  it('powers on with fault and invalidation events masked, and mirrors PMEN.EPM in PRS', () => {
    const r = new Rig();
    expect(r.read32(REG_FECTL)).toBe(ECTL_IM >>> 0);
    expect(r.read32(REG_IECTL)).toBe(ECTL_IM >>> 0);
    r.reg32(REG_FECTL, 0);
    expect(r.read32(REG_FECTL)).toBe(0);
    r.reg32(REG_PMEN, PMEN_EPM);
    expect(r.read32(REG_PMEN)).toBe((PMEN_EPM | PMEN_PRS) >>> 0);
    r.reg32(REG_PMEN, 0);
    expect(r.read32(REG_PMEN) & PMEN_PRS).toBe(0);
  });

  it('puts everything back to power-on values on reset, which a kexec never calls', () => {
    const r = new Rig();
    r.setRootTable(ROOT);
    r.enableTranslation();
    r.unit.reset();
    expect(r.read32(REG_GSTS)).toBe(0);
    expect(r.read64(REG_RTADDR)).toBe(0n);
    expect(r.unit.latchedRoot.addr).toBe(0);
  });
});
