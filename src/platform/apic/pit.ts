// The 8254 programmable interval timer, channel 0 only: the one wired to
// IRQ0, which on an IO-APIC system arrives at pin 2. Software programs it
// through I/O ports (mode/command at 0x43, count at 0x40); with no port bus in
// the platform yet, the ports are methods.
//
// Modelled: modes 0 and 4 (one interrupt after the count), 2 and 3 (an
// interrupt every `count` input clocks), counter latch and read-back of the
// current count. Not modelled: channels 1 and 2, BCD counting (counts are
// binary), the gate-triggered modes 1 and 5 (channel 0's gate is tied high,
// so they never start), and a mode 2/3 reload waiting for the end of the
// current period (a new count restarts the channel at once).

import type { VirtualClock, EventHandle } from '../clock.js';
import type { Trace } from '../trace.js';
import { TraceBudget } from './trace-budget.js';

export const PIT_FREQUENCY_HZ = 1_193_182;
export const PIT_CH0_PORT = 0x40;
export const PIT_MODE_PORT = 0x43;
/** IO-APIC pin IRQ0 reaches through the firmware's interrupt source override. */
export const PIT_IOAPIC_PIN = 2;

/** Mode/command byte fields. */
export const PIT_SEL_SHIFT = 6;
export const PIT_ACCESS_SHIFT = 4;
export const PIT_ACCESS_LATCH = 0;
export const PIT_ACCESS_LOBYTE = 1;
export const PIT_ACCESS_HIBYTE = 2;
export const PIT_ACCESS_LOHI = 3;
export const PIT_MODE_SHIFT = 1;

const NS_PER_S = 1_000_000_000n;
const FREQ = BigInt(PIT_FREQUENCY_HZ);

/** The IRQ0 wire: whether it reaches an interrupt controller pin now, and an edge on it. */
export interface Irq0Line {
  connected(): boolean;
  raise(): void;
}

export class Pit {
  readonly name: string;
  readonly #clock: VirtualClock;
  readonly #trace: Trace;
  readonly #irq0: Irq0Line;
  #mode = 0;
  #access = PIT_ACCESS_LOHI;
  /** Count as loaded (1..65536), or undefined while waiting for software to write one. */
  #count: number | undefined;
  #pendingLow: number | undefined;
  #loadedAt = 0;
  #ticks = 0;
  #latch: number | undefined;
  #readHighNext = false;
  #event: EventHandle | undefined;
  /** Rising edges of the channel 0 output so far. */
  outputs = 0;

  readonly #budget: TraceBudget;

  /** `traceBudget`: output edges traced after each count is loaded; later ones are only counted. */
  constructor(config: { name: string; traceBudget?: number }, clock: VirtualClock, trace: Trace, irq0: Irq0Line) {
    this.name = config.name;
    this.#budget = new TraceBudget(config.traceBudget);
    this.#clock = clock;
    this.#trace = trace;
    this.#irq0 = irq0;
  }

  /** Power-on: channel 0 idle until programmed. */
  reset(): void {
    this.#stop();
    this.#mode = 0;
    this.#access = PIT_ACCESS_LOHI;
    this.#pendingLow = undefined;
    this.#latch = undefined;
    this.#readHighNext = false;
  }

  get mode(): number {
    return this.#mode;
  }

  outb(port: number, value: number): void {
    const v = value & 0xff;
    if (port === PIT_MODE_PORT) this.#command(v);
    else if (port === PIT_CH0_PORT) this.#writeCount(v);
  }

  inb(port: number): number {
    if (port !== PIT_CH0_PORT) return 0xff;
    const value = this.#latch ?? this.currentCount();
    if (this.#access === PIT_ACCESS_LOHI && !this.#readHighNext) {
      this.#readHighNext = true;
      return value & 0xff; // a latch holds until its high byte is read
    }
    this.#readHighNext = false;
    this.#latch = undefined;
    return (this.#access === PIT_ACCESS_LOBYTE ? value : value >> 8) & 0xff;
  }

  /** The count register now (16 bits), as a latch would capture it. */
  currentCount(): number {
    if (this.#count === undefined) return 0;
    const n = this.#count;
    const clocks = Number((BigInt(Math.floor(this.#clock.now - this.#loadedAt)) * FREQ) / NS_PER_S);
    const periodic = this.#periodic();
    const left = periodic ? n - (clocks % n) : n - clocks;
    return ((left % 0x10000) + 0x10000) % 0x10000;
  }

  #command(v: number): void {
    const channel = v >> PIT_SEL_SHIFT;
    if (channel !== 0) return; // channels 1 and 2 (and read-back) are not modelled
    const access = (v >> PIT_ACCESS_SHIFT) & 3;
    if (access === PIT_ACCESS_LATCH) {
      this.#latch ??= this.currentCount();
      return;
    }
    // A new mode stops the channel until its count is written.
    this.#stop();
    this.#access = access;
    this.#mode = (v >> PIT_MODE_SHIFT) & 7;
    this.#pendingLow = undefined;
    this.#latch = undefined;
    this.#readHighNext = false;
  }

  #writeCount(v: number): void {
    if (this.#access === PIT_ACCESS_LOBYTE) this.#load(v);
    else if (this.#access === PIT_ACCESS_HIBYTE) this.#load(v << 8);
    else if (this.#pendingLow === undefined) this.#pendingLow = v;
    else {
      const low = this.#pendingLow;
      this.#pendingLow = undefined;
      this.#load(low | (v << 8));
    }
  }

  #periodic(): boolean {
    const m = this.#mode & 3;
    return m === 2 || m === 3;
  }

  #load(raw: number): void {
    this.#stop();
    const n = raw === 0 ? 0x10000 : raw;
    this.#count = n;
    this.#loadedAt = this.#clock.now;
    this.#ticks = 0;
    this.#budget.reset(0);
    const mode = this.#mode;
    this.#trace.record(this.name, 'pit-program', `channel 0 mode ${mode}, count ${n}`, { mode, count: n });
    if (mode === 1 || mode === 5) return;
    this.#scheduleNext();
  }

  #scheduleNext(): void {
    const n = this.#count!;
    // Mode 4 strobes one clock after the count runs out; the rest signal when it does.
    const clocks = BigInt(this.#mode === 4 ? n + 1 : n) * BigInt(this.#ticks + 1);
    const ns = (clocks * NS_PER_S + FREQ - 1n) / FREQ;
    this.#event = this.#clock.scheduleAt(this.#loadedAt + Number(ns), `${this.name}-ch0`, () => this.#output());
  }

  #output(): void {
    this.#event = undefined;
    this.#ticks++;
    this.outputs++;
    if (this.#periodic()) this.#scheduleNext();
    const routed = this.#irq0.connected();
    const verdict = this.#budget.take(0);
    if (verdict !== 'skip') this.#trace.record(this.name, 'pit-tick', `channel 0 output edge${routed ? '' : ': IRQ0 not connected'}`, { mode: this.#mode, routed });
    if (verdict === 'last') {
      this.#trace.record(this.name, 'pit-trace-limit', `channel 0: ${this.#budget.limit} output edges traced since the count was loaded; later ones are counted, not traced`, { limit: this.#budget.limit });
    }
    if (routed) this.#irq0.raise();
  }

  #stop(): void {
    this.#event?.cancel();
    this.#event = undefined;
    this.#count = undefined;
  }
}
