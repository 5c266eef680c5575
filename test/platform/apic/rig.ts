// A small machine with its interrupt fabric attached, and the register
// accesses a kernel would make, through the machine's MMIO space.

import { Machine } from '../../../src/platform/machine.js';
import type { InterruptFabric, InterruptFabricSpec } from '../../../src/platform/apic/interrupt-fabric.js';
import {
  IOAPIC_MMIO_BASE, IOAPIC_IOREGSEL, IOAPIC_IOWIN, ioapicRteLow, ioapicRteHigh, encodeRte, type RedirectionEntry, type CompatibilityRte, type RemappableRte,
} from '../../../src/platform/apic/io-apic.js';
import {
  HPET_MMIO_BASE, HPET_GEN_CONF, HPET_MAIN_COUNTER, HPET_CFG_ENABLE, HPET_CFG_LEGACY, HPET_PERIOD,
  HPET_T0_CONF, HPET_T0_COMPARATOR, HPET_TN_INT_ENB, HPET_TN_PERIODIC, HPET_TN_VAL_SET, HPET_TN_32BIT,
} from '../../../src/platform/apic/hpet.js';

export const TIMER_VECTOR = 0x30;

export interface Rig {
  m: Machine;
  f: InterruptFabric;
  ioRead(reg: number): number;
  ioWrite(reg: number, v: number): void;
  /** Writes an RTE high half first, as kernels do, so the entry never points nowhere while unmasked. */
  setRte(pin: number, e: RedirectionEntry | bigint): void;
  hpetRead(off: number, size?: 4 | 8): bigint;
  hpetWrite(off: number, v: bigint | number): void;
  /** Counter ticks per period of `hz`, rounded as a kernel computes its HPET delta. */
  hpetTicksFor(hz: number): number;
  /** Starts HPET timer 0 periodic at `ticks` counter ticks, legacy-routed, the way a kernel's clockevent does. */
  startHpetPeriodic(ticks: number): void;
}

export function rig(opts: { cpus?: number; spec?: InterruptFabricSpec } = {}): Rig {
  const m = new Machine({ memoryBytes: 64 * 2 ** 20, cpus: opts.cpus ?? 2, seed: 3, nics: [], ...(opts.spec === undefined ? {} : { interrupts: opts.spec }) });
  const f = m.interrupts;
  const ioWrite = (reg: number, v: number): void => {
    m.mmio.write(IOAPIC_MMIO_BASE + IOAPIC_IOREGSEL, BigInt(reg));
    m.mmio.write(IOAPIC_MMIO_BASE + IOAPIC_IOWIN, BigInt(v >>> 0));
  };
  const ioRead = (reg: number): number => {
    m.mmio.write(IOAPIC_MMIO_BASE + IOAPIC_IOREGSEL, BigInt(reg));
    return Number(m.mmio.read(IOAPIC_MMIO_BASE + IOAPIC_IOWIN));
  };
  const hpetRead = (off: number, size: 4 | 8 = 4): bigint => m.mmio.read(HPET_MMIO_BASE + off, size);
  const hpetWrite = (off: number, v: bigint | number): void => m.mmio.write(HPET_MMIO_BASE + off, BigInt(v));
  const r: Rig = {
    m, f, ioRead, ioWrite, hpetRead, hpetWrite,
    setRte: (pin, e) => {
      const v = typeof e === 'bigint' ? e : encodeRte(e);
      ioWrite(ioapicRteHigh(pin), Number(v >> 32n));
      ioWrite(ioapicRteLow(pin), Number(v & 0xffff_ffffn));
    },
    hpetTicksFor: (hz) => Math.round(1e15 / hz / Number(hpetRead(HPET_PERIOD))),
    startHpetPeriodic: (ticks) => {
      hpetWrite(HPET_GEN_CONF, 0);
      hpetWrite(HPET_MAIN_COUNTER, 0);
      hpetWrite(HPET_GEN_CONF, HPET_CFG_ENABLE | HPET_CFG_LEGACY);
      // 32-bit mode, so 32-bit comparator writes are the whole comparator.
      hpetWrite(HPET_T0_CONF, HPET_TN_INT_ENB | HPET_TN_PERIODIC | HPET_TN_VAL_SET | HPET_TN_32BIT);
      // First write sets the comparator (VAL_SET), the second the period.
      hpetWrite(HPET_T0_COMPARATOR, BigInt(hpetRead(HPET_MAIN_COUNTER)) + BigInt(ticks));
      hpetWrite(HPET_T0_COMPARATOR, ticks);
    },
  };
  return r;
}

/** A compatibility-format, edge, fixed, physical RTE. */
export function compatRte(vector: number, destination: number, masked = false): CompatibilityRte {
  return {
    format: 'compatibility', vector, deliveryMode: 0, destLogical: false, destination,
    deliveryStatus: false, polarityLow: false, remoteIrr: false, levelTriggered: false, masked,
  };
}

/** A remappable-format, edge RTE carrying interrupt index `index`. */
export function remapRte(index: number, vector = 0, masked = false): RemappableRte {
  return {
    format: 'remappable', index, vector,
    deliveryStatus: false, polarityLow: false, remoteIrr: false, levelTriggered: false, masked,
  };
}
