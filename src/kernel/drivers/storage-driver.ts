// The first kernel's driver for the storage controller: allocates the
// command queue and one I/O buffer per slot, maps them for DMA through the
// IOMMU interface, and keeps the queue full of I/O (reads and writes in
// turn, walking the disk) from a periodic completion poll. Once the kernel
// stops running nothing is queued any more, but what was queued goes on.

import type { StorageController } from '../../platform/pci/storage-controller.js';
import {
  DESC_BUF, DESC_LBA, DESC_LEN, DESC_OP, DESC_STATUS, OP_READ, OP_WRITE, SECTOR_BYTES, STAT_DONE,
  STC_CTRL, STC_CTRL_EN, STC_DESC_SIZE, STC_QBAH, STC_QBAL, STC_QHEAD, STC_QLEN, STC_QTAIL,
} from '../../platform/pci/storage-controller.js';
import type { FirstKernel } from '../first-kernel.js';
import { alignUp, directMapVirt } from '../layout.js';
import { mustSucceed, translate, writeVirt } from '../virtual-access.js';

/** How often the driver reaps completions and queues more (its completion interrupt, coalesced). */
export const STORAGE_POLL_NS = 1_000_000;

const drivers = new WeakMap<FirstKernel, StorageDriver[]>();

/** The storage drivers a first kernel probed. */
export function storageDriversOf(k: FirstKernel): readonly StorageDriver[] {
  return drivers.get(k) ?? [];
}

/** Probes a driver for each storage controller of the machine. */
export function probeStorageDrivers(k: FirstKernel): StorageDriver[] {
  const out = k.machine.storage.map((sc) => {
    const d = new StorageDriver(k, sc);
    d.probe();
    return d;
  });
  drivers.set(k, out);
  return out;
}

export class StorageDriver {
  readonly k: FirstKernel;
  readonly sc: StorageController;
  readonly mmioBase: number;
  readonly entries: number;
  readonly ioBytes: number;
  queuePa = 0;
  buffersPa = 0;
  queueBus = 0;
  buffersBus = 0;
  nextToClean = 0;
  completed = 0;
  /** The next LBA the driver's I/O goes to. */
  nextLba = 0;

  constructor(k: FirstKernel, sc: StorageController) {
    this.k = k;
    this.sc = sc;
    const spec = k.machine.config.storage?.find((s) => s.name === sc.name);
    if (spec === undefined) throw new Error(`BUG: no description for storage controller ${sc.name}`);
    this.mmioBase = spec.mmioBase;
    this.entries = spec.queueEntries;
    this.ioBytes = spec.ioBytes;
  }

  probe(): void {
    const k = this.k;
    const m = k.machine;
    const n = this.entries;
    const queueBytes = alignUp(n * STC_DESC_SIZE, 4096);
    const bufsBytes = alignUp(n * this.ioBytes, 4096);
    const queue = k.memblock.alloc(queueBytes, 4096);
    const bufs = k.memblock.alloc(bufsBytes, 4096);
    const bdf = this.sc.bdf;
    if (queue === undefined || bufs === undefined) {
      k.log.printk(`stc ${bdf}: cannot allocate command queue`);
      return;
    }
    this.queuePa = queue;
    this.buffersPa = bufs;
    k.mem.zero(queue, queueBytes);
    k.mem.zero(bufs, bufsBytes);
    k.memMap.describe(k.mem, queue / 4096, queueBytes / 4096, 'slab');
    k.memMap.describe(k.mem, bufs / 4096, bufsBytes / 4096, 'slab');
    k.dmaMappings.push({ device: bdf, pa: queue, length: queueBytes, purpose: 'storage command queue' });
    k.dmaMappings.push({ device: bdf, pa: bufs, length: bufsBytes, purpose: 'storage I/O buffers' });
    const iommu = k.iommu;
    iommu?.attachDevice(bdf);
    this.queueBus = iommu?.mapDma(bdf, queue, queueBytes) ?? queue + Number(k.sme.mask);
    this.buffersBus = iommu?.mapDma(bdf, bufs, bufsBytes) ?? bufs + Number(k.sme.mask);
    const all = new Uint8Array(n * STC_DESC_SIZE);
    for (let i = 0; i < n - 1; i++) this.#fill(all.subarray(i * STC_DESC_SIZE, (i + 1) * STC_DESC_SIZE), i);
    mustSucceed(writeVirt(m.mc, m.bsp, directMapVirt(queue), all), 'storage queue setup');
    this.#reg(STC_QBAL, this.queueBus % 2 ** 32);
    this.#reg(STC_QBAH, Math.floor(this.queueBus / 2 ** 32));
    this.#reg(STC_QLEN, n);
    this.#reg(STC_QHEAD, 0);
    this.#reg(STC_QTAIL, n - 1);
    this.#reg(STC_CTRL, STC_CTRL_EN);
    k.log.printk(`stc ${bdf}: ${n} command slots at 0x${queue.toString(16)}, ${this.ioBytes}-byte buffers at 0x${bufs.toString(16)}`);
    k.step(`${this.sc.name} (${bdf}) doing I/O by DMA: ${n - 1} commands queued, buffers at 0x${bufs.toString(16)} (bus 0x${this.buffersBus.toString(16)})`,
      { device: bdf, buffers: bufs, bus: this.buffersBus });
    this.#schedulePoll();
  }

  /** Slot `i`'s next command: reads and writes in turn, walking the disk. */
  #fill(d: Uint8Array, i: number): void {
    const dv = new DataView(d.buffer, d.byteOffset, d.length);
    d.fill(0);
    dv.setBigUint64(DESC_LBA, BigInt(this.nextLba), true);
    dv.setUint32(DESC_LEN, this.ioBytes, true);
    d[DESC_OP] = this.nextLba / (this.ioBytes / SECTOR_BYTES) % 2 === 0 ? OP_READ : OP_WRITE;
    const bus = this.buffersBus + i * this.ioBytes;
    dv.setBigUint64(DESC_BUF, BigInt(bus), true);
    this.nextLba += this.ioBytes / SECTOR_BYTES;
  }

  #reg(off: number, v: number): void {
    this.k.machine.mmio.write(this.mmioBase + off, BigInt(v));
  }

  #schedulePoll(): void {
    this.k.machine.clock.schedule(STORAGE_POLL_NS, `${this.sc.name}-poll`, () => {
      if (!this.k.running) return; // a dead kernel queues nothing
      this.#poll();
      this.#schedulePoll();
    });
  }

  /** Reaps completed commands and queues a new one in each freed slot. */
  #poll(): void {
    const m = this.k.machine;
    const n = this.entries;
    const w = translate(m.mc, m.bsp, directMapVirt(this.queuePa));
    if (!w.ok) throw new Error(`BUG: storage queue not mapped: ${w.detail}`);
    const d = new Uint8Array(STC_DESC_SIZE);
    let reaped = 0;
    for (;;) {
      const pa = w.pa + this.nextToClean * STC_DESC_SIZE;
      this.k.mem.read(pa, d);
      if ((d[DESC_STATUS]! & STAT_DONE) === 0) break;
      // The slot just freed is reused for the next command; the one before the tail is refilled.
      const slot = (this.nextToClean + n - 1) % n;
      const fresh = new Uint8Array(STC_DESC_SIZE);
      this.#fill(fresh, slot);
      this.k.mem.write(w.pa + slot * STC_DESC_SIZE, fresh);
      this.nextToClean = (this.nextToClean + 1) % n;
      reaped++;
      if (reaped >= n) break;
    }
    if (reaped > 0) {
      this.completed += reaped;
      this.#reg(STC_QTAIL, (this.nextToClean + n - 1) % n);
    }
  }
}
