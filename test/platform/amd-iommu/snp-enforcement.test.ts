import { describe, it, expect } from 'vitest';
import { Rig, CWB, CMD_BUF, DEV_TAB, DEV_TAB_BYTES, EVENT_LOG, DEVID, HOST, CMD_ENTRIES, EVENT_ENTRIES } from './rig.js';
import { encodeCommand } from '../../../src/platform/amd-iommu/command-buffer.js';
import {
  REG_CMD_BUF_BASE, REG_CMD_BUF_HEAD, REG_CMD_BUF_TAIL, REG_CONTROL, REG_DEV_TAB_BASE, REG_EVENT_LOG_BASE, REG_EXCL_BASE, REG_EXCL_LIMIT,
  CTRL_IOMMU_EN, CTRL_CMD_BUF_EN, CTRL_EVENT_LOG_EN, DEFAULT_EFR, EFR_SNP_SUP, devTabBaseValue, ringBaseValue,
} from '../../../src/platform/amd-iommu/registers.js';

const NEW_CMD_BUF = 0x28_0000;
const NEW_CWB = 0x29_0000;
const NEW_DEV_TAB = 0x30_0000;

/** An IOMMU as the first kernel left it: enabled, one completion wait done, then SNP_INIT enforcement. */
function enforcedRig(): Rig {
  const r = new Rig();
  r.enable();
  r.completionWait(CWB, 1n);
  r.settle();
  expect(r.iommu.snpEnforce()).toBe(true);
  return r;
}

/** What a pre-6.18 kdump kernel does: new buffers programmed, head/tail reset, command buffer on. */
function crashKernelReprograms(r: Rig): void {
  r.reg64(REG_CONTROL, CTRL_IOMMU_EN | CTRL_EVENT_LOG_EN);
  r.reg32(REG_CMD_BUF_BASE, Number(ringBaseValue(NEW_CMD_BUF, CMD_ENTRIES) & 0xffff_ffffn));
  r.reg32(REG_CMD_BUF_BASE + 4, Number(ringBaseValue(NEW_CMD_BUF, CMD_ENTRIES) >> 32n));
  r.reg64(REG_EXCL_BASE, BigInt(NEW_CWB));
  r.reg64(REG_EXCL_LIMIT, BigInt(NEW_CWB));
  r.reg64(REG_CMD_BUF_HEAD, 0n);
  r.reg64(REG_CMD_BUF_TAIL, 0n);
  r.reg64(REG_CONTROL, CTRL_IOMMU_EN | CTRL_EVENT_LOG_EN | CTRL_CMD_BUF_EN);
  r.ring = NEW_CMD_BUF;
  r.resetDriverTail();
}

describe('AMD IOMMU under SNP enforcement', () => {
  it('ignores a new Command Buffer Base and keeps fetching from the old ring, so the new semaphore is never written', () => {
    const r = enforcedRig();
    crashKernelReprograms(r);
    // Both 32-bit halves were ignored and traced with the register name and the rejected value.
    const ignored = r.m.trace.find('iommu-reg-write-ignored');
    expect(ignored.map((e) => e.data?.['reg'])).toEqual(['CmdBufBase', 'CmdBufBase', 'CompletionStoreBase', 'CompletionStoreLimit']);
    expect(ignored[0]!.data).toMatchObject({ written: `0x${NEW_CMD_BUF.toString(16)}`, size: 4 });
    expect(ignored[1]!.data).toMatchObject({ written: '0x900000000000000', size: 4 });
    expect(r.read64(REG_CMD_BUF_BASE)).toBe(ringBaseValue(CMD_BUF, CMD_ENTRIES));
    // The crash kernel queues its completion wait in its new ring and polls its new semaphore.
    r.completionWait(NEW_CWB, 1n);
    r.settle();
    expect(r.qword(NEW_CWB)).toBe(0n);
    // The hardware ran what sat at offset 0 of the old ring: the first kernel's completion wait, to the old semaphore.
    const cmd = r.m.trace.find('iommu-cmd').at(-1)!;
    expect(cmd.data).toMatchObject({ op: 'COMPLETION_WAIT', ringBase: CMD_BUF, head: 0, storeAddr: CWB });
    expect(r.m.trace.find('iommu-completion-store').at(-1)!.data).toMatchObject({ pa: CWB });
  });

  it('drops a completion store outside the completion-store window, and lets one inside land', () => {
    const r = enforcedRig();
    r.completionWait(NEW_CWB, 7n);
    r.completionWait(CWB + 8, 8n);
    r.settle();
    expect(r.qword(NEW_CWB)).toBe(0n);
    expect(r.qword(CWB + 8)).toBe(8n);
    const dropped = r.m.trace.find('iommu-completion-store-dropped');
    expect(dropped).toHaveLength(1);
    expect(dropped[0]!.data).toMatchObject({ pa: NEW_CWB, windowBase: `0x${CWB.toString(16)}` });
  });

  it('keeps the old device table when DevTabBase is rewritten, and the event log where it was', () => {
    const r = new Rig();
    const root = r.newTable();
    r.translatingDte(root);
    r.map(root, 0x1000, Rig.leaf(0x40_0000));
    r.enable();
    r.iommu.snpEnforce();
    r.reg64(REG_DEV_TAB_BASE, devTabBaseValue(NEW_DEV_TAB, DEV_TAB_BYTES));
    r.reg64(REG_EVENT_LOG_BASE, ringBaseValue(0x2a_0000, EVENT_ENTRIES));
    expect(r.read64(REG_DEV_TAB_BASE)).toBe(devTabBaseValue(DEV_TAB, DEV_TAB_BYTES));
    r.setDte(DEVID, { valid: true, translationValid: true, mode: 0, domainId: 9 }, NEW_DEV_TAB); // the new table blocks DMA
    r.submit({ op: 'invalidate-iommu-all' });
    r.settle();
    expect(r.dma.write('nic0', 0x1000, new Uint8Array(4).fill(1))).toEqual({ ok: true, pa: 0x40_0000 });
    expect(r.m.trace.find('iommu-dte-fetch').at(-1)!.data).toMatchObject({ addr: DEV_TAB + DEVID * 32 });
    r.dma.write('nic0', 0x9000, new Uint8Array(4));
    expect(r.events()[0]).toMatchObject({ name: 'IO_PAGE_FAULT', address: 0x9000 }); // read from the old log at EVENT_LOG
    expect(r.bytes(0x2a_0000, 16)).toEqual(new Uint8Array(16));
    expect(r.qword(EVENT_LOG + 8)).toBe(0x9000n);
  });

  it('lists the PFNs only the IOMMU writes: event log and completion-store page (not the device table or command buffer)', () => {
    const r = enforcedRig();
    const pfns = r.iommu.snpBufferPfns();
    const range = (pa: number, bytes: number): number[] => Array.from({ length: bytes / 4096 }, (_, i) => pa / 4096 + i);
    expect(pfns).toEqual([...range(EVENT_LOG, EVENT_ENTRIES * 16), CWB / 4096].sort((a, b) => a - b));
    expect(pfns).not.toContain(DEV_TAB / 4096);
    expect(pfns).not.toContain(CMD_BUF / 4096);
    expect(new Rig().iommu.snpBufferPfns()).toEqual([]); // nothing programmed, nothing to protect
  });

  it('lifts the lock at snpShutdown: new bases take effect and stores reach the new semaphore', () => {
    const r = enforcedRig();
    r.iommu.snpShutdown();
    expect(r.m.trace.find('iommu-snp-shutdown')[0]!.data).toMatchObject({ wasEnforced: true });
    crashKernelReprograms(r);
    expect(r.m.trace.find('iommu-reg-write-ignored')).toEqual([]);
    r.completionWait(NEW_CWB, 1n);
    r.settle();
    expect(r.qword(NEW_CWB)).toBe(1n);
    expect(r.m.trace.find('iommu-cmd').at(-1)!.data).toMatchObject({ ringBase: NEW_CMD_BUF });
  });

  it('leaves head, tail and Control writable under enforcement', () => {
    const r = enforcedRig();
    r.reg64(REG_CONTROL, CTRL_IOMMU_EN);
    r.reg64(REG_CMD_BUF_HEAD, 0x40n);
    r.reg64(REG_CMD_BUF_TAIL, 0x40n);
    expect([r.read64(REG_CONTROL), r.read64(REG_CMD_BUF_HEAD), r.read64(REG_CMD_BUF_TAIL)]).toEqual([CTRL_IOMMU_EN, 0x40n, 0x40n]);
  });

  it('refuses enforcement on a part without SNPSup', () => {
    const r = new Rig({ spec: { efr: DEFAULT_EFR & ~EFR_SNP_SUP } });
    r.enable();
    expect(r.iommu.snpEnforce()).toBe(false);
    expect(r.iommu.snpEnforced).toBe(false);
    r.reg64(REG_CMD_BUF_BASE, ringBaseValue(NEW_CMD_BUF, CMD_ENTRIES));
    expect(r.read64(REG_CMD_BUF_BASE)).toBe(ringBaseValue(NEW_CMD_BUF, CMD_ENTRIES));
  });

  it('writes completion stores to the window page even when the RMP makes it firmware-owned', async () => {
    const { snpMachine, enableSnp } = await import('../snp/helpers.js');
    const { writeRmpEntry, EMPTY_RMP_ENTRY } = await import('../../../src/platform/snp/rmp.js');
    const m = snpMachine({ cpus: 1 });
    const r = new Rig({ machine: m });
    r.enable();
    enableSnp(m);
    r.iommu.snpEnforce();
    // A completion wait already in the ring when the buffers become firmware-owned.
    m.mc.write(CMD_BUF, encodeCommand({ op: 'completion-wait', store: true, interrupt: false, flush: false, address: CWB, data: 3n }), HOST);
    for (const pfn of r.iommu.snpBufferPfns()) writeRmpEntry(m.mc, m.rmp!, pfn, { ...EMPTY_RMP_ENTRY, assigned: true, immutable: true });
    expect(m.mc.write(CWB, new Uint8Array(8), HOST).ok).toBe(false); // the CPU may not write the semaphore page now
    r.reg64(REG_CMD_BUF_TAIL, 16n);
    r.settle();
    expect(r.qword(CWB)).toBe(3n); // the IOMMU may
    expect(m.trace.find('iommu-completion-store')).toHaveLength(1);
  });
});
