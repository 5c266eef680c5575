// Interrupt remapping: a remappable-format message (address bit 4 set)
// carries a 16-bit handle in address bits 19:5 and 2 (plus the data word's
// subhandle when SHV, address bit 3, is set); the unit reads that IRTE from
// the table SIRTP latched and delivers what the entry says. Entries are kept
// in the interrupt entry cache until an interrupt-entry-cache invalidation
// (or SIRTP on an ESIRTPS part) drops them; not-present entries are not
// cached. VtdInterruptRouter is the InterruptRouter the interrupt fabric
// sends messages through.

import type { DeliveryResult, InterruptMessage, InterruptRouter, ResolvedInterrupt } from '../apic/interrupt-message.js';
import { MSI_ADDRESS_BASE } from '../apic/interrupt-message.js';
import {
  FR_IR_INDEX_OVER, FR_IR_IRTE_RESERVED, FR_IR_NOT_PRESENT, FR_IR_REQUEST_RESERVED, FR_IR_SID_MISMATCH, FR_IR_TABLE_ACCESS,
} from './fault-reasons.js';
import { decodeIrte, IRTE_BYTES, irteReservedProblem, sourceIdAllowed, type IrteFields } from './irte.js';
import type { TraceEvent } from '../trace.js';
import type { IommuMemory } from '../iommu-memory.js';

/** Address bit 4: the remappable interrupt format. */
export const MSI_REMAPPABLE_FORMAT = 1 << 4;
/** Address bit 3: a subhandle in data 15:0 is added to the handle. */
export const MSI_SHV = 1 << 3;

/** The IRTE index a remappable-format message selects, or undefined if its address is malformed. */
export function interruptIndexOf(address: number, data: number): number | undefined {
  if (Math.floor(address / 2 ** 20) !== MSI_ADDRESS_BASE / 2 ** 20 || (address & 3) !== 0) return undefined;
  const handle = ((address >>> 5) & 0x7fff) | (((address >>> 2) & 1) << 15);
  return (address & MSI_SHV) !== 0 ? (handle + (data & 0xffff)) & 0xffff : handle;
}

export interface LatchedIrta {
  readonly addr: number;
  readonly entries: number;
  /** EIME: 32-bit (x2APIC) destinations. */
  readonly x2apic: boolean;
}

export type IrteLookup =
  | { readonly ok: true; readonly index: number; readonly irte: IrteFields; readonly irq: ResolvedInterrupt; /** The entry was read from memory, not the cache. */ readonly fetched: boolean }
  | { readonly ok: false; readonly index: number; readonly reason: number; readonly detail: string; readonly fpd: boolean };

export interface InterruptRemapperHost {
  readonly memory: IommuMemory;
  latchedIrta(): LatchedIrta;
  record(kind: string, detail: string, data?: TraceEvent['data']): void;
}

export class InterruptRemapper {
  readonly #host: InterruptRemapperHost;
  readonly #cache = new Map<number, IrteFields>();
  remapped = 0;

  constructor(host: InterruptRemapperHost) {
    this.#host = host;
  }

  get cacheSize(): number {
    return this.#cache.size;
  }

  /** Global (indexSelective false) or 2^im entries from `index` (aligned down). */
  invalidate(indexSelective: boolean, index = 0, im = 0): number {
    if (!indexSelective) {
      const n = this.#cache.size;
      this.#cache.clear();
      return n;
    }
    const count = 2 ** Math.min(im, 16);
    const first = index - (index % count);
    let n = 0;
    for (const i of [...this.#cache.keys()]) {
      if (i >= first && i < first + count) {
        this.#cache.delete(i);
        n++;
      }
    }
    return n;
  }

  /** Looks up the entry a remappable-format message from `sourceId` selects. */
  lookup(sourceId: number, msg: InterruptMessage): IrteLookup {
    const index = interruptIndexOf(msg.address, msg.data);
    if (index === undefined) {
      return { ok: false, index: 0, reason: FR_IR_REQUEST_RESERVED, detail: `message address 0x${msg.address.toString(16)} has reserved bits set`, fpd: false };
    }
    const irta = this.#host.latchedIrta();
    if (index >= irta.entries) {
      return { ok: false, index, reason: FR_IR_INDEX_OVER, detail: `index ${index} is beyond the ${irta.entries}-entry table`, fpd: false };
    }
    let irte = this.#cache.get(index);
    const fetched = irte === undefined;
    if (irte === undefined) {
      const at = irta.addr + index * IRTE_BYTES;
      const w = this.#host.memory.readWords(at, 2);
      if (w === undefined) return { ok: false, index, reason: FR_IR_TABLE_ACCESS, detail: `IRTE ${index} at 0x${at.toString(16)} is outside memory`, fpd: false };
      const [lo = 0n, hi = 0n] = w;
      const fields = decodeIrte(lo, hi, irta.x2apic);
      if (!fields.present) return { ok: false, index, reason: FR_IR_NOT_PRESENT, detail: `IRTE ${index} at 0x${at.toString(16)} is not present`, fpd: fields.fpd };
      const bad = irteReservedProblem(lo, hi, irta.x2apic);
      if (bad !== undefined) return { ok: false, index, reason: FR_IR_IRTE_RESERVED, detail: `IRTE ${index}: ${bad}`, fpd: fields.fpd };
      irte = fields;
      this.#cache.set(index, irte);
      this.#host.record('vtd-irte-fetch', `IRTE ${index} read from 0x${at.toString(16)}: vector 0x${irte.vector.toString(16)} destination 0x${irte.destination.toString(16)}`, {
        index, addr: at, vector: irte.vector, destination: irte.destination, destLogical: irte.destLogical, deliveryMode: irte.deliveryMode,
        sid: irte.sid, sq: irte.sq, svt: irte.svt, x2apic: irta.x2apic,
      });
    }
    if (!sourceIdAllowed(irte, sourceId)) {
      return {
        ok: false, index, reason: FR_IR_SID_MISMATCH, fpd: irte.fpd,
        detail: `source 0x${sourceId.toString(16)} fails IRTE ${index}'s check (SVT ${irte.svt} SQ ${irte.sq} SID 0x${irte.sid.toString(16)})`,
      };
    }
    this.remapped++;
    return {
      ok: true, index, irte, fetched,
      irq: {
        vector: irte.vector, destination: irte.destination, destMode: irte.destLogical ? 'logical' : 'physical', deliveryMode: irte.deliveryMode,
        ...(irta.x2apic ? { x2apic: true } : {}),
      },
    };
  }

  reset(): void {
    this.#cache.clear();
  }
}

/** What the unit decided for one message. */
export type InterruptDecision = { readonly deliver: ResolvedInterrupt } | { readonly drop: string };

/** The unit as the router needs it. */
export interface InterruptRemappingUnit {
  decideInterrupt(msg: InterruptMessage): InterruptDecision;
}

/** Where resolved interrupts go: the local APIC bus. */
export interface ResolvedInterruptSink {
  deliver(irq: ResolvedInterrupt): DeliveryResult;
}

/** Sends every message through the unit and on to the local APICs. */
export class VtdInterruptRouter implements InterruptRouter {
  readonly #unit: InterruptRemappingUnit;
  readonly #sink: ResolvedInterruptSink;

  constructor(unit: InterruptRemappingUnit, sink: ResolvedInterruptSink) {
    this.#unit = unit;
    this.#sink = sink;
  }

  deliver(msg: InterruptMessage): DeliveryResult {
    const d = this.#unit.decideInterrupt(msg);
    if ('drop' in d) return { delivered: false, reason: d.drop };
    return this.#sink.deliver(d.deliver);
  }
}
