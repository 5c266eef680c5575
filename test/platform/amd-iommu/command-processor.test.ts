import { describe, it, expect } from 'vitest';
import { Rig, CWB, CMD_BUF, CMD_ENTRIES, EVENT_ENTRIES, DEVID, HOST } from './rig.js';
import { encodeCommand } from '../../../src/platform/amd-iommu/command-buffer.js';
import { COMMAND_DELAY_NS } from '../../../src/platform/amd-iommu/command-processor.js';
import { EV_ILLEGAL_COMMAND_ERROR, EV_IO_PAGE_FAULT } from '../../../src/platform/amd-iommu/event-log.js';
import {
  REG_CMD_BUF_HEAD, REG_CMD_BUF_TAIL, REG_CONTROL, REG_STATUS, REG_EVENT_LOG_HEAD, REG_EVENT_LOG_TAIL,
  CTRL_IOMMU_EN, CTRL_CMD_BUF_EN, CTRL_EVENT_LOG_EN, STATUS_CMD_BUF_RUN, STATUS_EVENT_OVERFLOW, STATUS_EVENT_LOG_RUN, DEFAULT_EFR, EFR_IA_SUP,
} from '../../../src/platform/amd-iommu/registers.js';

describe('AMD IOMMU command processor', () => {
  it('stores the COMPLETION_WAIT semaphore only after the command runs in virtual time', () => {
    const r = new Rig();
    r.enable();
    r.completionWait(CWB, 0x1234_5678_9abc_def0n);
    expect(r.qword(CWB)).toBe(0n);
    expect(r.read64(REG_CMD_BUF_HEAD)).toBe(0n);
    r.m.clock.advance(COMMAND_DELAY_NS);
    expect(r.qword(CWB)).toBe(0x1234_5678_9abc_def0n);
    expect(r.read64(REG_CMD_BUF_HEAD)).toBe(16n);
    const [cmd] = r.m.trace.find('iommu-cmd');
    expect(cmd!.data).toMatchObject({ op: 'COMPLETION_WAIT', ringBase: CMD_BUF, head: 0, storeAddr: CWB });
    expect(r.m.trace.find('iommu-completion-store')[0]!.data).toMatchObject({ pa: CWB, data: '0x123456789abcdef0' });
  });

  it('runs queued commands one per delay, in order, advancing head', () => {
    const r = new Rig();
    r.enable();
    r.submit({ op: 'invalidate-devtab-entry', devid: 1 }, { op: 'invalidate-interrupt-table', devid: 1 });
    r.completionWait(CWB, 1n);
    r.m.clock.advance(2 * COMMAND_DELAY_NS);
    expect(r.read64(REG_CMD_BUF_HEAD)).toBe(32n);
    expect(r.qword(CWB)).toBe(0n);
    r.m.clock.advance(COMMAND_DELAY_NS);
    expect(r.qword(CWB)).toBe(1n);
    expect(r.m.trace.find('iommu-cmd').map((e) => e.data?.['op'])).toEqual(['INVALIDATE_DEVTAB_ENTRY', 'INVALIDATE_INTERRUPT_TABLE', 'COMPLETION_WAIT']);
  });

  it('does not fetch while CmdBufEn or IommuEn is clear, and resumes when both are set', () => {
    const r = new Rig();
    r.enable();
    r.reg64(REG_CONTROL, CTRL_CMD_BUF_EN);
    r.completionWait(CWB, 5n);
    r.settle();
    expect(r.qword(CWB)).toBe(0n);
    expect(r.read64(REG_STATUS) & STATUS_CMD_BUF_RUN).toBe(0n);
    r.reg64(REG_CONTROL, CTRL_CMD_BUF_EN | CTRL_IOMMU_EN);
    r.settle();
    expect(r.qword(CWB)).toBe(5n);
  });

  it('wraps at the end of the ring', () => {
    const r = new Rig();
    r.enable();
    const last = (CMD_ENTRIES - 1) * 16;
    // Pretend the driver has used the whole ring once.
    r.reg64(REG_CONTROL, CTRL_IOMMU_EN);
    r.reg64(REG_CMD_BUF_HEAD, BigInt(last));
    r.reg64(REG_CMD_BUF_TAIL, BigInt(last));
    r.reg64(REG_CONTROL, CTRL_IOMMU_EN | CTRL_CMD_BUF_EN);
    r.m.mc.write(CMD_BUF + last, encodeCommand({ op: 'completion-wait', store: true, interrupt: false, flush: false, address: CWB, data: 1n }), HOST);
    r.m.mc.write(CMD_BUF, encodeCommand({ op: 'completion-wait', store: true, interrupt: false, flush: false, address: CWB + 8, data: 2n }), HOST);
    r.reg64(REG_CMD_BUF_TAIL, 16n);
    r.settle();
    expect([r.qword(CWB), r.qword(CWB + 8)]).toEqual([1n, 2n]);
    expect(r.read64(REG_CMD_BUF_HEAD)).toBe(16n);
  });

  it('stops on an unknown opcode with ILLEGAL_COMMAND_ERROR, head on the bad command, until CmdBufEn is set again', () => {
    const r = new Rig();
    r.enable();
    r.submit({ op: 'no-effect', opcode: 0xf });
    r.completionWait(CWB, 9n);
    r.settle();
    expect(r.read64(REG_STATUS) & STATUS_CMD_BUF_RUN).toBe(0n);
    expect(r.read64(REG_CMD_BUF_HEAD)).toBe(0n);
    expect(r.qword(CWB)).toBe(0n);
    expect(r.events()).toEqual([expect.objectContaining({ type: EV_ILLEGAL_COMMAND_ERROR, address: CMD_BUF })]);
    expect(r.m.trace.find('iommu-illegal-command')).toHaveLength(1);
    // The driver overwrites the bad entry and toggles CmdBufEn.
    r.m.mc.write(CMD_BUF, encodeCommand({ op: 'invalidate-iommu-all' }), HOST);
    r.reg64(REG_CONTROL, CTRL_IOMMU_EN | CTRL_EVENT_LOG_EN);
    r.reg64(REG_CONTROL, CTRL_IOMMU_EN | CTRL_EVENT_LOG_EN | CTRL_CMD_BUF_EN);
    r.settle();
    expect(r.qword(CWB)).toBe(9n);
  });

  it('treats INVALIDATE_IOMMU_ALL as illegal on a part without IASup', () => {
    const r = new Rig({ spec: { efr: DEFAULT_EFR & ~EFR_IA_SUP } });
    r.enable();
    r.submit({ op: 'invalidate-iommu-all' });
    r.settle();
    expect(r.events().map((e) => e.name)).toEqual(['ILLEGAL_COMMAND_ERROR']);
  });

  it('INVALIDATE_IOMMU_ALL drops DTE, IOTLB and IRTE caches', () => {
    const r = new Rig();
    const root = r.newTable();
    r.translatingDte(root);
    r.map(root, 0x1000, Rig.leaf(0x30_0000));
    r.enable();
    r.dma.write('nic0', 0x1000, new Uint8Array(4));
    expect([r.iommu.dteCacheSize, r.iommu.iotlb.size]).toEqual([1, 1]);
    r.submit({ op: 'invalidate-iommu-all' });
    r.settle();
    expect([r.iommu.dteCacheSize, r.iommu.iotlb.size]).toEqual([0, 0]);
  });

  it('overflows the event log when full: EventOverflow set, logging stops until EventLogEn is set again', () => {
    const r = new Rig();
    const root = r.newTable();
    r.translatingDte(root);
    r.enable();
    for (let i = 0; i < EVENT_ENTRIES; i++) r.dma.write('nic0', i * 4096, new Uint8Array(4));
    expect(r.read64(REG_EVENT_LOG_TAIL)).toBe(BigInt((EVENT_ENTRIES - 1) * 16));
    const s = r.read64(REG_STATUS);
    expect(s & STATUS_EVENT_OVERFLOW).toBe(STATUS_EVENT_OVERFLOW);
    expect(s & STATUS_EVENT_LOG_RUN).toBe(0n);
    expect(r.m.trace.find('iommu-event-overflow')).toHaveLength(1);
    expect(r.events().every((e) => e.type === EV_IO_PAGE_FAULT && e.devid === DEVID)).toBe(true);
    // The driver consumes everything and restarts the log.
    r.reg64(REG_EVENT_LOG_HEAD, r.read64(REG_EVENT_LOG_TAIL));
    r.reg32(REG_STATUS, Number(STATUS_EVENT_OVERFLOW));
    r.reg64(REG_CONTROL, CTRL_IOMMU_EN | CTRL_CMD_BUF_EN);
    r.reg64(REG_CONTROL, CTRL_IOMMU_EN | CTRL_CMD_BUF_EN | CTRL_EVENT_LOG_EN);
    r.dma.write('nic0', 0x999_000, new Uint8Array(4));
    expect(r.read64(REG_EVENT_LOG_TAIL)).toBe(0n); // wrapped: the entry went into the last slot
    expect(r.m.trace.find('iommu-event').at(-1)!.data).toMatchObject({ address: 0x999_000 });
  });

  it('drops events while the log is off, tracing them', () => {
    const r = new Rig();
    const root = r.newTable();
    r.translatingDte(root);
    r.enable();
    r.reg64(REG_CONTROL, CTRL_IOMMU_EN | CTRL_CMD_BUF_EN);
    r.dma.write('nic0', 0x5000, new Uint8Array(4));
    expect(r.read64(REG_EVENT_LOG_TAIL)).toBe(0n);
    expect(r.m.trace.find('iommu-event-dropped')[0]!.data).toMatchObject({ name: 'IO_PAGE_FAULT', reason: 'log-not-running' });
  });

  it('ignores head/tail moves of the event log tail while the log runs', () => {
    const r = new Rig();
    r.enable();
    r.reg64(REG_EVENT_LOG_TAIL, 0x40n);
    expect(r.read64(REG_EVENT_LOG_TAIL)).toBe(0n);
    expect(r.read64(REG_CMD_BUF_TAIL)).toBe(0n);
  });
});
