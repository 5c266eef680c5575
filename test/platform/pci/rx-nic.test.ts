import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { VirtualClock } from '../../../src/platform/clock.js';
import { Trace } from '../../../src/platform/trace.js';
import { PhysicalMemory } from '../../../src/platform/physical-memory.js';
import { MemoryController } from '../../../src/platform/memory-controller.js';
import { DirectDma } from '../../../src/platform/dma-port.js';
import {
  RxNic, packetBytes,
  NIC_CTRL, NIC_STATUS, NIC_RDBAL, NIC_RDBAH, NIC_RDLEN, NIC_RDH, NIC_RDT,
  CTRL_RXEN, CTRL_RST, RX_DESC_SIZE, RXD_STAT_DD, RXD_STAT_EOP,
} from '../../../src/platform/pci/rx-nic.js';

const IV = 1000; // ns between packets
const PKT = 256; // bytes per packet
const BUF = 512; // bytes per buffer
const SEED = 42;

interface Rig {
  clock: VirtualClock;
  trace: Trace;
  mc: MemoryController;
  nic: RxNic;
  ring: number;
  bufs: number;
  entries: number;
  /** Device writes seen by the memory controller. */
  dmaWrites: { pa: number; length: number }[];
  reg(off: number, v: number): void;
  read(off: number): number;
}

/** A NIC on a bare memory controller, its ring of `entries` descriptors at `ring` pointing at buffers from `bufs` (may be above 4 GiB). */
function rig(entries = 8, ring = 0x1_0000, bufs = 0x2_0000, memBytes = 2 ** 24): Rig {
  const clock = new VirtualClock();
  const trace = new Trace(clock);
  const mc = new MemoryController(new PhysicalMemory(memBytes));
  const dmaWrites: { pa: number; length: number }[] = [];
  mc.addWriteObserver((pa, length, who) => {
    if (who.kind === 'device') dmaWrites.push({ pa, length });
  });
  const nic = new RxNic({ name: 'nic0', bdf: '0000:03:00.0', packetIntervalNs: IV, packetBytes: PKT, seed: SEED }, clock, new DirectDma(mc), trace);
  const desc = new Uint8Array(entries * RX_DESC_SIZE);
  const dv = new DataView(desc.buffer);
  for (let i = 0; i < entries; i++) {
    const a = bufs + i * BUF;
    dv.setUint32(i * RX_DESC_SIZE, a % 2 ** 32, true);
    dv.setUint32(i * RX_DESC_SIZE + 4, Math.floor(a / 2 ** 32), true);
  }
  mc.write(ring, desc, { kind: 'cpu', id: 0 });
  const r: Rig = {
    clock, trace, mc, nic, ring, bufs, entries, dmaWrites,
    reg: (off, v) => nic.mmioWrite(off, 4, BigInt(v)),
    read: (off) => Number(nic.mmioRead(off)),
  };
  return r;
}

/** Programs the ring as a driver does: all but one descriptor handed to the device, receiver on. */
function start(r: Rig, tail = r.entries - 1): void {
  r.reg(NIC_RDBAL, r.ring % 2 ** 32);
  r.reg(NIC_RDBAH, Math.floor(r.ring / 2 ** 32));
  r.reg(NIC_RDLEN, r.entries * RX_DESC_SIZE);
  r.reg(NIC_RDH, 0);
  r.reg(NIC_RDT, tail);
  r.reg(NIC_CTRL, CTRL_RXEN);
}

function descriptor(r: Rig, i: number): { buf: number; length: number; status: number } {
  const d = new Uint8Array(RX_DESC_SIZE);
  r.mc.read(r.ring + i * RX_DESC_SIZE, d);
  const dv = new DataView(d.buffer);
  return { buf: dv.getUint32(0, true) + dv.getUint32(4, true) * 2 ** 32, length: dv.getUint16(8, true), status: d[12]! };
}

function buffer(r: Rig, i: number, n = PKT): Uint8Array {
  const b = new Uint8Array(n);
  r.mc.read(r.bufs + i * BUF, b);
  return b;
}

/** The driver cleans the `count` descriptors after RDT: clears DD, then hands them back by moving RDT. */
function recycle(r: Rig, count: number): void {
  const tail = r.read(NIC_RDT);
  for (let k = 1; k <= count; k++) {
    const i = (tail + k) % r.entries;
    r.mc.write(r.ring + i * RX_DESC_SIZE + 12, Uint8Array.of(0), { kind: 'cpu', id: 0 });
  }
  r.reg(NIC_RDT, (tail + count) % r.entries);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

describe('RxNic', () => {
  it('reads back what the driver programs', () => {
    const r = rig(8, 0x1_2345_6000, 0x2_0000, 2 ** 34);
    start(r);
    expect(r.read(NIC_RDBAL)).toBe(0x2345_6000);
    expect(r.read(NIC_RDBAH)).toBe(1);
    expect(r.nic.rdba).toBe(0x1_2345_6000);
    expect(r.read(NIC_RDLEN)).toBe(8 * RX_DESC_SIZE);
    expect(r.nic.ringEntries).toBe(8);
    expect(r.read(NIC_RDT)).toBe(7);
    expect(r.read(NIC_CTRL)).toBe(CTRL_RXEN);
    expect(r.read(NIC_STATUS)).toBe(1);
  });

  it('lands packet n in the head buffer with packetBytes(seed, n, len), sets DD and EOP, advances RDH', () => {
    const r = rig();
    start(r);
    r.clock.advanceTo(3 * IV);
    expect(r.read(NIC_RDH)).toBe(3);
    for (let i = 0; i < 3; i++) {
      expect(sameBytes(buffer(r, i), packetBytes(SEED, i, PKT))).toBe(true);
      const d = descriptor(r, i);
      expect(d.status).toBe(RXD_STAT_DD | RXD_STAT_EOP);
      expect(d.length).toBe(PKT);
      expect(d.buf).toBe(r.bufs + i * BUF); // the address field is left as the driver wrote it
    }
    // The next descriptor is untouched, and nothing beyond the packet was written.
    expect(descriptor(r, 3).status).toBe(0);
    expect(buffer(r, 0, BUF).subarray(PKT).every((b) => b === 0)).toBe(true);
    expect(r.nic.packetsReceived).toBe(3);
    // Each packet costs one buffer write and one descriptor write-back.
    expect(r.dmaWrites).toEqual([
      { pa: r.bufs, length: PKT }, { pa: r.ring, length: RX_DESC_SIZE },
      { pa: r.bufs + BUF, length: PKT }, { pa: r.ring + RX_DESC_SIZE, length: RX_DESC_SIZE },
      { pa: r.bufs + 2 * BUF, length: PKT }, { pa: r.ring + 2 * RX_DESC_SIZE, length: RX_DESC_SIZE },
    ]);
  });

  it('packetBytes names the packet and is deterministic per (seed, n)', () => {
    const p = packetBytes(7, 12345, 64);
    const dv = new DataView(p.buffer);
    expect(dv.getUint32(0, false)).toBe(0x6b64736d);
    expect(dv.getUint32(4, true)).toBe(12345);
    expect(sameBytes(p, packetBytes(7, 12345, 64))).toBe(true);
    expect(sameBytes(p, packetBytes(8, 12345, 64))).toBe(false);
    expect(sameBytes(p.subarray(8), packetBytes(7, 12346, 64).subarray(8))).toBe(false);
  });

  it('uses buffers above 4 GiB through RDBAH and the high descriptor word', () => {
    const r = rig(4, 0x1_0000_0000, 0x1_0010_0000, 2 ** 33);
    start(r);
    r.clock.advanceTo(2 * IV);
    expect(sameBytes(buffer(r, 1), packetBytes(SEED, 1, PKT))).toBe(true);
    expect(r.dmaWrites[0]!.pa).toBe(0x1_0010_0000);
  });

  it('stops DMA when the ring is full and counts the packets that keep arriving as dropped', () => {
    const r = rig(8);
    start(r); // 7 descriptors for the device
    r.clock.advanceTo(7 * IV);
    expect(r.nic.packetsReceived).toBe(7);
    expect(r.read(NIC_RDH)).toBe(7);
    const writes = r.dmaWrites.length;
    r.clock.advanceTo(1_000 * IV);
    expect(r.dmaWrites.length).toBe(writes);
    expect(r.nic.packetsReceived).toBe(7);
    // 1000 packets arrived; 7 were received.
    expect(r.nic.dropped).toBe(993);
    // The drop count is lazy: the full ring costs no events while time passes.
    const fired = r.clock.eventsFired;
    r.clock.advanceTo(1_000_000 * IV);
    expect(r.clock.eventsFired).toBe(fired);
    expect(r.nic.dropped).toBe(1_000_000 - 7);
    // Asking twice changes nothing.
    expect(r.nic.dropped).toBe(1_000_000 - 7);
  });

  it('resumes reception when RDT moves, with packet numbers that count the dropped ones', () => {
    const r = rig(8);
    start(r);
    r.clock.advanceTo(20 * IV + 500); // packets 0..6 received, 7..19 dropped
    expect(r.nic.dropped).toBe(13);
    recycle(r, 3); // descriptors 0, 1, 2 back to the device
    r.clock.advanceTo(21 * IV);
    // Packet 20 arrives at 21 * IV, into descriptor 7 (the head).
    expect(r.read(NIC_RDH)).toBe(0);
    expect(sameBytes(buffer(r, 7), packetBytes(SEED, 20, PKT))).toBe(true);
    r.clock.advanceTo(30 * IV);
    // Packets 21, 22 into descriptors 0, 1; then the ring is full again (head 2 == tail 2).
    expect(r.nic.packetsReceived).toBe(10);
    expect(sameBytes(buffer(r, 0), packetBytes(SEED, 21, PKT))).toBe(true);
    expect(sameBytes(buffer(r, 1), packetBytes(SEED, 22, PKT))).toBe(true);
    expect(r.read(NIC_RDH)).toBe(2);
    expect(r.nic.dropped).toBe(30 - 10);
  });

  it('an RDT write at the same instant as an arrival comes after it (the packet is dropped)', () => {
    const r = rig(4);
    start(r);
    r.clock.advanceTo(10 * IV); // 3 received, 7 dropped (the one at 10 * IV included)
    expect(r.nic.dropped).toBe(7);
    recycle(r, 1);
    r.clock.advanceTo(11 * IV);
    expect(r.nic.packetsReceived).toBe(4);
    expect(sameBytes(buffer(r, 3), packetBytes(SEED, 10, PKT))).toBe(true);
    expect(r.nic.dropped).toBe(7);
  });

  it('CTRL.RST stops DMA and returns the registers to power-on values', () => {
    const r = rig(8);
    start(r);
    r.clock.advanceTo(3 * IV);
    r.reg(NIC_CTRL, CTRL_RST | CTRL_RXEN);
    expect(r.trace.find('reset', 'nic0')).toHaveLength(1);
    const writes = r.dmaWrites.length;
    r.clock.advanceTo(100 * IV);
    expect(r.dmaWrites.length).toBe(writes);
    expect([NIC_CTRL, NIC_RDBAL, NIC_RDBAH, NIC_RDLEN, NIC_RDH, NIC_RDT].map((o) => r.read(o))).toEqual([0, 0, 0, 0, 0, 0]);
    expect(r.clock.pending).toBe(0);
  });

  it('clearing RXEN stops reception; setting it again restarts it', () => {
    const r = rig(8);
    start(r);
    r.clock.advanceTo(2 * IV);
    r.reg(NIC_CTRL, 0);
    r.clock.advanceTo(50 * IV);
    expect(r.nic.packetsReceived).toBe(2);
    expect(r.read(NIC_STATUS)).toBe(0);
    r.reg(NIC_CTRL, CTRL_RXEN);
    r.clock.advanceTo(53 * IV);
    expect(r.nic.packetsReceived).toBe(5);
  });

  it('a receiver that was full when disabled keeps receiving after it is refilled and re-enabled', () => {
    const r = rig(4);
    start(r);
    r.clock.advanceTo(10 * IV); // full: 3 received
    r.reg(NIC_CTRL, 0);
    recycle(r, 3);
    r.reg(NIC_CTRL, CTRL_RXEN);
    r.clock.advanceTo(20 * IV);
    // Room for 3 more packets: all three descriptors are used, not just one.
    expect(r.nic.packetsReceived).toBe(6);
  });

  it('rewriting CTRL while the ring is full loses no drops and keeps packet numbers', () => {
    const r = rig(4);
    start(r);
    r.clock.advanceTo(10 * IV + 500); // 3 received, packets 3..9 dropped
    r.reg(NIC_CTRL, CTRL_RXEN); // a driver rewriting CTRL with the same bits
    r.clock.advanceTo(20 * IV + 500);
    expect(r.nic.dropped).toBe(20 - 3);
    recycle(r, 1);
    r.clock.advanceTo(21 * IV);
    expect(sameBytes(buffer(r, 3), packetBytes(SEED, 20, PKT))).toBe(true);
    expect(r.nic.dropped).toBe(17);
  });

  it('how many drops `dropped` reports does not depend on whether it was read before a reset', () => {
    const run = (peek: boolean): number => {
      const r = rig(4);
      start(r);
      r.clock.advanceTo(10 * IV);
      if (peek) void r.nic.dropped;
      r.reg(NIC_CTRL, CTRL_RST);
      r.clock.advanceTo(20 * IV);
      return r.nic.dropped;
    };
    expect(run(false)).toBe(run(true));
    expect(run(false)).toBe(7);
  });

  it('a descriptor pointing outside memory faults the DMA without advancing RDH', () => {
    const r = rig(4, 0x1_0000, 2 ** 24 - 100); // the first buffer straddles the end of DRAM
    start(r);
    r.clock.advanceTo(IV);
    expect(r.nic.dmaFaults).toBe(1);
    expect(r.read(NIC_RDH)).toBe(0);
    expect(r.trace.find('dma-fault', 'nic0')).toHaveLength(1);
    // Every later packet retries the same descriptor: counted, traced once.
    r.clock.advanceTo(10 * IV);
    expect(r.nic.dmaFaults).toBe(10);
    expect(r.trace.find('dma-fault', 'nic0')).toHaveLength(1);
  });

  describe('against a reference ring (random driver behaviour)', () => {
    type Op = { kind: 'advance'; ns: number } | { kind: 'recycle'; n: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant('advance' as const), ns: fc.integer({ min: 0, max: 12 * IV }) }),
      fc.record({ kind: fc.constant('recycle' as const), n: fc.nat(7) }),
    );

    it('delivers, drops and numbers packets exactly as the reference does', () => {
      fc.assert(
        fc.property(fc.integer({ min: 2, max: 8 }), fc.array(op, { maxLength: 40 }), (entries, ops) => {
          const r = rig(entries);
          start(r);
          // Reference: packet j arrives at (j + 1) * IV.
          let head = 0;
          let tail = entries - 1;
          let next = 0; // next packet number
          let received = 0;
          let dropped = 0;
          const inSlot: (number | undefined)[] = Array.from({ length: entries }, () => undefined);
          let now = 0;
          for (const o of ops) {
            if (o.kind === 'advance') {
              now += o.ns;
              r.clock.advanceTo(now);
              while ((next + 1) * IV <= now) {
                if (head === tail) dropped++;
                else {
                  inSlot[head] = next;
                  head = (head + 1) % entries;
                  received++;
                }
                next++;
              }
            } else {
              // The driver can only give back what the device has filled (between tail+1 and head-1).
              const filled = (head - tail - 1 + entries) % entries;
              const n = Math.min(o.n, filled);
              recycle(r, n);
              tail = (tail + n) % entries;
            }
            expect(r.read(NIC_RDH)).toBe(head);
            expect(r.nic.packetsReceived).toBe(received);
            expect(r.nic.dropped).toBe(dropped);
            expect(r.dmaWrites.length).toBe(2 * received);
          }
          for (let i = 0; i < entries; i++) {
            const j = inSlot[i];
            const hdr = buffer(r, i, 8);
            if (j === undefined) expect(hdr.every((b) => b === 0)).toBe(true);
            else expect(new DataView(hdr.buffer).getUint32(4, true)).toBe(j);
          }
        }),
        { numRuns: 200 },
      );
    });
  });
});
