// The interrupt wiring of one machine: the timers (HPET, PIT) driving IO-APIC
// pins, the IO-APIC sending messages through a replaceable router, and the
// local APICs that accept them. The router starts direct (no remapper); a
// machine with an AMD IOMMU or VT-d swaps in one that remaps, at any time,
// and every later message goes through it.

import type { VirtualClock } from '../clock.js';
import type { Trace } from '../trace.js';
import type { Cpu } from '../cpu/cpu.js';
import type { Machine } from '../machine.js';
import { DirectInterruptRouter, type InterruptRouter } from './interrupt-message.js';
import { LocalApicBus, LocalApicIrq } from './local-apic-irq.js';
import { IoApic, IOAPIC_MMIO_BASE, IOAPIC_MMIO_SIZE } from './io-apic.js';
import { Hpet, HPET_MMIO_BASE, HPET_MMIO_SIZE, type HpetConfig } from './hpet.js';
import { Pit, PIT_IOAPIC_PIN } from './pit.js';

/** Requester id AMD chipsets give the southbridge IO-APIC (00:14.0). */
export const IOAPIC_DEFAULT_SOURCE_ID = 0x00a0;

export interface InterruptFabricSpec {
  ioApic?: {
    name?: string;
    base?: number;
    /** Power-on APIC ID; defaults to the number of CPUs (firmware numbers IO-APICs after the CPUs). */
    id?: number;
    sourceId?: number;
    pins?: number;
  };
  /** false: the machine has no HPET. */
  hpet?: false | (Partial<HpetConfig> & { base?: number });
  /** false: no 8254 (IRQ0 is then never raised by the PIT). */
  pit?: boolean;
  /**
   * Periodic events each source traces after it is (re)programmed, per pin or
   * timer (default 4096: four seconds of a 1 kHz tick); later ones are counted.
   */
  traceBudget?: number;
}

export interface FabricDeps {
  clock: VirtualClock;
  trace: Trace;
  cpus: readonly Cpu[];
}

export class InterruptFabric {
  readonly lapics: readonly LocalApicIrq[];
  readonly bus: LocalApicBus;
  readonly ioApic: IoApic;
  readonly hpet: Hpet | undefined;
  readonly pit: Pit | undefined;
  /** The router with no remapper, to go back to. */
  readonly direct: DirectInterruptRouter;
  /** Where the IO-APIC's messages go, looked up at each message. */
  router: InterruptRouter;

  constructor(deps: FabricDeps, spec: InterruptFabricSpec = {}) {
    this.lapics = deps.cpus.map((c) => new LocalApicIrq(c));
    this.bus = new LocalApicBus(this.lapics);
    this.direct = new DirectInterruptRouter(this.bus);
    this.router = this.direct;
    const io = spec.ioApic ?? {};
    const budget = spec.traceBudget === undefined ? {} : { traceBudget: spec.traceBudget };
    this.ioApic = new IoApic(
      {
        name: io.name ?? 'ioapic0',
        id: io.id ?? Math.min(deps.cpus.length, 0xff),
        sourceId: io.sourceId ?? IOAPIC_DEFAULT_SOURCE_ID,
        ...(io.pins === undefined ? {} : { pins: io.pins }),
        ...budget,
      },
      { deliver: (msg) => this.router.deliver(msg) },
      deps.trace,
    );
    const h = spec.hpet;
    this.hpet = h === false ? undefined : new Hpet({ ...budget, ...h, name: h?.name ?? 'hpet0' }, deps.clock, this.ioApic, deps.trace);
    this.pit = spec.pit === false ? undefined : new Pit({ name: 'pit0', ...budget }, deps.clock, deps.trace, {
      // Legacy replacement routing takes pin 2 away from the PIT.
      connected: () => this.hpet?.legacyReplacement !== true && PIT_IOAPIC_PIN < this.ioApic.pins,
      raise: () => this.ioApic.pulse(PIT_IOAPIC_PIN),
    });
  }

  /** The local APIC interrupt state of CPU `cpuId`. */
  lapic(cpuId: number): LocalApicIrq {
    const l = this.lapics[cpuId];
    if (l === undefined) throw new RangeError(`Cannot find local APIC of CPU ${cpuId}: the machine has CPUs 0..${this.lapics.length - 1}`);
    return l;
  }

  /** Messages go to the local APICs untranslated again (remapping off). */
  useDirectRouting(): void {
    this.router = this.direct;
  }

  /** A local APIC's EOI broadcast for a level-triggered vector reaching the IO-APIC. */
  eoi(vector: number): void {
    this.ioApic.eoi(vector);
  }
}

/** Builds the fabric for `m` and maps the IO-APIC and HPET register windows in its MMIO space. */
export function attachInterruptFabric(m: Machine, spec: InterruptFabricSpec = {}): InterruptFabric {
  const f = new InterruptFabric({ clock: m.clock, trace: m.trace, cpus: m.cpus }, spec);
  m.mmio.map(spec.ioApic?.base ?? IOAPIC_MMIO_BASE, IOAPIC_MMIO_SIZE, f.ioApic);
  if (f.hpet !== undefined) m.mmio.map((spec.hpet === false ? undefined : spec.hpet?.base) ?? HPET_MMIO_BASE, HPET_MMIO_SIZE, f.hpet);
  return f;
}
