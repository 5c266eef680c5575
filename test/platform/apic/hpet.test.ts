import { describe, it, expect } from 'vitest';
import { NS_PER_MS } from '../../../src/platform/clock.js';
import {
  HPET_GCAP_ID, HPET_PERIOD, HPET_DEFAULT_PERIOD_FS, HPET_GEN_CONF, HPET_MAIN_COUNTER, HPET_CFG_ENABLE, HPET_CFG_LEGACY,
  HPET_ID_LEG_RT_CAP, HPET_ID_NUM_TIM_MASK, HPET_ID_NUM_TIM_SHIFT, HPET_T0_CONF, HPET_TN_PERIODIC_CAP,
  hpetTimerConf, hpetTimerComparator, HPET_TN_INT_ENB, HPET_TN_ROUTE_SHIFT, HPET_T0_COMPARATOR, HPET_MMIO_BASE, HPET_GINTR_STA, HPET_TN_LEVEL,
} from '../../../src/platform/apic/hpet.js';
import { rig, compatRte, TIMER_VECTOR } from './rig.js';

/** Virtual time of the k-th match of a periodic timer started at counter 0 (ceil to whole ns). */
function matchNs(k: number, ticks: number): number {
  return Number((BigInt(k * ticks) * BigInt(HPET_DEFAULT_PERIOD_FS) + 999_999n) / 1_000_000n);
}

describe('HPET', () => {
  it('advertises its period, timers and legacy routing, and counts at that period', () => {
    const r = rig();
    const cap = r.hpetRead(HPET_GCAP_ID, 8);
    expect(Number(cap >> 32n)).toBe(HPET_DEFAULT_PERIOD_FS);
    expect(Number(r.hpetRead(HPET_PERIOD))).toBe(HPET_DEFAULT_PERIOD_FS);
    expect(((Number(cap & 0xffffn) & HPET_ID_NUM_TIM_MASK) >> HPET_ID_NUM_TIM_SHIFT) + 1).toBe(3);
    expect(Number(cap) & HPET_ID_LEG_RT_CAP).not.toBe(0);
    expect(Number(r.hpetRead(HPET_T0_CONF)) & HPET_TN_PERIODIC_CAP).not.toBe(0);

    expect(r.hpetRead(HPET_MAIN_COUNTER)).toBe(0n); // halted at power-on
    r.m.clock.advance(NS_PER_MS);
    expect(r.hpetRead(HPET_MAIN_COUNTER)).toBe(0n);
    r.hpetWrite(HPET_GEN_CONF, HPET_CFG_ENABLE);
    r.m.clock.advance(NS_PER_MS);
    expect(r.hpetRead(HPET_MAIN_COUNTER)).toBe(BigInt(Math.floor(1e12 / HPET_DEFAULT_PERIOD_FS)));
  });

  it('ticks at 1 kHz through legacy pin 2 and a compatibility RTE: the local APIC counts 10 in 10 ms', () => {
    const r = rig();
    r.setRte(2, compatRte(TIMER_VECTOR, 0));
    const lapic = r.f.lapic(0);
    lapic.interruptsEnabled = true;
    const ticks = r.hpetTicksFor(1000);
    expect(ticks).toBe(14318);
    r.startHpetPeriodic(ticks);

    r.m.clock.advance(matchNs(10, ticks) - 1);
    expect(lapic.count(TIMER_VECTOR)).toBe(9);
    r.m.clock.advanceTo(10 * NS_PER_MS);
    expect(lapic.count(TIMER_VECTOR)).toBe(10);
    expect(r.f.lapic(1).arrivals(TIMER_VECTOR)).toBe(0); // destination was CPU 0 only

    // Each tick is a chain: comparator match -> pin 2 message -> accepted by CPU 0.
    const chain = r.m.trace.events.filter((e) => ['hpet-tick', 'ioapic-message', 'irq-delivered'].includes(e.kind));
    expect(chain.slice(0, 3).map((e) => [e.kind, e.t])).toEqual([
      ['hpet-tick', matchNs(1, ticks)], ['ioapic-message', matchNs(1, ticks)], ['irq-delivered', matchNs(1, ticks)],
    ]);
    expect(chain[0]!.data).toMatchObject({ timer: 0, pin: 2, interrupt: true });
    expect(chain[1]!.data).toMatchObject({ pin: 2, remappable: false, vector: TIMER_VECTOR, destination: 0 });
    expect(chain[2]!.data).toMatchObject({ cpu: 0, vector: TIMER_VECTOR });
    expect(r.m.trace.find('hpet-tick').map((e) => e.t)).toEqual(Array.from({ length: 10 }, (_, i) => matchNs(i + 1, ticks)));
  });

  it('stops ticking when ENABLE_CNF is cleared (hpet_disable), with the counter frozen, and resumes when set', () => {
    const r = rig();
    r.setRte(2, compatRte(TIMER_VECTOR, 0));
    const lapic = r.f.lapic(0);
    lapic.interruptsEnabled = true;
    const ticks = r.hpetTicksFor(1000);
    r.startHpetPeriodic(ticks);
    r.m.clock.advance(5 * NS_PER_MS);
    expect(lapic.count(TIMER_VECTOR)).toBe(5);

    r.hpetWrite(HPET_GEN_CONF, Number(r.hpetRead(HPET_GEN_CONF)) & ~HPET_CFG_ENABLE);
    const frozen = r.hpetRead(HPET_MAIN_COUNTER);
    r.m.clock.advance(50 * NS_PER_MS);
    expect(lapic.count(TIMER_VECTOR)).toBe(5);
    expect(r.m.trace.find('hpet-tick')).toHaveLength(5);
    expect(r.hpetRead(HPET_MAIN_COUNTER)).toBe(frozen);
    expect(r.m.trace.find('hpet-config').at(-1)!.data).toMatchObject({ enabled: false, legacy: true });

    r.hpetWrite(HPET_GEN_CONF, HPET_CFG_ENABLE | HPET_CFG_LEGACY);
    r.m.clock.advance(5 * NS_PER_MS);
    expect(lapic.count(TIMER_VECTOR)).toBe(10); // the counter picks up where it stopped, so does the comparator
  });

  it('traces a bounded number of ticks per programming, counts all of them, and traces again after a reprogramming', () => {
    const r = rig({ spec: { traceBudget: 5 } });
    r.setRte(2, compatRte(TIMER_VECTOR, 0));
    const lapic = r.f.lapic(0);
    lapic.interruptsEnabled = true;
    r.startHpetPeriodic(r.hpetTicksFor(1000));
    r.m.clock.advance(10 * NS_PER_MS);
    expect(lapic.count(TIMER_VECTOR)).toBe(10);
    expect(r.f.hpet!.matches[0]).toBe(10);
    expect(r.f.ioApic.stats(2)).toEqual({ messages: 10, delivered: 10, notDelivered: 0, masked: 0 });
    expect(r.m.trace.find('hpet-tick')).toHaveLength(5);
    expect(r.m.trace.find('irq-delivered')).toHaveLength(5);
    expect(r.m.trace.find('hpet-trace-limit')).toHaveLength(1);
    expect(r.m.trace.find('ioapic-trace-limit').map((e) => e.data)).toEqual([{ pin: 2, limit: 5 }]);
    r.setRte(2, compatRte(TIMER_VECTOR, 0, true)); // the IO-APIC side renews on an entry write
    r.m.clock.advance(2 * NS_PER_MS);
    expect(r.m.trace.find('ioapic-pin-masked')).toHaveLength(2);
    expect(r.m.trace.find('hpet-tick')).toHaveLength(5);
  });

  it('keeps a tick pending while the CPU has interrupts off; repeats coalesce into one', () => {
    const r = rig();
    r.setRte(2, compatRte(TIMER_VECTOR, 0));
    const lapic = r.f.lapic(0);
    r.startHpetPeriodic(r.hpetTicksFor(1000));
    r.m.clock.advance(10 * NS_PER_MS);
    expect(lapic.arrivals(TIMER_VECTOR)).toBe(10);
    expect(lapic.count(TIMER_VECTOR)).toBe(0);
    expect(lapic.pendingVectors()).toEqual([TIMER_VECTOR]);
    expect(r.m.trace.find('irq-delivered')).toHaveLength(10);
    lapic.interruptsEnabled = true;
    expect(lapic.count(TIMER_VECTOR)).toBe(1);
    expect(lapic.isPending(TIMER_VECTOR)).toBe(false);
  });

  it('routes a one-shot 32-bit timer by Tn_INT_ROUTE when legacy replacement is off, and it fires once', () => {
    const r = rig();
    r.setRte(20, compatRte(0x50, 1));
    r.m.cpus[1]!.state = 'running';
    r.f.lapic(1).interruptsEnabled = true;
    r.hpetWrite(HPET_GEN_CONF, HPET_CFG_ENABLE);
    r.hpetWrite(hpetTimerConf(2), HPET_TN_INT_ENB | (20 << HPET_TN_ROUTE_SHIFT));
    r.hpetWrite(hpetTimerComparator(2), 1000);
    r.m.clock.advance(20 * NS_PER_MS);
    expect(r.f.lapic(1).count(0x50)).toBe(1);
    expect(r.m.trace.find('hpet-tick').map((e) => e.data)).toEqual([{ timer: 2, counter: 1000, interrupt: true, pin: 20 }]);
    expect(r.m.trace.find('hpet-tick')[0]!.t).toBe(Math.ceil(1000 * HPET_DEFAULT_PERIOD_FS / 1e6));
  });

  it('keeps a 64-bit comparator\'s high half on a 32-bit write: a timer not in 32-bit mode never matches', () => {
    const r = rig();
    r.setRte(2, compatRte(TIMER_VECTOR, 0));
    r.f.lapic(0).interruptsEnabled = true;
    r.hpetWrite(HPET_GEN_CONF, HPET_CFG_ENABLE | HPET_CFG_LEGACY);
    r.hpetWrite(HPET_T0_CONF, HPET_TN_INT_ENB);
    r.hpetWrite(HPET_T0_COMPARATOR, 1000);
    expect(r.hpetRead(HPET_T0_COMPARATOR, 8)).toBe(0xffff_ffff_0000_03e8n); // power-on all ones above
    r.m.clock.advance(10 * NS_PER_MS);
    expect(r.m.trace.find('hpet-tick')).toHaveLength(0);
    r.m.mmio.write(HPET_MMIO_BASE + HPET_T0_COMPARATOR, 1_000_000n, 8);
    r.m.clock.advance(100 * NS_PER_MS);
    expect(r.f.lapic(0).count(TIMER_VECTOR)).toBe(1);
  });

  it('holds a level-triggered timer interrupt until its status bit is cleared', () => {
    const r = rig();
    r.setRte(21, { ...compatRte(0x51, 0), levelTriggered: true });
    const lapic = r.f.lapic(0);
    lapic.interruptsEnabled = true;
    r.hpetWrite(HPET_GEN_CONF, HPET_CFG_ENABLE);
    r.hpetWrite(hpetTimerConf(1), HPET_TN_INT_ENB | HPET_TN_LEVEL | (21 << HPET_TN_ROUTE_SHIFT));
    r.hpetWrite(hpetTimerComparator(1), 100);
    r.m.clock.advance(NS_PER_MS);
    expect(lapic.count(0x51)).toBe(1);
    expect(Number(r.hpetRead(HPET_GINTR_STA))).toBe(0b10);
    r.f.eoi(0x51); // line still asserted: the IO-APIC signals again
    expect(lapic.count(0x51)).toBe(2);
    r.hpetWrite(HPET_GINTR_STA, 0b10); // write 1 to clear drops the line
    r.f.eoi(0x51);
    expect(lapic.count(0x51)).toBe(2);
    expect(Number(r.hpetRead(HPET_GINTR_STA))).toBe(0);
  });
});
