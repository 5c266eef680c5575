// The High Precision Event Timer: one free-running up-counter at a fixed
// period (stated in femtoseconds in the capabilities register) and a few
// comparators. A comparator match raises the timer's interrupt; a periodic
// timer then adds its period to the comparator and goes again. With legacy
// replacement routing on, timer 0 drives IO-APIC pin 2 and timer 1 pin 8 in
// place of the PIT and the RTC. Clearing ENABLE_CNF halts the counter, so no
// comparator matches and no interrupts follow.
//
// Match times are computed from the counter formula and scheduled on the
// virtual clock as absolute times, so periodic ticks never drift. Not
// modelled: FSB (message) delivery, and a 32-bit one-shot firing again after
// its comparator wraps (minutes of virtual time away).

import type { VirtualClock, EventHandle } from '../clock.js';
import type { MmioDevice } from '../mmio.js';
import type { Trace } from '../trace.js';
import type { InterruptPins } from './io-apic.js';
import { TraceBudget } from './trace-budget.js';

export const HPET_MMIO_BASE = 0xfed0_0000;
export const HPET_MMIO_SIZE = 0x400;

/** Register offsets. */
export const HPET_GCAP_ID = 0x000;
/** High half of GCAP_ID: counter period in femtoseconds. */
export const HPET_PERIOD = 0x004;
export const HPET_GEN_CONF = 0x010;
export const HPET_GINTR_STA = 0x020;
export const HPET_MAIN_COUNTER = 0x0f0;
export function hpetTimerConf(n: number): number {
  return 0x100 + 0x20 * n;
}
export function hpetTimerComparator(n: number): number {
  return 0x108 + 0x20 * n;
}
export const HPET_T0_CONF = 0x100;
export const HPET_T0_COMPARATOR = 0x108;

/** GCAP_ID fields. */
export const HPET_ID_REV_MASK = 0xff;
export const HPET_ID_NUM_TIM_SHIFT = 8;
export const HPET_ID_NUM_TIM_MASK = 0x1f00;
export const HPET_ID_COUNT_SIZE_CAP = 1 << 13;
export const HPET_ID_LEG_RT_CAP = 1 << 15;
export const HPET_ID_VENDOR_SHIFT = 16;

/** GEN_CONF bits. */
export const HPET_CFG_ENABLE = 1 << 0;
export const HPET_CFG_LEGACY = 1 << 1;

/** Tn_CONF_CAP bits (low 32; the high 32 are Tn_INT_ROUTE_CAP, one bit per allowed IO-APIC pin). */
export const HPET_TN_LEVEL = 1 << 1;
export const HPET_TN_INT_ENB = 1 << 2;
export const HPET_TN_PERIODIC = 1 << 3;
export const HPET_TN_PERIODIC_CAP = 1 << 4;
export const HPET_TN_64BIT_CAP = 1 << 5;
export const HPET_TN_VAL_SET = 1 << 6;
export const HPET_TN_32BIT = 1 << 8;
export const HPET_TN_ROUTE_SHIFT = 9;
export const HPET_TN_ROUTE_MASK = 0x1f << HPET_TN_ROUTE_SHIFT;
export const HPET_TN_FSB_EN = 1 << 14;
export const HPET_TN_FSB_CAP = 1 << 15;

/** The classic 14.31818 MHz HPET clock. */
export const HPET_DEFAULT_PERIOD_FS = 69_841_279;
/** IO-APIC pins legacy replacement routes timers 0 and 1 to. */
export const HPET_LEGACY_PIN_TIMER0 = 2;
export const HPET_LEGACY_PIN_TIMER1 = 8;

const FS_PER_NS = 1_000_000n;
/** Beyond this a match cannot happen within any simulated run; not scheduling keeps clock arithmetic exact. */
const MAX_SCHEDULE_NS = 2 ** 50;
const WRITABLE_TN_CONF = HPET_TN_LEVEL | HPET_TN_INT_ENB | HPET_TN_PERIODIC | HPET_TN_VAL_SET | HPET_TN_32BIT | HPET_TN_ROUTE_MASK;

export interface HpetConfig {
  name: string;
  /** Counter period in femtoseconds (at most 100 ns, as the specification bounds it). */
  periodFs?: number;
  /** Comparators, 3..32. Timer 0 is periodic-capable and 64-bit; the others are 32-bit one-shot. */
  timers?: number;
  vendorId?: number;
  /** Tn_INT_ROUTE_CAP for every timer: bit n allows IO-APIC pin n. */
  routeCap?: number;
  /** Matches per timer traced after each reprogramming; later ones are only counted. */
  traceBudget?: number;
}

interface HpetTimer {
  /** Tn_CONF_CAP low 32 bits (capability bits included). */
  conf: number;
  /** Comparator value as software reads it (masked to the timer's width). */
  comparator: bigint;
  /** Last value written to the comparator: the period in periodic mode. */
  period: bigint;
  /** Unwrapped main-counter value of the next match. */
  target: bigint;
  event: EventHandle | undefined;
}

export class Hpet implements MmioDevice {
  readonly name: string;
  readonly periodFs: bigint;
  readonly #capabilities: bigint;
  readonly #routeCap: number;
  readonly #clock: VirtualClock;
  readonly #pins: InterruptPins;
  readonly #trace: Trace;
  #genConf = 0;
  #status = 0;
  /** Counter value when it last started or was written, and the time of that. */
  #counterBase = 0n;
  #counterSince = 0;
  readonly #timers: HpetTimer[];
  readonly #budget: TraceBudget;
  /** Matches so far, per timer (whether or not an interrupt was enabled). */
  readonly matches: number[];

  constructor(config: HpetConfig, clock: VirtualClock, pins: InterruptPins, trace: Trace) {
    this.name = config.name;
    const period = config.periodFs ?? HPET_DEFAULT_PERIOD_FS;
    if (!(Number.isInteger(period) && period > 0 && period <= 100_000_000)) {
      throw new RangeError(`Cannot build HPET "${config.name}": period ${period} fs is out of range 1..100000000`);
    }
    const n = config.timers ?? 3;
    if (!(Number.isInteger(n) && n >= 3 && n <= 32)) throw new RangeError(`Cannot build HPET "${config.name}": ${n} timers is out of range 3..32`);
    this.periodFs = BigInt(period);
    this.#routeCap = (config.routeCap ?? 0x00f0_0000) >>> 0;
    const low = 0x01 | ((n - 1) << HPET_ID_NUM_TIM_SHIFT) | HPET_ID_COUNT_SIZE_CAP | HPET_ID_LEG_RT_CAP | ((config.vendorId ?? 0x1022) << HPET_ID_VENDOR_SHIFT);
    this.#capabilities = (this.periodFs << 32n) | BigInt(low >>> 0);
    this.#clock = clock;
    this.#pins = pins;
    this.#trace = trace;
    this.#timers = [];
    for (let i = 0; i < n; i++) this.#timers.push({ conf: 0, comparator: 0n, period: 0n, target: 0n, event: undefined });
    this.matches = new Array<number>(n).fill(0);
    this.#budget = new TraceBudget(config.traceBudget);
    this.reset();
  }

  /** Power-on state: halted, counter 0, every timer off with its comparator all ones. */
  reset(): void {
    this.#genConf = 0;
    this.#status = 0;
    this.#counterBase = 0n;
    this.#counterSince = this.#clock.now;
    this.#timers.forEach((t, i) => {
      t.event?.cancel();
      t.event = undefined;
      t.conf = i === 0 ? HPET_TN_PERIODIC_CAP | HPET_TN_64BIT_CAP : 0;
      t.comparator = this.#widthMask(i);
      t.period = 0n;
    });
  }

  get enabled(): boolean {
    return (this.#genConf & HPET_CFG_ENABLE) !== 0;
  }

  /** LEG_RT_CNF: timer 0 owns IO-APIC pin 2 and the PIT is cut off from it. */
  get legacyReplacement(): boolean {
    return (this.#genConf & HPET_CFG_LEGACY) !== 0;
  }

  /** The main counter now. */
  get counter(): bigint {
    if (!this.enabled) return this.#counterBase;
    const ns = BigInt(Math.floor(this.#clock.now - this.#counterSince));
    return this.#counterBase + (ns * FS_PER_NS) / this.periodFs;
  }

  /** IO-APIC pin timer `n` signals on under the current routing. */
  pinOf(n: number): number {
    if (this.legacyReplacement && n === 0) return HPET_LEGACY_PIN_TIMER0;
    if (this.legacyReplacement && n === 1) return HPET_LEGACY_PIN_TIMER1;
    return (this.#timers[n]!.conf & HPET_TN_ROUTE_MASK) >> HPET_TN_ROUTE_SHIFT;
  }

  mmioRead(offset: number, size: 4 | 8): bigint {
    const reg = this.#read64(offset & ~7);
    if (size === 8) return reg;
    return (offset & 4) === 0 ? reg & 0xffff_ffffn : reg >> 32n;
  }

  mmioWrite(offset: number, size: 4 | 8, value: bigint): void {
    const aligned = offset & ~7;
    let v: bigint;
    if (size === 8) v = BigInt.asUintN(64, value);
    else {
      const old = this.#read64(aligned);
      const half = value & 0xffff_ffffn;
      v = (offset & 4) === 0 ? (old & ~0xffff_ffffn) | half : (old & 0xffff_ffffn) | (half << 32n);
    }
    this.#write64(aligned, v, size === 8 || (offset & 4) !== 0);
  }

  #read64(offset: number): bigint {
    switch (offset) {
      case HPET_GCAP_ID: return this.#capabilities;
      case HPET_GEN_CONF: return BigInt(this.#genConf);
      case HPET_GINTR_STA: return BigInt(this.#status >>> 0);
      case HPET_MAIN_COUNTER: return this.counter;
      default:
    }
    const n = this.#timerOf(offset);
    if (n === undefined) return 0n;
    const t = this.#timers[n]!;
    if ((offset & 0x1f) === 0) return (BigInt(this.#routeCap) << 32n) | BigInt(t.conf >>> 0);
    if ((offset & 0x1f) === 8) return t.comparator;
    return 0n;
  }

  /** `highWritten`: the access covered bits 63:32 (a comparator's high half only changes then). */
  #write64(offset: number, v: bigint, highWritten: boolean): void {
    switch (offset) {
      case HPET_GEN_CONF: this.#writeGenConf(Number(v & 3n)); return;
      case HPET_GINTR_STA: this.#clearStatus(Number(v & 0xffff_ffffn)); return;
      case HPET_MAIN_COUNTER:
        this.#counterBase = v;
        this.#counterSince = this.#clock.now;
        this.#rearmAll();
        return;
      default:
    }
    const n = this.#timerOf(offset);
    if (n === undefined) return;
    if ((offset & 0x1f) === 0) this.#writeTimerConf(n, Number(v & 0xffff_ffffn));
    else if ((offset & 0x1f) === 8) this.#writeComparator(n, v, highWritten);
  }

  #timerOf(offset: number): number | undefined {
    if (offset < 0x100) return undefined;
    const n = (offset - 0x100) >> 5;
    return n < this.#timers.length ? n : undefined;
  }

  #writeGenConf(v: number): void {
    const wasEnabled = this.enabled;
    const before = this.#genConf;
    if (wasEnabled && (v & HPET_CFG_ENABLE) === 0) {
      // Halting freezes the counter where it is.
      this.#counterBase = this.counter;
    } else if (!wasEnabled && (v & HPET_CFG_ENABLE) !== 0) {
      this.#counterSince = this.#clock.now;
    }
    this.#genConf = v;
    if (before !== v) {
      this.#trace.record(this.name, 'hpet-config', `${this.enabled ? 'counter running' : 'counter halted'}, legacy replacement ${this.legacyReplacement ? 'on' : 'off'}`, {
        enabled: this.enabled, legacy: this.legacyReplacement, counter: Number(this.counter),
      });
    }
    this.#rearmAll();
  }

  #clearStatus(v: number): void {
    for (let n = 0; n < this.#timers.length; n++) {
      const bit = 1 << n;
      if ((v & bit) === 0 || (this.#status & bit) === 0) continue;
      this.#status &= ~bit;
      const pin = this.pinOf(n);
      if (pin < this.#pins.pins) this.#pins.setLine(pin, false);
    }
  }

  #writeTimerConf(n: number, v: number): void {
    const t = this.#timers[n]!;
    const caps = t.conf & (HPET_TN_PERIODIC_CAP | HPET_TN_64BIT_CAP);
    let w = v & WRITABLE_TN_CONF;
    if ((caps & HPET_TN_PERIODIC_CAP) === 0) w &= ~HPET_TN_PERIODIC;
    if ((caps & HPET_TN_64BIT_CAP) === 0) w &= ~HPET_TN_32BIT; // already 32 bits wide
    t.conf = caps | w;
    t.comparator &= this.#widthMask(n);
    this.#arm(n);
  }

  /**
   * A comparator write sets the period (the value last written is what a
   * periodic timer adds at each match). It sets the comparator itself when the
   * timer is one-shot, or when software set VAL_SET first; VAL_SET clears.
   * A write of the low half only keeps the high half.
   */
  #writeComparator(n: number, v: bigint, highWritten: boolean): void {
    const t = this.#timers[n]!;
    const mask = this.#widthMask(n);
    const value = (highWritten ? v : (t.comparator & ~0xffff_ffffn) | (v & 0xffff_ffffn)) & mask;
    t.period = value;
    if ((t.conf & HPET_TN_PERIODIC) === 0 || (t.conf & HPET_TN_VAL_SET) !== 0) t.comparator = value;
    t.conf &= ~HPET_TN_VAL_SET;
    this.#arm(n);
  }

  #widthMask(n: number): bigint {
    const t = this.#timers[n]!;
    const wide = (t.conf & HPET_TN_64BIT_CAP) !== 0 && (t.conf & HPET_TN_32BIT) === 0;
    return wide ? 0xffff_ffff_ffff_ffffn : 0xffff_ffffn;
  }

  #rearmAll(): void {
    for (let n = 0; n < this.#timers.length; n++) this.#arm(n);
  }

  /** Schedules timer `n`'s next match from its comparator and the counter now. */
  #arm(n: number): void {
    const t = this.#timers[n]!;
    t.event?.cancel();
    t.event = undefined;
    this.#budget.reset(n);
    if (!this.enabled) return;
    const mask = this.#widthMask(n);
    const now = this.counter;
    let delta = (t.comparator - (now & mask)) & mask;
    if (delta === 0n) delta = mask + 1n; // the match for this value is already behind us
    t.target = now + delta;
    this.#schedule(n);
  }

  #schedule(n: number): void {
    const t = this.#timers[n]!;
    // First nanosecond at which the counter has reached the target.
    const ticks = t.target - this.#counterBase;
    const ns = (ticks * this.periodFs + FS_PER_NS - 1n) / FS_PER_NS;
    const at = this.#counterSince + Number(ns);
    if (!(at - this.#clock.now <= MAX_SCHEDULE_NS)) return;
    t.event = this.#clock.scheduleAt(at, `${this.name}-timer${n}`, () => this.#match(n));
  }

  #match(n: number): void {
    const t = this.#timers[n]!;
    t.event = undefined;
    this.matches[n]!++;
    const intOn = (t.conf & HPET_TN_INT_ENB) !== 0;
    const pin = this.pinOf(n);
    const connected = pin < this.#pins.pins;
    const verdict = this.#budget.take(n);
    if (verdict !== 'skip') this.#trace.record(this.name, 'hpet-tick', `timer ${n} matched at counter 0x${t.target.toString(16)}${!intOn ? ', interrupt disabled' : connected ? `: IO-APIC pin ${pin}` : `: pin ${pin} is not connected`}`, {
      timer: n, counter: Number(t.target), interrupt: intOn && connected, pin,
    });
    if (verdict === 'last') {
      this.#trace.record(this.name, 'hpet-trace-limit', `timer ${n}: ${this.#budget.limit} matches traced since it was programmed; later ones are counted, not traced`, {
        timer: n, limit: this.#budget.limit,
      });
    }
    const periodic = (t.conf & HPET_TN_PERIODIC) !== 0;
    if (periodic && t.period > 0n) {
      // Re-arm first, so a handler run by the interrupt sees the next match already set.
      const mask = this.#widthMask(n);
      t.target += t.period;
      t.comparator = t.target & mask;
      this.#schedule(n);
    }
    if (!intOn || !connected) return;
    if ((t.conf & HPET_TN_LEVEL) !== 0) {
      this.#status |= 1 << n;
      this.#pins.setLine(pin, true);
    } else {
      this.#pins.pulse(pin);
    }
  }
}
