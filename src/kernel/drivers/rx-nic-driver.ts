// The first kernel's driver for the receive NIC: allocates the descriptor
// ring and packet buffers, maps them for DMA, programs the device and
// recycles descriptors from a periodic poll (NAPI). Once the kernel stops
// running, nothing recycles them any more.

import type { RxNic } from '../../platform/pci/rx-nic.js';
import { NIC_CTRL, NIC_RDBAH, NIC_RDBAL, NIC_RDH, NIC_RDLEN, NIC_RDT, CTRL_RXEN, RX_DESC_SIZE, RXD_STAT_DD } from '../../platform/pci/rx-nic.js';
import type { FirstKernel } from '../first-kernel.js';
import { alignUp, directMapVirt } from '../layout.js';
import { mustSucceed, translate, writeVirt } from '../virtual-access.js';

export class RxNicDriver {
  readonly k: FirstKernel;
  readonly nic: RxNic;
  readonly mmioBase: number;
  ringPa = 0;
  buffersPa = 0;
  nextToClean = 0;
  packetsProcessed = 0;

  constructor(k: FirstKernel, nic: RxNic) {
    this.k = k;
    this.nic = nic;
    const spec = k.machine.config.nics.find((n) => n.name === nic.name);
    if (spec === undefined) throw new Error(`BUG: no MMIO base for ${nic.name}`);
    this.mmioBase = spec.mmioBase;
  }

  get entries(): number {
    return this.k.config.nic.ringEntries;
  }

  probe(): void {
    const k = this.k;
    const m = k.machine;
    const n = this.entries;
    const bufBytes = k.config.nic.bufferBytes;
    const ringBytes = alignUp(n * RX_DESC_SIZE, 4096);
    const bufsBytes = alignUp(n * bufBytes, 4096);
    const ring = k.memblock.alloc(ringBytes, 4096);
    const bufs = k.memblock.alloc(bufsBytes, 4096);
    if (ring === undefined || bufs === undefined) {
      k.log.printk(`rxnic ${this.nic.bdf}: cannot allocate RX ring`);
      return;
    }
    this.ringPa = ring;
    this.buffersPa = bufs;
    k.mem.zero(ring, ringBytes);
    k.mem.zero(bufs, bufsBytes);
    k.memMap.describe(k.mem, ring / 4096, ringBytes / 4096, 'slab');
    k.memMap.describe(k.mem, bufs / 4096, bufsBytes / 4096, 'slab');
    k.dmaMappings.push({ device: this.nic.bdf, pa: ring, length: ringBytes, purpose: 'RX descriptor ring' });
    k.dmaMappings.push({ device: this.nic.bdf, pa: bufs, length: bufsBytes, purpose: 'RX packet buffers' });
    // DMA addresses: IOVAs in the device's IOMMU domain when there is one; otherwise physical addresses,
    // with the C-bit (sme_me_mask) so a 64-bit device reaches encrypted memory.
    const iommu = k.iommu;
    iommu?.attachDevice(this.nic.bdf);
    const ringBus = iommu?.mapDma(this.nic.bdf, ring, ringBytes) ?? ring + Number(k.sme.mask);
    const bufsBus = iommu?.mapDma(this.nic.bdf, bufs, bufsBytes) ?? bufs + Number(k.sme.mask);
    const desc = new Uint8Array(n * RX_DESC_SIZE);
    const dv = new DataView(desc.buffer);
    for (let i = 0; i < n; i++) {
      const a = bufsBus + i * bufBytes;
      dv.setUint32(i * RX_DESC_SIZE, a % 2 ** 32, true);
      dv.setUint32(i * RX_DESC_SIZE + 4, Math.floor(a / 2 ** 32), true);
    }
    mustSucceed(writeVirt(m.mc, m.bsp, directMapVirt(ring), desc), 'RX ring setup');
    this.#reg(NIC_RDBAL, ringBus % 2 ** 32);
    this.#reg(NIC_RDBAH, Math.floor(ringBus / 2 ** 32));
    this.#reg(NIC_RDLEN, n * RX_DESC_SIZE);
    this.#reg(NIC_RDH, 0);
    this.#reg(NIC_RDT, n - 1);
    this.#reg(NIC_CTRL, CTRL_RXEN);
    k.log.printk(`rxnic ${this.nic.bdf}: ${n} RX descriptors at 0x${ring.toString(16)}, buffers at 0x${bufs.toString(16)}`);
    k.log.printk(`rxnic ${this.nic.bdf} eth0: Link is Up - 10Gbps/Full`);
    k.step(`${this.nic.name} (${this.nic.bdf}) receiving by DMA into ${n} buffers at 0x${bufs.toString(16)}`);
    this.#schedulePoll();
  }

  #reg(off: number, v: number): void {
    this.k.machine.mmio.write(this.mmioBase + off, BigInt(v));
  }

  #schedulePoll(): void {
    const m = this.k.machine;
    m.clock.schedule(this.k.config.nic.pollIntervalNs, `${this.nic.name}-napi`, () => {
      if (!this.k.running) return; // a dead kernel polls nothing
      this.#poll();
      this.#schedulePoll();
    });
  }

  /** Hands completed descriptors back to the device. */
  #poll(): void {
    const m = this.k.machine;
    const n = this.entries;
    const d = new Uint8Array(RX_DESC_SIZE);
    // The ring is one linear allocation in the direct map: translate its start once per poll.
    const w = translate(m.mc, m.bsp, directMapVirt(this.ringPa));
    if (!w.ok) throw new Error(`BUG: RX ring not mapped: ${w.detail}`);
    let cleaned = 0;
    for (;;) {
      const pa = w.pa + this.nextToClean * RX_DESC_SIZE;
      this.k.mem.read(pa, d);
      if ((d[12]! & RXD_STAT_DD) === 0) break;
      d.fill(0, 8);
      this.k.mem.write(pa, d);
      this.nextToClean = (this.nextToClean + 1) % n;
      cleaned++;
      if (cleaned >= n) break;
    }
    if (cleaned > 0) {
      this.packetsProcessed += cleaned;
      this.#reg(NIC_RDT, (this.nextToClean + n - 1) % n);
    }
  }
}
