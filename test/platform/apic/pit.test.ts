import { describe, it, expect } from 'vitest';
import { NS_PER_MS } from '../../../src/platform/clock.js';
import { PIT_CH0_PORT, PIT_MODE_PORT, PIT_FREQUENCY_HZ } from '../../../src/platform/apic/pit.js';
import { HPET_GEN_CONF, HPET_CFG_ENABLE, HPET_CFG_LEGACY } from '../../../src/platform/apic/hpet.js';
import { rig, compatRte, TIMER_VECTOR } from './rig.js';

/** Channel 0, lobyte/hibyte, mode `mode`, binary. */
function program(pit: { outb(p: number, v: number): void }, mode: number, count: number): void {
  pit.outb(PIT_MODE_PORT, 0x30 | (mode << 1));
  pit.outb(PIT_CH0_PORT, count & 0xff);
  pit.outb(PIT_CH0_PORT, count >> 8);
}

const LATCH_1KHZ = Math.round(PIT_FREQUENCY_HZ / 1000); // 1193 clocks

describe('8254 PIT channel 0', () => {
  it('in rate-generator mode drives IRQ0 on IO-APIC pin 2: 10 ticks in 10 ms', () => {
    const r = rig();
    r.setRte(2, compatRte(TIMER_VECTOR, 0));
    const lapic = r.f.lapic(0);
    lapic.interruptsEnabled = true;
    program(r.f.pit!, 2, LATCH_1KHZ);
    const periodNs = (LATCH_1KHZ * 1e9) / PIT_FREQUENCY_HZ;
    r.m.clock.advance(Math.floor(10 * periodNs));
    expect(lapic.count(TIMER_VECTOR)).toBe(9);
    r.m.clock.advance(1);
    expect(lapic.count(TIMER_VECTOR)).toBe(10);
    expect(r.m.trace.find('pit-tick')[0]!.data).toEqual({ mode: 2, routed: true });
    expect(r.m.trace.find('ioapic-message')[0]!.data).toMatchObject({ pin: 2, vector: TIMER_VECTOR });
  });

  it('is cut off from pin 2 while HPET legacy replacement routing is on', () => {
    const r = rig();
    r.setRte(2, compatRte(TIMER_VECTOR, 0));
    r.f.lapic(0).interruptsEnabled = true;
    r.hpetWrite(HPET_GEN_CONF, HPET_CFG_ENABLE | HPET_CFG_LEGACY);
    program(r.f.pit!, 2, LATCH_1KHZ);
    r.m.clock.advance(5 * NS_PER_MS);
    expect(r.f.pit!.outputs).toBe(5);
    expect(r.m.trace.find('pit-tick').every((e) => e.data?.routed === false)).toBe(true);
    expect(r.m.trace.find('ioapic-message')).toHaveLength(0);
    r.hpetWrite(HPET_GEN_CONF, HPET_CFG_ENABLE); // legacy off: the PIT has the pin back
    r.m.clock.advance(5 * NS_PER_MS);
    expect(r.f.lapic(0).count(TIMER_VECTOR)).toBe(5);
  });

  it('fires once in mode 0 with count 0 (65536 clocks), as a kernel shutting the PIT down leaves it', () => {
    const r = rig();
    r.setRte(2, compatRte(TIMER_VECTOR, 0));
    r.f.lapic(0).interruptsEnabled = true;
    program(r.f.pit!, 0, 0);
    r.m.clock.advance(500 * NS_PER_MS);
    expect(r.f.lapic(0).count(TIMER_VECTOR)).toBe(1);
    expect(r.m.trace.find('pit-tick')[0]!.t).toBe(Math.ceil((65536 * 1e9) / PIT_FREQUENCY_HZ));
  });

  it('latches and reads back the current count, low byte then high', () => {
    const r = rig();
    program(r.f.pit!, 2, 10_000);
    r.m.clock.advance(1_000_000); // 1 ms: 1193 clocks gone
    const pit = r.f.pit!;
    pit.outb(PIT_MODE_PORT, 0x00); // latch channel 0
    r.m.clock.advance(1_000_000); // the latch holds while time moves on
    const lo = pit.inb(PIT_CH0_PORT);
    const hi = pit.inb(PIT_CH0_PORT);
    expect(lo | (hi << 8)).toBe(10_000 - Math.floor(PIT_FREQUENCY_HZ / 1000));
    pit.outb(PIT_MODE_PORT, 0x00);
    const now = pit.inb(PIT_CH0_PORT) | (pit.inb(PIT_CH0_PORT) << 8);
    expect(now).toBe(10_000 - Math.floor((2 * PIT_FREQUENCY_HZ) / 1000));
  });
});
