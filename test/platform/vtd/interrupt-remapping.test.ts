import { describe, it, expect } from 'vitest';
import { Rig, IRT } from './rig.js';
import { REASON_REMAPPING_DISABLED, remappableAddress, DELIVERY_FIXED } from '../../../src/platform/apic/interrupt-message.js';
import { GCMD_CFI, REG_FSTS, FSTS_PPF } from '../../../src/platform/vtd/registers.js';
import {
  FR_IR_COMPAT_BLOCKED, FR_IR_INDEX_OVER, FR_IR_NOT_PRESENT, FR_IR_SID_MISMATCH, FR_IR_IRTE_RESERVED, faultReasonText,
} from '../../../src/platform/vtd/fault-reasons.js';
import { SVT_BUS, SVT_SID, decodeIrte, encodeIrte, EMPTY_IRTE } from '../../../src/platform/vtd/irte.js';
import { interruptIndexOf } from '../../../src/platform/vtd/interrupt-remapping.js';

const PIN = 2;
const VECTOR = 0x31;

function irRig(cpus = 2): Rig {
  const r = new Rig({ fabric: true, cpus });
  for (const c of r.m.cpus) c.state = 'running'; // APs started, so every local APIC takes interrupts
  r.enableIr(7); // 256 entries
  return r;
}

function lastNotDelivered(r: Rig): unknown {
  return r.m.trace.find('irq-not-delivered').at(-1)?.data?.reason;
}

describe('VT-d interrupt remapping', () => {
  it('remaps an IO-APIC remappable-format message through its IRTE to the vector and destination', () => {
    const r = irRig();
    r.setIrte(5, { vector: VECTOR, destination: 1, svt: SVT_SID, sid: r.ioApicSid });
    r.setRte(PIN, Rig.remapRte(5));
    r.fabric!.ioApic.pulse(PIN);
    expect(r.fabric!.lapic(1).arrivals(VECTOR)).toBe(1);
    expect(r.fabric!.lapic(0).arrivals(VECTOR)).toBe(0);
    expect(r.m.trace.find('vtd-irte-fetch')[0]!.data).toMatchObject({ index: 5, addr: IRT + 5 * 16, vector: VECTOR, destination: 1 });
    expect(r.m.trace.find('vtd-intr-remap')[0]!.data).toMatchObject({ index: 5, vector: VECTOR, destination: 1, deliveryMode: DELIVERY_FIXED });
  });

  it('faults a not-present IRTE with reason 0x22, recording the index and source id; the interrupt is lost', () => {
    const r = irRig();
    r.setRte(PIN, Rig.remapRte(9));
    r.fabric!.ioApic.pulse(PIN);
    expect(r.fabric!.lapic(0).takenTotal + r.fabric!.lapic(1).takenTotal).toBe(0);
    expect(r.read32(REG_FSTS) & FSTS_PPF).toBe(FSTS_PPF);
    expect(r.faultRecord(0)).toMatchObject({ valid: true, reason: FR_IR_NOT_PRESENT, index: 9, sourceId: r.ioApicSid, read: false });
    expect(faultReasonText(FR_IR_NOT_PRESENT)).toBe('Present field in the IRTE entry is clear');
    expect(r.m.trace.find('vtd-intr-fault')[0]!.data).toMatchObject({ reason: FR_IR_NOT_PRESENT, index: 9 });
    expect(lastNotDelivered(r)).toMatch(/Present field in the IRTE entry is clear/);
  });

  it('does not record the fault of a not-present IRTE whose FPD bit is set', () => {
    const r = irRig();
    r.setIrte(9, { present: false, fpd: true });
    r.setRte(PIN, Rig.remapRte(9));
    r.fabric!.ioApic.pulse(PIN);
    expect(r.read32(REG_FSTS)).toBe(0);
    expect(r.unit.faultsSuppressed).toBe(1);
  });

  it('keeps using a cached IRTE until an interrupt-entry-cache invalidation', () => {
    const r = irRig();
    r.enableQi();
    r.setIrte(5, { vector: VECTOR, destination: 0 });
    r.setRte(PIN, Rig.remapRte(5));
    r.fabric!.ioApic.pulse(PIN);
    r.setIrte(5, { vector: VECTOR + 1, destination: 0 });
    r.fabric!.ioApic.pulse(PIN);
    expect(r.fabric!.lapic(0).arrivals(VECTOR)).toBe(2);
    r.submit({ type: 'iec', indexSelective: true, index: 4, im: 0 }); // another index
    r.settle();
    r.fabric!.ioApic.pulse(PIN);
    expect(r.fabric!.lapic(0).arrivals(VECTOR)).toBe(3);
    r.submit({ type: 'iec', indexSelective: true, index: 4, im: 1 }); // 4..5
    r.settle();
    r.fabric!.ioApic.pulse(PIN);
    expect(r.fabric!.lapic(0).arrivals(VECTOR + 1)).toBe(1);
    expect(r.m.trace.find('vtd-iec-inval').map((e) => e.data?.dropped)).toEqual([0, 1]);
  });

  it('drops remappable messages while IRES is clear and passes compatibility ones', () => {
    const r = new Rig({ fabric: true });
    r.setRte(PIN, Rig.remapRte(5));
    r.fabric!.ioApic.pulse(PIN);
    r.fabric!.ioApic.pulse(PIN);
    expect(lastNotDelivered(r)).toBe(REASON_REMAPPING_DISABLED);
    expect(r.m.trace.find('vtd-intr-blocked')).toHaveLength(1); // traced once, counted always
    expect(r.unit.interruptsUnremapped).toBe(2);
    expect(r.read32(0x34)).toBe(0); // not a remapping fault: nothing recorded
    r.setRte(PIN, Rig.compatRte(VECTOR, 0));
    r.fabric!.ioApic.pulse(PIN);
    expect(r.fabric!.lapic(0).arrivals(VECTOR)).toBe(1);
  });

  it('blocks compatibility-format messages with reason 0x25 unless CFIS is set (and always in x2APIC mode)', () => {
    const r = irRig();
    r.setRte(PIN, Rig.compatRte(VECTOR, 0));
    r.fabric!.ioApic.pulse(PIN);
    expect(r.fabric!.lapic(0).arrivals(VECTOR)).toBe(0);
    expect(r.faultRecord(0)).toMatchObject({ reason: FR_IR_COMPAT_BLOCKED });
    r.command(GCMD_CFI, true);
    r.fabric!.ioApic.pulse(PIN);
    expect(r.fabric!.lapic(0).arrivals(VECTOR)).toBe(1);
    const x2 = new Rig({ fabric: true });
    x2.enableIr(7, true);
    x2.command(GCMD_CFI, true);
    x2.setRte(PIN, Rig.compatRte(VECTOR, 0));
    x2.fabric!.ioApic.pulse(PIN);
    expect(x2.fabric!.lapic(0).arrivals(VECTOR)).toBe(0);
    expect(x2.faultRecord(0)).toMatchObject({ reason: FR_IR_COMPAT_BLOCKED });
  });

  it('checks the source id (SVT 1 with SQ, SVT 2 bus range), the table size and reserved fields', () => {
    const r = irRig();
    const sid = r.ioApicSid;
    r.setIrte(1, { vector: VECTOR, svt: SVT_SID, sid: sid ^ 0x100 }); // another bus
    r.setIrte(2, { vector: VECTOR, svt: SVT_SID, sq: 3, sid: sid ^ 0x7 }); // function bits ignored
    r.setIrte(3, { vector: VECTOR, svt: SVT_BUS, sid: ((sid >> 8) << 8) | ((sid >> 8) & 0xff) }); // [bus, bus]
    const bus = sid >> 8;
    r.setIrte(4, { vector: VECTOR, svt: SVT_BUS, sid: ((bus + 1) << 8) | (bus + 2) }); // buses above the IO-APIC's
    const { lo, hi } = encodeIrte({ ...EMPTY_IRTE, present: true, vector: VECTOR }, false);
    r.putQword(IRT + 6 * 16, lo | (1n << 12n)); // reserved bit
    r.putQword(IRT + 6 * 16 + 8, hi);
    const fire = (index: number): void => {
      r.setRte(PIN, Rig.remapRte(index));
      r.fabric!.ioApic.pulse(PIN);
    };
    [1, 2, 3, 4, 6, 300].forEach(fire);
    expect(r.fabric!.lapic(0).arrivals(VECTOR)).toBe(2); // entries 2 and 3
    const reasons = [0, 1, 2, 3].map((i) => r.faultRecord(i).reason);
    expect(reasons).toEqual([FR_IR_SID_MISMATCH, FR_IR_SID_MISMATCH, FR_IR_IRTE_RESERVED, FR_IR_INDEX_OVER]);
    expect(r.faultRecord(0).index).toBe(1);
    expect(r.faultRecord(3).index).toBe(300);
  });

  it('delivers to a 32-bit x2APIC destination when IRTA.EIME is set', () => {
    const r = new Rig({ fabric: true, cpus: 2 });
    for (const c of r.m.cpus) c.state = 'running';
    r.enableIr(7, true);
    r.setIrte(0, { vector: VECTOR, destination: 1 }, true);
    r.setRte(PIN, Rig.remapRte(0));
    r.fabric!.ioApic.pulse(PIN);
    expect(r.fabric!.lapic(1).arrivals(VECTOR)).toBe(1);
    expect(r.m.trace.find('vtd-irte-fetch')[0]!.data).toMatchObject({ x2apic: true, destination: 1 });
  });

  it('decodes the handle from address bits 19:5 and 2, adding the subhandle when SHV is set', () => {
    expect(interruptIndexOf(remappableAddress(0x8123), 0)).toBe(0x8123);
    expect(interruptIndexOf(remappableAddress(0x10) + 0x8, 3)).toBe(0x13);
    expect(interruptIndexOf(0xfed0_0010, 0)).toBeUndefined();
    const f = { ...EMPTY_IRTE, present: true, vector: 0x40, destination: 0xab, levelTriggered: true, deliveryMode: 1, sid: 0x1234, sq: 2, svt: 1 };
    const x = encodeIrte(f, false);
    expect(x.lo >> 40n & 0xffn).toBe(0xabn); // xAPIC destination in bits 47:40
    expect(decodeIrte(x.lo, x.hi, false)).toEqual(f);
  });
});
