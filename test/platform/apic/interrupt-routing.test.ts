import { describe, it, expect } from 'vitest';
import { NS_PER_MS } from '../../../src/platform/clock.js';
import {
  REASON_REMAPPING_DISABLED, DELIVERY_LOWEST_PRIORITY, DELIVERY_NMI,
  type InterruptMessage, type InterruptRouter, type DeliveryResult,
} from '../../../src/platform/apic/interrupt-message.js';
import { rig, compatRte, remapRte, TIMER_VECTOR } from './rig.js';

/** A remapper with a table from interrupt index to vector and destination; unknown indices fault. */
class TableRouter implements InterruptRouter {
  readonly seen: InterruptMessage[] = [];
  readonly table: Map<number, { vector: number; destination: number }>;
  readonly next: (vector: number, destination: number) => DeliveryResult;
  constructor(table: Map<number, { vector: number; destination: number }>, next: (vector: number, destination: number) => DeliveryResult) {
    this.table = table;
    this.next = next;
  }
  deliver(msg: InterruptMessage): DeliveryResult {
    this.seen.push(msg);
    const e = msg.index === undefined ? undefined : this.table.get(msg.index);
    if (e === undefined) return { delivered: false, reason: `no remapping entry for index ${msg.index}` };
    return this.next(e.vector, e.destination);
  }
}

describe('interrupt routing', () => {
  it('drops a remappable-format timer interrupt when no remapper is in the path', () => {
    const r = rig();
    r.setRte(2, remapRte(2));
    const lapic = r.f.lapic(0);
    lapic.interruptsEnabled = true;
    r.startHpetPeriodic(r.hpetTicksFor(1000));
    r.m.clock.advance(10 * NS_PER_MS);
    expect(lapic.arrivals(TIMER_VECTOR)).toBe(0);
    expect(lapic.takenTotal).toBe(0);
    const msgs = r.m.trace.find('ioapic-message');
    expect(msgs).toHaveLength(10);
    expect(msgs[0]!.data).toMatchObject({ pin: 2, remappable: true, index: 2, sourceId: 0x00a0 });
    const lost = r.m.trace.find('irq-not-delivered');
    expect(lost).toHaveLength(10);
    expect(lost[0]!.data).toMatchObject({ pin: 2, reason: REASON_REMAPPING_DISABLED });
    expect(r.m.trace.find('irq-delivered')).toHaveLength(0);
  });

  it('hands a replaced router the message with its index and source id, and delivers what it remaps to', () => {
    const r = rig({ spec: { ioApic: { sourceId: 0xf0f8 } } });
    r.setRte(2, remapRte(0x8005));
    const lapic = r.f.lapic(0);
    lapic.interruptsEnabled = true;
    const router = new TableRouter(new Map([[0x8005, { vector: TIMER_VECTOR, destination: 0 }]]), (vector, destination) =>
      r.f.bus.deliver({ vector, destination, destMode: 'physical', deliveryMode: 0 }));
    r.startHpetPeriodic(r.hpetTicksFor(1000));
    r.m.clock.advance(3 * NS_PER_MS); // direct routing: lost
    expect(lapic.count(TIMER_VECTOR)).toBe(0);

    r.f.router = router; // swapped at run time, like machine.dma
    r.m.clock.advance(4 * NS_PER_MS);
    expect(lapic.count(TIMER_VECTOR)).toBe(4);
    expect(router.seen).toHaveLength(4);
    const m = router.seen[0]!;
    expect(m).toMatchObject({ source: 'ioapic0', sourceId: 0xf0f8, remappable: true, index: 0x8005, trigger: 'edge' });
    expect(m.destination).toBeUndefined();
    // The message-signalled form carries the handle as VT-d lays it out.
    expect((m.address >>> 5) & 0x7fff).toBe(5);
    expect((m.address >>> 2) & 1).toBe(1);
    expect((m.address >>> 4) & 1).toBe(1);
    expect(r.m.trace.find('irq-delivered').at(-1)!.data).toMatchObject({ pin: 2, cpu: 0, vector: TIMER_VECTOR });

    r.f.useDirectRouting();
    r.m.clock.advance(3 * NS_PER_MS);
    expect(lapic.count(TIMER_VECTOR)).toBe(4);
  });

  it('loses the timer when the remapper has no entry for the index the IO-APIC sends', () => {
    // The entry was written to a table the hardware does not use: the check that waits for ticks sees none.
    const r = rig();
    r.setRte(2, remapRte(0));
    const lapic = r.f.lapic(0);
    lapic.interruptsEnabled = true;
    r.f.router = new TableRouter(new Map([[7, { vector: TIMER_VECTOR, destination: 0 }]]), (vector, destination) =>
      r.f.bus.deliver({ vector, destination, destMode: 'physical', deliveryMode: 0 }));
    r.startHpetPeriodic(r.hpetTicksFor(1000));
    r.m.clock.advance(10 * NS_PER_MS);
    expect(lapic.count(TIMER_VECTOR)).toBe(0);
    expect(r.m.trace.find('irq-not-delivered').map((e) => e.data?.reason)).toEqual(Array(10).fill('no remapping entry for index 0'));
  });

  it('passes a compatibility message through the direct router with its raw address and data', () => {
    const r = rig();
    const seen: InterruptMessage[] = [];
    r.f.router = { deliver: (msg) => { seen.push(msg); return r.f.direct.deliver(msg); } };
    r.setRte(4, { ...compatRte(0x61, 1), levelTriggered: false });
    r.m.cpus[1]!.state = 'running';
    r.f.ioApic.pulse(4);
    expect(seen[0]).toMatchObject({ remappable: false, vector: 0x61, destination: 1, destMode: 'physical', address: 0xfee0_1000, data: 0x61 });
    expect(r.f.lapic(1).arrivals(0x61)).toBe(1);
  });

  it('says why a compatibility message reaches no CPU', () => {
    const r = rig();
    r.setRte(3, compatRte(0x40, 7)); // no APIC ID 7 in a two-CPU machine
    r.f.ioApic.pulse(3);
    r.setRte(3, compatRte(0x40, 1)); // CPU 1 never started: INIT state
    r.f.ioApic.pulse(3);
    r.setRte(3, compatRte(0x05, 0)); // exception vector
    r.f.ioApic.pulse(3);
    r.setRte(3, { ...compatRte(0x40, 0), deliveryMode: DELIVERY_NMI });
    r.f.ioApic.pulse(3);
    expect(r.m.trace.find('irq-not-delivered').map((e) => e.data?.reason)).toEqual([
      'no local APIC matches physical destination 0x7',
      'CPU 1 is in wait-for-SIPI',
      'illegal vector 0x5',
      'delivery mode NMI is not modelled',
    ]);
  });

  it('broadcasts to 0xff, picks one CPU for lowest priority, and matches flat logical IDs', () => {
    const r = rig({ cpus: 3 });
    for (const c of r.m.cpus) c.state = 'running';
    r.setRte(6, compatRte(0x70, 0xff));
    r.f.ioApic.pulse(6);
    expect(r.f.lapics.map((l) => l.arrivals(0x70))).toEqual([1, 1, 1]);
    r.setRte(6, { ...compatRte(0x71, 0xff), deliveryMode: DELIVERY_LOWEST_PRIORITY });
    r.f.ioApic.pulse(6);
    expect(r.f.lapics.map((l) => l.arrivals(0x71))).toEqual([1, 0, 0]);
    r.f.lapics.forEach((l, i) => { l.logicalId = 1 << i; });
    r.setRte(6, { ...compatRte(0x72, 0b110), destLogical: true });
    r.f.ioApic.pulse(6);
    expect(r.f.lapics.map((l) => l.arrivals(0x72))).toEqual([0, 1, 1]);
  });

  it('wakes a halted CPU that has interrupts on, and runs the installed handler', () => {
    const r = rig();
    const cpu = r.m.cpus[0]!;
    const lapic = r.f.lapic(0);
    let jiffies = 0;
    lapic.onVector(TIMER_VECTOR, () => { jiffies++; });
    r.setRte(2, compatRte(TIMER_VECTOR, 0));
    cpu.state = 'halted';
    lapic.interruptsEnabled = true;
    r.f.ioApic.pulse(2);
    expect(cpu.state).toBe('running');
    expect(jiffies).toBe(1);
  });
});
