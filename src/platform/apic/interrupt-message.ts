// Interrupt messages: what an interrupt source (the IO-APIC today, MSI-capable
// devices later) sends upstream, and the router that decides which local APIC
// receives which vector. The router is the seam where an interrupt remapper
// (an AMD-Vi interrupt remapping table, a VT-d IRTE) translates the message;
// the direct router stands for a platform with no remapper in the path.

import type { LocalApicBus } from './local-apic-irq.js';

/** Delivery modes, as the 3-bit field of an RTE or MSI data word encodes them. */
export const DELIVERY_FIXED = 0;
export const DELIVERY_LOWEST_PRIORITY = 1;
export const DELIVERY_SMI = 2;
export const DELIVERY_NMI = 4;
export const DELIVERY_INIT = 5;
export const DELIVERY_EXTINT = 7;

const DELIVERY_NAMES = ['Fixed', 'LowestPriority', 'SMI', 'reserved (3)', 'NMI', 'INIT', 'reserved (6)', 'ExtINT'] as const;

export function deliveryModeName(mode: number): string {
  return DELIVERY_NAMES[mode & 7]!;
}

/** The message-signalled address window every interrupt write targets. */
export const MSI_ADDRESS_BASE = 0xfee0_0000;

/**
 * One interrupt request as it leaves its source. `address` and `data` are the
 * raw message-signalled form (the IO-APIC's messages travel upstream like MSI
 * writes), for remappers that index by data bits (AMD-Vi uses data[10:0]);
 * the other fields are the same request decoded.
 *
 * Compatibility format: `vector` and `destination` say where it goes.
 * Remappable format: `index` selects the remapper's entry; `vector` is the
 * source's own vector field, used only to match EOIs, never for delivery.
 */
export interface InterruptMessage {
  /** Who sent it, as named in the trace ("ioapic0"). */
  source: string;
  /** Requester id (bus << 8 | device << 3 | function) the remapper looks the source up by. */
  sourceId: number;
  remappable: boolean;
  index?: number;
  vector?: number;
  destination?: number;
  destMode: 'physical' | 'logical';
  /** DELIVERY_* value. */
  deliveryMode: number;
  trigger: 'edge' | 'level';
  address: number;
  data: number;
}

export type DeliveryResult =
  | { delivered: true; cpu: number; vector: number }
  | { delivered: false; reason: string };

/** Where interrupt messages go: a remapper, or the bus to the local APICs directly. */
export interface InterruptRouter {
  deliver(msg: InterruptMessage): DeliveryResult;
}

/** An interrupt resolved to its final form, as a remapper hands it to the local APICs. */
export interface ResolvedInterrupt {
  vector: number;
  destination: number;
  destMode: 'physical' | 'logical';
  deliveryMode: number;
  /** 32-bit destination (a remapper in x2APIC mode): only 0xffffffff broadcasts. */
  x2apic?: boolean;
}

export const REASON_REMAPPING_DISABLED = 'remappable-format interrupt with interrupt remapping disabled';

/**
 * No remapper: compatibility-format messages go straight to the local APICs;
 * a remappable-format message has nobody to translate its index, so it is
 * dropped, as a VT-d platform with IRE clear blocks it.
 */
export class DirectInterruptRouter implements InterruptRouter {
  readonly #bus: LocalApicBus;

  constructor(bus: LocalApicBus) {
    this.#bus = bus;
  }

  deliver(msg: InterruptMessage): DeliveryResult {
    if (msg.remappable) return { delivered: false, reason: REASON_REMAPPING_DISABLED };
    if (msg.vector === undefined || msg.destination === undefined) {
      return { delivered: false, reason: 'compatibility-format message without vector or destination' };
    }
    return this.#bus.deliver({ vector: msg.vector, destination: msg.destination, destMode: msg.destMode, deliveryMode: msg.deliveryMode });
  }
}

/** MSI address for a compatibility-format request: destination in 19:12, logical mode in bit 2. */
export function compatibilityAddress(destination: number, logical: boolean): number {
  return MSI_ADDRESS_BASE + ((destination & 0xff) << 12) + (logical ? 1 << 2 : 0);
}

/**
 * MSI address for a remappable-format request (the VT-d layout): handle[14:0]
 * in 19:5, format bit 4 set, handle[15] in bit 2, no subhandle.
 */
export function remappableAddress(index: number): number {
  return MSI_ADDRESS_BASE + ((index & 0x7fff) << 5) + (1 << 4) + (((index >> 15) & 1) << 2);
}

/** MSI data: vector 7:0, delivery mode 10:8, level-assert 14, trigger 15. */
export function messageData(vector: number, deliveryMode: number, level: boolean): number {
  return (vector & 0xff) | ((deliveryMode & 7) << 8) | (level ? (1 << 15) | (1 << 14) : 0);
}
