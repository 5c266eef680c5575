// A machine with a VT-d unit (and, when asked, the interrupt fabric routed
// through it), with the register accesses and table building a driver does,
// all through the unit's own encode helpers and MMIO.

import { Machine, HOST_KEY_SLOT } from '../../../src/platform/machine.js';
import { attachInterruptFabric, type InterruptFabric } from '../../../src/platform/apic/interrupt-fabric.js';
import { ioapicRteHigh, ioapicRteLow, encodeRte, IOAPIC_MMIO_BASE, IOAPIC_IOREGSEL, IOAPIC_IOWIN } from '../../../src/platform/apic/io-apic.js';
import { attachVtd, type VtdSpec } from '../../../src/platform/vtd/attach.js';
import type { Vtd } from '../../../src/platform/vtd/vtd.js';
import { contextEntryBytes, EMPTY_CONTEXT, type LegacyContextEntry } from '../../../src/platform/vtd/context-entry.js';
import { encodeRootEntry, rootEntryAddress, rootEntryBytes } from '../../../src/platform/vtd/root-table.js';
import { slIndex, slTableEntry } from '../../../src/platform/vtd/second-level-table.js';
import { descriptorBytes, type InvDescriptor } from '../../../src/platform/vtd/invalidation-descriptor.js';
import { irteBytes, EMPTY_IRTE, type IrteFields } from '../../../src/platform/vtd/irte.js';
import { decodeFaultRecord, type DecodedFaultRecord } from '../../../src/platform/vtd/fault-recording.js';
import {
  GCMD_IRE, GCMD_QIE, GCMD_SIRTP, GCMD_SRTP, GCMD_TE, REG_GCMD, REG_GSTS, REG_IQA, REG_IQT, REG_IRTA, REG_RTADDR,
  iqaValue, irtaValue, rtaddrValue,
} from '../../../src/platform/vtd/registers.js';
import type { DmaPort } from '../../../src/platform/dma-port.js';

export const MiB = 2 ** 20;
export const CBIT = 47;
export const HOST = { kind: 'cpu', id: 0 } as const;
/** The NIC at 03:00.0. */
export const NIC_BDF = '03:00.0';
export const NIC_SID = 0x0300;
export const DID = 7;

export const ROOT = 0x10_0000;
export const ROOT2 = 0x10_1000;
export const CTX = 0x11_0000; // context table for bus 3
export const CTX2 = 0x11_1000;
export const IQ = 0x12_0000; // one page: 256 128-bit descriptors
export const STATUS = 0x13_0000;
export const IRT = 0x14_0000;
export const PT_POOL = 0x20_0000;

export class Rig {
  readonly m: Machine;
  readonly unit: Vtd;
  readonly base: number;
  readonly fabric: InterruptFabric | undefined;
  /** The driver's shadow of the persistent GCMD bits (the handshake of ref §1.2). */
  gcmd = 0;
  #nextTable = PT_POOL;
  #iqTail = 0;
  /** Writes that reached memory from devices (DMA and the unit's own), in order. */
  readonly deviceWrites: { pa: number; length: number; name: string }[] = [];

  constructor(opts: { spec?: Partial<VtdSpec>; memEncrypt?: boolean; fabric?: boolean; cpus?: number } = {}) {
    this.m = new Machine({
      memoryBytes: 64 * MiB, cpus: opts.cpus ?? 1, seed: 5, nics: [], cpuVendor: 'GenuineIntel',
      ...(opts.memEncrypt === true ? { memEncrypt: { state: 'enabled', cbit: CBIT } } : {}),
    });
    // Newer machines build their fabric at power-on; older ones get one here.
    const own = (this.m as Partial<{ readonly interrupts: InterruptFabric }>).interrupts;
    this.fabric = opts.fabric === true ? own ?? attachInterruptFabric(this.m, { hpet: false, pit: false }) : undefined;
    const a = attachVtd(this.m, { ...opts.spec, ...(this.fabric === undefined ? { routeInterrupts: false } : { fabric: this.fabric }) });
    this.unit = a.unit;
    this.base = a.mmioBase;
    this.m.mc.addWriteObserver((pa, length, who) => {
      if (who.kind === 'device') this.deviceWrites.push({ pa, length, name: who.name });
    });
  }

  get dma(): DmaPort {
    return this.m.dma;
  }

  reg64(off: number, v: bigint): void {
    this.m.mmio.write(this.base + off, v, 8);
  }

  reg32(off: number, v: number): void {
    this.m.mmio.write(this.base + off, BigInt(v >>> 0), 4);
  }

  read64(off: number): bigint {
    return this.m.mmio.read(this.base + off, 8);
  }

  read32(off: number): number {
    return Number(this.m.mmio.read(this.base + off, 4));
  }

  /** Sets or clears a persistent GCMD bit, as Linux does: shadow | bit, then poll GSTS. */
  command(bit: number, on: boolean): number {
    this.gcmd = on ? (this.gcmd | bit) >>> 0 : (this.gcmd & ~bit) >>> 0;
    this.reg32(REG_GCMD, this.gcmd);
    return this.read32(REG_GSTS);
  }

  /** A one-shot command (SRTP, SIRTP, WBF) written with the shadow. */
  oneShot(bit: number): number {
    this.reg32(REG_GCMD, (this.gcmd | bit) >>> 0);
    return this.read32(REG_GSTS);
  }

  setRootTable(root: number, scalable = false): void {
    this.reg64(REG_RTADDR, rtaddrValue(root, scalable));
    this.oneShot(GCMD_SRTP);
  }

  enableTranslation(): void {
    this.command(GCMD_TE, true);
  }

  newTable(): number {
    const t = this.#nextTable;
    this.#nextTable += 4096;
    this.m.mc.zero(t, 4096, HOST);
    return t;
  }

  write(pa: number, bytes: Uint8Array): void {
    this.m.mc.write(pa, bytes, HOST);
  }

  putQword(pa: number, v: bigint): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, v, true);
    this.write(pa, b);
  }

  qword(pa: number): bigint {
    const b = new Uint8Array(8);
    this.m.mc.read(pa, b);
    return new DataView(b.buffer).getBigUint64(0, true);
  }

  bytes(pa: number, n: number, keyId = 0): Uint8Array {
    const b = new Uint8Array(n);
    this.m.mc.read(pa, b, { keyId });
    return b;
  }

  /** Root entry for `bus` in `root` pointing at `ctx` (legacy format). */
  setRootEntry(bus: number, ctx: number | undefined, root = ROOT): void {
    this.write(rootEntryAddress(root, bus), rootEntryBytes(encodeRootEntry({ present: ctx !== undefined, contextTable: ctx ?? 0 })));
  }

  setContext(devfn: number, e: Partial<LegacyContextEntry>, table = CTX): void {
    this.write(table + devfn * 16, contextEntryBytes({ ...EMPTY_CONTEXT, ...e }));
  }

  /** A translating context entry for the NIC (03:00.0) in DID with an AW-`aw` table at `slptptr`. */
  nicContext(slptptr: number, aw = 1, extra: Partial<LegacyContextEntry> = {}): void {
    this.setRootEntry(3, CTX);
    this.setContext(0, { present: true, translationType: 0, slptptr, addressWidth: aw, domainId: DID, ...extra });
  }

  /** Maps 4 KiB `iova` to `leaf` in the `levels`-deep table at `root`, creating tables on the way; `stopAt` leaves a superpage. */
  map(root: number, iova: number, leaf: bigint, levels = 3, stopAt = 1): void {
    let table = root;
    for (let level = levels; level > stopAt; level--) {
      const at = table + 8 * slIndex(iova, level);
      const pde = this.qword(at);
      if ((pde & 3n) === 0n) {
        const next = this.newTable();
        this.putQword(at, slTableEntry(next));
        table = next;
      } else {
        table = Number(pde & 0x000f_ffff_ffff_f000n);
      }
    }
    this.putQword(table + 8 * slIndex(iova, stopAt), leaf);
  }

  leafAddress(root: number, iova: number, levels = 3): number {
    let table = root;
    for (let level = levels; level > 1; level--) table = Number(this.qword(table + 8 * slIndex(iova, level)) & 0x000f_ffff_ffff_f000n);
    return table + 8 * slIndex(iova, 1);
  }

  /** Queued invalidation on with a one-page queue at IQ, as Linux enables it (IQT = 0, IQA, QIE). */
  enableQi(wide = false): void {
    this.reg64(REG_IQT, 0n);
    this.reg64(REG_IQA, iqaValue(IQ, 0, wide));
    this.#iqTail = 0;
    this.command(GCMD_QIE, true);
  }

  /** Copies descriptors to the queue at the driver's tail, then writes IQT. */
  submit(...descs: InvDescriptor[]): void {
    const wide = (this.unit.queue.iqa & (1n << 11n)) !== 0n;
    const size = wide ? 32 : 16;
    for (const d of descs) {
      this.write(IQ + this.#iqTail, descriptorBytes(d, wide));
      this.#iqTail = (this.#iqTail + size) % 4096;
    }
    this.reg64(REG_IQT, BigInt(this.#iqTail));
  }

  /** Lets queued work run (1 µs per descriptor in the model). */
  settle(us = 100): void {
    this.m.clock.advance(us * 1000);
  }

  /** Interrupt remapping on with a table at IRT of 2^(s+1) entries. */
  enableIr(s = 7, eime = false): void {
    this.reg64(REG_IRTA, irtaValue(IRT, s, eime));
    this.oneShot(GCMD_SIRTP);
    this.command(GCMD_IRE, true);
  }

  setIrte(index: number, f: Partial<IrteFields>, x2apic = false): void {
    this.write(IRT + index * 16, irteBytes({ ...EMPTY_IRTE, present: true, ...f }, x2apic));
  }

  /** Programs IO-APIC pin `pin`'s RTE (high half first, as kernels do). */
  setRte(pin: number, v: bigint): void {
    const io = (reg: number, val: number): void => {
      this.m.mmio.write(IOAPIC_MMIO_BASE + IOAPIC_IOREGSEL, BigInt(reg));
      this.m.mmio.write(IOAPIC_MMIO_BASE + IOAPIC_IOWIN, BigInt(val >>> 0));
    };
    io(ioapicRteHigh(pin), Number(v >> 32n));
    io(ioapicRteLow(pin), Number(v & 0xffff_ffffn));
  }

  /** A remappable-format edge RTE for `index`. */
  static remapRte(index: number): bigint {
    return encodeRte({ format: 'remappable', index, vector: 0, deliveryStatus: false, polarityLow: false, remoteIrr: false, levelTriggered: false, masked: false });
  }

  /** The requester id the IO-APIC sends with. */
  get ioApicSid(): number {
    return this.fabric!.ioApic.config.sourceId;
  }

  static compatRte(vector: number, destination: number): bigint {
    return encodeRte({
      format: 'compatibility', vector, deliveryMode: 0, destLogical: false, destination,
      deliveryStatus: false, polarityLow: false, remoteIrr: false, levelTriggered: false, masked: false,
    });
  }

  /** Fault record `n` as software reads it. */
  faultRecord(n: number): DecodedFaultRecord {
    const off = this.unit.faultRegOffset + n * 16;
    return decodeFaultRecord(this.read64(off), this.read64(off + 8));
  }

  static readonly hostKey = HOST_KEY_SLOT;
}

export const payload = (n: number, v: number): Uint8Array => new Uint8Array(n).fill(v);
