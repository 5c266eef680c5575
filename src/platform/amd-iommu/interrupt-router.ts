// Interrupt messages through the AMD IOMMU: the requester id finds the DTE,
// the DTE the IRT, and the index the message carries (data bits 10:0, which
// an IO-APIC entry holds in its vector field under AMD-Vi) the IRTE. Only a
// message the DTE leaves unmapped, or any while translation is off, goes to
// the local APICs as it is.

import type { InterruptMessage, InterruptRouter, DeliveryResult } from '../apic/interrupt-message.js';
import { DELIVERY_FIXED, DELIVERY_LOWEST_PRIORITY } from '../apic/interrupt-message.js';
import type { LocalApicBus } from '../apic/local-apic-irq.js';
import type { Trace } from '../trace.js';
import type { AmdIommu } from './amd-iommu.js';
import { irteIndexFromMsiData } from './interrupt-remapping-table.js';

/** IRTE IntType 0 fixed, 1 arbitrated (lowest priority); the others are not routed here. */
const INT_TYPE_TO_DELIVERY: Readonly<Record<number, number>> = { 0: DELIVERY_FIXED, 1: DELIVERY_LOWEST_PRIORITY };

export class AmdIommuInterruptRouter implements InterruptRouter {
  readonly #iommu: AmdIommu;
  readonly #bus: LocalApicBus;
  readonly #direct: InterruptRouter;
  readonly #trace: Trace;

  constructor(iommu: AmdIommu, bus: LocalApicBus, direct: InterruptRouter, trace: Trace) {
    this.#iommu = iommu;
    this.#bus = bus;
    this.#direct = direct;
    this.#trace = trace;
  }

  deliver(msg: InterruptMessage): DeliveryResult {
    const index = msg.remappable ? msg.index ?? 0 : irteIndexFromMsiData(msg.data);
    const r = this.#iommu.remapInterrupt(msg.sourceId, { index });
    if (!r.ok) {
      if (r.reason === 'remapping-off' || r.reason === 'not-remapped') return this.#direct.deliver(msg);
      this.#trace.record(this.#iommu.name, 'iommu-intr-dropped', `${msg.source} interrupt index ${index} dropped: ${r.detail}`, { sourceId: msg.sourceId, index, reason: r.reason });
      return { delivered: false, reason: `${r.reason}: ${r.detail}` };
    }
    const mode = INT_TYPE_TO_DELIVERY[r.intType];
    if (mode === undefined) return { delivered: false, reason: `IRTE ${index} has IntType ${r.intType}, not modelled` };
    return this.#bus.deliver({ vector: r.vector, destination: r.destination, destMode: r.destMode, deliveryMode: mode });
  }
}
