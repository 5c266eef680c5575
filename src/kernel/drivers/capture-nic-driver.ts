// The receive NIC's driver as a capture kernel runs it, when its initramfs
// has one (machine.devices[].captureDriver: reset). Probing happens at
// device_initcall, after the IOMMU driver came up. With `reset_devices` on
// the command line (kdump's default) the driver first resets the device
// (CTRL.RST), which stops whatever DMA the dead kernel left running; without
// it the driver goes straight to its first DMA map and the device keeps
// using the old ring until it is reprogrammed.
//
// The first DMA map is what moves the device out of a copied VT-d context
// entry (deferred attach: iommu_deferred_attach on the first dma_map). The
// driver maps a small ring of its own in the capture kernel's memory and
// leaves the receiver off: a kdump initramfs that saves to a local disk
// never brings the interface up.

import type { Machine } from '../../platform/machine.js';
import type { RxNic } from '../../platform/pci/rx-nic.js';
import { CTRL_RST, NIC_CTRL, NIC_RDBAH, NIC_RDBAL, NIC_RDH, NIC_RDLEN, NIC_RDT, RX_DESC_SIZE } from '../../platform/pci/rx-nic.js';
import type { Cmdline } from '../cmdline.js';
import type { KernelLog } from '../dmesg.js';
import type { IommuDriver } from './iommu.js';

/** What a capture-kernel device driver needs of the kernel it runs in. */
export interface CaptureDriverHost {
  readonly machine: Machine;
  readonly log: KernelLog;
  readonly cmdline: Cmdline;
  readonly iommu: IommuDriver | undefined;
  /** sme_me_mask: set in bus addresses when there is no IOMMU domain. */
  readonly smeMask: bigint;
  /** Zeroed memory of this kernel's own, for DMA. */
  allocDma(bytes: number): number | undefined;
  step(detail: string, data?: Record<string, number | string | boolean>): void;
}

/** Descriptors the capture driver gives the device (it never receives into them). */
const CAPTURE_RING_ENTRIES = 64;
/** The driver's wait after a device reset before touching it again (msleep). */
const RESET_SETTLE_NS = 10_000_000;
/** From the first DMA map to programming the ring: reading the EEPROM, PHY set-up. */
const PROBE_SETUP_NS = 20_000_000;

export class CaptureNicDriver {
  readonly h: CaptureDriverHost;
  readonly nic: RxNic;
  readonly mmioBase: number;
  /** Whether probe reset the device (reset_devices was on the command line). */
  didReset = false;
  ringPa = 0;
  /** The ring's bus address: an IOVA in the device's new domain, or a physical address. */
  ringBus = 0;

  constructor(h: CaptureDriverHost, nic: RxNic) {
    this.h = h;
    this.nic = nic;
    const spec = h.machine.config.nics.find((n) => n.name === nic.name);
    if (spec === undefined) throw new Error(`BUG: no MMIO base for ${nic.name}`);
    this.mmioBase = spec.mmioBase;
  }

  probe(): void {
    const h = this.h;
    const bdf = this.nic.bdf;
    if (h.cmdline.has('reset_devices')) {
      h.log.printk(`rxnic ${bdf}: reset_devices: resetting the device`);
      this.#reg(NIC_CTRL, CTRL_RST);
      this.didReset = true;
      h.step(`capture-kernel driver for ${this.nic.name} (${bdf}) resets it (reset_devices): its DMA stops`, { device: bdf });
      h.machine.clock.advance(RESET_SETTLE_NS);
    } else {
      h.step(`capture-kernel driver for ${this.nic.name} (${bdf}) probes without reset_devices: the device keeps its DMA running`, { device: bdf });
    }
    const bytes = CAPTURE_RING_ENTRIES * RX_DESC_SIZE;
    const ring = h.allocDma(4096);
    if (ring === undefined) {
      h.log.printk(`rxnic ${bdf}: cannot allocate RX ring`);
      return;
    }
    this.ringPa = ring;
    // The first DMA-API use: the IOMMU core attaches the device's domain now (deferred attach).
    h.iommu?.attachDevice(bdf);
    this.ringBus = h.iommu?.mapDma(bdf, ring, 4096) ?? ring + Number(h.smeMask);
    h.step(`capture-kernel driver for ${this.nic.name} maps its RX ring 0x${ring.toString(16)} at bus address 0x${this.ringBus.toString(16)}`, { device: bdf, ring, bus: this.ringBus });
    h.machine.clock.advance(PROBE_SETUP_NS);
    this.#reg(NIC_RDBAL, this.ringBus % 2 ** 32);
    this.#reg(NIC_RDBAH, Math.floor(this.ringBus / 2 ** 32));
    this.#reg(NIC_RDLEN, bytes);
    this.#reg(NIC_RDH, 0);
    this.#reg(NIC_RDT, 0);
    h.log.printk(`rxnic ${bdf}: ${CAPTURE_RING_ENTRIES} RX descriptors at 0x${ring.toString(16)}`);
  }

  #reg(off: number, v: number): void {
    this.h.machine.mmio.write(this.mmioBase + off, BigInt(v));
  }
}

/** device_initcall: probes the capture-kernel drivers the machine's devices have. */
export function probeCaptureDrivers(h: CaptureDriverHost): CaptureNicDriver[] {
  const out: CaptureNicDriver[] = [];
  for (const nic of h.machine.nics) {
    const spec = h.machine.config.nics.find((n) => n.name === nic.name);
    if (spec?.captureDriver !== 'reset') continue;
    const d = new CaptureNicDriver(h, nic);
    d.probe();
    out.push(d);
  }
  return out;
}
