// The I/O APIC: 24 interrupt pins, each with a 64-bit redirection table entry
// (RTE) saying how an assertion becomes an interrupt message. Software reaches
// its registers indirectly: write the register index to IOREGSEL, then read or
// write IOWIN. The EOI register (versions 0x20 and later) clears Remote IRR of
// level-triggered entries by vector.
//
// Each RTE is read in one of two formats, chosen by bit 48. Compatibility:
// vector and destination travel in the message. Remappable (the interrupt
// remapping layout VT-d defines for IOxAPICs): the entry carries a 16-bit
// interrupt index instead, and only a remapper can turn it into a vector.
// AMD-Vi needs no such bit: its IO-APIC entries stay in compatibility format
// and the IOMMU reads the index out of the message's data bits, which a
// remapping router can do from the same message (see InterruptMessage.data).
//
// Input pins are logical: a source asserts or pulses a pin; the polarity bit
// is stored but not applied, as every modelled source drives its pin the way
// firmware describes it.

import type { MmioDevice } from '../mmio.js';
import type { Trace } from '../trace.js';
import { TraceBudget } from './trace-budget.js';
import {
  compatibilityAddress, deliveryModeName, messageData, remappableAddress,
  type InterruptMessage, type InterruptRouter,
} from './interrupt-message.js';

export const IOAPIC_MMIO_BASE = 0xfec0_0000;
/** One IO-APIC register window (firmware places several 4 KiB apart). */
export const IOAPIC_MMIO_SIZE = 0x400;

/** MMIO offsets. */
export const IOAPIC_IOREGSEL = 0x00;
export const IOAPIC_IOWIN = 0x10;
export const IOAPIC_EOI = 0x40;

/** Indirect register indices. */
export const IOAPIC_REG_ID = 0x00;
export const IOAPIC_REG_VER = 0x01;
export const IOAPIC_REG_ARB = 0x02;
export const IOAPIC_REG_REDTBL = 0x10;

/** Register index of the low (high) half of pin `pin`'s RTE. */
export function ioapicRteLow(pin: number): number {
  return IOAPIC_REG_REDTBL + 2 * pin;
}
export function ioapicRteHigh(pin: number): number {
  return IOAPIC_REG_REDTBL + 2 * pin + 1;
}

export const IOAPIC_PINS = 24;
/** Version register value: an IOxAPIC with the EOI register. */
export const IOAPIC_VERSION = 0x21;
/** ID register: the APIC ID sits in bits 31:24. */
export const IOAPIC_ID_SHIFT = 24;
/** Version register: maximum redirection entry (pins - 1) in bits 23:16. */
export const IOAPIC_VER_MAXREDIR_SHIFT = 16;

/** RTE bits (both formats unless noted). */
export const RTE_VECTOR_MASK = 0xffn;
export const RTE_DELIVERY_MODE_SHIFT = 8n;
export const RTE_DELIVERY_MODE_MASK = 0x700n;
/** Compatibility: logical destination mode. Remappable: index bit 15. */
export const RTE_DEST_LOGICAL = 1n << 11n;
export const RTE_INDEX15 = 1n << 11n;
export const RTE_DELIVERY_STATUS = 1n << 12n;
export const RTE_POLARITY_LOW = 1n << 13n;
export const RTE_REMOTE_IRR = 1n << 14n;
export const RTE_TRIGGER_LEVEL = 1n << 15n;
export const RTE_MASKED = 1n << 16n;
/** Interrupt format: 1 selects the remappable layout. */
export const RTE_FORMAT_REMAPPABLE = 1n << 48n;
/** Remappable: index bits 14:0 in 63:49. */
export const RTE_INDEX_SHIFT = 49n;
/** Compatibility: destination APIC ID in 63:56. */
export const RTE_DEST_SHIFT = 56n;

/** Bits hardware owns: software writes to them are ignored. */
const RTE_READ_ONLY = RTE_DELIVERY_STATUS | RTE_REMOTE_IRR;
const RTE_POWER_ON = RTE_MASKED;

interface RteCommon {
  /** Bits 7:0: the vector (remappable: used to match EOIs only). */
  vector: number;
  deliveryStatus: boolean;
  polarityLow: boolean;
  remoteIrr: boolean;
  levelTriggered: boolean;
  masked: boolean;
}

export type CompatibilityRte = RteCommon & { format: 'compatibility'; deliveryMode: number; destLogical: boolean; destination: number };
export type RemappableRte = RteCommon & { format: 'remappable'; index: number };
export type RedirectionEntry = CompatibilityRte | RemappableRte;

export function decodeRte(v: bigint): RedirectionEntry {
  const common: RteCommon = {
    vector: Number(v & RTE_VECTOR_MASK),
    deliveryStatus: (v & RTE_DELIVERY_STATUS) !== 0n,
    polarityLow: (v & RTE_POLARITY_LOW) !== 0n,
    remoteIrr: (v & RTE_REMOTE_IRR) !== 0n,
    levelTriggered: (v & RTE_TRIGGER_LEVEL) !== 0n,
    masked: (v & RTE_MASKED) !== 0n,
  };
  if ((v & RTE_FORMAT_REMAPPABLE) !== 0n) {
    const index = Number((v >> RTE_INDEX_SHIFT) & 0x7fffn) | ((v & RTE_INDEX15) !== 0n ? 0x8000 : 0);
    return { ...common, format: 'remappable', index };
  }
  return {
    ...common,
    format: 'compatibility',
    deliveryMode: Number((v & RTE_DELIVERY_MODE_MASK) >> RTE_DELIVERY_MODE_SHIFT),
    destLogical: (v & RTE_DEST_LOGICAL) !== 0n,
    destination: Number(v >> RTE_DEST_SHIFT),
  };
}

export function encodeRte(e: RedirectionEntry): bigint {
  let v = BigInt(e.vector & 0xff);
  if (e.deliveryStatus) v |= RTE_DELIVERY_STATUS;
  if (e.polarityLow) v |= RTE_POLARITY_LOW;
  if (e.remoteIrr) v |= RTE_REMOTE_IRR;
  if (e.levelTriggered) v |= RTE_TRIGGER_LEVEL;
  if (e.masked) v |= RTE_MASKED;
  if (e.format === 'remappable') {
    v |= RTE_FORMAT_REMAPPABLE | (BigInt(e.index & 0x7fff) << RTE_INDEX_SHIFT);
    if ((e.index & 0x8000) !== 0) v |= RTE_INDEX15;
  } else {
    v |= BigInt(e.deliveryMode & 7) << RTE_DELIVERY_MODE_SHIFT;
    if (e.destLogical) v |= RTE_DEST_LOGICAL;
    v |= BigInt(e.destination & 0xff) << RTE_DEST_SHIFT;
  }
  return v;
}

/** The input side of an interrupt controller, as interrupt sources (timers) see it. */
export interface InterruptPins {
  readonly pins: number;
  /** A rising edge (edge pins) or a brief assertion (level pins). */
  pulse(pin: number): void;
  setLine(pin: number, high: boolean): void;
}

export interface IoApicConfig {
  /** Trace source name ("ioapic0"). */
  name: string;
  /** Power-on APIC ID (ID register bits 31:24). */
  id: number;
  /** Requester id of the IO-APIC's messages (0x00a0: 00:14.0, where AMD chipsets place it). */
  sourceId: number;
  pins?: number;
  /** Messages per pin traced after each write to its entry; later ones are only counted. */
  traceBudget?: number;
}

/** What one pin has done since the IO-APIC was built (a reset keeps the history). */
export interface IoApicPinStats {
  /** Messages sent to the router. */
  messages: number;
  delivered: number;
  notDelivered: number;
  /** Assertions dropped because the entry was masked. */
  masked: number;
}

export class IoApic implements MmioDevice, InterruptPins {
  readonly name: string;
  readonly config: IoApicConfig;
  readonly pins: number;
  readonly #router: InterruptRouter;
  readonly #trace: Trace;
  #ioregsel = 0;
  #id = 0;
  readonly #rte: bigint[];
  /** Level of each input line (level-triggered pins are re-evaluated from it). */
  readonly #line: boolean[];
  readonly #stats: IoApicPinStats[];
  readonly #budget: TraceBudget;

  /** `router` is consulted at each message, so a port that forwards to a replaceable router works. */
  constructor(config: IoApicConfig, router: InterruptRouter, trace: Trace) {
    this.name = config.name;
    this.config = config;
    this.pins = config.pins ?? IOAPIC_PINS;
    if (!(this.pins >= 1 && this.pins <= 240)) throw new RangeError(`Cannot build IO-APIC "${config.name}": ${this.pins} pins is out of range 1..240`);
    this.#router = router;
    this.#trace = trace;
    this.#rte = new Array<bigint>(this.pins).fill(RTE_POWER_ON);
    this.#line = new Array<boolean>(this.pins).fill(false);
    this.#stats = Array.from({ length: this.pins }, () => ({ messages: 0, delivered: 0, notDelivered: 0, masked: 0 }));
    this.#budget = new TraceBudget(config.traceBudget);
    this.reset();
  }

  /** Power-on state: every pin masked. kexec does not do this; the kernel rewrites (or clears) entries itself. */
  reset(): void {
    this.#ioregsel = 0;
    this.#id = this.config.id & 0xff;
    this.#rte.fill(RTE_POWER_ON);
  }

  /** The raw RTE of `pin` (for tests and for a kernel model's debug output). */
  rte(pin: number): bigint {
    return this.#rte[this.#checkPin(pin)]!;
  }

  entry(pin: number): RedirectionEntry {
    return decodeRte(this.rte(pin));
  }

  /** Counts for `pin`, traced or not. */
  stats(pin: number): Readonly<IoApicPinStats> {
    return this.#stats[this.#checkPin(pin)]!;
  }

  mmioRead(offset: number, _size: 4 | 8): bigint {
    switch (offset) {
      case IOAPIC_IOREGSEL: return BigInt(this.#ioregsel);
      case IOAPIC_IOWIN: return BigInt(this.#readReg(this.#ioregsel));
      default: return 0n;
    }
  }

  mmioWrite(offset: number, _size: 4 | 8, value: bigint): void {
    const v = Number(value & 0xffff_ffffn);
    switch (offset) {
      case IOAPIC_IOREGSEL: this.#ioregsel = v & 0xff; return;
      case IOAPIC_IOWIN: this.#writeReg(this.#ioregsel, v); return;
      case IOAPIC_EOI: this.eoi(v & 0xff); return;
      default:
    }
  }

  /** An edge from a source (a timer output): a rising edge on an edge pin, assert-then-release on a level pin. */
  pulse(pin: number): void {
    this.setLine(pin, true);
    this.setLine(pin, false);
  }

  /** Drives input `pin` to `high` (asserted). */
  setLine(pin: number, high: boolean): void {
    const p = this.#checkPin(pin);
    const was = this.#line[p]!;
    this.#line[p] = high;
    const rte = this.#rte[p]!;
    if ((rte & RTE_TRIGGER_LEVEL) === 0n) {
      if (high && !was) this.#raise(p);
      return;
    }
    if (high) this.#evaluateLevel(p);
  }

  /** End of interrupt for `vector`: level entries with that vector may signal again. */
  eoi(vector: number): void {
    for (let p = 0; p < this.pins; p++) {
      const rte = this.#rte[p]!;
      if ((rte & RTE_REMOTE_IRR) === 0n || Number(rte & RTE_VECTOR_MASK) !== vector) continue;
      this.#rte[p] = rte & ~RTE_REMOTE_IRR;
      this.#evaluateLevel(p);
    }
  }

  #readReg(index: number): number {
    if (index === IOAPIC_REG_ID || index === IOAPIC_REG_ARB) return (this.#id << IOAPIC_ID_SHIFT) >>> 0;
    if (index === IOAPIC_REG_VER) return IOAPIC_VERSION | ((this.pins - 1) << IOAPIC_VER_MAXREDIR_SHIFT);
    const pin = (index - IOAPIC_REG_REDTBL) >> 1;
    if (index < IOAPIC_REG_REDTBL || pin >= this.pins) return 0;
    const rte = this.#rte[pin]!;
    return Number((index & 1) === 0 ? rte & 0xffff_ffffn : rte >> 32n);
  }

  #writeReg(index: number, v: number): void {
    if (index === IOAPIC_REG_ID) {
      this.#id = (v >>> IOAPIC_ID_SHIFT) & 0xff;
      return;
    }
    const pin = (index - IOAPIC_REG_REDTBL) >> 1;
    if (index < IOAPIC_REG_REDTBL || pin >= this.pins) return; // VER, ARB and unimplemented indices are read-only
    const old = this.#rte[pin]!;
    const written = (index & 1) === 0
      ? (old & ~0xffff_ffffn) | BigInt(v)
      : (old & 0xffff_ffffn) | (BigInt(v) << 32n);
    let next = (written & ~RTE_READ_ONLY) | (old & RTE_READ_ONLY);
    // Switching an entry to edge clears Remote IRR (kernels without the EOI register rely on it).
    if ((next & RTE_TRIGGER_LEVEL) === 0n) next &= ~RTE_REMOTE_IRR;
    this.#rte[pin] = next;
    this.#budget.reset(pin);
    // A level line still asserted signals as soon as its entry is unmasked.
    if ((next & RTE_TRIGGER_LEVEL) !== 0n && this.#line[pin]) this.#evaluateLevel(pin);
  }

  #evaluateLevel(p: number): void {
    const rte = this.#rte[p]!;
    if (!this.#line[p] || (rte & RTE_TRIGGER_LEVEL) === 0n || (rte & RTE_REMOTE_IRR) !== 0n) return;
    if (this.#raise(p)) this.#rte[p] = this.#rte[p]! | RTE_REMOTE_IRR;
  }

  /** Sends pin `p`'s message; returns whether a local APIC accepted it. */
  #raise(p: number): boolean {
    const rte = this.#rte[p]!;
    const stats = this.#stats[p]!;
    const verdict = this.#budget.take(p);
    const traced = verdict !== 'skip';
    if ((rte & RTE_MASKED) !== 0n) {
      // A masked pin drops edges outright; a level line waits to be unmasked.
      stats.masked++;
      if (traced) this.#trace.record(this.name, 'ioapic-pin-masked', `pin ${p} asserted while masked: no message`, { pin: p });
      if (verdict === 'last') this.#traceLimitReached(p);
      return false;
    }
    const msg = this.#message(decodeRte(rte));
    stats.messages++;
    if (traced) {
      const what = msg.remappable
        ? `remappable, index ${msg.index}`
        : `vector 0x${msg.vector!.toString(16)} ${deliveryModeName(msg.deliveryMode)} to ${msg.destMode} 0x${msg.destination!.toString(16)}`;
      this.#trace.record(this.name, 'ioapic-message', `pin ${p}: ${what} from source 0x${msg.sourceId.toString(16).padStart(4, '0')}`, {
        pin: p,
        remappable: msg.remappable,
        sourceId: msg.sourceId,
        ...(msg.index === undefined ? {} : { index: msg.index }),
        ...(msg.vector === undefined ? {} : { vector: msg.vector }),
        ...(msg.destination === undefined ? {} : { destination: msg.destination }),
      });
    }
    const r = this.#router.deliver(msg);
    if (r.delivered) stats.delivered++;
    else stats.notDelivered++;
    if (traced && r.delivered) {
      this.#trace.record(this.name, 'irq-delivered', `pin ${p}: vector 0x${r.vector.toString(16)} accepted by CPU ${r.cpu}`, { pin: p, cpu: r.cpu, vector: r.vector });
    } else if (traced && !r.delivered) {
      this.#trace.record(this.name, 'irq-not-delivered', `pin ${p}: not delivered: ${r.reason}`, { pin: p, reason: r.reason, remappable: msg.remappable });
    }
    if (verdict === 'last') this.#traceLimitReached(p);
    return r.delivered;
  }

  #traceLimitReached(p: number): void {
    this.#trace.record(this.name, 'ioapic-trace-limit', `pin ${p}: ${this.#budget.limit} assertions traced since its entry was written; later ones are counted, not traced`, {
      pin: p, limit: this.#budget.limit,
    });
  }

  #message(e: RedirectionEntry): InterruptMessage {
    const level = e.levelTriggered;
    const base = { source: this.name, sourceId: this.config.sourceId, trigger: level ? 'level' : 'edge', vector: e.vector } as const;
    if (e.format === 'remappable') {
      return { ...base, remappable: true, index: e.index, destMode: 'physical', deliveryMode: 0, address: remappableAddress(e.index), data: messageData(e.vector, 0, level) };
    }
    return {
      ...base,
      remappable: false,
      destination: e.destination,
      destMode: e.destLogical ? 'logical' : 'physical',
      deliveryMode: e.deliveryMode,
      address: compatibilityAddress(e.destination, e.destLogical),
      data: messageData(e.vector, e.deliveryMode, level),
    };
  }

  #checkPin(pin: number): number {
    if (!(Number.isInteger(pin) && pin >= 0 && pin < this.pins)) {
      throw new RangeError(`Cannot use pin ${pin} of IO-APIC "${this.name}": it has pins 0..${this.pins - 1}`);
    }
    return pin;
  }
}
