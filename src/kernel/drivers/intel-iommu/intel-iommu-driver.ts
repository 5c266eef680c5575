// The intel-iommu driver (drivers/iommu/intel/{iommu,dmar,irq_remapping}.c)
// as far as a kdump story needs it. Interrupt remapping comes up first
// (enable_IR, before check_timer): queued invalidation, an IR table, IRE.
// DMA remapping follows at its initcall: a root table, context entries per
// device, second-level page tables, translation on.
//
// A capture kernel finds the unit as the panicked kernel left it (TES and
// IRES set, devices still doing DMA) and follows its era (ref §3):
// - new-tables (before 4.2): the driver's GCMD shadow starts at zero, so its
//   first GCMD write also clears TE (the old IOVAs go out as physical
//   addresses until the initcall), then it enables translation over a new,
//   empty root table, and in-flight DMA faults.
// - copy (4.2 on): the shadow starts from GSTS, translation stays on, the
//   old context tables and IR table are copied, old domain ids reserved;
//   a device moves to a fresh domain only when its driver first maps DMA.
// - copy-sm (the 2022 fix): the same, telling the old format by the
//   scalable-mode bit, so a scalable-mode first kernel is understood.
// `intel_iommu=off` turns translation off for good, in any era.

import { requesterId, type Machine } from '../../../platform/machine.js';
import { encodeRte } from '../../../platform/apic/io-apic.js';
import { IOAPIC_DEFAULT_SOURCE_ID } from '../../../platform/apic/interrupt-fabric.js';
import { DELIVERY_FIXED } from '../../../platform/apic/interrupt-message.js';
import { contextEntryBytes, encodeScalableContextEntry, EMPTY_CONTEXT, EMPTY_SM_CONTEXT, TT_MULTI_LEVEL } from '../../../platform/vtd/context-entry.js';
import { bytesToWords, wordsToBytes } from '../../../platform/vtd/entry-bytes.js';
import { decodeFaultRecord, FRCD_F } from '../../../platform/vtd/fault-recording.js';
import type { InvDescriptor } from '../../../platform/vtd/invalidation-descriptor.js';
import { invContextGlobal, invIecGlobal, invIotlbGlobal } from '../../../platform/vtd/invalidation-descriptor.js';
import { EMPTY_IRTE, IRTE_BYTES, irteBytes, SVT_SID } from '../../../platform/vtd/irte.js';
import { encodePasidDirEntry, pasidEntryBytes, EMPTY_PASID_ENTRY, PGTT_SECOND_LEVEL } from '../../../platform/vtd/pasid-table.js';
import {
  capDomains, capFaultRecords, capFaultRegOffset, capMgaw, capSagaw, iqaValue, irtaValue, rtaddrValue,
  CC_DEVICE, ECAP_QI, ECAP_SMTS, FSTS_PFO, FSTS_PPF, FSTS_PRO, FSTS_FRI_SHIFT, GCMD_CFI, GCMD_IRE, GCMD_QIE, GCMD_SIRTP, GCMD_SRTP, GCMD_TE,
  GSTS_CFIS, GSTS_IRES, GSTS_IRTPS, GSTS_QIES, GSTS_RTPS, GSTS_TES, IOTLB_DOMAIN, IRTA_S_MASK, REG_CAP, REG_ECAP, REG_FSTS, REG_GCMD,
  REG_GSTS, REG_IQA, REG_IQH, REG_IQT, REG_IRTA, REG_RTADDR,
} from '../../../platform/vtd/registers.js';
import { slIndex, slLeaf, slTableEntry } from '../../../platform/vtd/second-level-table.js';
import type { IommuDriver, IommuHost } from '../iommu.js';
import { copyTranslationTables, COPIED_MARKER_HI } from './copy-tables.js';
import { dmarPrefix, faultRecordLines, faultStatusLine, RateLimit } from './dmar-fault-log.js';
import { QueuedInvalidation } from './queued-invalidation.js';

/** The unit's name in every message (iommu->name). */
export const UNIT_NAME = 'dmar0';
/** 65536 IRTEs (IRTA.S = 0xF): the only size a 4.2-era capture kernel copies. */
const IR_TABLE_S = 0xf;
const IR_TABLE_ENTRIES = 2 ** (IR_TABLE_S + 1);
/** IDA_START_DID: 0 is "unallocated" (and caching mode's tag), 1 the pass-through/first-level default. */
const FIRST_DID = 2;
/** Domains are 57 bits wide by default, clipped to what the unit supports. */
const DEFAULT_DOMAIN_WIDTH = 57;
/** Virtual time from enable_IR to the IOMMU initcall (pci_iommu_init): PCI enumeration and the rest of early boot. */
const EARLY_BOOT_TO_IOMMU_INITCALL_NS = 200_000_000;

interface Domain { did: number; root: number; aw: number; iovaTop: number }

export type VtdKdumpPath = 'fresh' | 'new-tables' | 'copied' | 'copy-failed' | 'translation-off';

/** The driver each machine's kernel brought up last (what a test reaches the capture kernel's through). */
const latest = new WeakMap<Machine, IntelIommuDriver>();

export function intelIommuOf(m: Machine): IntelIommuDriver | undefined {
  return latest.get(m);
}

export class IntelIommuDriver implements IommuDriver {
  readonly snpEnabled = false;
  readonly h: IommuHost;
  readonly mmio: number;
  readonly cap: bigint;
  readonly ecap: bigint;
  readonly kdump: boolean;
  /** This kernel runs the unit in scalable mode. */
  readonly scalable: boolean;
  /** The driver's shadow of GCMD's persistent bits (iommu->gcmd). */
  gcmd = 0;
  path: VtdKdumpPath = 'fresh';
  /** DMA remapping is in use (false with intel_iommu=off: bus addresses are physical). */
  dmaRemapping = true;
  rootPa = 0;
  irtPa = 0;
  qi: QueuedInvalidation | undefined;
  /** Domain ids the copied context entries use: never handed out again. */
  readonly reservedDids = new Set<number>();
  /** Source ids whose context entries are copies still in use (the copied_tables bitmap). */
  readonly copied = new Set<number>();
  readonly domains = new Map<number, Domain>();
  #nextDid = FIRST_DID;
  /** IRTE indices in use (the IR table's allocation bitmap). */
  readonly #irteUsed = new Set<number>();
  readonly #faultLimit = new RateLimit();
  faultsReported = 0;

  private constructor(h: IommuHost, mmio: number, kdump: boolean) {
    this.h = h;
    this.mmio = mmio;
    this.kdump = kdump;
    this.cap = h.machine.mmio.read(mmio + REG_CAP, 8);
    this.ecap = h.machine.mmio.read(mmio + REG_ECAP, 8);
    const sm = h.cmdline.options('intel_iommu').includes('sm_on');
    this.scalable = sm && h.profile.mechanisms.vtdScalableMode && (this.ecap & ECAP_SMTS) !== 0n;
  }

  get #prefix(): string {
    return dmarPrefix(this.h.profile.mechanisms.dmarFaultFormat);
  }

  /** intel_iommu_init() with enable_IR() before it. Undefined: the machine has no VT-d unit. */
  static init(h: IommuHost, opts: { kdump: boolean }): IntelIommuDriver | undefined {
    const m = h.machine;
    if (m.vtd === undefined || m.vtdMmio === undefined) return undefined;
    const d = new IntelIommuDriver(h, m.vtdMmio, opts.kdump);
    if ((d.ecap & ECAP_QI) === 0n) throw new Error('BUG: the modelled driver needs queued invalidation');
    latest.set(m, d);
    d.#enableIr();
    // Interrupts work now (check_timer runs next in a real boot); DMA remapping comes at its initcall.
    m.clock.advance(EARLY_BOOT_TO_IOMMU_INITCALL_NS);
    d.#initDmaRemapping();
    return d;
  }

  // ---- GCMD handshake (ref §1.2) ----

  #gsts(): number {
    return Number(this.h.machine.mmio.read(this.mmio + REG_GSTS, 4));
  }

  /** Writes shadow | oneShot and waits for `status` to reach `want` ("DMAR hardware is malfunctioning" otherwise). */
  #command(oneShot: number, status: number, want: boolean): void {
    this.h.machine.mmio.write(this.mmio + REG_GCMD, BigInt((this.gcmd | oneShot) >>> 0), 4);
    if (((this.#gsts() & status) !== 0) !== want) throw new Error('DMAR hardware is malfunctioning');
  }

  #setBit(bit: number, status: number, on: boolean): void {
    this.gcmd = on ? (this.gcmd | bit) >>> 0 : (this.gcmd & ~bit) >>> 0;
    this.#command(0, status, on);
  }

  // ---- interrupt remapping (irq_remapping.c) ----

  #enableIr(): void {
    const h = this.h;
    const era = h.profile.mechanisms.vtdKdump;
    const gsts = this.#gsts();
    // The 4.2 series made the shadow start from what the hardware says; before, it started at zero.
    if (era !== 'new-tables') this.gcmd = gsts & (GSTS_TES | GSTS_QIES | GSTS_IRES);
    const irPre = (gsts & GSTS_IRES) !== 0;
    this.pollEvents(); // dmar_fault(-1): clear what the previous kernel left
    let copyIr = false;
    if (era === 'new-tables') {
      if (irPre) {
        // iommu_disable_irq_remapping(): shadow (0) & ~IRE is written whole, so TE and QIE drop too.
        this.#setBit(GCMD_IRE, GSTS_IRES, false);
        const te = (this.#gsts() & GSTS_TES) !== 0;
        h.step(`intel-iommu: disabling the IRQ remapping the old kernel left on writes GCMD 0x${this.gcmd.toString(16)}: translation is ${te ? 'still on' : 'off too, so devices\' IOVAs now reach memory as physical addresses'}`);
      }
    } else if (irPre && !this.kdump) {
      h.log.printk(`DMAR-IR: IRQ remapping was enabled on ${UNIT_NAME} but we are not in kdump mode`);
      this.#setBit(GCMD_IRE, GSTS_IRES, false);
    } else if (irPre) {
      copyIr = true;
    }
    this.#enableQi();
    this.irtPa = this.#alloc(IR_TABLE_ENTRIES * IRTE_BYTES);
    if (copyIr) this.#copyIrTable();
    h.machine.mmio.write(this.mmio + REG_IRTA, irtaValue(this.irtPa, IR_TABLE_S, false), 8);
    this.#command(GCMD_SIRTP, GSTS_IRTPS, true);
    this.qi!.submit([invIecGlobal()]);
    if ((this.#gsts() & GSTS_IRES) === 0) this.#setBit(GCMD_IRE, GSTS_IRES, true);
    // Compatibility-format interrupts would bypass remapping: block them.
    if ((this.#gsts() & GSTS_CFIS) !== 0) this.#setBit(GCMD_CFI, GSTS_CFIS, false);
    h.log.printk('DMAR-IR: Enabled IRQ remapping in xapic mode');
  }

  /** dmar_enable_qi(), after waiting out and disabling a queue the previous kernel left running. */
  #enableQi(): void {
    const h = this.h;
    const m = h.machine;
    if ((this.#gsts() & GSTS_QIES) !== 0) {
      for (let i = 0; i < 1000 && m.mmio.read(this.mmio + REG_IQT, 8) !== m.mmio.read(this.mmio + REG_IQH, 8); i++) m.clock.advance(1_000);
      this.#setBit(GCMD_QIE, GSTS_QIES, false);
    }
    const wide = this.scalable;
    const queue = this.#alloc(wide ? 8192 : 4096);
    const status = this.#alloc(4096);
    // The unit stores wait status here by DMA for as long as it runs.
    h.noteDmaBuffer(m.vtd?.name ?? UNIT_NAME, status, 4096, 'VT-d invalidation wait status');
    this.qi = new QueuedInvalidation(h, this.mmio, queue, status, wide);
    m.mmio.write(this.mmio + REG_IQT, 0n, 8);
    m.mmio.write(this.mmio + REG_IQA, iqaValue(queue, wide ? 1 : 0, wide), 8);
    this.#setBit(GCMD_QIE, GSTS_QIES, true);
    h.log.printk(`${this.#prefix}${UNIT_NAME}: Using Queued invalidation`);
  }

  /** iommu_load_old_irte(): the whole old table into the new one; live entries stay allocated. */
  #copyIrTable(): void {
    const h = this.h;
    const irta = h.machine.mmio.read(this.mmio + REG_IRTA, 8);
    if ((irta & IRTA_S_MASK) !== BigInt(IR_TABLE_S)) {
      h.log.printk(`DMAR-IR: Failed to copy IR table for ${UNIT_NAME} from previous kernel`);
      return;
    }
    const old = new Uint8Array(IR_TABLE_ENTRIES * IRTE_BYTES);
    h.mem.read(Number(irta & 0xffff_ffff_ffff_f000n), old);
    h.mem.write(this.irtPa, old);
    for (let i = 0; i < IR_TABLE_ENTRIES; i++) if ((old[i * IRTE_BYTES]! & 1) !== 0) this.#irteUsed.add(i);
    h.log.printk(`DMAR-IR: Copied IR table for ${UNIT_NAME} from previous kernel`);
    h.step(`intel-iommu: copied the old IR table (${this.#irteUsed.size} live entries kept allocated)`, { liveIrtes: this.#irteUsed.size });
  }

  /** VT-d puts the IO-APIC entry in remappable format: its index names the IRTE that holds vector and destination. */
  routeIoApicPin(pin: number, vector: number, apicId: number): bigint {
    let index = 0;
    while (this.#irteUsed.has(index)) index++;
    this.#irteUsed.add(index);
    const irte = { ...EMPTY_IRTE, present: true, vector, destination: apicId, deliveryMode: DELIVERY_FIXED, sid: IOAPIC_DEFAULT_SOURCE_ID, svt: SVT_SID };
    this.h.mem.write(this.irtPa + index * IRTE_BYTES, irteBytes(irte, false));
    this.qi!.submit([{ type: 'iec', indexSelective: true, index, im: 0 }]);
    this.h.step(`intel-iommu: IO-APIC pin ${pin} -> IRTE ${index} (vector 0x${vector.toString(16)}, APIC ${apicId})`, { pin, irte: index });
    return encodeRte({
      format: 'remappable', index, vector, deliveryStatus: false, polarityLow: false, remoteIrr: false, levelTriggered: false, masked: false,
    });
  }

  // ---- DMA remapping (iommu.c) ----

  #initDmaRemapping(): void {
    const h = this.h;
    const era = h.profile.mechanisms.vtdKdump;
    const off = h.cmdline.options('intel_iommu').includes('off');
    let preEnabled = (this.#gsts() & GSTS_TES) !== 0;
    if (off) {
      // Switched off even when a kexec'd kernel finds it on.
      if (preEnabled) this.#setBit(GCMD_TE, GSTS_TES, false);
      this.dmaRemapping = false;
      this.path = 'translation-off';
      h.step(`intel-iommu: intel_iommu=off: translation ${preEnabled ? 'turned off' : 'left off'}; device DMA addresses are physical from now on`);
      return;
    }
    if (preEnabled && !this.kdump) {
      this.#setBit(GCMD_TE, GSTS_TES, false);
      h.log.printk(`DMAR: Translation was enabled for ${UNIT_NAME} but we are not in kdump mode`);
      preEnabled = false;
    }
    this.rootPa = this.#alloc(4096);
    if (era === 'new-tables' && this.kdump) {
      this.path = 'new-tables';
      h.step(`intel-iommu: capture kernel sets up new, empty tables (root 0x${this.rootPa.toString(16)}); translation was ${preEnabled ? 'on' : 'off'}`);
    } else if (preEnabled) {
      h.log.printk('DMAR: Translation already enabled - trying to copy translation structures');
      const r = copyTranslationTables(h, {
        era: era === 'copy-sm' ? 'copy-sm' : 'copy', scalable: this.scalable, mmio: this.mmio, cap: this.cap, newRoot: this.rootPa, alloc: () => this.#alloc(4096),
      });
      if (r.ok) {
        for (const did of r.reservedDids) this.reservedDids.add(did);
        for (const sid of r.copied) this.copied.add(sid);
        this.path = 'copied';
        h.log.printk(`DMAR: Copied translation tables from previous kernel for ${UNIT_NAME}`);
        h.step(`intel-iommu: copied ${r.entries} context entries on ${r.buses} buses read as ${r.ext ? 'scalable-mode' : 'legacy'} tables (domain ids ${r.reservedDids.join(', ') || 'none'} reserved); translation stays on`,
          { entries: r.entries, buses: r.buses, ext: r.ext });
      } else {
        h.log.printk(`DMAR: Failed to copy translation tables from previous kernel for ${UNIT_NAME}`);
        this.#setBit(GCMD_TE, GSTS_TES, false);
        this.path = 'copy-failed';
        h.step(`intel-iommu: copy refused (${r.reason}): translation turned off, new empty tables`);
      }
    }
    this.#setRootEntry();
    this.#setupRmrrs();
    if ((this.#gsts() & GSTS_TES) === 0) this.#setBit(GCMD_TE, GSTS_TES, true);
    h.log.printk(`${this.#prefix}Intel(R) Virtualization Technology for Directed I/O`);
    h.step(`intel-iommu up (${this.path}): root table 0x${this.rootPa.toString(16)} in ${this.scalable ? 'scalable' : 'legacy'} mode, IR table 0x${this.irtPa.toString(16)}`);
  }

  /** iommu_set_root_entry(): RTADDR, SRTP (translation keeps its state), then global flushes. */
  #setRootEntry(): void {
    const m = this.h.machine;
    m.mmio.write(this.mmio + REG_RTADDR, rtaddrValue(this.rootPa, this.scalable), 8);
    this.#command(GCMD_SRTP, GSTS_RTPS, true);
    const descs: InvDescriptor[] = [invContextGlobal()];
    if (this.scalable) descs.push({ type: 'pasid-cache', granularity: 3, did: 0, pasid: 0 });
    descs.push(invIotlbGlobal());
    this.qi!.submit(descs);
  }

  /** The address width (AGAW) of new domains: the widest the unit supports up to 57 bits and MGAW. */
  #agaw(): number {
    const width = Math.min(DEFAULT_DOMAIN_WIDTH, capMgaw(this.cap));
    for (let aw = 3; aw >= 0; aw--) if (((capSagaw(this.cap) >> aw) & 1) !== 0 && 30 + 9 * aw <= width) return aw;
    throw new Error('BUG: the unit supports no address width the driver can use');
  }

  /**
   * The device's first DMA-API use: a fresh domain. In a capture kernel a
   * copied entry is torn down first and what the old domain may still have
   * cached is flushed (aec0e86172a7); the new domain id avoids the reserved ones.
   */
  attachDevice(bdf: string): void {
    if (!this.dmaRemapping) return;
    const sid = requesterId(bdf);
    // Already in a domain of this kernel (its RMRR was mapped at init): the driver's DMA goes there too.
    if (this.domains.has(sid) && !this.copied.has(sid)) return;
    let did = this.#nextDid;
    while (this.reservedDids.has(did) && did < capDomains(this.cap)) did++;
    this.#nextDid = did + 1;
    const aw = this.#agaw();
    const dom: Domain = { did, root: this.#alloc(4096), aw, iovaTop: iovaTopFor(this.h.machine, bdf) };
    this.domains.set(sid, dom);
    // The RMRRs go into the page tables before the context entry makes the domain live (1c5ebba95b48, 4.9).
    for (const r of rmrrsOf(this.h.machine, bdf)) this.#mapRmrr(dom, bdf, r);
    if (this.scalable) this.#attachScalable(sid, dom);
    else this.#attachLegacy(sid, dom);
    this.h.step(`intel-iommu: ${bdf} attached to domain ${did} (${aw + 2}-level tables at 0x${dom.root.toString(16)})`, { did, sid });
  }

  /**
   * RMRRs from the DMAR table: each device with one gets a domain at init
   * whose tables identity-map the range. A capture kernel that copied the old
   * tables skips this (the 4.2-era "domains_done"; later, deferred attach):
   * the copied context entries lead to the old kernel's identity maps.
   */
  #setupRmrrs(): void {
    const h = this.h;
    const devs = new Set(rmrrList(h.machine).map((r) => r.bdf));
    for (const bdf of devs) {
      for (const r of rmrrsOf(h.machine, bdf)) h.noteDmaBuffer(bdf, r.base, r.end + 1 - r.base, 'RMRR (firmware DMA)');
      if (this.path === 'copied' && this.copied.has(requesterId(bdf))) {
        h.step(`intel-iommu: RMRR of ${bdf} not mapped at init: its copied context entry still leads to the old kernel's identity map`, { device: bdf });
        continue;
      }
      this.attachDevice(bdf);
    }
  }

  /** domain_prepare_identity_map(): IOVA = physical address over the RMRR. */
  #mapRmrr(dom: Domain, bdf: string, r: { base: number; end: number }): void {
    const h = this.h;
    // Later kernels leave this to the IOMMU core (reserved regions, direct-mapped), without the line (ref §2.7).
    if (Number(/^(\d+)\./.exec(h.profile.release)?.[1] ?? 0) < 6) {
      h.log.printk(`${this.#prefix}Setting identity map for device 0000:${bdf} [0x${r.base.toString(16)} - 0x${r.end.toString(16)}]`);
    }
    for (let a = r.base; a <= r.end; a += 4096) this.#mapPage(dom, a, a);
    h.step(`intel-iommu: RMRR [0x${r.base.toString(16)} - 0x${r.end.toString(16)}] of ${bdf} identity-mapped in domain ${dom.did}`, { device: bdf, did: dom.did, base: r.base });
  }

  /** The context table for `bus`, allocated (and hung off the root) when absent; scalable: the half for `devfn`. */
  #contextTable(bus: number, devfn: number): number {
    const mem = this.h.mem;
    const at = this.rootPa + bus * 16 + (this.scalable && devfn >= 0x80 ? 8 : 0);
    const q = new Uint8Array(8);
    mem.read(at, q);
    const w = new DataView(q.buffer).getBigUint64(0, true);
    if ((w & 1n) !== 0n) return Number(w & 0xffff_ffff_ffff_f000n);
    const t = this.#alloc(4096);
    mem.write(at, wordsToBytes([BigInt(t) | 1n]));
    return t;
  }

  #attachLegacy(sid: number, dom: Domain): void {
    const table = this.#contextTable(sid >> 8, sid & 0xff);
    const at = table + (sid & 0xff) * 16;
    if (this.copied.has(sid)) this.#tearDownCopied(sid, at);
    this.h.mem.write(at, contextEntryBytes({ ...EMPTY_CONTEXT, present: true, translationType: TT_MULTI_LEVEL, slptptr: dom.root, addressWidth: dom.aw, domainId: dom.did }));
  }

  /** copied_context_tear_down(): zero the entry, flush the device's context and the old domain's IOTLB, forget the copy. */
  #tearDownCopied(sid: number, at: number): void {
    const b = new Uint8Array(16);
    this.h.mem.read(at, b);
    const [, hi = 0n] = bytesToWords(b);
    const oldDid = Number((hi >> 8n) & 0xffffn);
    this.h.mem.zero(at, 16);
    if (oldDid < capDomains(this.cap)) {
      this.qi!.submit([
        { type: 'context', granularity: CC_DEVICE, did: oldDid, sid, fm: 0 },
        { type: 'iotlb', granularity: IOTLB_DOMAIN, did: oldDid, addr: 0, am: 0, ih: false, drain: true },
      ]);
    }
    this.copied.delete(sid);
    const marker = (hi & COPIED_MARKER_HI) !== 0n ? ' (marker bit 67 set)' : '';
    this.h.step(`intel-iommu: copied context entry of ${bdfOf(sid)}${marker} torn down; old domain ${oldDid}'s context and IOTLB entries flushed`, { sid, oldDid });
  }

  /** Scalable mode: a PASID directory and table whose RID_PASID entry points at the domain's second-level tables. */
  #attachScalable(sid: number, dom: Domain): void {
    const h = this.h;
    const table = this.#contextTable(sid >> 8, sid & 0xff);
    const at = table + (sid & 0x7f) * 32;
    if (this.copied.has(sid)) {
      // The old PASID tables' domain ids are unknown: flush everything that may hold them.
      h.mem.zero(at, 32);
      this.qi!.submit([
        { type: 'context', granularity: CC_DEVICE, did: 0, sid, fm: 0 },
        { type: 'pasid-cache', granularity: 3, did: 0, pasid: 0 },
        invIotlbGlobal(),
      ]);
      this.copied.delete(sid);
      h.step(`intel-iommu: copied scalable-mode context entry of ${bdfOf(sid)} torn down; context, PASID cache and IOTLB flushed globally`, { sid });
    }
    const dir = this.#alloc(4096);
    const pasidTable = this.#alloc(4096);
    h.mem.write(dir, wordsToBytes([encodePasidDirEntry({ present: true, fpd: false, pasidTable })]));
    h.mem.write(pasidTable, pasidEntryBytes({ ...EMPTY_PASID_ENTRY, present: true, addressWidth: dom.aw, pgtt: PGTT_SECOND_LEVEL, slptptr: dom.root, domainId: dom.did }));
    h.mem.write(at, wordsToBytes(encodeScalableContextEntry({ ...EMPTY_SM_CONTEXT, present: true, pdts: 0, pasidDirectory: dir, ridPasid: 0 })));
  }

  /** dma_map_*: IOVAs top-down below the device's limit, mapped page by page in its domain. */
  mapDma(bdf: string, pa: number, bytes: number): number | undefined {
    if (!this.dmaRemapping) return undefined;
    const dom = this.domains.get(requesterId(bdf));
    if (dom === undefined) return undefined;
    const pages = Math.ceil(bytes / 4096);
    dom.iovaTop -= pages * 4096;
    const iova = dom.iovaTop;
    for (let i = 0; i < pages; i++) this.#mapPage(dom, iova + i * 4096, pa + i * 4096);
    return iova;
  }

  #mapPage(dom: Domain, iova: number, pa: number): void {
    const mem = this.h.mem;
    const q = new Uint8Array(8);
    const dv = new DataView(q.buffer);
    let table = dom.root;
    for (let level = dom.aw + 2; level > 1; level--) {
      const at = table + slIndex(iova, level) * 8;
      mem.read(at, q);
      const w = dv.getBigUint64(0, true);
      if ((w & 3n) === 0n) {
        const next = this.#alloc(4096);
        dv.setBigUint64(0, slTableEntry(next), true);
        mem.write(at, q);
        table = next;
      } else {
        table = Number(w & 0x000f_ffff_ffff_f000n);
      }
    }
    dv.setBigUint64(0, slLeaf(pa), true);
    mem.write(table + slIndex(iova, 1) * 8, q);
  }

  // ---- faults (dmar.c) ----

  /** dmar_fault(): every pending record from FRI on, printed under the rate limit and cleared, then the status bits. */
  pollEvents(): number {
    const h = this.h;
    const m = h.machine;
    const fmt = h.profile.mechanisms.dmarFaultFormat;
    const fsts = Number(m.mmio.read(this.mmio + REG_FSTS, 4));
    if (fsts === 0) return 0;
    if (this.#faultLimit.allow(m.clock.now)) h.log.printk(faultStatusLine(fmt, fsts));
    let n = 0;
    const records = capFaultRecords(this.cap);
    const fro = capFaultRegOffset(this.cap);
    if ((fsts & FSTS_PPF) !== 0) {
      let idx = (fsts >> FSTS_FRI_SHIFT) & 0xff;
      for (let k = 0; k < records; k++) {
        const reg = this.mmio + fro + idx * 16;
        const hi = m.mmio.read(reg + 8, 8);
        if ((hi & FRCD_F) === 0n) break;
        const r = decodeFaultRecord(m.mmio.read(reg, 8), hi);
        if (this.#faultLimit.allow(m.clock.now)) for (const line of faultRecordLines(fmt, r)) h.log.printk(line);
        m.mmio.write(reg + 12, FRCD_F >> 32n, 4);
        n++;
        idx = (idx + 1) % records;
      }
    }
    m.mmio.write(this.mmio + REG_FSTS, BigInt(FSTS_PFO | FSTS_PPF | FSTS_PRO), 4);
    this.faultsReported += n;
    if (n > 0 || (fsts & FSTS_PFO) !== 0) {
      h.step(`intel-iommu: ${n} DMAR fault records read and cleared${(fsts & FSTS_PFO) !== 0 ? '; faults were lost to overflow (FSTS.PFO)' : ''}${this.#faultLimit.suppressed > 0 ? `; ${this.#faultLimit.suppressed} messages rate-limited so far` : ''}`, { faults: n });
    }
    return n;
  }

  /** intel_iommu_shutdown() on a normal kexec or reboot: translation off. */
  shutdown(): void {
    if ((this.#gsts() & GSTS_TES) !== 0) this.#setBit(GCMD_TE, GSTS_TES, false);
  }

  #alloc(bytes: number): number {
    const pa = this.h.allocDma32(bytes, 4096);
    if (pa === undefined) throw new Error(`BUG: no memory below 4 GiB for ${bytes} bytes of VT-d tables`);
    return pa;
  }
}


function bdfOf(sid: number): string {
  const h2 = (n: number): string => n.toString(16).padStart(2, '0');
  return `${h2(sid >> 8)}:${h2((sid >> 3) & 0x1f)}.${sid & 7}`;
}

/** IOVAs come from below 4 GiB first, and below the device's DMA mask. */
function iovaTopFor(m: Machine, bdf: string): number {
  const bits = m.config.nics.find((n) => n.bdf === bdf)?.dmaAddressBits ?? m.config.storage?.find((n) => n.bdf === bdf)?.dmaAddressBits ?? 64;
  return Math.min(2 ** 32, 2 ** bits);
}

/** The RMRRs the firmware's DMAR table declares (one per storage controller that has one). */
function rmrrList(m: Machine): { bdf: string; base: number; end: number }[] {
  return (m.config.storage ?? []).flatMap((sc) => (sc.rmrr === undefined ? [] : [{ bdf: sc.bdf, base: sc.rmrr.base, end: sc.rmrr.end }]));
}

function rmrrsOf(m: Machine, bdf: string): { base: number; end: number }[] {
  return rmrrList(m).filter((r) => r.bdf === bdf);
}
