import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  IOAPIC_REG_ID, IOAPIC_REG_VER, IOAPIC_VERSION, IOAPIC_PINS, IOAPIC_MMIO_BASE, IOAPIC_EOI, ioapicRteLow, ioapicRteHigh,
  decodeRte, encodeRte, RTE_MASKED, RTE_REMOTE_IRR, RTE_DELIVERY_STATUS, RTE_TRIGGER_LEVEL, RTE_FORMAT_REMAPPABLE,
  type RedirectionEntry,
} from '../../../src/platform/apic/io-apic.js';
import { rig, compatRte, TIMER_VECTOR } from './rig.js';

describe('IO-APIC registers', () => {
  it('round-trips an RTE through IOREGSEL/IOWIN, and decodes the fields written', () => {
    const r = rig();
    expect(r.ioRead(ioapicRteLow(2))).toBe(Number(RTE_MASKED)); // power-on: masked
    expect(r.ioRead(ioapicRteHigh(2))).toBe(0);
    // vector 0x30, logical, level, active low, masked, destination 0x03
    r.ioWrite(ioapicRteHigh(2), 0x0300_0000);
    r.ioWrite(ioapicRteLow(2), 0x0001_a830);
    expect(r.ioRead(ioapicRteLow(2))).toBe(0x0001_a830);
    expect(r.ioRead(ioapicRteHigh(2))).toBe(0x0300_0000);
    expect(r.f.ioApic.entry(2)).toEqual({
      format: 'compatibility', vector: 0x30, deliveryMode: 0, destLogical: true, destination: 3,
      deliveryStatus: false, polarityLow: true, remoteIrr: false, levelTriggered: true, masked: true,
    });
    // Neighbouring entries are untouched.
    expect(r.ioRead(ioapicRteLow(1))).toBe(Number(RTE_MASKED));
    expect(r.ioRead(ioapicRteLow(3))).toBe(Number(RTE_MASKED));
  });

  it('ignores writes to Delivery Status and Remote IRR', () => {
    const r = rig();
    r.ioWrite(ioapicRteLow(5), Number(RTE_DELIVERY_STATUS | RTE_REMOTE_IRR | RTE_TRIGGER_LEVEL | RTE_MASKED) | 0x41);
    expect(r.ioRead(ioapicRteLow(5))).toBe(Number(RTE_TRIGGER_LEVEL | RTE_MASKED) | 0x41);
  });

  it('reports version, pin count and its ID, and keeps a new ID', () => {
    const r = rig({ cpus: 4 });
    expect(r.ioRead(IOAPIC_REG_VER)).toBe(IOAPIC_VERSION | ((IOAPIC_PINS - 1) << 16));
    expect(r.ioRead(IOAPIC_REG_ID) >>> 24).toBe(4); // numbered after the CPUs
    r.ioWrite(IOAPIC_REG_ID, 0x0900_0000);
    expect(r.ioRead(IOAPIC_REG_ID) >>> 24).toBe(9);
    r.ioWrite(IOAPIC_REG_VER, 0); // read-only
    expect(r.ioRead(IOAPIC_REG_VER) & 0xff).toBe(IOAPIC_VERSION);
  });

  it('encodes and decodes both entry formats losslessly', () => {
    const common = {
      vector: fc.integer({ min: 0, max: 255 }),
      deliveryStatus: fc.boolean(), polarityLow: fc.boolean(), remoteIrr: fc.boolean(), levelTriggered: fc.boolean(), masked: fc.boolean(),
    };
    const entry: fc.Arbitrary<RedirectionEntry> = fc.oneof(
      fc.record({ ...common, format: fc.constant('compatibility' as const), deliveryMode: fc.integer({ min: 0, max: 7 }), destLogical: fc.boolean(), destination: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ ...common, format: fc.constant('remappable' as const), index: fc.integer({ min: 0, max: 0xffff }) }),
    );
    fc.assert(fc.property(entry, (e) => {
      expect(decodeRte(encodeRte(e))).toEqual(e);
    }));
    // The index's bit 15 lives in bit 11, the rest in 63:49.
    const v = encodeRte({ format: 'remappable', index: 0x8001, vector: 0, deliveryStatus: false, polarityLow: false, remoteIrr: false, levelTriggered: false, masked: false });
    expect(v).toBe(RTE_FORMAT_REMAPPABLE | (1n << 49n) | (1n << 11n));
  });
});

describe('IO-APIC pins', () => {
  it('drops an edge on a masked pin: no message, nothing reaches a local APIC', () => {
    const r = rig();
    r.setRte(2, compatRte(TIMER_VECTOR, 0, true));
    r.f.lapic(0).interruptsEnabled = true;
    r.f.ioApic.pulse(2);
    expect(r.m.trace.find('ioapic-pin-masked').map((e) => e.data?.pin)).toEqual([2]);
    expect(r.m.trace.find('ioapic-message')).toHaveLength(0);
    expect(r.f.lapic(0).arrivals(TIMER_VECTOR)).toBe(0);
    // Unmasking afterwards does not resurrect the lost edge.
    r.setRte(2, compatRte(TIMER_VECTOR, 0));
    expect(r.f.lapic(0).count(TIMER_VECTOR)).toBe(0);
    r.f.ioApic.pulse(2);
    expect(r.f.lapic(0).count(TIMER_VECTOR)).toBe(1);
  });

  it('holds a level line behind Remote IRR until an EOI, then signals again while still asserted', () => {
    const r = rig();
    r.setRte(9, { ...compatRte(0x41, 1), levelTriggered: true });
    const lapic = r.f.lapic(1);
    r.m.cpus[1]!.state = 'running';
    lapic.interruptsEnabled = true;
    r.f.ioApic.setLine(9, true);
    expect(lapic.count(0x41)).toBe(1);
    expect(r.f.ioApic.entry(9).remoteIrr).toBe(true);
    r.f.ioApic.setLine(9, true); // still asserted: no second message
    expect(r.m.trace.find('ioapic-message')).toHaveLength(1);
    r.m.mmio.write(IOAPIC_MMIO_BASE + IOAPIC_EOI, 0x40n); // another vector's EOI changes nothing
    expect(lapic.count(0x41)).toBe(1);
    r.m.mmio.write(IOAPIC_MMIO_BASE + IOAPIC_EOI, 0x41n);
    expect(lapic.count(0x41)).toBe(2);
    r.f.ioApic.setLine(9, false);
    r.f.eoi(0x41);
    expect(r.f.ioApic.entry(9).remoteIrr).toBe(false);
    expect(lapic.count(0x41)).toBe(2);
  });

  it('rejects a pin it does not have', () => {
    const r = rig();
    expect(() => r.f.ioApic.pulse(24)).toThrow(/pins 0\.\.23/);
  });
});
