import { describe, it, expect } from 'vitest';
import { Rig, DEV_TAB, CMD_BUF, CWB, CMD_ENTRIES } from './rig.js';
import {
  REG_DEV_TAB_BASE, REG_CMD_BUF_BASE, REG_EVENT_LOG_BASE, REG_CONTROL, REG_EXCL_BASE, REG_EXCL_LIMIT, REG_EFR, REG_STATUS,
  REG_CMD_BUF_HEAD, REG_CMD_BUF_TAIL, DEFAULT_EFR, STATUS_COM_WAIT_INT, STATUS_CMD_BUF_RUN, STATUS_EVENT_LOG_RUN,
  CTRL_IOMMU_EN, CTRL_CMD_BUF_EN, CTRL_EVENT_LOG_EN, CTRL_INV_TIMEOUT_SHIFT, AMD_IOMMU_MMIO_SIZE,
  devTabBaseValue, ringBaseValue, devTabBytes, ringEntries,
} from '../../../src/platform/amd-iommu/registers.js';

describe('AMD IOMMU register file', () => {
  it('round-trips the base registers as 64-bit writes, keeping only their defined bits', () => {
    const r = new Rig();
    r.reg64(REG_DEV_TAB_BASE, devTabBaseValue(DEV_TAB, 2 * 2 ** 20));
    expect(r.read64(REG_DEV_TAB_BASE)).toBe(BigInt(DEV_TAB) | 0x1ffn);
    expect(devTabBytes(r.read64(REG_DEV_TAB_BASE))).toBe(2 * 2 ** 20);
    r.reg64(REG_CMD_BUF_BASE, ringBaseValue(CMD_BUF, CMD_ENTRIES));
    expect(r.read64(REG_CMD_BUF_BASE)).toBe(0x0900_0000_0000_0000n | BigInt(CMD_BUF));
    expect(ringEntries(r.read64(REG_CMD_BUF_BASE))).toBe(512);
    // Reserved bits (63:60, 55:52, 11:0) do not stick.
    r.reg64(REG_EVENT_LOG_BASE, 0xffff_ffff_ffff_ffffn);
    expect(r.read64(REG_EVENT_LOG_BASE)).toBe(0x0f0f_ffff_ffff_f000n);
    r.reg64(REG_EXCL_BASE, BigInt(CWB) | 3n);
    r.reg64(REG_EXCL_LIMIT, BigInt(CWB) | 0xfffn);
    expect(r.read64(REG_EXCL_BASE)).toBe(BigInt(CWB) | 3n);
    expect(r.read64(REG_EXCL_LIMIT)).toBe(BigInt(CWB));
  });

  it('composes a 64-bit register from two 32-bit writes, as the kernel programs DevTabBase', () => {
    const r = new Rig();
    const v = devTabBaseValue(0x1_2345_6000, 8192);
    r.reg32(REG_DEV_TAB_BASE, Number(v & 0xffff_ffffn));
    expect(r.read64(REG_DEV_TAB_BASE)).toBe(v & 0xffff_ffffn);
    r.reg32(REG_DEV_TAB_BASE + 4, Number(v >> 32n));
    expect(r.read64(REG_DEV_TAB_BASE)).toBe(v);
    // And reads come back in halves too.
    expect(r.m.mmio.read(r.base + REG_DEV_TAB_BASE, 4)).toBe(v & 0xffff_ffffn);
    expect(r.m.mmio.read(r.base + REG_DEV_TAB_BASE + 4, 4)).toBe(v >> 32n);
    // A write to the high half leaves the low half alone.
    r.reg32(REG_DEV_TAB_BASE + 4, 0);
    expect(r.read64(REG_DEV_TAB_BASE)).toBe(v & 0xffff_ffffn);
  });

  it('stores every Control bit and reports the run bits in Status', () => {
    const r = new Rig();
    const ctl = CTRL_IOMMU_EN | CTRL_CMD_BUF_EN | CTRL_EVENT_LOG_EN | (4n << CTRL_INV_TIMEOUT_SHIFT) | (1n << 50n) | (1n << 59n);
    r.reg64(REG_CONTROL, ctl);
    expect(r.read64(REG_CONTROL)).toBe(ctl);
    const s = r.read64(REG_STATUS);
    expect(s & STATUS_CMD_BUF_RUN).toBe(STATUS_CMD_BUF_RUN);
    expect(s & STATUS_EVENT_LOG_RUN).toBe(STATUS_EVENT_LOG_RUN);
    r.reg64(REG_CONTROL, CTRL_IOMMU_EN);
    expect(r.read64(REG_STATUS) & (STATUS_CMD_BUF_RUN | STATUS_EVENT_LOG_RUN)).toBe(0n);
    // Run bits are read-only: writing them does nothing.
    r.reg64(REG_STATUS, STATUS_CMD_BUF_RUN);
    expect(r.read64(REG_STATUS) & STATUS_CMD_BUF_RUN).toBe(0n);
  });

  it('reports the configured EFR read-only', () => {
    expect(new Rig().read64(REG_EFR)).toBe(DEFAULT_EFR);
    const r = new Rig({ spec: { efr: 0x40n } });
    r.reg64(REG_EFR, 0n);
    expect(r.read64(REG_EFR)).toBe(0x40n);
    expect(r.iommu.snpSupported).toBe(false);
  });

  it('sets ComWaitInt on a completion wait with I and clears it on a write of 1', () => {
    const r = new Rig();
    const causes: string[] = [];
    const r2 = new Rig({ spec: { onInterrupt: (c) => causes.push(c) } });
    for (const x of [r, r2]) {
      x.enable(x === r2 ? 1n << 4n : 0n);
      x.submit({ op: 'completion-wait', store: false, interrupt: true, flush: false, address: 0, data: 0n });
      expect(x.read64(REG_STATUS) & STATUS_COM_WAIT_INT).toBe(0n); // not yet: the command takes virtual time
      x.settle();
      expect(x.read64(REG_STATUS) & STATUS_COM_WAIT_INT).toBe(STATUS_COM_WAIT_INT);
      x.reg32(REG_STATUS, Number(STATUS_COM_WAIT_INT));
      expect(x.read64(REG_STATUS) & STATUS_COM_WAIT_INT).toBe(0n);
    }
    expect(causes).toEqual(['completion-wait']); // only where ComWaitIntEn was set
  });

  it('keeps head and tail to bits 18:4 and stores registers it does not model', () => {
    const r = new Rig();
    r.reg64(REG_CMD_BUF_HEAD, 0xffff_ffffn);
    expect(r.read64(REG_CMD_BUF_HEAD)).toBe(0x7_fff0n);
    r.reg64(REG_CMD_BUF_TAIL, 0x123n);
    expect(r.read64(REG_CMD_BUF_TAIL)).toBe(0x120n);
    r.reg64(0x38, 0xdead_beef_0000n); // PPR log base
    expect(r.read64(0x38)).toBe(0xdead_beef_0000n);
    expect(r.m.mmio.read(r.base + AMD_IOMMU_MMIO_SIZE - 8, 8)).toBe(0n);
  });

  it('traces base-register writes with the register name', () => {
    const r = new Rig();
    r.enable();
    const w = r.m.trace.find('iommu-reg-write', 'iommu0').map((e) => e.data?.['reg']);
    expect(w).toEqual(expect.arrayContaining(['DevTabBase', 'CmdBufBase', 'EventLogBase', 'CompletionStoreBase', 'CompletionStoreLimit', 'Control']));
  });
});
