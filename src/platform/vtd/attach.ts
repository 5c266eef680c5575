// Puts a VT-d unit into a machine: its register file in the MMIO space, its
// DMA path in front of every device's transfers (devices reach memory
// through `machine.dma` as it is at each transfer), and, given the machine's
// interrupt fabric, its interrupt remapping in the IO-APIC's path and its
// fault events on the local APIC bus.

import type { InterruptFabric } from '../apic/interrupt-fabric.js';
import type { Machine } from '../machine.js';
import { HOST_KEY_SLOT } from '../machine.js';
import { VtdInterruptRouter } from './interrupt-remapping.js';
import { VTD_DEFAULT_MMIO_BASE } from './registers.js';
import { decodeCompatibilityMsi, Vtd, type VtdConfig, type VtdMsi } from './vtd.js';
import { sourceIdFromBdf, VtdDma } from './vtd-dma.js';

export interface VtdSpec extends Omit<VtdConfig, 'onInterrupt'> {
  /** Physical address of the register file (the DRHD's base). */
  readonly mmioBase?: number;
  /** Source ids of devices whose names are not BDF strings. */
  readonly sourceIds?: Readonly<Record<string, number>>;
  /**
   * The interrupt fabric whose IO-APIC messages go through the unit's router
   * and whose local APICs receive its fault events; defaults to the
   * machine's own fabric when it has one.
   */
  readonly fabric?: InterruptFabric;
  /** false: leave the fabric's router alone (DMA remapping only). */
  readonly routeInterrupts?: boolean;
}

export interface AttachedVtd {
  readonly unit: Vtd;
  readonly dma: VtdDma;
  /** The router installed in the fabric (undefined without one). */
  readonly router: VtdInterruptRouter | undefined;
  readonly mmioBase: number;
}

export function attachVtd(m: Machine, spec: VtdSpec = {}): AttachedVtd {
  const { mmioBase: base, sourceIds = {}, fabric: given, routeInterrupts = true, ...config } = spec;
  // Machines that build their interrupt fabric at power-on carry it as `interrupts`.
  const fabric = routeInterrupts ? given ?? (m as Partial<{ readonly interrupts: InterruptFabric }>).interrupts : undefined;
  for (const nic of m.nics) {
    if (sourceIds[nic.bdf] === undefined && sourceIdFromBdf(nic.bdf) === undefined) throw new RangeError(`Cannot attach VT-d: device "${nic.name}" DMAs as "${nic.bdf}", which has no source id`);
  }
  const me = m.config.memEncrypt;
  const onInterrupt = fabric === undefined ? undefined : (msi: VtdMsi): void => {
    const irq = decodeCompatibilityMsi(msi.address, msi.upperAddress, msi.data);
    const r = fabric.bus.deliver(irq);
    m.trace.record(unit.name, r.delivered ? 'vtd-interrupt-delivered' : 'vtd-interrupt-not-delivered',
      r.delivered ? `${msi.cause} vector 0x${r.vector.toString(16)} accepted by CPU ${r.cpu}` : `${msi.cause} not delivered: ${r.reason}`,
      { cause: msi.cause, vector: irq.vector, destination: irq.destination, delivered: r.delivered });
  };
  const unit: Vtd = new Vtd({ ...config, ...(onInterrupt === undefined ? {} : { onInterrupt }) }, {
    clock: m.clock, mc: m.mc, trace: m.trace,
    ...(me?.state === 'enabled' ? { cbit: { bit: me.cbit, keyId: HOST_KEY_SLOT } } : {}),
  });
  const dma = new VtdDma(unit, sourceIds, m.dma, m.trace);
  const mmioBase = base ?? VTD_DEFAULT_MMIO_BASE;
  m.mmio.map(mmioBase, unit.mmioSize, unit);
  m.dma = dma;
  let router: VtdInterruptRouter | undefined;
  if (fabric !== undefined) {
    router = new VtdInterruptRouter(unit, fabric.bus);
    fabric.router = router;
  }
  m.trace.record(unit.name, 'vtd-attach', `VT-d unit at 0x${mmioBase.toString(16)}, CAP 0x${unit.cap.toString(16)} ECAP 0x${unit.ecap.toString(16)}`, {
    mmioBase, cap: `0x${unit.cap.toString(16)}`, ecap: `0x${unit.ecap.toString(16)}`, mmioSize: unit.mmioSize, interruptRouter: router !== undefined,
  });
  return { unit, dma, router, mmioBase };
}
