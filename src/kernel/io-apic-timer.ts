// check_timer() (arch/x86/kernel/apic/io_apic.c) as far as an interrupt-
// remapped IO-APIC goes: route the timer's pin to this CPU, start the timer
// (HPET timer 0 in legacy-replacement mode drives pin 2 at HZ), enable
// interrupts and see whether jiffies move (timer_irq_works). Under AMD-Vi the
// IO-APIC entry's vector field carries the IRTE index (the pin) and the IRTE
// the real vector and destination; whatever table the IOMMU actually reads
// decides where the tick goes. When the tick never comes the kernel cannot
// fall back to the 8259 through a remapped IO-APIC, and panics.

import {
  IOAPIC_MMIO_BASE, IOAPIC_IOREGSEL, IOAPIC_IOWIN, ioapicRteLow, ioapicRteHigh, encodeRte,
} from '../platform/apic/io-apic.js';
import {
  HPET_MMIO_BASE, HPET_GEN_CONF, HPET_CFG_ENABLE, HPET_CFG_LEGACY, HPET_T0_CONF, HPET_T0_COMPARATOR,
  HPET_TN_INT_ENB, HPET_TN_PERIODIC, HPET_TN_VAL_SET, HPET_TN_32BIT, HPET_MAIN_COUNTER, HPET_DEFAULT_PERIOD_FS,
} from '../platform/apic/hpet.js';
import { DELIVERY_FIXED } from '../platform/apic/interrupt-message.js';
import type { Machine } from '../platform/machine.js';
import type { KernelLog } from './dmesg.js';
import type { IommuDriver } from './drivers/iommu.js';

/** IRQ0's vector (ISA_IRQ_VECTOR(0)). */
export const TIMER_VECTOR = 0x30;
export const TIMER_PIN = 2;
const HZ = 1000;
/** timer_irq_works() waits 40e9/HZ TSC cycles: 20 ms at 2 GHz. */
const TIMER_WAIT_NS = 20_000_000;

export interface TimerHost {
  readonly machine: Machine;
  readonly log: KernelLog;
  step(detail: string, data?: Record<string, number | string | boolean>): void;
}

export type TimerCheck = { ok: true; ticks: number } | { ok: false; ticks: number; message: string };

export function checkTimer(h: TimerHost, cpuId: number, iommu: IommuDriver | undefined): TimerCheck {
  const m = h.machine;
  const apicId = m.cpus[cpuId]!.apicId;
  const remapped = iommu !== undefined;
  const rte = iommu?.routeIoApicPin(TIMER_PIN, TIMER_VECTOR, apicId) ?? encodeRte({
    format: 'compatibility', vector: TIMER_VECTOR, deliveryMode: DELIVERY_FIXED, destLogical: false,
    destination: apicId, deliveryStatus: false, polarityLow: false, remoteIrr: false, levelTriggered: false, masked: false,
  });
  writeRte(m, TIMER_PIN, rte);
  h.log.printk(`..TIMER: vector=0x${TIMER_VECTOR.toString(16).toUpperCase()} apic1=0 pin1=${TIMER_PIN} apic2=-1 pin2=-1`);
  startHpet(m);
  const lapic = m.interrupts.lapic(cpuId);
  lapic.interruptsEnabled = true;
  const before = lapic.count(TIMER_VECTOR);
  m.clock.advance(TIMER_WAIT_NS);
  const ticks = lapic.count(TIMER_VECTOR) - before;
  if (ticks > 4) {
    h.step(`timer check: ${ticks} ticks on vector 0x${TIMER_VECTOR.toString(16)} reached CPU ${cpuId} in ${TIMER_WAIT_NS / 1e6} ms`, { ticks });
    return { ok: true, ticks };
  }
  const message = remapped ? 'timer doesn\'t work through Interrupt-remapped IO-APIC' : 'IO-APIC + timer doesn\'t work!  Boot with apic=debug and send a report.  Then try booting with the \'noapic\' option.';
  h.step(`timer check: ${ticks} ticks reached CPU ${cpuId} in ${TIMER_WAIT_NS / 1e6} ms (needs more than 4)`, { ticks });
  return { ok: false, ticks, message };
}

/** The clockevent moves to the local APIC timer: the HPET stops, its routing stays as it is. */
export function stopHpet(m: Machine): void {
  m.mmio.write(HPET_MMIO_BASE + HPET_GEN_CONF, 0n);
}

/** machine_crash_shutdown(): clear_IO_APIC() masks every pin; hpet_disable() stops the HPET. */
export function quiesceInterrupts(m: Machine): void {
  const pins = m.interrupts.ioApic.pins;
  for (let pin = 0; pin < pins; pin++) {
    m.mmio.write(IOAPIC_MMIO_BASE + IOAPIC_IOREGSEL, BigInt(ioapicRteLow(pin)));
    const low = m.mmio.read(IOAPIC_MMIO_BASE + IOAPIC_IOWIN);
    m.mmio.write(IOAPIC_MMIO_BASE + IOAPIC_IOWIN, low | (1n << 16n));
  }
  stopHpet(m);
}

function writeRte(m: Machine, pin: number, v: bigint): void {
  m.mmio.write(IOAPIC_MMIO_BASE + IOAPIC_IOREGSEL, BigInt(ioapicRteHigh(pin)));
  m.mmio.write(IOAPIC_MMIO_BASE + IOAPIC_IOWIN, v >> 32n);
  m.mmio.write(IOAPIC_MMIO_BASE + IOAPIC_IOREGSEL, BigInt(ioapicRteLow(pin)));
  m.mmio.write(IOAPIC_MMIO_BASE + IOAPIC_IOWIN, v & 0xffff_ffffn);
}

/** HPET timer 0, periodic at HZ, in legacy-replacement mode (pin 2). */
function startHpet(m: Machine): void {
  const period = BigInt(Math.round(1e15 / HZ / HPET_DEFAULT_PERIOD_FS));
  m.mmio.write(HPET_MMIO_BASE + HPET_GEN_CONF, 0n);
  m.mmio.write(HPET_MMIO_BASE + HPET_MAIN_COUNTER, 0n);
  m.mmio.write(HPET_MMIO_BASE + HPET_T0_CONF, BigInt(HPET_TN_INT_ENB | HPET_TN_PERIODIC | HPET_TN_VAL_SET | HPET_TN_32BIT));
  m.mmio.write(HPET_MMIO_BASE + HPET_T0_COMPARATOR, period);
  m.mmio.write(HPET_MMIO_BASE + HPET_T0_COMPARATOR, period);
  m.mmio.write(HPET_MMIO_BASE + HPET_GEN_CONF, BigInt(HPET_CFG_ENABLE | HPET_CFG_LEGACY));
}
