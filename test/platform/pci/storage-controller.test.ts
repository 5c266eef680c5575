import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../src/platform/clock.js';
import { Trace } from '../../../src/platform/trace.js';
import type { DmaPort } from '../../../src/platform/dma-port.js';
import {
  StorageController, factorySector, DESC_BUF, DESC_LBA, DESC_LEN, DESC_OP, DESC_STATUS, OP_READ, OP_WRITE, STAT_DONE,
  STC_CTRL, STC_CTRL_EN, STC_CTRL_RST, STC_DESC_SIZE, STC_QBAL, STC_QLEN, STC_QTAIL,
} from '../../../src/platform/pci/storage-controller.js';

/** A flat 1 MiB memory the device DMAs into directly. */
function setup(rate = 1_000_000) {
  const clock = new VirtualClock();
  const trace = new Trace(clock);
  const mem = new Uint8Array(1 << 20);
  const dma: DmaPort = {
    write: (_d, a, data) => { mem.set(data, a); return { ok: true, pa: a }; },
    read: (_d, a, dst) => { dst.set(mem.subarray(a, a + dst.length)); return { ok: true, pa: a }; },
  };
  const sc = new StorageController({ name: 'disk0', bdf: '00:04.0', bytesPerSecond: rate, seed: 3 }, clock, dma, trace);
  return { clock, mem, sc };
}

function desc(mem: Uint8Array, at: number, lba: number, len: number, op: number, buf: number): void {
  const dv = new DataView(mem.buffer, at, STC_DESC_SIZE);
  dv.setBigUint64(DESC_LBA, BigInt(lba), true);
  dv.setUint32(DESC_LEN, len, true);
  mem[at + DESC_OP] = op;
  dv.setBigUint64(DESC_BUF, BigInt(buf), true);
}

describe('storage controller', () => {
  it('reads DMA disk sectors into the buffer, writes DMA the buffer onto the disk, each after its transfer time', () => {
    const { clock, mem, sc } = setup();
    const q = 0x1000;
    desc(mem, q, 10, 1024, OP_READ, 0x10000);
    mem.fill(0xab, 0x20000, 0x20000 + 512);
    desc(mem, q + STC_DESC_SIZE, 40, 512, OP_WRITE, 0x20000);
    sc.mmioWrite(STC_QBAL, 4, BigInt(q));
    sc.mmioWrite(STC_QLEN, 4, 4n);
    sc.mmioWrite(STC_CTRL, 4, BigInt(STC_CTRL_EN));
    sc.mmioWrite(STC_QTAIL, 4, 2n);
    clock.advance(sc.transferNs(1024) - 1);
    expect(mem[q + DESC_STATUS]).toBe(0);
    clock.advance(1);
    expect(mem[q + DESC_STATUS]).toBe(STAT_DONE);
    expect(mem.subarray(0x10000, 0x10200)).toEqual(factorySector(3, 10));
    expect(mem.subarray(0x10200, 0x10400)).toEqual(factorySector(3, 11));
    clock.advance(sc.transferNs(512));
    expect(mem[q + STC_DESC_SIZE + DESC_STATUS]).toBe(STAT_DONE);
    expect(sc.sector(40)).toEqual(new Uint8Array(512).fill(0xab));
    expect(sc.qhead).toBe(2);
    // Idle at head == tail: nothing more happens.
    clock.advance(10_000_000);
    expect(sc.commandsDone).toBe(2);
  });

  it('a reset stops the queue; what was queued is never done', () => {
    const { clock, mem, sc } = setup();
    for (let i = 0; i < 3; i++) desc(mem, 0x1000 + i * STC_DESC_SIZE, i, 512, OP_READ, 0x10000);
    sc.mmioWrite(STC_QBAL, 4, 0x1000n);
    sc.mmioWrite(STC_QLEN, 4, 4n);
    sc.mmioWrite(STC_CTRL, 4, BigInt(STC_CTRL_EN));
    sc.mmioWrite(STC_QTAIL, 4, 3n);
    clock.advance(sc.transferNs(512));
    sc.mmioWrite(STC_CTRL, 4, BigInt(STC_CTRL_RST));
    clock.advance(10_000_000);
    expect(sc.commandsDone).toBe(1);
  });

  it('its firmware writes a status record into its region at the region\'s own address, on its own clock', () => {
    const clock = new VirtualClock();
    const trace = new Trace(clock);
    const writes: number[] = [];
    const dma: DmaPort = { write: (_d, a) => { writes.push(a); return { ok: true, pa: a }; }, read: (_d, a) => ({ ok: true, pa: a }) };
    const sc = new StorageController({ name: 'disk0', bdf: '00:04.0', bytesPerSecond: 1e6, seed: 1, firmwareRegion: { base: 0xe8000, size: 4096, intervalNs: 1_000_000 } }, clock, dma, trace);
    clock.advance(5_000_000);
    expect(writes).toEqual([0xe8000, 0xe8000, 0xe8000, 0xe8000, 0xe8000]);
    expect(sc.firmwareWrites).toBe(5);
  });
});
