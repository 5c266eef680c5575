import { describe, it, expect } from 'vitest';
import { NS_PER_US, NS_PER_MS } from '../../../src/platform/clock.js';
import { PSP_CMDRESP, CMDRESP_RESP, CMDRESP_CMD_SHIFT } from '../../../src/platform/psp/psp-mailbox.js';
import {
  SEV_CMD_PLATFORM_STATUS, SEV_CMD_SNP_PLATFORM_STATUS, SEV_CMD_SNP_INIT_EX, SEV_RET_SUCCESS, SEV_STATE_UNINIT,
  SNP_INIT_EX_INIT_RMP, SEV_RET_INVALID_COMMAND, SEV_CMD_SNP_DF_FLUSH,
} from '../../../src/platform/psp/sev-codes.js';
import { SEV_COMMAND_DELAY_NS } from '../../../src/platform/psp/sev-firmware.js';
import { rig, MMIO_BASE, BUF_PA, addrBuf, initExBuf } from './rig.js';

describe('PSP mailbox', () => {
  it('round-trips PLATFORM_STATUS through MMIO and memory: not done before the delay, done after', () => {
    const r = rig({ major: 1, minor: 55 });
    r.mc.write(BUF_PA, new Uint8Array(12).fill(0xaa), { kind: 'cpu', id: 0 });
    r.start(SEV_CMD_PLATFORM_STATUS);
    const delay = SEV_COMMAND_DELAY_NS[SEV_CMD_PLATFORM_STATUS]!;
    expect(delay).toBeGreaterThan(0);

    r.clock.advance(delay - 1);
    const busy = Number(r.bus.read(MMIO_BASE + PSP_CMDRESP));
    expect(busy & CMDRESP_RESP).toBe(0);
    expect((busy >>> CMDRESP_CMD_SHIFT) & 0x7ff).toBe(SEV_CMD_PLATFORM_STATUS);
    const before = new Uint8Array(12);
    r.mc.read(BUF_PA, before);
    expect(before[0]).toBe(0xaa); // output not written yet

    r.clock.advance(1);
    const done = Number(r.bus.read(MMIO_BASE + PSP_CMDRESP));
    expect(done & CMDRESP_RESP).not.toBe(0);
    expect(done & 0xffff).toBe(SEV_RET_SUCCESS);
    const out = new Uint8Array(12);
    r.mc.read(BUF_PA, out);
    expect([out[0], out[1], out[2], out[7]]).toEqual([1, 55, SEV_STATE_UNINIT, 7]);
    expect(r.irqs).toBe(0);
    const ev = r.trace.find('psp-command', 'psp');
    expect(ev.map((e) => e.detail)).toEqual(['PLATFORM_STATUS -> SUCCESS (0x0)']);
  });

  it('takes longer for SNP_INIT_EX than for a status query, and a poll loop with interrupts off sees it finish', () => {
    const r = rig();
    const t0 = r.clock.now;
    expect(r.run(SEV_CMD_SNP_INIT_EX, initExBuf(SNP_INIT_EX_INIT_RMP))).toBe(SEV_RET_SUCCESS);
    expect(r.clock.now - t0).toBeGreaterThanOrEqual(SEV_COMMAND_DELAY_NS[SEV_CMD_SNP_INIT_EX]!);
    expect(r.clock.now - t0).toBeGreaterThanOrEqual(1 * NS_PER_MS);
    const t1 = r.clock.now;
    r.run(SEV_CMD_SNP_PLATFORM_STATUS, addrBuf(0x20_0000));
    expect(r.clock.now - t1).toBeLessThan(1 * NS_PER_MS);
    const st = new Uint8Array(32);
    r.mc.read(0x20_0000, st);
    expect([st[2], st[3]]).toEqual([1, 1]); // SNP initialized, RMP initialized
  });

  it('raises the completion callback only when IOC was requested', () => {
    const r = rig();
    r.run(SEV_CMD_PLATFORM_STATUS);
    expect(r.irqs).toBe(0);
    r.run(SEV_CMD_PLATFORM_STATUS, undefined, { ioc: true });
    expect(r.irqs).toBe(1);
    expect(r.trace.find('psp-irq')).toHaveLength(1);
  });

  it('ignores a doorbell while a command is in flight', () => {
    const r = rig();
    r.start(SEV_CMD_SNP_INIT_EX, initExBuf(SNP_INIT_EX_INIT_RMP));
    r.clock.advance(10 * NS_PER_US);
    r.start(SEV_CMD_SNP_DF_FLUSH);
    expect(r.trace.find('psp-busy')).toHaveLength(1);
    expect(r.poll()).toBe(SEV_RET_SUCCESS);
    expect(r.fw.commandsExecuted).toBe(1);
  });

  it('answers an unknown command id with INVALID_COMMAND', () => {
    const r = rig();
    expect(r.run(0x7f)).toBe(SEV_RET_INVALID_COMMAND);
  });

  it('reset puts CMDRESP back to ready and drops a completion from before the reset', () => {
    const r = rig();
    r.start(SEV_CMD_SNP_INIT_EX, initExBuf(SNP_INIT_EX_INIT_RMP));
    r.mailbox.reset();
    expect(r.mailbox.busy).toBe(false);
    r.clock.advance(100 * NS_PER_MS);
    expect(Number(r.bus.read(MMIO_BASE + PSP_CMDRESP))).toBe(CMDRESP_RESP);
  });
});
