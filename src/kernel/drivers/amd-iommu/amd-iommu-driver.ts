// The AMD IOMMU driver (drivers/iommu/amd/init.c, iommu.c) as a kdump story
// needs it. A normal boot allocates the device table, command buffer, event
// log and completion-wait page, programs their base registers, enables
// translation and sets up interrupt remapping for the IO-APIC. A capture
// kernel that finds translation already on follows its era: `disable`
// (before the copy code) turns translation off and starts afresh; `copy`
// (2017 to 6.17) copies the old device table into a new one and programs
// new buffers; `reuse` (6.18) works in the previous kernel's buffers without
// writing a base register. Under SNP enforcement those register writes are
// ignored by the hardware, which is what the copy era never expected.

import { requesterId } from '../../../platform/machine.js';
import {
  REG_CONTROL, REG_DEV_TAB_BASE, REG_CMD_BUF_BASE, REG_EVENT_LOG_BASE, REG_EXCL_BASE, REG_EXCL_LIMIT, REG_EFR,
  REG_EVENT_LOG_HEAD, REG_EVENT_LOG_TAIL, CTRL_IOMMU_EN, CTRL_EVENT_LOG_EN, CTRL_CMD_BUF_EN, CTRL_INV_TIMEOUT_SHIFT,
  EFR_IA_SUP, EFR_SNP_SUP, devTabBaseValue, ringBaseValue, baseAddress, devTabBytes, ringEntries,
} from '../../../platform/amd-iommu/registers.js';
import { encodeDte, decodeDte, DTE_BYTES, INTCTL_REMAPPED, EMPTY_DTE, type DteFields } from '../../../platform/amd-iommu/device-table-entry.js';
import { ioPde, ioLeaf, ioPteIndex } from '../../../platform/amd-iommu/io-page-table.js';
import { encodeIrte, EMPTY_IRTE } from '../../../platform/amd-iommu/interrupt-remapping-table.js';
import { decodeEvents, EV_IO_PAGE_FAULT, eventName } from '../../../platform/amd-iommu/event-log.js';
import { IOAPIC_DEFAULT_SOURCE_ID } from '../../../platform/apic/interrupt-fabric.js';
import { encodeRte } from '../../../platform/apic/io-apic.js';
import { DELIVERY_FIXED } from '../../../platform/apic/interrupt-message.js';
import { hexPad } from '../../../util/hex.js';
import type { IommuDriver, IommuHost } from '../iommu.js';
import { CommandQueue } from './command-queue.js';

/** The IO-APIC's requester id (IVRS special device 00:14.0). */
export const IOAPIC_DEVID = IOAPIC_DEFAULT_SOURCE_ID;
/** last_bdf 0xff: 256 entries of 32 bytes. */
const DEV_TABLE_BYTES = 256 * DTE_BYTES;
const RING_ENTRIES = 512;
const RING_BYTES = RING_ENTRIES * 16;
/** IRQ remapping tables: 512 legacy (32-bit) entries per device. */
const IRT_ENTRIES = 512;
const IRT_LOG2 = 9;
/** Control.InvTimeOut = 4 (1 s), as the kernel programs it. */
const INV_TIMEOUT_1S = 4n << CTRL_INV_TIMEOUT_SHIFT;
/** Domain ids the driver hands out start at 1: SNP forbids 0 in a DTE. */
const FIRST_DOMAIN_ID = 1;
/** IOVAs come down from just below 4 GiB, as the DMA-API allocator hands out 32-bit ones first. */
const IOVA_TOP = 2 ** 32;
/** Events printed per poll before the rate limit holds the rest back. */
const EVENT_PRINT_BURST = 10;

export type KdumpPath = 'fresh' | 'disabled-old' | 'copied' | 'reused' | 'copy-failed' | 'reuse-failed';

interface Domain { id: number; root: number }

export class AmdIommuDriver implements IommuDriver {
  readonly h: IommuHost;
  readonly mmio: number;
  readonly efr: bigint;
  readonly snpSup: boolean;
  devTablePa = 0;
  evtPa = 0;
  readonly cmd: CommandQueue;
  readonly #domains = new Map<number, Domain>();
  readonly #reservedDomainIds = new Set<number>();
  #nextDomainId = FIRST_DOMAIN_ID;
  readonly #irts = new Map<number, number>();
  #iovaNext = IOVA_TOP;
  path: KdumpPath = 'fresh';
  /** iommu_snp_enable() accepted SNP (amd_iommu_snp_en). */
  snpEnabled = false;
  #eventHead = 0;

  private constructor(h: IommuHost, mmio: number, efr: bigint, cmd: CommandQueue) {
    this.h = h;
    this.mmio = mmio;
    this.efr = efr;
    this.snpSup = (efr & EFR_SNP_SUP) !== 0n;
    this.cmd = cmd;
  }

  /**
   * amd_iommu_init(): brings the IOMMU up. `kdump` is is_kdump_kernel();
   * `wantSnp` asks for iommu_snp_enable() (the host has SNP). Undefined:
   * no IOMMU, or the command line keeps the driver off.
   */
  static init(h: IommuHost, opts: { kdump: boolean; wantSnp: boolean }): AmdIommuDriver | undefined {
    const m = h.machine;
    const iommu = m.amdIommu;
    if (iommu === undefined) return undefined;
    const iommuOpt = h.cmdline.options('iommu');
    if (iommuOpt.includes('off') || h.cmdline.options('amd_iommu').includes('off')) {
      h.step('AMD IOMMU driver not started: disabled on the command line');
      return undefined;
    }
    const mmio = m.amdIommuMmio ?? 0;
    const efr = m.mmio.read(mmio + REG_EFR, 8);
    const control = m.mmio.read(mmio + REG_CONTROL, 8);
    const preEnabled = (control & CTRL_IOMMU_EN) !== 0n;
    const era = h.profile.mechanisms.amdIommuKdump;
    const cmd = new CommandQueue(m, h.mem, h.log, mmio, { pa: 0, bytes: RING_BYTES, semPa: 0, semBusAddr: 0 });
    const d = new AmdIommuDriver(h, mmio, efr, cmd);
    if (preEnabled && !opts.kdump) {
      h.log.printk('AMD-Vi: Translation was enabled for IOMMU:0 but we are not in kdump mode');
      d.#control(control & ~CTRL_IOMMU_EN);
    } else if (preEnabled && era === 'disable') {
      // Before the copy code a capture kernel simply turned translation off and started afresh.
      d.#control(control & ~CTRL_IOMMU_EN);
      d.path = 'disabled-old';
      h.step('capture kernel disables the IOMMU the old kernel left translating, then sets it up with empty tables');
    } else if (preEnabled && era === 'reuse') {
      d.#reuse();
    } else if (preEnabled && era === 'copy') {
      h.log.printk('AMD-Vi: Translation is already enabled - trying to copy translation structures');
      d.path = d.#copyDeviceTable() ? 'copied' : 'copy-failed';
    }
    if (d.path !== 'reused') d.#newBuffers();
    d.#passthrough = iommuOpt.includes('pt');
    if (opts.wantSnp) d.#snpEnable(d.#passthrough);
    d.#enable();
    d.flushAll();
    d.#setupIoApicRemapping();
    const where = d.path === 'reused' ? 'in the previous kernel\'s buffers' : `device table 0x${d.devTablePa.toString(16)}, command buffer 0x${d.cmd.ring.pa.toString(16)}, CWB 0x${d.cmd.ring.semPa.toString(16)}`;
    h.step(`AMD IOMMU up (${d.path}): ${where}${d.cmd.timeouts > 0 ? `; ${d.cmd.timeouts} Completion-Wait timeouts so far` : ''}`, { timeouts: d.cmd.timeouts });
    return d;
  }

  // ---- boot paths ----

  #newBuffers(): void {
    const h = this.h;
    const dt = this.#alloc(DEV_TABLE_BYTES, DEV_TABLE_BYTES);
    const cb = this.#alloc(RING_BYTES, 4096);
    const ev = this.#alloc(RING_BYTES, 4096);
    const cwb = this.#alloc(4096, 4096);
    if (this.path === 'copied' && this.#copied !== undefined) {
      h.mem.write(dt, this.#copied);
    } else {
      // Default entries: valid; translation valid (no page table: DMA blocked) unless SNP wants TV clear.
      const table = new Uint8Array(DEV_TABLE_BYTES);
      const dflt = encodeDte({ ...EMPTY_DTE, valid: true, translationValid: true });
      for (let i = 0; i < 256; i++) table.set(dflt, i * DTE_BYTES);
      h.mem.write(dt, table);
    }
    this.devTablePa = dt;
    this.evtPa = ev;
    // The IOMMU writes these itself, by DMA, for as long as it runs.
    const iommuName = h.machine.amdIommu?.name ?? 'iommu0';
    h.noteDmaBuffer(iommuName, ev, RING_BYTES, 'AMD IOMMU event log');
    h.noteDmaBuffer(iommuName, cwb, 4096, 'AMD IOMMU completion-wait buffer');
    const sme = Number(h.smeMask);
    this.cmd.ring = { pa: cb, bytes: RING_BYTES, semPa: cwb, semBusAddr: cwb + sme };
    // Base registers, each as the two 32-bit writes the kernel makes.
    this.#write64(REG_DEV_TAB_BASE, devTabBaseValue(dt + sme, DEV_TABLE_BYTES));
    this.#write64(REG_CMD_BUF_BASE, ringBaseValue(cb + sme, RING_ENTRIES));
    this.#write64(REG_EVENT_LOG_BASE, ringBaseValue(ev + sme, RING_ENTRIES));
    if (this.snpSup) {
      // iommu_set_cwwb_range(): the completion-store window is the CWB page, base == limit.
      this.#write64(REG_EXCL_BASE, BigInt(cwb + sme));
      this.#write64(REG_EXCL_LIMIT, BigInt(cwb + sme));
    }
  }

  /** The copy of the old device table that #newBuffers writes into the new one. */
  #copied: Uint8Array | undefined;

  /** copy_device_table(): the old table, checked and copied entry by entry into a new one. */
  #copyDeviceTable(): boolean {
    const h = this.h;
    const m = h.machine;
    const lo = m.mmio.read(this.mmio + REG_DEV_TAB_BASE, 4);
    const hi = m.mmio.read(this.mmio + REG_DEV_TAB_BASE + 4, 4);
    const dtb = (hi << 32n) | lo;
    const fail = (msg: string): boolean => {
      if (msg) h.log.printk(`AMD-Vi: ${msg}`);
      h.log.printk('AMD-Vi: Failed to copy DEV table from previous kernel.');
      return false;
    };
    if (devTabBytes(dtb) !== DEV_TABLE_BYTES) return fail('The device table size of IOMMU:0 is not expected!');
    const oldPa = this.#strip(baseAddress(dtb));
    if (oldPa >= 2 ** 32) return fail('The address of old device table is above 4G, not trustworthy!');
    const old = new Uint8Array(DEV_TABLE_BYTES);
    h.mem.read(oldPa, old);
    const out = new Uint8Array(DEV_TABLE_BYTES);
    for (let devid = 0; devid < 256; devid++) {
      const e = decodeDte(old.subarray(devid * DTE_BYTES, (devid + 1) * DTE_BYTES));
      if (!e.valid || e.domainId === 0) continue;
      this.#reservedDomainIds.add(e.domainId);
      let copy: DteFields = { ...EMPTY_DTE, valid: e.valid, translationValid: e.translationValid, mode: e.mode, pageTableRoot: e.pageTableRoot, ir: e.ir, iw: e.iw, domainId: e.domainId };
      if (e.intCtl === INTCTL_REMAPPED) {
        if (e.intTabLen !== 9 && e.intTabLen !== 11) return fail(`Wrong old irq remapping flag: 0x${e.intTabLen.toString(16)}`);
        copy = { ...copy, interruptValid: e.interruptValid, intTabLen: e.intTabLen, irtRoot: e.irtRoot, intCtl: e.intCtl };
      }
      out.set(encodeDte(copy), devid * DTE_BYTES);
    }
    this.#copied = out;
    h.log.printk('AMD-Vi: Copied DEV table from previous kernel.');
    h.step(`copied the old device table at 0x${oldPa.toString(16)} (domain ids ${[...this.#reservedDomainIds].join(', ') || 'none'} reserved) into a new one`);
    return true;
  }

  /** 6.18: memremap the previous kernel's device table, command buffer, event log and CWB; write no base register. */
  #reuse(): void {
    const h = this.h;
    const m = h.machine;
    h.log.printk('AMD-Vi: Translation is already enabled - trying to reuse translation structures');
    const strip = (v: bigint): number => this.#strip(baseAddress(v));
    const dtb = m.mmio.read(this.mmio + REG_DEV_TAB_BASE, 8);
    this.devTablePa = strip(dtb);
    if (this.devTablePa + DEV_TABLE_BYTES > m.dram.size) {
      // A first kernel with SME wrote its tables' addresses with the C-bit; a capture kernel without SME
      // does not strip it, so the "address" lies beyond RAM. (The kernel quotes no message for this;
      // the model takes the failure path: new, empty tables.)
      this.path = 'reuse-failed';
      h.step(`the old device table address 0x${this.devTablePa.toString(16)} is not in RAM (the first kernel's C-bit, which this kernel without SME leaves in): nothing to reuse, new empty tables`);
      return;
    }
    const old = new Uint8Array(DEV_TABLE_BYTES);
    h.mem.read(this.devTablePa, old);
    for (let devid = 0; devid < 256; devid++) {
      const e = decodeDte(old.subarray(devid * DTE_BYTES, (devid + 1) * DTE_BYTES));
      if (e.valid && e.domainId !== 0) this.#reservedDomainIds.add(e.domainId);
    }
    h.log.printk('AMD-Vi: Reused DEV table from previous kernel.');
    const cbReg = m.mmio.read(this.mmio + REG_CMD_BUF_BASE, 8);
    const evReg = m.mmio.read(this.mmio + REG_EVENT_LOG_BASE, 8);
    h.log.printk('AMD-Vi: Re-using command buffer from the previous kernel');
    h.log.printk('AMD-Vi: Re-using event buffer from the previous kernel');
    let cwb: number;
    if (this.snpSup) {
      cwb = strip(m.mmio.read(this.mmio + REG_EXCL_BASE, 8));
      h.log.printk('AMD-Vi: Re-using CWB buffers from the previous kernel');
    } else {
      cwb = this.#alloc(4096, 4096);
    }
    this.evtPa = strip(evReg);
    const sme = Number(h.smeMask);
    this.cmd.ring = { pa: strip(cbReg), bytes: ringEntries(cbReg) * 16, semPa: cwb, semBusAddr: cwb + sme };
    this.path = 'reused';
    h.noteReusedOldMemory(this.devTablePa, DEV_TABLE_BYTES, 'reused device table');
    h.noteReusedOldMemory(this.cmd.ring.pa, this.cmd.ring.bytes, 'reused command buffer');
    h.noteReusedOldMemory(this.evtPa, RING_BYTES, 'reused event log');
    h.noteReusedOldMemory(cwb, 4096, 'reused completion-wait buffer');
    h.step(`reusing the previous kernel's device table 0x${this.devTablePa.toString(16)}, command buffer 0x${this.cmd.ring.pa.toString(16)} and CWB 0x${cwb.toString(16)} in place (domain ids ${[...this.#reservedDomainIds].join(', ') || 'none'} kept)`);
  }

  /** iommu_snp_enable(): SNP needs translation on, V1 tables and SNPSup. */
  #snpEnable(passthrough: boolean): void {
    const h = this.h;
    if (passthrough) {
      h.log.printk('AMD-Vi: SNP: IOMMU disabled or configured in passthrough mode, SNP cannot be supported.');
      h.step('iommu=pt: the IOMMU driver refuses SNP');
      return;
    }
    if (!this.snpSup) {
      h.log.printk('AMD-Vi: SNP: IOMMU SNP feature not enabled, SNP cannot be supported.');
      h.step('the IOMMU has no SNPSup: SNP refused');
      return;
    }
    this.snpEnabled = true;
    h.log.printk('AMD-Vi: IOMMU SNP support enabled.');
  }

  /** Command buffer and event log disabled, pointers reset, then everything enabled (early_enable_iommu). */
  #enable(): void {
    const m = this.h.machine;
    const control = m.mmio.read(this.mmio + REG_CONTROL, 8);
    this.#control(control & ~(CTRL_CMD_BUF_EN | CTRL_EVENT_LOG_EN));
    this.cmd.resetPointers();
    m.mmio.write(this.mmio + REG_EVENT_LOG_HEAD, 0n);
    m.mmio.write(this.mmio + REG_EVENT_LOG_TAIL, 0n);
    this.#eventHead = 0;
    this.#control(CTRL_IOMMU_EN | CTRL_EVENT_LOG_EN | CTRL_CMD_BUF_EN | INV_TIMEOUT_1S);
  }

  /** amd_iommu_flush_all_caches(): INVALIDATE_IOMMU_ALL where IASup, else per device and domain. */
  flushAll(): void {
    if ((this.efr & EFR_IA_SUP) !== 0n) {
      this.cmd.sync({ op: 'invalidate-iommu-all' });
      return;
    }
    for (let devid = 0; devid < 256; devid++) {
      this.cmd.sync({ op: 'invalidate-devtab-entry', devid });
      this.cmd.sync({ op: 'invalidate-interrupt-table', devid });
    }
  }

  /** disable_iommus() on a normal kexec or reboot: command buffer, event log and translation off. */
  shutdown(): void {
    this.#control(0n);
  }

  // ---- interrupt remapping ----

  /** An IRQ table for the IO-APIC, wired into its DTE: IV, 512 entries, IntCtl remapped. */
  #setupIoApicRemapping(): void {
    const irt = this.#alloc(IRT_ENTRIES * 4, 128);
    this.#irts.set(IOAPIC_DEVID, irt);
    const cur = this.#readDte(IOAPIC_DEVID);
    this.setDte(IOAPIC_DEVID, { ...cur, valid: true, interruptValid: true, intTabLen: IRT_LOG2, irtRoot: irt + Number(this.h.smeMask), intCtl: INTCTL_REMAPPED });
  }

  /** AMD-Vi keeps the IO-APIC entry in compatibility format: its vector field is the IRTE index (the pin). */
  routeIoApicPin(pin: number, vector: number, apicId: number): bigint {
    this.setIrte(IOAPIC_DEVID, pin, vector, apicId);
    return encodeRte({
      format: 'compatibility', vector: pin, deliveryMode: DELIVERY_FIXED, destLogical: false, destination: 0,
      deliveryStatus: false, polarityLow: false, remoteIrr: false, levelTriggered: false, masked: false,
    });
  }

  /** Programs IRTE `index` of a device's table (modify_irte), then INVALIDATE_INTERRUPT_TABLE and a wait. */
  setIrte(devid: number, index: number, vector: number, destination: number): void {
    const irt = this.#irts.get(devid);
    if (irt === undefined) throw new Error(`BUG: no IRQ table for devid 0x${devid.toString(16)}`);
    this.h.mem.write(irt + index * 4, encodeIrte({ ...EMPTY_IRTE, remapEn: true, vector, destination }, false));
    this.cmd.sync({ op: 'invalidate-interrupt-table', devid });
  }

  // ---- DMA domains ----

  /** Attaches a device to a fresh DMA domain: a 3-level I/O page table, a domain id no old DTE uses. */
  /** iommu=pt: devices sit in the identity (passthrough) domain; DMA addresses are physical. */
  #passthrough = false;

  attachDevice(bdf: string): void {
    const devid = requesterId(bdf);
    if (this.#passthrough) {
      // DTE mode 0: no translation, IR/IW still checked.
      const old = this.#readDte(devid);
      this.setDte(devid, { ...old, valid: true, translationValid: true, mode: 0, pageTableRoot: 0, ir: true, iw: true, domainId: this.#identityDomainId() });
      return;
    }
    let id = this.#nextDomainId;
    while (this.#reservedDomainIds.has(id)) id++;
    this.#nextDomainId = id + 1;
    const root = this.#alloc(4096, 4096);
    const old = this.#readDte(devid);
    this.#domains.set(devid, { id, root });
    this.setDte(devid, { ...old, valid: true, translationValid: true, mode: 3, pageTableRoot: root + Number(this.h.smeMask), ir: true, iw: true, domainId: id });
    if (old.valid && old.domainId !== 0 && old.domainId !== id) {
      // The copied entry is gone: flush what the old domain may still cache.
      this.cmd.sync({ op: 'invalidate-iommu-pages', domainId: old.domainId, pasid: 0, address: 0x7fff_ffff_ffff_f000n, size: true, pde: true, guest: false });
    }
  }

  /** The identity domain's id: the first one no old DTE holds. */
  #identityDomainId(): number {
    let id = FIRST_DOMAIN_ID;
    while (this.#reservedDomainIds.has(id)) id++;
    return id;
  }

  /** dma_map_*: IOVAs from below 4 GiB down, mapped page by page to `pa` in the device's domain. */
  mapDma(bdf: string, pa: number, bytes: number): number | undefined {
    const dom = this.#domains.get(requesterId(bdf));
    if (dom === undefined) return undefined;
    const pages = Math.ceil(bytes / 4096);
    this.#iovaNext -= pages * 4096;
    const iova = this.#iovaNext;
    for (let i = 0; i < pages; i++) this.#mapPage(dom.root, iova + i * 4096, pa + i * 4096);
    return iova;
  }

  #mapPage(root: number, iova: number, pa: number): void {
    const mem = this.h.mem;
    const sme = Number(this.h.smeMask);
    let table = root;
    const q = new Uint8Array(8);
    const dv = new DataView(q.buffer);
    for (let level = 3; level > 1; level--) {
      const at = table + ioPteIndex(iova, level) * 8;
      mem.read(at, q);
      let next = this.#strip(Number(dv.getBigUint64(0, true) & 0x000f_ffff_ffff_f000n));
      if ((dv.getBigUint64(0, true) & 1n) === 0n) {
        next = this.#alloc(4096, 4096);
        dv.setBigUint64(0, ioPde(next + sme, level - 1), true);
        mem.write(at, q);
      }
      table = next;
    }
    dv.setBigUint64(0, ioLeaf(pa + sme), true);
    mem.write(table + ioPteIndex(iova, 1) * 8, q);
  }

  // ---- events ----

  /** Reads the event log from the driver's head to the hardware's tail and reports each entry. */
  pollEvents(): number {
    const m = this.h.machine;
    const tail = Number(m.mmio.read(this.mmio + REG_EVENT_LOG_TAIL, 8) & 0x7_fff0n);
    let n = 0;
    let suppressed = 0;
    while (this.#eventHead !== tail && n < RING_ENTRIES) {
      // printk_ratelimited: a burst of 10, the rest counted.
      if (n >= EVENT_PRINT_BURST) {
        suppressed++;
        this.#eventHead = (this.#eventHead + 16) % RING_BYTES;
        n++;
        continue;
      }
      const raw = new Uint8Array(16);
      this.h.mem.read(this.evtPa + this.#eventHead, raw);
      const [e] = decodeEvents(raw);
      if (e !== undefined) {
        const dev = `${hexPad(e.devid >> 8, 2)}:${hexPad((e.devid >> 3) & 0x1f, 2)}.${e.devid & 7}`;
        if (e.type === EV_IO_PAGE_FAULT) {
          this.h.log.printk(`AMD-Vi: Event logged [IO_PAGE_FAULT device=${dev} domain=0x${hexPad(e.domainId, 4)} address=0x${hexPad(e.address, 16)} flags=0x${hexPad(e.flags, 4)}]`);
        } else {
          this.h.log.printk(`AMD-Vi: Event logged [${eventName(e.type)} device=${dev} address=0x${hexPad(e.address, 16)}]`);
        }
      }
      this.#eventHead = (this.#eventHead + 16) % RING_BYTES;
      n++;
    }
    if (suppressed > 0) this.h.log.printk(`iommu_print_event: ${suppressed} callbacks suppressed`);
    m.mmio.write(this.mmio + REG_EVENT_LOG_HEAD, BigInt(this.#eventHead));
    if (n > 0) this.h.step(`the IOMMU logged ${n} events (${suppressed > 0 ? `${n - suppressed} printed` : 'all printed'})`, { events: n });
    return n;
  }

  // ---- helpers ----

  setDte(devid: number, f: DteFields): void {
    this.h.mem.write(this.devTablePa + devid * DTE_BYTES, encodeDte(f));
    this.cmd.sync({ op: 'invalidate-devtab-entry', devid });
  }

  #readDte(devid: number): DteFields {
    const b = new Uint8Array(DTE_BYTES);
    this.h.mem.read(this.devTablePa + devid * DTE_BYTES, b);
    return decodeDte(b);
  }

  #alloc(bytes: number, align: number): number {
    const pa = this.h.allocDma32(bytes, align);
    if (pa === undefined) throw new Error(`BUG: no memory below 4 GiB for ${bytes} bytes of IOMMU tables`);
    return pa;
  }

  #control(v: bigint): void {
    this.#write64(REG_CONTROL, v);
  }

  /** 64-bit registers written as two 32-bit halves, low first. */
  #write64(reg: number, v: bigint): void {
    const m = this.h.machine;
    m.mmio.write(this.mmio + reg, v & 0xffff_ffffn, 4);
    m.mmio.write(this.mmio + reg + 4, v >> 32n, 4);
  }

  /** __sme_clr(): the address without the C-bit (plain arithmetic: these exceed 32 bits). */
  #strip(pa: number): number {
    const c = Number(this.h.smeMask);
    return c !== 0 && Math.floor(pa / c) % 2 === 1 ? pa - c : pa;
  }
}


