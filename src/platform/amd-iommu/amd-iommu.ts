// The AMD IOMMU: one register file, the device table, I/O page tables and
// interrupt remapping tables it walks in memory (with the caches hardware
// keeps of them), the command processor and the event log, and the SNP
// enforcement state that locks its base registers (ref §3.1-3.9).
// kexec resets nothing here; only reset() (a platform reset) does.

import type { VirtualClock } from '../clock.js';
import type { DmaResult } from '../dma-port.js';
import type { MemoryController } from '../memory-controller.js';
import type { MmioDevice } from '../mmio.js';
import type { Trace, TraceEvent } from '../trace.js';
import { commandName, invalidationRange, type AmdIommuCommand } from './command-buffer.js';
import { CommandProcessor, COMMAND_DELAY_NS, type CommandOutcome } from './command-processor.js';
import { decodeDte, DTE_BYTES, INTCTL_ABORT, INTCTL_FORWARD_UNMAPPED, INTCTL_REMAPPED, type DteFields } from './device-table-entry.js';
import {
  EventLog, eventName, EV_COMMAND_HARDWARE_ERROR, EV_DEV_TAB_HARDWARE_ERROR, EV_ILLEGAL_COMMAND_ERROR, EV_ILLEGAL_DEV_TABLE_ENTRY,
  EV_IO_PAGE_FAULT, EV_PAGE_TAB_HARDWARE_ERROR, EV_RMP_PAGE_FAULT, EVF_I, EVF_PE, EVF_PR, EVF_RW, EVF_RZ, type AmdIommuEvent,
} from './event-log.js';
import { decodeIrte, irteBytes, type InterruptRequest, type IrteFields, type RemapResult } from './interrupt-remapping-table.js';
import { IommuMemory, type CBit } from '../iommu-memory.js';
import { walkIoPageTable } from './io-page-table.js';
import { Iotlb, DEFAULT_IOTLB_CAPACITY } from './iotlb.js';
import {
  baseAddress, devTabBytes, registerName, ADDR_MASK, CTRL_CMD_BUF_EN, CTRL_COM_WAIT_INT_EN, CTRL_EVENT_INT_EN,
  CTRL_EVENT_LOG_EN, CTRL_GA_EN, CTRL_IOMMU_EN, CTRL_IRT_CACHE_DIS, DEFAULT_EFR, DEV_TAB_BASE_MASK, EFR_IA_SUP, EFR_SNP_SUP,
  EXCL_ALLOW, EXCL_BASE_MASK, EXCL_EN, EXCL_LIMIT_MASK, REG_CMD_BUF_BASE, REG_CMD_BUF_HEAD, REG_CMD_BUF_TAIL, REG_CONTROL,
  REG_DEV_TAB_BASE, REG_EFR, REG_EFR2, REG_EVENT_LOG_BASE, REG_EVENT_LOG_HEAD, REG_EVENT_LOG_TAIL, REG_EXCL_BASE, REG_EXCL_LIMIT,
  REG_STATUS, RING_BASE_MASK, STATUS_CMD_BUF_RUN, STATUS_COM_WAIT_INT, STATUS_EVENT_LOG_INT, STATUS_EVENT_LOG_RUN,
  STATUS_EVENT_OVERFLOW, STATUS_W1C, AMD_IOMMU_MMIO_SIZE,
} from './registers.js';

const ALL64 = 0xffff_ffff_ffff_ffffn;
/** Ceiling on the completion-store window snpBufferPfns reports (a window is one page in practice). */
const MAX_STORE_WINDOW_PAGES = 512;
/** Largest IntTabLen the hardware accepts (2048 entries). */
const MAX_INT_TAB_LEN = 11;

export type InterruptCause = 'event-log' | 'completion-wait';

export interface AmdIommuConfig {
  /** Trace source and requester name of the IOMMU's own memory accesses. */
  readonly name?: string;
  /** Extended Feature Register value; defaults to an SNP-capable part's. */
  readonly efr?: bigint;
  readonly efr2?: bigint;
  readonly commandDelayNs?: number;
  readonly iotlbCapacity?: number;
  /** Raised for event-log (EventIntEn) and completion-wait (ComWaitIntEn) interrupts. */
  readonly onInterrupt?: (cause: InterruptCause) => void;
}

export interface AmdIommuDeps {
  readonly clock: VirtualClock;
  readonly mc: MemoryController;
  readonly trace: Trace;
  /** The SME C-bit and the key it selects, when memory encryption is enabled. */
  readonly cbit?: CBit;
}

/** A DMA address translated: the system address (may carry the C-bit), or a fault with the event it logged. */
export type TranslateResult =
  | { readonly ok: true; readonly addr: number; readonly translated: boolean }
  | { readonly ok: false; readonly fault: 'io-page-fault' | 'illegal-dte' | 'hardware-error'; readonly detail: string };

type DteLookup = { ok: true; dte: DteFields } | { ok: false; fault: 'illegal-dte' | 'hardware-error'; detail: string };

export class AmdIommu implements MmioDevice {
  readonly name: string;
  readonly efr: bigint;
  readonly efr2: bigint;
  readonly memory: IommuMemory;
  devTabBase = 0n;
  control = 0n;
  exclBase = 0n;
  exclLimit = 0n;
  /** The W1C status bits; the run bits are derived when read. */
  #status = 0n;
  #snpEnforced = false;
  readonly commands: CommandProcessor;
  readonly eventLog = new EventLog();
  readonly iotlb: Iotlb;
  readonly #dteCache = new Map<number, DteFields>();
  readonly #irteCache = new Map<string, IrteFields>();
  /** Registers the model stores without acting on (PPR log, MSI, counters ...). */
  readonly #other = new Map<number, bigint>();
  readonly #trace: Trace;
  readonly #onInterrupt: ((cause: InterruptCause) => void) | undefined;
  /** Counters for metrics. */
  translations = 0;
  iotlbHits = 0;
  eventsLogged = 0;
  eventsDropped = 0;

  constructor(config: AmdIommuConfig, deps: AmdIommuDeps) {
    this.name = config.name ?? 'iommu0';
    this.efr = config.efr ?? DEFAULT_EFR;
    this.efr2 = config.efr2 ?? 0n;
    this.memory = new IommuMemory(deps.mc, this.name, deps.cbit);
    this.#trace = deps.trace;
    this.#onInterrupt = config.onInterrupt;
    this.iotlb = new Iotlb(config.iotlbCapacity ?? DEFAULT_IOTLB_CAPACITY);
    this.commands = new CommandProcessor(deps.clock, {
      memory: this.memory,
      enabled: () => this.#has(CTRL_IOMMU_EN) && this.#has(CTRL_CMD_BUF_EN),
      execute: (cmd, op, addr) => this.#execute(cmd, op, addr),
      fetchFailed: (addr) => {
        this.#record('iommu-cmd-fetch-error', `command fetch at 0x${addr.toString(16)} hit no memory: command processor stopped`, { addr });
        this.#logEvent({ type: EV_COMMAND_HARDWARE_ERROR, devid: 0, domainId: 0, flags: 0, flagsRmp: 0, address: addr });
      },
    }, this.name, config.commandDelayNs ?? COMMAND_DELAY_NS);
  }

  get snpSupported(): boolean {
    return (this.efr & EFR_SNP_SUP) !== 0n;
  }

  get snpEnforced(): boolean {
    return this.#snpEnforced;
  }

  /** IommuEn: DMA is translated and interrupts remapped. */
  get translationEnabled(): boolean {
    return this.#has(CTRL_IOMMU_EN);
  }

  get dteCacheSize(): number {
    return this.#dteCache.size;
  }

  get irteCacheSize(): number {
    return this.#irteCache.size;
  }

  get status(): bigint {
    let s = this.#status;
    if (this.#eventLogRunning) s |= STATUS_EVENT_LOG_RUN;
    if (this.commands.running) s |= STATUS_CMD_BUF_RUN;
    return s;
  }

  /** Power-on state. A kexec never calls this: the IOMMU keeps everything across it. */
  reset(): void {
    this.commands.halt();
    this.devTabBase = this.control = this.exclBase = this.exclLimit = this.#status = 0n;
    this.commands.base = this.commands.head = this.commands.tail = 0n;
    this.commands.stopped = false;
    Object.assign(this.eventLog, { base: 0n, head: 0n, tail: 0n, overflowed: false });
    this.#snpEnforced = false;
    this.#dteCache.clear();
    this.#irteCache.clear();
    this.iotlb.clear();
    this.#other.clear();
  }

  // ---- MMIO ----

  mmioRead(offset: number, size: 4 | 8): bigint {
    if (offset % size !== 0 || offset < 0 || offset >= AMD_IOMMU_MMIO_SIZE) return 0n;
    const v = this.#read64(offset - (offset % 8));
    if (size === 8) return v;
    return offset % 8 === 4 ? v >> 32n : v & 0xffff_ffffn;
  }

  /** Byte offsets whose next write is lost on the way (fault injection: a torn 64-bit register write). */
  readonly #lostWrites = new Set<number>();

  /** The next MMIO write at exactly `offset` never arrives, as when a two-half register write is torn. */
  loseNextWrite(offset: number): void {
    this.#lostWrites.add(offset);
  }

  mmioWrite(offset: number, size: 4 | 8, value: bigint): void {
    if (offset % size !== 0 || offset < 0 || offset >= AMD_IOMMU_MMIO_SIZE) return;
    if (this.#lostWrites.delete(offset)) {
      this.#trace.record(this.name, 'iommu-reg-write-lost', `${registerName(offset - (offset % 8), this.snpSupported)} ${offset % 8 === 0 ? 'low' : 'high'} half write of 0x${value.toString(16)} lost`, { offset, value: `0x${value.toString(16)}` });
      return;
    }
    // A 32-bit access writes one half of a 64-bit register; the other half keeps its value.
    const shift = size === 8 ? 0n : BigInt((offset % 8) * 8);
    const mask = size === 8 ? ALL64 : 0xffff_ffffn << shift;
    this.#write64(offset - (offset % 8), (value << shift) & mask, mask, size);
  }

  #read64(reg: number): bigint {
    switch (reg) {
      case REG_DEV_TAB_BASE: return this.devTabBase;
      case REG_CMD_BUF_BASE: return this.commands.base;
      case REG_EVENT_LOG_BASE: return this.eventLog.base;
      case REG_CONTROL: return this.control;
      case REG_EXCL_BASE: return this.exclBase;
      case REG_EXCL_LIMIT: return this.exclLimit;
      case REG_EFR: return this.efr;
      case REG_EFR2: return this.efr2;
      case REG_CMD_BUF_HEAD: return this.commands.head;
      case REG_CMD_BUF_TAIL: return this.commands.tail;
      case REG_EVENT_LOG_HEAD: return this.eventLog.head;
      case REG_EVENT_LOG_TAIL: return this.eventLog.tail;
      case REG_STATUS: return this.status;
      default: return this.#other.get(reg) ?? 0n;
    }
  }

  #write64(reg: number, value: bigint, mask: bigint, size: 4 | 8): void {
    const merge = (old: bigint, writable: bigint): bigint => ((old & ~mask) | value) & writable;
    switch (reg) {
      case REG_DEV_TAB_BASE:
        if (this.#locked(reg, merge(this.devTabBase, DEV_TAB_BASE_MASK), value, size)) return;
        this.devTabBase = merge(this.devTabBase, DEV_TAB_BASE_MASK);
        return this.#traceRegWrite(reg, this.devTabBase);
      case REG_CMD_BUF_BASE:
        if (this.#locked(reg, merge(this.commands.base, RING_BASE_MASK), value, size)) return;
        this.commands.base = merge(this.commands.base, RING_BASE_MASK);
        return this.#traceRegWrite(reg, this.commands.base);
      case REG_EVENT_LOG_BASE:
        if (this.#locked(reg, merge(this.eventLog.base, RING_BASE_MASK), value, size)) return;
        this.eventLog.base = merge(this.eventLog.base, RING_BASE_MASK);
        return this.#traceRegWrite(reg, this.eventLog.base);
      case REG_EXCL_BASE:
        if (this.#locked(reg, merge(this.exclBase, EXCL_BASE_MASK), value, size)) return;
        this.exclBase = merge(this.exclBase, EXCL_BASE_MASK);
        return this.#traceRegWrite(reg, this.exclBase);
      case REG_EXCL_LIMIT:
        if (this.#locked(reg, merge(this.exclLimit, EXCL_LIMIT_MASK), value, size)) return;
        this.exclLimit = merge(this.exclLimit, EXCL_LIMIT_MASK);
        return this.#traceRegWrite(reg, this.exclLimit);
      case REG_CONTROL:
        return this.#writeControl(merge(this.control, ALL64));
      case REG_EFR:
      case REG_EFR2:
        return; // read-only
      case REG_CMD_BUF_HEAD: return this.commands.writeHead(merge(this.commands.head, ALL64));
      case REG_CMD_BUF_TAIL: return this.commands.writeTail(merge(this.commands.tail, ALL64));
      case REG_EVENT_LOG_HEAD: return this.eventLog.writeHead(merge(this.eventLog.head, ALL64));
      case REG_EVENT_LOG_TAIL:
        // Software may only move the producer pointer while the log is off (to reset it).
        if (!this.#has(CTRL_EVENT_LOG_EN)) this.eventLog.writeTail(merge(this.eventLog.tail, ALL64));
        return;
      case REG_STATUS:
        this.#status &= ~(value & STATUS_W1C);
        return;
      default:
        this.#other.set(reg, merge(this.#other.get(reg) ?? 0n, ALL64));
    }
  }

  /** Under SNP enforcement the base registers ignore writes, silently as far as software can tell. */
  #locked(reg: number, wouldBe: bigint, written: bigint, size: 4 | 8): boolean {
    if (!this.#snpEnforced) return false;
    const name = registerName(reg, this.snpSupported);
    this.#record('iommu-reg-write-ignored', `${name} write of 0x${wouldBe.toString(16)} ignored: SNP enforcement locks it (keeps 0x${this.#read64(reg).toString(16)})`, {
      reg: name, offset: reg, value: `0x${wouldBe.toString(16)}`, written: `0x${written.toString(16)}`, size, kept: `0x${this.#read64(reg).toString(16)}`,
    });
    return true;
  }

  #traceRegWrite(reg: number, v: bigint): void {
    const name = registerName(reg, this.snpSupported);
    this.#record('iommu-reg-write', `${name} = 0x${v.toString(16)}`, { reg: name, offset: reg, value: `0x${v.toString(16)}` });
  }

  #writeControl(v: bigint): void {
    const old = this.control;
    this.control = v;
    const rose = (b: bigint): boolean => (old & b) === 0n && (v & b) !== 0n;
    const changed = (b: bigint): boolean => ((old ^ v) & b) !== 0n;
    // The IRTE size changes with GAEn: entries cached in the other format mean nothing now.
    if (changed(CTRL_GA_EN)) this.#irteCache.clear();
    if (rose(CTRL_EVENT_LOG_EN)) this.eventLog.overflowed = false;
    if (rose(CTRL_CMD_BUF_EN)) this.commands.restart();
    else if (!this.commands.running) this.commands.halt();
    else this.commands.kick();
    this.#record('iommu-reg-write', `Control = 0x${v.toString(16)}`, {
      reg: 'Control', offset: REG_CONTROL, value: `0x${v.toString(16)}`,
      iommuEn: this.#has(CTRL_IOMMU_EN), cmdBufEn: this.#has(CTRL_CMD_BUF_EN), eventLogEn: this.#has(CTRL_EVENT_LOG_EN), gaEn: this.#has(CTRL_GA_EN),
    });
  }

  #has(bit: bigint): boolean {
    return (this.control & bit) !== 0n;
  }

  get #eventLogRunning(): boolean {
    return this.#has(CTRL_IOMMU_EN) && this.#has(CTRL_EVENT_LOG_EN) && !this.eventLog.overflowed;
  }

  // ---- SNP ----

  /**
   * SNP_INIT turns enforcement on: the base registers lock and completion
   * stores must target the completion-store window. Refused (false) on a
   * part without SNPSup.
   */
  snpEnforce(): boolean {
    if (!this.snpSupported) {
      this.#record('iommu-snp-enforce-refused', 'SNP enforcement requested but the EFR lacks SNPSup');
      return false;
    }
    this.#snpEnforced = true;
    this.#record('iommu-snp-enforce', 'SNP enforcement on: base registers locked, completion stores confined to the store window', {
      devTabBase: `0x${this.devTabBase.toString(16)}`, cmdBufBase: `0x${this.commands.base.toString(16)}`,
      eventLogBase: `0x${this.eventLog.base.toString(16)}`, storeBase: `0x${this.exclBase.toString(16)}`, storeLimit: `0x${this.exclLimit.toString(16)}`,
    });
    return true;
  }

  /** SNP_SHUTDOWN_EX with IOMMU_SNP_SHUTDOWN: enforcement off, registers writable again. */
  snpShutdown(): void {
    const was = this.#snpEnforced;
    this.#snpEnforced = false;
    this.#record('iommu-snp-shutdown', was ? 'SNP enforcement off: base registers writable again' : 'SNP shutdown with enforcement already off', { wasEnforced: was });
  }

  /**
   * PFNs of the buffers SNP_INIT makes firmware-owned, as the base registers
   * name them now: the ones only the IOMMU writes — event log and
   * completion-store window (the PPR log is not modelled). The device table
   * and command buffer stay writable: the host keeps editing DTEs and queuing
   * commands after SNP_INIT, and amd_iommu_snp_disable reclaims just these.
   * A register still zero names no buffer.
   */
  snpBufferPfns(): number[] {
    const pfns = new Set<number>();
    const addRange = (addr: number, bytes: number): void => {
      if (addr === 0) return;
      const first = Math.floor(this.memory.locate(addr).pa / 4096);
      for (let i = 0; i < Math.ceil(bytes / 4096); i++) pfns.add(first + i);
    };
    addRange(baseAddress(this.eventLog.base), this.eventLog.bytes);
    const w = this.#storeWindow();
    if (w !== undefined && (w.first !== 0 || w.last !== 0)) {
      for (let p = w.first; p <= Math.min(w.last, w.first + MAX_STORE_WINDOW_PAGES - 1); p++) pfns.add(p);
    }
    return [...pfns].sort((a, b) => a - b);
  }

  /** The completion-store window as page numbers (C-bit removed); undefined when limit is below base. */
  #storeWindow(): { first: number; last: number } | undefined {
    const first = Math.floor(this.memory.locate(Number(this.exclBase & ADDR_MASK)).pa / 4096);
    const last = Math.floor(this.memory.locate(Number(this.exclLimit & ADDR_MASK)).pa / 4096);
    return last < first ? undefined : { first, last };
  }

  // ---- events ----

  #logEvent(e: AmdIommuEvent): void {
    const name = eventName(e.type);
    const data = { type: e.type, name, devid: e.devid, domainId: e.domainId, address: e.address, flags: e.flags };
    if (!this.#eventLogRunning) {
      this.eventsDropped++;
      this.#record('iommu-event-dropped', `${name} not logged: event log not running`, { ...data, reason: 'log-not-running' });
      return;
    }
    const r = this.eventLog.append(this.memory, e);
    if (r === 'written') {
      this.eventsLogged++;
      this.#status |= STATUS_EVENT_LOG_INT;
      this.#record('iommu-event', `event logged: ${name} devid 0x${e.devid.toString(16)} address 0x${e.address.toString(16)} flags 0x${e.flags.toString(16)}`, data);
      if (this.#has(CTRL_EVENT_INT_EN)) this.#interrupt('event-log');
      return;
    }
    this.eventsDropped++;
    if (r === 'overflow') {
      this.#status |= STATUS_EVENT_OVERFLOW;
      this.#record('iommu-event-overflow', `${name} dropped: event log full, logging stopped`, data);
    } else {
      this.#record('iommu-event-dropped', `${name} not logged: event log outside memory`, { ...data, reason: 'no-memory' });
    }
  }

  #interrupt(cause: InterruptCause): void {
    this.#record('iommu-interrupt', `${cause} interrupt`, { cause });
    this.#onInterrupt?.(cause);
  }

  #record(kind: string, detail: string, data?: TraceEvent['data']): void {
    this.#trace.record(this.name, kind, detail, data);
  }

  // ---- commands ----

  #execute(cmd: AmdIommuCommand | undefined, opcode: number, addr: number): CommandOutcome {
    const head = Number(this.commands.head);
    const ring = { addr, head, ringBase: baseAddress(this.commands.base) };
    if (cmd === undefined || (cmd.op === 'invalidate-iommu-all' && (this.efr & EFR_IA_SUP) === 0n)) {
      this.#record('iommu-illegal-command', `illegal command ${commandName(opcode)} at 0x${addr.toString(16)}: command processor stopped`, { ...ring, opcode });
      this.#logEvent({ type: EV_ILLEGAL_COMMAND_ERROR, devid: 0, domainId: 0, flags: 0, flagsRmp: 0, address: addr });
      return 'illegal';
    }
    const trace = (detail: string, data: TraceEvent['data'] = {}): void =>
      this.#record('iommu-cmd', `${commandName(opcode)} at ring offset 0x${head.toString(16)}: ${detail}`, { op: commandName(opcode), opcode, ...ring, ...data });
    switch (cmd.op) {
      case 'completion-wait':
        trace(`store ${cmd.store} to 0x${cmd.address.toString(16)}, interrupt ${cmd.interrupt}`, { store: cmd.store, storeAddr: cmd.address, data: `0x${cmd.data.toString(16)}` });
        if (cmd.store) this.#completionStore(cmd.address, cmd.data);
        if (cmd.interrupt) {
          this.#status |= STATUS_COM_WAIT_INT;
          if (this.#has(CTRL_COM_WAIT_INT_EN)) this.#interrupt('completion-wait');
        }
        break;
      case 'invalidate-devtab-entry':
        trace(`devid 0x${cmd.devid.toString(16)}`, { devid: cmd.devid, dropped: this.#dteCache.delete(cmd.devid) });
        break;
      case 'invalidate-iommu-pages': {
        const { first, end } = invalidationRange(cmd.address, cmd.size);
        const n = this.iotlb.invalidate(cmd.domainId, first, end);
        trace(`domain 0x${cmd.domainId.toString(16)} [0x${first.toString(16)}, 0x${end.toString(16)}): ${n} IOTLB entries dropped`, { domainId: cmd.domainId, dropped: n });
        break;
      }
      case 'invalidate-interrupt-table': {
        let n = 0;
        for (const key of [...this.#irteCache.keys()]) {
          if (key.startsWith(`${cmd.devid}:`)) { this.#irteCache.delete(key); n++; }
        }
        trace(`devid 0x${cmd.devid.toString(16)}: ${n} IRTEs dropped`, { devid: cmd.devid, dropped: n });
        break;
      }
      case 'invalidate-iommu-all': {
        const n = this.#dteCache.size + this.#irteCache.size + this.iotlb.clear();
        this.#dteCache.clear();
        this.#irteCache.clear();
        trace(`every cache dropped (${n} entries)`, { dropped: n });
        break;
      }
      case 'no-effect':
        trace('accepted, no effect in the model');
        break;
    }
    return 'done';
  }

  /** The store of a COMPLETION_WAIT: the semaphore write software polls for. */
  #completionStore(addr: number, data: bigint): void {
    const loc = this.memory.locate(addr);
    const page = Math.floor(loc.pa / 4096);
    const info = { storeAddr: addr, pa: loc.pa, data: `0x${data.toString(16)}` };
    let inWindow = false;
    if (this.#snpEnforced) {
      const w = this.#storeWindow();
      inWindow = w !== undefined && page >= w.first && page <= w.last;
      if (!inWindow) {
        this.#record('iommu-completion-store-dropped', `completion store to 0x${loc.pa.toString(16)} dropped: outside the SNP completion-store window`, {
          ...info, windowBase: `0x${this.exclBase.toString(16)}`, windowLimit: `0x${this.exclLimit.toString(16)}`,
        });
        return;
      }
    }
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setBigUint64(0, data, true);
    const w = this.memory.write(addr, bytes, inWindow);
    if (w === 'no-memory') {
      this.#record('iommu-completion-store-dropped', `completion store to 0x${loc.pa.toString(16)} dropped: no memory there`, { ...info, reason: 'no-memory' });
    } else if (!w.ok) {
      this.#record('iommu-completion-store-dropped', `completion store to 0x${loc.pa.toString(16)} refused: ${w.detail}`, { ...info, reason: 'rmp-violation' });
    } else {
      this.#record('iommu-completion-store', `completion store 0x${data.toString(16)} to 0x${loc.pa.toString(16)}`, info);
    }
  }

  // ---- device table ----

  #dte(devid: number, iova: number, flags: number): DteLookup {
    const cached = this.#dteCache.get(devid);
    if (cached !== undefined) return { ok: true, dte: cached };
    const off = devid * DTE_BYTES;
    if (off + DTE_BYTES > devTabBytes(this.devTabBase)) {
      const detail = `devid 0x${devid.toString(16)} is beyond the 0x${devTabBytes(this.devTabBase).toString(16)}-byte device table`;
      this.#logEvent({ type: EV_ILLEGAL_DEV_TABLE_ENTRY, devid, domainId: 0, flags, flagsRmp: 0, address: iova });
      return { ok: false, fault: 'illegal-dte', detail };
    }
    const at = baseAddress(this.devTabBase) + off;
    const buf = new Uint8Array(DTE_BYTES);
    if (!this.memory.read(at, buf)) {
      this.#logEvent({ type: EV_DEV_TAB_HARDWARE_ERROR, devid, domainId: 0, flags, flagsRmp: 0, address: at });
      return { ok: false, fault: 'hardware-error', detail: `device table entry at 0x${at.toString(16)} is outside memory` };
    }
    const dte = decodeDte(buf);
    this.#dteCache.set(devid, dte);
    this.#record('iommu-dte-fetch', `DTE for devid 0x${devid.toString(16)} read from 0x${at.toString(16)}`, {
      devid, addr: at, valid: dte.valid, tv: dte.translationValid, mode: dte.mode, domainId: dte.domainId,
      iv: dte.interruptValid, intCtl: dte.intCtl, intTabLen: dte.intTabLen, irtRoot: dte.irtRoot, pageTableRoot: dte.pageTableRoot,
    });
    return { ok: true, dte };
  }

  // ---- DMA ----

  /**
   * Translates the 4 KiB page holding `iova` for a request from `devid`.
   * Faults log their event and come back as values.
   */
  translate(devid: number, iova: number, write: boolean): TranslateResult {
    if (!this.translationEnabled) return { ok: true, addr: iova, translated: false };
    this.translations++;
    const rw = write ? EVF_RW : 0;
    const d = this.#dte(devid, iova, rw);
    if (!d.ok) return d;
    const dte = d.dte;
    // V=0 or TV=0: no translation information, the request passes untranslated.
    if (!dte.valid || !dte.translationValid || this.#excluded(dte, iova)) return { ok: true, addr: iova, translated: false };
    const fault = (flags: number, detail: string): TranslateResult => {
      this.#logEvent({ type: EV_IO_PAGE_FAULT, devid, domainId: dte.domainId, flags: flags | rw, flagsRmp: 0, address: iova });
      this.#record('iommu-io-page-fault', `devid 0x${devid.toString(16)} domain 0x${dte.domainId.toString(16)} ${write ? 'write' : 'read'} at IOVA 0x${iova.toString(16)}: ${detail}`, {
        devid, domainId: dte.domainId, iova, write, flags: flags | rw,
      });
      return { ok: false, fault: 'io-page-fault', detail };
    };
    if (dte.mode === 0) {
      // Mode 0: no page table, but IR/IW still gate the access.
      return (write ? dte.iw : dte.ir) ? { ok: true, addr: iova, translated: false } : fault(EVF_PR | EVF_PE, 'DTE permits no such access');
    }
    if (dte.mode === 7) {
      this.#logEvent({ type: EV_ILLEGAL_DEV_TABLE_ENTRY, devid, domainId: dte.domainId, flags: rw, flagsRmp: 0, address: iova });
      return { ok: false, fault: 'illegal-dte', detail: `devid 0x${devid.toString(16)} DTE has reserved mode 7` };
    }
    const iovaPfn = Math.floor(iova / 4096);
    let e = this.iotlb.lookup(dte.domainId, iovaPfn);
    if (e !== undefined) {
      this.iotlbHits++;
    } else {
      const w = walkIoPageTable((a) => this.memory.readQword(a), dte.pageTableRoot, dte.mode, iova, dte.ir, dte.iw);
      if (!w.ok) {
        if (w.fault === 'hardware-error') {
          this.#logEvent({ type: EV_PAGE_TAB_HARDWARE_ERROR, devid, domainId: dte.domainId, flags: rw, flagsRmp: 0, address: iova });
          return { ok: false, fault: 'hardware-error', detail: w.detail };
        }
        return fault(w.fault === 'reserved' ? EVF_RZ | EVF_PR : 0, w.detail);
      }
      e = { domainId: dte.domainId, iovaPfn, page: w.page, ir: w.ir, iw: w.iw };
      this.iotlb.fill(e);
      this.#record('iommu-iotlb-fill', `domain 0x${dte.domainId.toString(16)} IOVA 0x${(iovaPfn * 4096).toString(16)} -> 0x${w.page.toString(16)}`, {
        devid, domainId: dte.domainId, iova: iovaPfn * 4096, page: w.page, ir: w.ir, iw: w.iw,
      });
    }
    if (!(write ? e.iw : e.ir)) return fault(EVF_PR | EVF_PE, `page mapped without ${write ? 'write' : 'read'} permission`);
    return { ok: true, addr: e.page + (iova % 4096), translated: true };
  }

  /** Exclusion range (parts without SNP, where the registers keep that meaning): matching requests bypass translation. */
  #excluded(dte: DteFields, iova: number): boolean {
    if (this.snpSupported || (this.exclBase & EXCL_EN) === 0n) return false;
    if ((this.exclBase & EXCL_ALLOW) === 0n && !dte.ex) return false;
    const base = Number(this.exclBase & ADDR_MASK);
    const end = Number(this.exclLimit & ADDR_MASK) + 4096;
    return iova >= base && iova < end;
  }

  /**
   * One DMA transfer from `requester` (devid `devid`). Every page is
   * translated before anything moves, so a fault leaves memory untouched;
   * writes are RMP-checked as the device's, page by page.
   */
  dma(requester: string, devid: number, iova: number, buf: Uint8Array, write: boolean): DmaResult {
    return this.memory.dma(requester, iova, buf, write, (a) => {
      const t = this.translate(devid, a, write);
      return t.ok ? { ok: true, addr: t.addr } : { ok: false, result: { ok: false, fault: t.fault, detail: t.detail } };
    }, (at, w) => {
      this.#logEvent({ type: EV_RMP_PAGE_FAULT, devid, domainId: 0, flags: EVF_RW, flagsRmp: 0, address: at.busAddr });
      this.#record('iommu-rmp-fault', `${requester} DMA write at IOVA 0x${at.busAddr.toString(16)} refused by the RMP: ${w.detail}`, {
        devid, requester, iova: at.busAddr, pa: at.pa,
      });
      return { ok: false, fault: 'rmp-violation', detail: w.detail };
    });
  }

  // ---- interrupt remapping ----

  /** Remaps an interrupt from `devid` carrying a remappable index. */
  remapInterrupt(devid: number, req: InterruptRequest): RemapResult {
    const r = this.#remap(devid, req);
    const what = `interrupt from devid 0x${devid.toString(16)} index ${req.index}`;
    if (r.ok) {
      this.#record('iommu-intr-remap', `${what} -> vector 0x${r.vector.toString(16)} destination 0x${r.destination.toString(16)}`, {
        devid, index: req.index, vector: r.vector, destination: r.destination, destMode: r.destMode,
      });
    } else {
      this.#record('iommu-intr-not-remapped', `${what}: ${r.reason}: ${r.detail}`, { devid, index: req.index, reason: r.reason });
    }
    return r;
  }

  #remap(devid: number, req: InterruptRequest): RemapResult {
    if (!this.translationEnabled) return { ok: false, reason: 'remapping-off', detail: 'IommuEn is clear' };
    const d = this.#dte(devid, req.index, EVF_I);
    if (!d.ok) return { ok: false, reason: d.fault, detail: d.detail };
    const dte = d.dte;
    if (!dte.valid || !dte.interruptValid) return { ok: false, reason: 'not-remapped', detail: `DTE ${dte.valid ? 'IV' : 'V'} is clear` };
    if (dte.intCtl === INTCTL_ABORT) return { ok: false, reason: 'blocked', detail: 'DTE IntCtl is abort' };
    if (dte.intCtl === INTCTL_FORWARD_UNMAPPED) return { ok: false, reason: 'not-remapped', detail: 'DTE IntCtl forwards unmapped' };
    if (dte.intCtl !== INTCTL_REMAPPED || dte.intTabLen > MAX_INT_TAB_LEN) {
      this.#logEvent({ type: EV_ILLEGAL_DEV_TABLE_ENTRY, devid, domainId: dte.domainId, flags: EVF_I, flagsRmp: 0, address: req.index });
      return { ok: false, reason: 'illegal-dte', detail: `DTE IntCtl ${dte.intCtl} IntTabLen ${dte.intTabLen} is reserved` };
    }
    const ioPf = (): void =>
      this.#logEvent({ type: EV_IO_PAGE_FAULT, devid, domainId: dte.domainId, flags: EVF_I, flagsRmp: 0, address: req.index });
    const entries = 2 ** dte.intTabLen;
    if (!(req.index >= 0 && req.index < entries)) {
      const detail = `index ${req.index} beyond the ${entries}-entry table`;
      ioPf();
      return { ok: false, reason: 'index-out-of-range', detail };
    }
    const ga = this.#has(CTRL_GA_EN);
    const key = `${devid}:${req.index}`;
    let irte = this.#irteCache.get(key);
    if (irte === undefined) {
      const at = dte.irtRoot + req.index * irteBytes(ga);
      const buf = new Uint8Array(irteBytes(ga));
      if (!this.memory.read(at, buf)) return { ok: false, reason: 'hardware-error', detail: `IRTE at 0x${at.toString(16)} is outside memory` };
      irte = decodeIrte(buf, ga);
      if (!this.#has(CTRL_IRT_CACHE_DIS)) this.#irteCache.set(key, irte);
      this.#record('iommu-irte-fetch', `IRTE ${req.index} for devid 0x${devid.toString(16)} read from 0x${at.toString(16)}`, {
        devid, index: req.index, addr: at, ga, remapEn: irte.remapEn, vector: irte.vector, destination: irte.destination,
      });
    }
    if (!irte.remapEn) {
      const detail = `IRTE ${req.index} has RemapEn clear`;
      if (!irte.supIopf) ioPf();
      return { ok: false, reason: 'irte-not-valid', detail };
    }
    if (irte.guestMode) return { ok: false, reason: 'guest-mode', detail: `IRTE ${req.index} posts to a guest vAPIC (not modelled)` };
    return { ok: true, vector: irte.vector, destination: irte.destination, destMode: irte.dm ? 'logical' : 'physical', intType: irte.intType, index: req.index };
  }
}
