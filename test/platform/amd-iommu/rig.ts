// A machine with an AMD IOMMU and the tables a driver would set up, built
// through the IOMMU's own encode helpers and MMIO, for the IOMMU tests.

import { Machine, HOST_KEY_SLOT } from '../../../src/platform/machine.js';
import { attachAmdIommu, type AmdIommuSpec } from '../../../src/platform/amd-iommu/attach.js';
import type { AmdIommu } from '../../../src/platform/amd-iommu/amd-iommu.js';
import { encodeCommand, type AmdIommuCommand } from '../../../src/platform/amd-iommu/command-buffer.js';
import { encodeDte, EMPTY_DTE, INTCTL_REMAPPED, type DteFields } from '../../../src/platform/amd-iommu/device-table-entry.js';
import { decodeEvents, type DecodedEvent } from '../../../src/platform/amd-iommu/event-log.js';
import { ioLeaf, ioPde, ioPteIndex } from '../../../src/platform/amd-iommu/io-page-table.js';
import {
  CTRL_CMD_BUF_EN, CTRL_EVENT_LOG_EN, CTRL_IOMMU_EN, REG_CMD_BUF_BASE, REG_CMD_BUF_HEAD, REG_CMD_BUF_TAIL, REG_CONTROL,
  REG_DEV_TAB_BASE, REG_EVENT_LOG_BASE, REG_EVENT_LOG_HEAD, REG_EVENT_LOG_TAIL, REG_EXCL_BASE, REG_EXCL_LIMIT,
  devTabBaseValue, ringBaseValue,
} from '../../../src/platform/amd-iommu/registers.js';
import type { DmaPort } from '../../../src/platform/dma-port.js';

export const MiB = 2 ** 20;
export const CBIT = 47;
export const HOST = { kind: 'cpu', id: 0 } as const;
export const DEVID = 0x0300; // 03:00.0
export const DOMAIN = 5;

/** Where the driver's structures live in the tests. */
export const DEV_TAB = 0x10_0000; // 64 KiB: devids 0..0x7ff
export const DEV_TAB_BYTES = 0x1_0000;
export const CMD_BUF = 0x18_0000; // 512 entries, 8 KiB
export const EVENT_LOG = 0x19_0000; // 256 entries, 4 KiB
export const CWB = 0x1a_0000; // completion-wait semaphore page
export const IRT = 0x1b_0000;
export const PT_POOL = 0x20_0000; // page-table pages are carved from here
export const CMD_ENTRIES = 512;
export const EVENT_ENTRIES = 256;

export class Rig {
  readonly m: Machine;
  readonly iommu: AmdIommu;
  readonly base: number;
  #nextTable = PT_POOL;
  /** Command ring the rig writes to (the driver's idea of it, which the hardware may not share). */
  ring = CMD_BUF;
  #tail = 0;
  /** Writes that reached memory from devices (DMA and the IOMMU's own), in order. */
  readonly deviceWrites: { pa: number; length: number; name: string }[] = [];

  constructor(opts: { spec?: Partial<AmdIommuSpec>; memEncrypt?: boolean; machine?: Machine } = {}) {
    this.m = opts.machine ?? new Machine({
      memoryBytes: 64 * MiB, cpus: 1, seed: 3, nics: [],
      ...(opts.memEncrypt === true ? { memEncrypt: { state: 'enabled', cbit: CBIT } } : {}),
    });
    const a = attachAmdIommu(this.m, { devids: { nic0: DEVID, disk0: 0x0400 }, ...opts.spec });
    this.iommu = a.iommu;
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

  /** What a driver does: tables programmed, command buffer and event log on, translation on. */
  enable(extraControl = 0n): void {
    this.reg64(REG_DEV_TAB_BASE, devTabBaseValue(DEV_TAB, DEV_TAB_BYTES));
    this.reg64(REG_CMD_BUF_BASE, ringBaseValue(CMD_BUF, CMD_ENTRIES));
    this.reg64(REG_EVENT_LOG_BASE, ringBaseValue(EVENT_LOG, EVENT_ENTRIES));
    this.reg64(REG_EXCL_BASE, BigInt(CWB));
    this.reg64(REG_EXCL_LIMIT, BigInt(CWB));
    this.reg64(REG_CMD_BUF_HEAD, 0n);
    this.reg64(REG_CMD_BUF_TAIL, 0n);
    this.reg64(REG_EVENT_LOG_HEAD, 0n);
    this.reg64(REG_EVENT_LOG_TAIL, 0n);
    this.reg64(REG_CONTROL, CTRL_IOMMU_EN | CTRL_CMD_BUF_EN | CTRL_EVENT_LOG_EN | extraControl);
  }

  setDte(devid: number, f: Partial<DteFields>, table = DEV_TAB): void {
    this.m.mc.write(table + devid * 32, encodeDte({ ...EMPTY_DTE, ...f }), HOST);
  }

  /** A translating DTE for DEVID in DOMAIN with a `levels`-deep table at `root`. */
  translatingDte(root: number, levels = 3, devid = DEVID): void {
    this.setDte(devid, { valid: true, translationValid: true, mode: levels, pageTableRoot: root, ir: true, iw: true, domainId: DOMAIN });
  }

  remappingDte(devid: number, irt = IRT, intTabLen = 9): void {
    this.setDte(devid, { valid: true, interruptValid: true, intTabLen, irtRoot: irt, intCtl: INTCTL_REMAPPED, domainId: DOMAIN });
  }

  newTable(): number {
    const t = this.#nextTable;
    this.#nextTable += 4096;
    this.m.mc.zero(t, 4096, HOST);
    return t;
  }

  putQword(pa: number, v: bigint): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, v, true);
    this.m.mc.write(pa, b, HOST);
  }

  qword(pa: number, keyId = 0): bigint {
    const b = new Uint8Array(8);
    this.m.mc.read(pa, b, { keyId });
    return new DataView(b.buffer).getBigUint64(0, true);
  }

  bytes(pa: number, n: number, keyId = 0): Uint8Array {
    const b = new Uint8Array(n);
    this.m.mc.read(pa, b, { keyId });
    return b;
  }

  /** Maps 4 KiB `iova` to `leaf` (a PTE) in the `levels`-deep table at `root`, creating tables on the way. */
  map(root: number, iova: number, leaf: bigint, levels = 3): void {
    let table = root;
    for (let level = levels; level > 1; level--) {
      const at = table + 8 * ioPteIndex(iova, level);
      const pde = this.qword(at);
      if ((pde & 1n) === 0n) {
        const next = this.newTable();
        this.putQword(at, ioPde(next, level - 1));
        table = next;
      } else {
        table = Number(pde & 0x000f_ffff_ffff_f000n);
      }
    }
    this.putQword(table + 8 * ioPteIndex(iova, 1), leaf);
  }

  /** The address of the level-1 entry for `iova` (the table must exist). */
  leafAddress(root: number, iova: number, levels = 3): number {
    let table = root;
    for (let level = levels; level > 1; level--) table = Number(this.qword(table + 8 * ioPteIndex(iova, level)) & 0x000f_ffff_ffff_f000n);
    return table + 8 * ioPteIndex(iova, 1);
  }

  static leaf(pa: number, perm?: { ir: boolean; iw: boolean }): bigint {
    return ioLeaf(pa, perm);
  }

  /** Queues a command as the driver does: copy into its ring at its tail, then write the tail register. */
  submit(...cmds: AmdIommuCommand[]): void {
    for (const c of cmds) {
      this.m.mc.write(this.ring + this.#tail, encodeCommand(c), HOST);
      this.#tail = (this.#tail + 16) % (CMD_ENTRIES * 16);
    }
    this.reg64(REG_CMD_BUF_TAIL, BigInt(this.#tail));
  }

  /** The driver restarts its ring at offset 0 (after disabling, as Linux's reset does). */
  resetDriverTail(): void {
    this.#tail = 0;
  }

  /** COMPLETION_WAIT storing `data` to `addr`, and time for it to run. */
  completionWait(addr: number, data: bigint, opts: { interrupt?: boolean } = {}): void {
    this.submit({ op: 'completion-wait', store: true, interrupt: opts.interrupt ?? false, flush: false, address: addr, data });
  }

  /** Lets the command processor drain (1 µs per command in the model). */
  settle(us = 100): void {
    this.m.clock.advance(us * 1000);
  }

  /** Events between the head and tail registers, decoded from memory. */
  events(): DecodedEvent[] {
    const tail = Number(this.read64(REG_EVENT_LOG_TAIL));
    return decodeEvents(this.bytes(EVENT_LOG, tail));
  }

  static readonly hostKey = HOST_KEY_SLOT;
}
