// The interrupt-acceptance side of each CPU's local APIC: which external
// vectors arrived, which wait in the IRR because the CPU has interrupts off,
// and how often the CPU took each one. Enough for a kernel model that enables
// interrupts, lets virtual time pass and counts its timer ticks.
//
// Simplifications, on purpose: the handler is taken to EOI at once (no ISR
// nesting, no TPR/PPR), and the CPU's IF flag is kept here rather than in
// the saved register file, which the kernel model uses for crash notes.

import type { Cpu } from '../cpu/cpu.js';
import {
  DELIVERY_FIXED, DELIVERY_LOWEST_PRIORITY, deliveryModeName, type DeliveryResult, type ResolvedInterrupt,
} from './interrupt-message.js';

export type AcceptResult = { accepted: true; taken: boolean } | { accepted: false; reason: string };

export class LocalApicIrq {
  readonly cpu: Cpu;
  /**
   * Logical APIC ID for flat logical destination mode; power-on 0 as the
   * LDR's is, so a logical message reaches a CPU only after its kernel sets it.
   */
  logicalId = 0;
  /** SVR bit 8: a software-disabled local APIC refuses fixed interrupts. */
  softwareEnabled = true;
  #interruptsEnabled = false;
  /** IRR: one bit per vector, so repeats of a pending vector coalesce. */
  readonly #irr = new Set<number>();
  readonly #taken = new Uint32Array(256);
  readonly #arrived = new Uint32Array(256);
  #takenTotal = 0;
  readonly #handlers = new Map<number, (vector: number) => void>();

  constructor(cpu: Cpu) {
    this.cpu = cpu;
  }

  get cpuId(): number {
    return this.cpu.id;
  }

  get apicId(): number {
    return this.cpu.apicId;
  }

  /** The CPU's IF flag. Setting it takes what waits in the IRR, highest vector first. */
  get interruptsEnabled(): boolean {
    return this.#interruptsEnabled;
  }

  set interruptsEnabled(on: boolean) {
    this.#interruptsEnabled = on;
    if (on) this.#drain();
  }

  /** Installs (or with undefined removes) what runs when the CPU takes `vector`. */
  onVector(vector: number, handler: ((vector: number) => void) | undefined): void {
    if (handler === undefined) this.#handlers.delete(vector);
    else this.#handlers.set(vector, handler);
  }

  /** A fixed interrupt arrives from the APIC bus. */
  accept(vector: number): AcceptResult {
    if (this.cpu.state === 'wait-for-sipi') {
      // INIT reset this local APIC: until the CPU is started and its APIC set up, it takes nothing.
      return { accepted: false, reason: `CPU ${this.cpuId} is in wait-for-SIPI` };
    }
    if (!this.softwareEnabled) return { accepted: false, reason: `local APIC of CPU ${this.cpuId} is software-disabled` };
    const v = vector & 0xff;
    this.#arrived[v]!++;
    this.#irr.add(v);
    if (this.#canTake()) {
      this.#drain();
      return { accepted: true, taken: true };
    }
    return { accepted: true, taken: false };
  }

  /** Times the CPU took `vector` (ran its handler). */
  count(vector: number): number {
    return this.#taken[vector & 0xff]!;
  }

  /** Messages with `vector` this local APIC accepted, including ones that coalesced in the IRR. */
  arrivals(vector: number): number {
    return this.#arrived[vector & 0xff]!;
  }

  /** Interrupts taken, all vectors. */
  get takenTotal(): number {
    return this.#takenTotal;
  }

  isPending(vector: number): boolean {
    return this.#irr.has(vector & 0xff);
  }

  /** Vectors waiting in the IRR, highest first (the order the CPU will take them). */
  pendingVectors(): number[] {
    return [...this.#irr].sort((a, b) => b - a);
  }

  /** What INIT or a local APIC reset does to interrupt state: IRR cleared, counts kept as history. */
  clearPending(): void {
    this.#irr.clear();
  }

  #canTake(): boolean {
    return this.#interruptsEnabled && (this.cpu.state === 'running' || this.cpu.state === 'halted');
  }

  #drain(): void {
    while (this.#irr.size > 0 && this.#canTake()) {
      const v = Math.max(...this.#irr);
      this.#irr.delete(v);
      // An interrupt ends HLT, as an NMI does.
      if (this.cpu.state === 'halted') this.cpu.state = 'running';
      this.#taken[v]!++;
      this.#takenTotal++;
      this.#handlers.get(v)?.(v);
    }
  }
}

/**
 * The path from the chipset to the local APICs: picks the targets of a
 * resolved interrupt by destination and hands them the vector. xAPIC physical
 * destination 0xff broadcasts; logical mode is the flat model (a CPU matches
 * when its logical ID shares a bit with the destination). Lowest-priority
 * arbitration is not modelled: the first matching CPU in APIC-ID order wins.
 */
export class LocalApicBus {
  readonly lapics: readonly LocalApicIrq[];

  constructor(lapics: readonly LocalApicIrq[]) {
    this.lapics = lapics;
  }

  deliver(irq: ResolvedInterrupt): DeliveryResult {
    if (irq.deliveryMode !== DELIVERY_FIXED && irq.deliveryMode !== DELIVERY_LOWEST_PRIORITY) {
      return { delivered: false, reason: `delivery mode ${deliveryModeName(irq.deliveryMode)} is not modelled` };
    }
    const vector = irq.vector & 0xff;
    // Vectors 0-15 are reserved for exceptions; a local APIC flags them as illegal and drops them.
    if (vector < 16) return { delivered: false, reason: `illegal vector 0x${vector.toString(16)}` };
    let targets = this.#targets(irq);
    if (targets.length === 0) {
      return { delivered: false, reason: `no local APIC matches ${irq.destMode} destination 0x${irq.destination.toString(16)}` };
    }
    if (irq.deliveryMode === DELIVERY_LOWEST_PRIORITY) targets = targets.slice(0, 1);
    let first: number | undefined;
    let refusal = '';
    for (const l of targets) {
      const r = l.accept(vector);
      if (r.accepted) first ??= l.cpuId;
      else refusal ||= r.reason;
    }
    return first === undefined ? { delivered: false, reason: refusal } : { delivered: true, cpu: first, vector };
  }

  #targets(irq: ResolvedInterrupt): LocalApicIrq[] {
    const byApicId = [...this.lapics].sort((a, b) => a.apicId - b.apicId);
    if (irq.destMode === 'logical') return byApicId.filter((l) => (l.logicalId & irq.destination) !== 0);
    const broadcast = irq.x2apic === true ? irq.destination === 0xffff_ffff : irq.destination === 0xff;
    if (broadcast) return byApicId;
    return byApicId.filter((l) => l.apicId === irq.destination);
  }
}
