// An Intel VT-d remapping hardware unit (one DRHD): its register file, the
// DMA remapping and interrupt remapping it does with tables in memory (and
// the caches it keeps of them), register-based and queued invalidation, and
// primary fault logging (ref §1-2). kexec resets nothing here; only reset()
// (a platform reset) does, so a crash kernel finds TES/IRES as the first
// kernel left them.

import type { VirtualClock } from '../clock.js';
import type { DmaResult } from '../dma-port.js';
import type { MemoryController } from '../memory-controller.js';
import type { MmioDevice } from '../mmio.js';
import type { Trace, TraceEvent } from '../trace.js';
import { REASON_REMAPPING_DISABLED, type InterruptMessage, type ResolvedInterrupt } from '../apic/interrupt-message.js';
import { bdfName, DmaRemapper } from './dma-remapping.js';
import { faultReasonText, FR_IR_COMPAT_BLOCKED, isQualifiedFault } from './fault-reasons.js';
import { FaultRecorder } from './fault-recording.js';
import { descriptorCode, descriptorName, type InvDescriptor } from './invalidation-descriptor.js';
import { InvalidationQueue, type DescriptorOutcome } from './invalidation-queue.js';
import {
  InterruptRemapper, MSI_REMAPPABLE_FORMAT, type InterruptDecision, type InterruptRemappingUnit, type LatchedIrta,
} from './interrupt-remapping.js';
import {
  capFaultRecords, capFaultRegOffset, capMamv, ecapIotlbRegOffset, irtaEntries, withScalableMode,
  CAP_AFL, CAP_ESIRTPS, CAP_ESRTPS, CAP_PSI, CCMD_CAIG_SHIFT, CCMD_CIRG_SHIFT, CCMD_FM_SHIFT, CCMD_ICC, CCMD_SID_SHIFT,
  CC_DEVICE, CC_DOMAIN, CC_GLOBAL, DEFAULT_CAP, DEFAULT_ECAP, DEFAULT_VER, ECAP_EIM, ECAP_IR, ECAP_QI, ECAP_SMTS,
  ECTL_IM, ECTL_IP, FIXED_64BIT_REGISTERS, FSTS_ICE, FSTS_IQE, FSTS_ITE, FSTS_PFO, FSTS_PPF, FSTS_PRO, FSTS_FRI_SHIFT,
  GCMD_CFI, GCMD_EAFL, GCMD_IRE, GCMD_QIE, GCMD_SFL, GCMD_SIRTP, GCMD_SRTP, GCMD_TE, GCMD_WBF,
  GSTS_AFLS, GSTS_CFIS, GSTS_FLS, GSTS_IRES, GSTS_IRTPS, GSTS_QIES, GSTS_RTPS, GSTS_TES, ICS_IWC,
  IOTLB_DID_SHIFT, IOTLB_DOMAIN, IOTLB_GLOBAL, IOTLB_IAIG_SHIFT, IOTLB_IIRG_SHIFT, IOTLB_IVT, IOTLB_PAGE, IRTA_ADDR_MASK,
  IRTA_EIME, IRTA_S_MASK, IVA_ADDR_MASK, IVA_AM_MASK, PMEN_EPM, PMEN_PRS, REGISTER_NAMES, REG_CAP, REG_CCMD, REG_ECAP,
  REG_FEADDR, REG_FECTL, REG_FEDATA, REG_FEUADDR, REG_FSTS, REG_GCMD, REG_GSTS, REG_ICS, REG_IEADDR, REG_IECTL, REG_IEDATA,
  REG_IEUADDR, REG_IQA, REG_IQER, REG_IQH, REG_IQT, REG_IRTA, REG_PMEN, REG_RTADDR, REG_VER, RTADDR_ADDR_MASK, RTADDR_SMT,
  VTD_MIN_MMIO_SIZE,
} from './registers.js';
import { IommuMemory, type CBit } from '../iommu-memory.js';

const ALL64 = 0xffff_ffff_ffff_ffffn;
const hex = (n: number | bigint): string => `0x${n.toString(16)}`;
/** Distinct (source, reason) pairs whose suppressed faults are traced; later ones are only counted. */
const SUPPRESSED_TRACE_KEYS = 4096;

export type VtdInterruptCause = 'fault-event' | 'invalidation-event';

/** A message-signalled interrupt the unit raises (fault or invalidation-completion event). */
export interface VtdMsi {
  readonly cause: VtdInterruptCause;
  readonly address: number;
  readonly upperAddress: number;
  readonly data: number;
}

export interface VtdConfig {
  /** Trace source and requester name of the unit's own memory accesses. */
  readonly name?: string;
  readonly ver?: number;
  /** CAP value; defaults to DEFAULT_CAP. */
  readonly cap?: bigint;
  /** ECAP value; defaults to DEFAULT_ECAP (plus scalable mode when `scalableMode`). */
  readonly ecap?: bigint;
  /** Advertise scalable-mode translation (ECAP.SMTS and friends). */
  readonly scalableMode?: boolean;
  readonly descriptorDelayNs?: number;
  readonly iotlbCapacity?: number;
  /** Fault and invalidation events, as written to FEADDR/FEDATA (IEADDR/IEDATA) when not masked. */
  readonly onInterrupt?: (msi: VtdMsi) => void;
}

export interface VtdDeps {
  readonly clock: VirtualClock;
  readonly mc: MemoryController;
  readonly trace: Trace;
  /** The SME C-bit and its key, when the machine encrypts memory. */
  readonly cbit?: CBit;
}

export interface VtdFault {
  readonly sourceId: number;
  readonly reason: number;
  readonly detail: string;
  readonly fpd: boolean;
  readonly address?: number;
  readonly index?: number;
  readonly read: boolean;
}

/** The compatibility-format destination an MSI address/data pair names (fault events are never remapped). */
export function decodeCompatibilityMsi(address: number, upperAddress: number, data: number): ResolvedInterrupt {
  const low = (address >>> 12) & 0xff;
  const x2apic = upperAddress !== 0;
  return {
    vector: data & 0xff,
    destination: x2apic ? ((upperAddress & 0xffff_ff00) | low) >>> 0 : low,
    destMode: (address & 4) !== 0 ? 'logical' : 'physical',
    deliveryMode: (data >>> 8) & 7,
    ...(x2apic ? { x2apic: true } : {}),
  };
}

export class Vtd implements MmioDevice, InterruptRemappingUnit {
  readonly name: string;
  readonly ver: number;
  readonly cap: bigint;
  readonly ecap: bigint;
  /** Bytes of MMIO the unit claims (at least a page; more if CAP/ECAP place registers past it). */
  readonly mmioSize: number;
  readonly iotlbRegOffset: number;
  readonly faultRegOffset: number;
  readonly memory: IommuMemory;
  readonly faults: FaultRecorder;
  readonly dmaRemapper: DmaRemapper;
  readonly irRemapper: InterruptRemapper;
  readonly queue: InvalidationQueue;
  gsts = 0;
  rtaddr = 0n;
  ccmd = 0n;
  iva = 0n;
  iotlbReg = 0n;
  irta = 0n;
  fectl = ECTL_IM;
  fedata = 0;
  feaddr = 0;
  feuaddr = 0;
  iectl = ECTL_IM;
  iedata = 0;
  ieaddr = 0;
  ieuaddr = 0;
  ics = 0;
  pmen = 0;
  /** FSTS bits kept here (IQE, ICE, ITE, PRO); PFO, PPF and FRI come from the fault recorder. */
  #fsts = 0;
  #root = { addr: 0, scalable: false };
  #irta: LatchedIrta = { addr: 0, entries: 2, x2apic: false };
  /** Registers stored without effect (AFLOG, PMR bases and limits, MTRRs ...). */
  readonly #other = new Map<number, bigint>();
  readonly #trace: Trace;
  readonly #onInterrupt: ((msi: VtdMsi) => void) | undefined;
  readonly #suppressedTraced = new Set<string>();
  /** Per-message kinds already traced since the last GCMD write (an IO-APIC tick would flood the trace). */
  readonly #tracedSinceGcmd = new Set<string>();
  /** Interrupts passed or dropped without remapping (traced once per GCMD write, counted always). */
  interruptsUnremapped = 0;
  readonly #is64 = new Set<number>(FIXED_64BIT_REGISTERS);
  faultsRecorded = 0;
  faultsLost = 0;
  faultsSuppressed = 0;
  dmaBlocked = 0;

  constructor(config: VtdConfig, deps: VtdDeps) {
    this.name = config.name ?? 'dmar0';
    this.ver = config.ver ?? DEFAULT_VER;
    this.cap = config.cap ?? DEFAULT_CAP;
    const ecap = config.ecap ?? DEFAULT_ECAP;
    this.ecap = config.scalableMode === true ? withScalableMode(ecap) : ecap;
    this.iotlbRegOffset = ecapIotlbRegOffset(this.ecap);
    this.faultRegOffset = capFaultRegOffset(this.cap);
    const nfr = capFaultRecords(this.cap);
    const fixedEnd = 0xc0;
    if (this.iotlbRegOffset < fixedEnd || this.faultRegOffset < fixedEnd) {
      throw new RangeError(`Cannot build ${this.name}: IVA at ${hex(this.iotlbRegOffset)} or FRCD at ${hex(this.faultRegOffset)} overlaps the fixed registers`);
    }
    const frEnd = this.faultRegOffset + nfr * 16;
    if (this.iotlbRegOffset < frEnd && this.faultRegOffset < this.iotlbRegOffset + 16) {
      throw new RangeError(`Cannot build ${this.name}: IVA/IOTLB at ${hex(this.iotlbRegOffset)} overlaps the fault recording registers`);
    }
    const end = Math.max(this.iotlbRegOffset + 16, frEnd);
    this.mmioSize = Math.max(VTD_MIN_MMIO_SIZE, Math.ceil(end / 4096) * 4096);
    this.#is64.add(this.iotlbRegOffset).add(this.iotlbRegOffset + 8);
    for (let i = 0; i < nfr; i++) this.#is64.add(this.faultRegOffset + i * 16).add(this.faultRegOffset + i * 16 + 8);
    this.#trace = deps.trace;
    this.#onInterrupt = config.onInterrupt;
    this.memory = new IommuMemory(deps.mc, this.name, deps.cbit);
    this.faults = new FaultRecorder(nfr);
    const record = (kind: string, detail: string, data?: TraceEvent['data']): void => this.#record(kind, detail, data);
    this.dmaRemapper = new DmaRemapper({
      memory: this.memory, cap: this.cap, ecap: this.ecap, latchedRoot: () => this.#root, record,
    }, config.iotlbCapacity);
    this.irRemapper = new InterruptRemapper({ memory: this.memory, latchedIrta: () => this.#irta, record });
    this.queue = new InvalidationQueue(deps.clock, {
      memory: this.memory,
      enabled: () => (this.gsts & GSTS_QIES) !== 0,
      wideAllowed: () => (this.ecap & ECAP_SMTS) !== 0n,
      execute: (d, lo, addr) => this.#executeDescriptor(d, lo, addr),
      fetchFailed: (addr) => this.#queueError(addr, `descriptor fetch at ${hex(addr)} hit no memory`),
    }, this.name, config.descriptorDelayNs);
  }

  get translationEnabled(): boolean {
    return (this.gsts & GSTS_TES) !== 0;
  }

  get interruptRemappingEnabled(): boolean {
    return (this.gsts & GSTS_IRES) !== 0;
  }

  get queuedInvalidationEnabled(): boolean {
    return (this.gsts & GSTS_QIES) !== 0;
  }

  /** The root table SRTP last latched (RTADDR may have been rewritten since). */
  get latchedRoot(): { readonly addr: number; readonly scalable: boolean } {
    return this.#root;
  }

  get latchedIrta(): LatchedIrta {
    return this.#irta;
  }

  get fsts(): number {
    let s = this.#fsts;
    if (this.faults.pfo) s |= FSTS_PFO;
    if (this.faults.ppf) s |= FSTS_PPF;
    return (s | (this.faults.fri << FSTS_FRI_SHIFT)) >>> 0;
  }

  /** Power-on state. A kexec never calls this. */
  reset(): void {
    this.gsts = 0;
    this.rtaddr = this.ccmd = this.iva = this.iotlbReg = this.irta = 0n;
    this.fectl = this.iectl = ECTL_IM;
    this.fedata = this.feaddr = this.feuaddr = this.iedata = this.ieaddr = this.ieuaddr = 0;
    this.ics = this.pmen = this.#fsts = 0;
    this.#root = { addr: 0, scalable: false };
    this.#irta = { addr: 0, entries: 2, x2apic: false };
    this.#other.clear();
    this.#suppressedTraced.clear();
    this.#tracedSinceGcmd.clear();
    this.faults.reset();
    this.dmaRemapper.dropAll();
    this.irRemapper.reset();
    this.queue.reset();
  }

  // ---- MMIO ----

  mmioRead(offset: number, size: 4 | 8): bigint {
    if (offset < 0 || offset % size !== 0 || offset + size > this.mmioSize) return 0n;
    const base = offset - (offset % 8);
    if (this.#is64.has(base)) {
      const v = this.#read64(base);
      if (size === 8) return v;
      return offset === base ? v & 0xffff_ffffn : v >> 32n;
    }
    if (size === 8) return BigInt(this.#read32(offset)) | (BigInt(this.#read32(offset + 4)) << 32n);
    return BigInt(this.#read32(offset));
  }

  mmioWrite(offset: number, size: 4 | 8, value: bigint): void {
    if (offset < 0 || offset % size !== 0 || offset + size > this.mmioSize) return;
    const base = offset - (offset % 8);
    if (this.#is64.has(base)) {
      // A 32-bit access writes one half; the other keeps its value.
      const shift = size === 8 ? 0n : BigInt((offset - base) * 8);
      const mask = size === 8 ? ALL64 : 0xffff_ffffn << shift;
      this.#write64(base, (value << shift) & mask, mask);
      return;
    }
    if (size === 8) {
      this.#write32(offset, Number(value & 0xffff_ffffn));
      this.#write32(offset + 4, Number((value >> 32n) & 0xffff_ffffn));
      return;
    }
    this.#write32(offset, Number(value & 0xffff_ffffn));
  }

  #read32(off: number): number {
    switch (off) {
      case REG_VER: return this.ver;
      case REG_GCMD: return 0; // write-only
      case REG_GSTS: return this.gsts >>> 0;
      case REG_FSTS: return this.fsts;
      case REG_FECTL: return this.fectl >>> 0;
      case REG_FEDATA: return this.fedata;
      case REG_FEADDR: return this.feaddr;
      case REG_FEUADDR: return this.feuaddr;
      case REG_PMEN: return (this.pmen & PMEN_EPM) !== 0 ? (PMEN_EPM | PMEN_PRS) >>> 0 : 0;
      case REG_ICS: return this.ics;
      case REG_IECTL: return this.iectl >>> 0;
      case REG_IEDATA: return this.iedata;
      case REG_IEADDR: return this.ieaddr;
      case REG_IEUADDR: return this.ieuaddr;
      default: {
        const v = this.#other.get(off - (off % 8)) ?? 0n;
        return Number(off % 8 === 0 ? v & 0xffff_ffffn : v >> 32n);
      }
    }
  }

  #read64(reg: number): bigint {
    switch (reg) {
      case REG_CAP: return this.cap;
      case REG_ECAP: return this.ecap;
      case REG_RTADDR: return this.rtaddr;
      case REG_CCMD: return this.ccmd;
      case REG_IQH: return this.queue.iqh;
      case REG_IQT: return this.queue.iqt;
      case REG_IQA: return this.queue.iqa;
      case REG_IQER: return 0n;
      case REG_IRTA: return this.irta;
      case this.iotlbRegOffset: return this.iva;
      case this.iotlbRegOffset + 8: return this.iotlbReg;
      default: {
        const fr = reg - this.faultRegOffset;
        if (fr >= 0 && fr < this.faults.count * 16) {
          const r = this.faults.read(Math.floor(fr / 16));
          return fr % 16 === 0 ? r.lo : r.hi;
        }
        return this.#other.get(reg) ?? 0n;
      }
    }
  }

  #write64(reg: number, value: bigint, mask: bigint): void {
    const merge = (old: bigint): bigint => (old & ~mask) | value;
    const touchesTop = (mask & (1n << 63n)) !== 0n;
    switch (reg) {
      case REG_CAP:
      case REG_ECAP:
      case REG_IQH:
      case REG_IQER:
        return; // read-only
      case REG_RTADDR:
        this.rtaddr = merge(this.rtaddr) & (RTADDR_ADDR_MASK | ((this.ecap & ECAP_SMTS) !== 0n ? RTADDR_SMT : 0n));
        return this.#traceRegWrite(reg, this.rtaddr);
      case REG_CCMD:
        this.ccmd = merge(this.ccmd);
        if (touchesTop && (this.ccmd & CCMD_ICC) !== 0n) this.#registerContextInvalidation();
        return;
      case REG_IQT:
        this.queue.writeTail(merge(this.queue.iqt));
        return;
      case REG_IQA:
        this.queue.writeIqa(merge(this.queue.iqa));
        return this.#traceRegWrite(reg, this.queue.iqa);
      case REG_IRTA:
        this.irta = merge(this.irta) & (IRTA_ADDR_MASK | ((this.ecap & ECAP_EIM) !== 0n ? IRTA_EIME : 0n) | IRTA_S_MASK);
        return this.#traceRegWrite(reg, this.irta);
      case this.iotlbRegOffset:
        this.iva = merge(this.iva);
        return;
      case this.iotlbRegOffset + 8:
        this.iotlbReg = merge(this.iotlbReg);
        if (touchesTop && (this.iotlbReg & IOTLB_IVT) !== 0n) this.#registerIotlbInvalidation();
        return;
      default: {
        const fr = reg - this.faultRegOffset;
        if (fr >= 0 && fr < this.faults.count * 16) {
          if (fr % 16 === 8 && touchesTop) this.#statusChange(() => { this.faults.writeHigh(Math.floor(fr / 16), value); });
          return;
        }
        this.#other.set(reg, merge(this.#other.get(reg) ?? 0n));
      }
    }
  }

  #write32(off: number, v: number): void {
    switch (off) {
      case REG_VER:
      case REG_GSTS:
        return; // read-only
      case REG_GCMD:
        return this.#writeGcmd(v);
      case REG_FSTS:
        return this.#statusChange(() => {
          if ((v & FSTS_PFO) !== 0) this.faults.pfo = false;
          const iqeCleared = (v & FSTS_IQE) !== 0 && (this.#fsts & FSTS_IQE) !== 0;
          this.#fsts &= ~(v & (FSTS_IQE | FSTS_ICE | FSTS_ITE | FSTS_PRO));
          if (iqeCleared) this.queue.resume();
        });
      case REG_FECTL:
        this.fectl = this.#writeEventControl(this.fectl, v, 'fault-event');
        return;
      case REG_FEDATA: this.fedata = v >>> 0; return;
      case REG_FEADDR: this.feaddr = v >>> 0; return;
      case REG_FEUADDR: this.feuaddr = v >>> 0; return;
      case REG_PMEN:
        // Protected memory regions are not enforced (CAP.PLMR/PHMR are clear on the modelled parts); PRS follows EPM at once.
        this.pmen = v & PMEN_EPM;
        return this.#traceRegWrite(off, BigInt(this.#read32(REG_PMEN)));
      case REG_ICS:
        if ((v & ICS_IWC) !== 0) {
          this.ics &= ~ICS_IWC;
          this.iectl &= ~ECTL_IP;
        }
        return;
      case REG_IECTL:
        this.iectl = this.#writeEventControl(this.iectl, v, 'invalidation-event');
        return;
      case REG_IEDATA: this.iedata = v >>> 0; return;
      case REG_IEADDR: this.ieaddr = v >>> 0; return;
      case REG_IEUADDR: this.ieuaddr = v >>> 0; return;
      default: {
        const q = off - (off % 8);
        const shift = BigInt((off % 8) * 8);
        const old = this.#other.get(q) ?? 0n;
        this.#other.set(q, (old & ~(0xffff_ffffn << shift)) | (BigInt(v >>> 0) << shift));
      }
    }
  }

  /** FECTL/IECTL: only IM is writable; unmasking with IP set sends the held interrupt. */
  #writeEventControl(old: number, v: number, cause: VtdInterruptCause): number {
    let n = (old & ~ECTL_IM) | (v & ECTL_IM);
    if ((n & ECTL_IM) === 0 && (n & ECTL_IP) !== 0) {
      n &= ~ECTL_IP;
      this.#sendMsi(cause);
    }
    return n >>> 0;
  }

  #traceRegWrite(reg: number, v: bigint): void {
    const name = REGISTER_NAMES[reg] ?? `reg_${hex(reg)}`;
    this.#record('vtd-reg-write', `${name} = ${hex(v)}`, { reg: name, offset: reg, value: hex(v) });
  }

  // ---- GCMD ----

  #writeGcmd(v: number): void {
    const old = this.gsts;
    const want = (b: number): boolean => (v & b) !== 0;
    const put = (s: number, b: number, on: boolean): number => (on ? s | b : s & ~b);
    let s = put(old, GSTS_TES, want(GCMD_TE));
    const hasQi = (this.ecap & ECAP_QI) !== 0n;
    const hasIr = (this.ecap & ECAP_IR) !== 0n;
    if (hasQi) s = put(s, GSTS_QIES, want(GCMD_QIE));
    if (hasIr) s = put(s, GSTS_IRES, want(GCMD_IRE));
    if (hasIr) s = put(s, GSTS_CFIS, want(GCMD_CFI));
    if ((this.cap & CAP_AFL) !== 0n) s = put(s, GSTS_AFLS, want(GCMD_EAFL));
    const actions: string[] = [];
    if (want(GCMD_SRTP)) {
      this.#root = { addr: Number(this.rtaddr & RTADDR_ADDR_MASK), scalable: (this.rtaddr & RTADDR_SMT) !== 0n };
      s |= GSTS_RTPS;
      const dropped = (this.cap & CAP_ESRTPS) !== 0n ? this.dmaRemapper.dropAll() : 0;
      actions.push('SRTP');
      this.#record('vtd-srtp', `root table pointer latched: ${hex(this.#root.addr)} (${this.#root.scalable ? 'scalable' : 'legacy'} mode)${dropped > 0 ? `, ${dropped} cached entries dropped (ESRTPS)` : ''}`, {
        rootTable: this.#root.addr, scalable: this.#root.scalable, translationEnabled: (s & GSTS_TES) !== 0, dropped,
      });
    }
    if (want(GCMD_SFL)) {
      s |= GSTS_FLS;
      actions.push('SFL');
    }
    if (want(GCMD_WBF)) actions.push('WBF'); // the flush completes at once: WBFS never reads as set
    if (want(GCMD_SIRTP)) {
      const irta = this.irta;
      this.#irta = { addr: Number(irta & IRTA_ADDR_MASK), entries: irtaEntries(irta), x2apic: (irta & IRTA_EIME) !== 0n };
      s |= GSTS_IRTPS;
      const dropped = (this.cap & CAP_ESIRTPS) !== 0n ? this.irRemapper.invalidate(false) : 0;
      actions.push('SIRTP');
      this.#record('vtd-sirtp', `interrupt remapping table latched: ${hex(this.#irta.addr)}, ${this.#irta.entries} entries, ${this.#irta.x2apic ? 'x2APIC' : 'xAPIC'} mode`, {
        table: this.#irta.addr, entries: this.#irta.entries, x2apic: this.#irta.x2apic, dropped,
      });
    }
    this.gsts = s >>> 0;
    this.#tracedSinceGcmd.clear();
    const changed = (b: number): boolean => ((old ^ s) & b) !== 0;
    if (changed(GSTS_QIES)) {
      if ((s & GSTS_QIES) !== 0) this.queue.kick();
      else this.queue.disable();
    }
    this.#record('vtd-gcmd', `GCMD ${hex(v >>> 0)}${actions.length > 0 ? ` (${actions.join(', ')})` : ''}: GSTS ${hex(old >>> 0)} -> ${hex(this.gsts)}`, {
      gcmd: hex(v >>> 0), gsts: hex(this.gsts), te: (s & GSTS_TES) !== 0, qie: (s & GSTS_QIES) !== 0, ire: (s & GSTS_IRES) !== 0,
      cfi: (s & GSTS_CFIS) !== 0, teChanged: changed(GSTS_TES), qieChanged: changed(GSTS_QIES), ireChanged: changed(GSTS_IRES), actions: actions.join(','),
    });
  }

  // ---- invalidation ----

  /** Performs a context-cache invalidation; returns the granularity done (0: none, a reserved request). */
  #invalidateContext(via: string, granularity: number, did: number, sid: number, fm: number): number {
    let dropped: number;
    switch (granularity) {
      case CC_GLOBAL:
        dropped = this.dmaRemapper.contexts.clear();
        break;
      case CC_DOMAIN:
        dropped = this.dmaRemapper.contexts.invalidateDomain(did);
        break;
      case CC_DEVICE:
        dropped = this.dmaRemapper.contexts.invalidateDevice(sid, fm);
        break;
      default:
        return 0;
    }
    const what = ['', 'global', `domain ${did}`, `device ${bdfName(sid)} (FM ${fm})`][granularity]!;
    this.#record('vtd-cc-inval', `${via} context-cache invalidation, ${what}: ${dropped} entries dropped`, { via, granularity, did, sid, fm, dropped });
    return granularity;
  }

  #invalidateIotlb(via: string, granularity: number, did: number, addr: number, am: number): number {
    let done = granularity;
    let dropped: number;
    if (granularity === IOTLB_PAGE && ((this.cap & CAP_PSI) === 0n || am > capMamv(this.cap))) done = IOTLB_DOMAIN;
    switch (done) {
      case IOTLB_GLOBAL:
        dropped = this.dmaRemapper.iotlb.clear();
        break;
      case IOTLB_DOMAIN:
        dropped = this.dmaRemapper.iotlb.invalidate(did);
        break;
      case IOTLB_PAGE: {
        const span = 4096 * 2 ** am;
        const first = addr - (addr % span);
        dropped = this.dmaRemapper.iotlb.invalidate(did, first, first + span);
        break;
      }
      default:
        return 0;
    }
    const what = ['', 'global', `domain ${did}`, `domain ${did} pages ${hex(addr)} (AM ${am})`][done]!;
    this.#record('vtd-iotlb-inval', `${via} IOTLB invalidation, ${what}: ${dropped} entries dropped`, {
      via, granularity, done, did, addr, am, dropped,
    });
    return done;
  }

  #registerContextInvalidation(): void {
    if (this.queuedInvalidationEnabled) {
      // With QI on, register invalidation is not serviced: ICC stays set (QEMU reports an error and does nothing).
      this.#record('vtd-reg-inval-ignored', `CCMD ${hex(this.ccmd)} ignored: queued invalidation is enabled`, { reg: 'CCMD', value: hex(this.ccmd) });
      return;
    }
    const c = this.ccmd;
    const gran = Number((c >> CCMD_CIRG_SHIFT) & 3n);
    const done = this.#invalidateContext('register', gran, Number(c & 0xffffn), Number((c >> CCMD_SID_SHIFT) & 0xffffn), Number((c >> CCMD_FM_SHIFT) & 3n));
    this.ccmd = (c & ~CCMD_ICC & ~(3n << CCMD_CAIG_SHIFT)) | (BigInt(done) << CCMD_CAIG_SHIFT);
  }

  #registerIotlbInvalidation(): void {
    if (this.queuedInvalidationEnabled) {
      this.#record('vtd-reg-inval-ignored', `IOTLB ${hex(this.iotlbReg)} ignored: queued invalidation is enabled`, { reg: 'IOTLB', value: hex(this.iotlbReg) });
      return;
    }
    const r = this.iotlbReg;
    const gran = Number((r >> IOTLB_IIRG_SHIFT) & 3n);
    const did = Number((r >> IOTLB_DID_SHIFT) & 0xffffn);
    const done = this.#invalidateIotlb('register', gran, did, Number(this.iva & IVA_ADDR_MASK), Number(this.iva & IVA_AM_MASK));
    this.iotlbReg = (r & ~IOTLB_IVT & ~(3n << IOTLB_IAIG_SHIFT)) | (BigInt(done) << IOTLB_IAIG_SHIFT);
  }

  #executeDescriptor(d: InvDescriptor | undefined, lo: bigint, addr: number): DescriptorOutcome {
    const code = descriptorCode(lo);
    const sm = (this.ecap & ECAP_SMTS) !== 0n;
    const scalableOnly = d !== undefined && (d.type === 'pasid-cache' || d.type === 'pasid-iotlb' || (d.type === 'no-effect' && d.code >= 8));
    if (d === undefined || (scalableOnly && !sm)) {
      this.#queueError(addr, `invalid descriptor type ${code} at ${hex(addr)}`);
      return 'invalid';
    }
    const info = { addr, type: descriptorName(code), code };
    this.#record('vtd-qi-desc', `${descriptorName(code)} descriptor at ${hex(addr)}`, info);
    switch (d.type) {
      case 'context':
        if (this.#invalidateContext('queued', d.granularity, d.did, d.sid, d.fm) === 0) {
          this.#queueError(addr, `context-cache descriptor at ${hex(addr)} has reserved granularity 0`);
          return 'invalid';
        }
        return 'done';
      case 'iotlb':
        if (this.#invalidateIotlb('queued', d.granularity, d.did, d.addr, d.am) === 0) {
          this.#queueError(addr, `IOTLB descriptor at ${hex(addr)} has reserved granularity 0`);
          return 'invalid';
        }
        return 'done';
      case 'iec': {
        const dropped = this.irRemapper.invalidate(d.indexSelective, d.index, d.im);
        const what = d.indexSelective ? `index ${d.index} (IM ${d.im})` : 'global';
        this.#record('vtd-iec-inval', `queued interrupt-entry-cache invalidation, ${what}: ${dropped} entries dropped`, {
          via: 'queued', indexSelective: d.indexSelective, index: d.index, im: d.im, dropped,
        });
        return 'done';
      }
      case 'wait':
        this.#invalidationWait(d, addr);
        return 'done';
      case 'pasid-iotlb':
        this.#invalidateIotlb('queued PASID', d.pageSelective ? IOTLB_PAGE : IOTLB_DOMAIN, d.did, d.addr, d.am);
        return 'done';
      case 'pasid-cache': {
        const did = d.granularity === 3 ? undefined : d.did;
        const dropped = this.dmaRemapper.pasids.invalidate(did, d.granularity === 1 ? d.pasid : undefined);
        this.#record('vtd-pasid-cache-inval', `queued PASID-cache invalidation (G ${d.granularity}): ${dropped} entries dropped`, {
          via: 'queued', granularity: d.granularity, did: d.did, pasid: d.pasid, dropped,
        });
        return 'done';
      }
      case 'no-effect':
        return 'done';
    }
  }

  #invalidationWait(d: Extract<InvDescriptor, { type: 'wait' }>, addr: number): void {
    if (d.statusWrite) {
      const bytes = new Uint8Array(4);
      new DataView(bytes.buffer).setUint32(0, d.statusData >>> 0, true);
      const w = this.memory.write(d.statusAddr, bytes);
      const info = { addr, statusAddr: d.statusAddr, statusData: hex(d.statusData) };
      if (w === 'no-memory') this.#record('vtd-qi-wait-dropped', `wait status write to ${hex(d.statusAddr)} dropped: no memory there`, { ...info, reason: 'no-memory' });
      else if (!w.ok) this.#record('vtd-qi-wait-dropped', `wait status write to ${hex(d.statusAddr)} refused: ${w.detail}`, { ...info, reason: w.fault });
      else this.#record('vtd-qi-wait', `wait status ${hex(d.statusData)} written to ${hex(d.statusAddr)}`, info);
    }
    if (d.interrupt && (this.ics & ICS_IWC) === 0) {
      this.ics |= ICS_IWC;
      if ((this.iectl & ECTL_IM) === 0) this.#sendMsi('invalidation-event');
      else this.iectl |= ECTL_IP;
    }
  }

  #queueError(addr: number, detail: string): void {
    this.#statusChange(() => { this.#fsts |= FSTS_IQE; });
    this.#record('vtd-qi-error', `${detail}: queue stopped (FSTS.IQE)`, { addr, iqh: hex(this.queue.iqh) });
  }

  // ---- faults ----

  get #faultConditions(): boolean {
    return (this.fsts & (FSTS_PFO | FSTS_PPF | FSTS_IQE | FSTS_ICE | FSTS_ITE)) !== 0;
  }

  /**
   * Runs a change to fault status: an event is raised when a condition
   * appears while none was pending, and a held one (IP) is forgotten once
   * software has cleared every condition.
   */
  #statusChange(change: () => void): void {
    const before = this.#faultConditions;
    change();
    const after = this.#faultConditions;
    if (!before && after) {
      if ((this.fectl & ECTL_IM) === 0) this.#sendMsi('fault-event');
      else this.fectl = (this.fectl | ECTL_IP) >>> 0;
    } else if (!after) {
      this.fectl = (this.fectl & ~ECTL_IP) >>> 0;
    }
  }

  /** Records a fault (DMA or interrupt) in the next fault recording register, unless FPD suppresses it. */
  reportFault(f: VtdFault): void {
    const kind = f.index !== undefined ? 'vtd-intr-fault' : 'vtd-dma-fault';
    const what = f.index !== undefined ? `index ${hex(f.index)}` : `${f.read ? 'read' : 'write'} at ${hex(f.address ?? 0)}`;
    const data = {
      sid: f.sourceId, bdf: bdfName(f.sourceId), reason: f.reason, reasonText: faultReasonText(f.reason), read: f.read,
      ...(f.index !== undefined ? { index: f.index } : { addr: f.address ?? 0 }),
    };
    if (f.fpd && isQualifiedFault(f.reason)) {
      this.faultsSuppressed++;
      const key = `${f.sourceId}:${f.reason}`;
      if (!this.#suppressedTraced.has(key) && this.#suppressedTraced.size < SUPPRESSED_TRACE_KEYS) {
        this.#suppressedTraced.add(key);
        this.#record('vtd-fault-suppressed', `${bdfName(f.sourceId)} ${what}: fault reason ${hex(f.reason)} not recorded (FPD set); later ones only counted`, data);
      }
      return;
    }
    let outcome: ReturnType<FaultRecorder['record']> | undefined;
    this.#statusChange(() => {
      outcome = this.faults.record({
        sourceId: f.sourceId, reason: f.reason, address: f.address ?? 0, read: f.read, ...(f.index !== undefined ? { index: f.index } : {}),
      });
    });
    const o = outcome!;
    if (o.kind === 'recorded') {
      this.faultsRecorded++;
      this.#record(kind, `${bdfName(f.sourceId)} ${what}: fault reason ${hex(f.reason)} (${faultReasonText(f.reason)}) in record ${o.slot}: ${f.detail}`, { ...data, slot: o.slot });
    } else if (o.kind === 'overflow') {
      this.faultsLost++;
      this.#record('vtd-fault-overflow', `${bdfName(f.sourceId)} ${what}: fault reason ${hex(f.reason)} lost, record ${o.slot} still holds a fault: FSTS.PFO set`, { ...data, slot: o.slot });
    } else {
      // PFO stays set until software clears it; only the first loss was traced.
      this.faultsLost++;
    }
  }

  #sendMsi(cause: VtdInterruptCause): void {
    const msi: VtdMsi = cause === 'fault-event'
      ? { cause, address: this.feaddr, upperAddress: this.feuaddr, data: this.fedata }
      : { cause, address: this.ieaddr, upperAddress: this.ieuaddr, data: this.iedata };
    this.#record('vtd-interrupt', `${cause} interrupt: address ${hex(msi.address)} data ${hex(msi.data)}`, {
      cause, address: msi.address, upperAddress: msi.upperAddress, data: msi.data,
    });
    this.#onInterrupt?.(msi);
  }

  #record(kind: string, detail: string, data?: TraceEvent['data']): void {
    this.#trace.record(this.name, kind, detail, data);
  }

  #recordOnce(kind: string, detail: string, data: TraceEvent['data']): void {
    this.interruptsUnremapped++;
    if (this.#tracedSinceGcmd.has(kind)) return;
    this.#tracedSinceGcmd.add(kind);
    this.#record(kind, detail, data);
  }

  // ---- DMA ----

  /**
   * One DMA transfer from `requester` (source id `sid`). With translation on,
   * every page is translated before anything moves, so a fault leaves memory
   * untouched; writes go through the memory controller as the device's.
   */
  dma(requester: string, sid: number, busAddr: number, buf: Uint8Array, write: boolean): DmaResult {
    return this.memory.dma(requester, busAddr, buf, write, (a) => {
      const t = this.dmaRemapper.translate(sid, a, write);
      if (t.ok) return { ok: true, addr: t.addr };
      this.dmaBlocked++;
      this.reportFault({ sourceId: sid, reason: t.reason, detail: t.detail, fpd: t.fpd, address: a - (a % 4096), read: !write });
      return { ok: false, result: { ok: false, fault: 'dmar-fault', detail: `fault reason ${hex(t.reason)} (${faultReasonText(t.reason)}): ${t.detail}` } };
    }, (at, w) => {
      this.#record('vtd-dma-refused', `${requester} DMA write at ${hex(at.busAddr)} (PA ${hex(at.pa)}) refused: ${w.detail}`, {
        sid, requester, busAddr: at.busAddr, pa: at.pa,
      });
      return { ok: false, fault: w.fault, detail: w.detail };
    });
  }

  // ---- interrupts ----

  decideInterrupt(msg: InterruptMessage): InterruptDecision {
    const remappable = (msg.address & MSI_REMAPPABLE_FORMAT) !== 0;
    const sid = msg.sourceId;
    if (!this.interruptRemappingEnabled) {
      if (remappable) {
        this.#recordOnce('vtd-intr-blocked', `remappable-format interrupt from ${bdfName(sid)} dropped: IRES is clear (later ones counted)`, { sid, source: msg.source });
        return { drop: REASON_REMAPPING_DISABLED };
      }
      return this.#compatible(msg);
    }
    if (!remappable) {
      // In x2APIC mode (EIME) compatibility-format interrupts are blocked whatever CFI says.
      if ((this.gsts & GSTS_CFIS) !== 0 && !this.#irta.x2apic) {
        this.#recordOnce('vtd-intr-compat', `compatibility-format interrupt from ${bdfName(sid)} passed (CFIS set; later ones counted)`, { sid, vector: msg.vector ?? -1 });
        return this.#compatible(msg);
      }
      const detail = this.#irta.x2apic ? 'compatibility format is blocked in x2APIC mode' : 'compatibility format is blocked (CFIS clear)';
      this.reportFault({ sourceId: sid, reason: FR_IR_COMPAT_BLOCKED, detail, fpd: false, index: 0, read: false });
      return { drop: `${faultReasonText(FR_IR_COMPAT_BLOCKED)} (fault reason ${hex(FR_IR_COMPAT_BLOCKED)})` };
    }
    const r = this.irRemapper.lookup(sid, msg);
    if (!r.ok) {
      this.reportFault({ sourceId: sid, reason: r.reason, detail: r.detail, fpd: r.fpd, index: r.index, read: false });
      return { drop: `${faultReasonText(r.reason)} (fault reason ${hex(r.reason)})` };
    }
    if (r.fetched) {
      // Traced when the entry was fetched; later hits on the cached entry are not, as an IO-APIC tick would flood the trace.
      this.#record('vtd-intr-remap', `interrupt from ${bdfName(sid)} index ${r.index} -> vector ${hex(r.irq.vector)} destination ${hex(r.irq.destination)}`, {
        sid, index: r.index, vector: r.irq.vector, destination: r.irq.destination, destMode: r.irq.destMode, deliveryMode: r.irq.deliveryMode,
        levelTriggered: r.irte.levelTriggered,
      });
    }
    return { deliver: r.irq };
  }

  #compatible(msg: InterruptMessage): InterruptDecision {
    if (msg.vector === undefined || msg.destination === undefined) return { drop: 'compatibility-format message without vector or destination' };
    return { deliver: { vector: msg.vector, destination: msg.destination, destMode: msg.destMode, deliveryMode: msg.deliveryMode } };
  }
}
