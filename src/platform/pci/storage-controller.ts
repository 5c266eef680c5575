// A block-storage controller with one command queue in memory: 32-byte
// descriptors, each naming a disk LBA, a length, a buffer's bus address and
// a direction. Descriptors from head up to (not including) tail belong to the
// device; it works through them one at a time at its transfer rate. A read
// copies sectors of the simulated disk into the buffer (a DMA write to host
// memory); a write copies the buffer onto the disk (a DMA read). When a
// command is done the device writes DONE into the descriptor's status byte
// and advances head. Nobody queueing more (a dead kernel) means it finishes
// what was queued and then idles: DMA after a panic is bounded by the
// commands the first kernel had handed over.
//
// A controller may also have a firmware-owned region of host memory (what
// the BIOS declares as an RMRR for it): its firmware writes a status record
// there periodically, whatever the OS does, at the region's own address.

import type { EventHandle, VirtualClock } from '../clock.js';
import type { DmaPort } from '../dma-port.js';
import type { MmioDevice } from '../mmio.js';
import type { Trace } from '../trace.js';

export const STC_CTRL = 0x00;
export const STC_STATUS = 0x04;
export const STC_QBAL = 0x10;
export const STC_QBAH = 0x14;
/** Queue length in descriptors. */
export const STC_QLEN = 0x18;
export const STC_QHEAD = 0x20;
/** The doorbell: the driver writes the index one past its last queued descriptor. */
export const STC_QTAIL = 0x28;
export const STC_MMIO_SIZE = 0x1000;

/** CTRL bits. */
export const STC_CTRL_EN = 1 << 0;
export const STC_CTRL_RST = 1 << 31;

export const STC_DESC_SIZE = 32;
export const SECTOR_BYTES = 512;
/** Descriptor layout: LBA (u64), length in bytes (u32), opcode (u8), status (u8), buffer bus address (u64 at 16). */
export const DESC_LBA = 0;
export const DESC_LEN = 8;
export const DESC_OP = 12;
export const DESC_STATUS = 13;
export const DESC_BUF = 16;
export const OP_READ = 1;
export const OP_WRITE = 2;
export const STAT_DONE = 1 << 0;
export const STAT_ERROR = 1 << 1;

export interface StorageControllerConfig {
  name: string;
  bdf: string;
  /** Bytes per second the device moves between disk and memory. */
  bytesPerSecond: number;
  seed: number;
  /** The firmware's region (an RMRR): it writes a status record at `base` every `intervalNs`. */
  firmwareRegion?: { base: number; size: number; intervalNs: number };
}

export interface StorageIo {
  op: 'read' | 'write';
  lba: number;
  bytes: number;
  bus: number;
  /** Where the transfer landed in physical memory. */
  pa: number;
}

export class StorageController implements MmioDevice {
  readonly name: string;
  readonly bdf: string;
  readonly config: StorageControllerConfig;
  ctrl = 0;
  qba = 0;
  qlen = 0;
  qhead = 0;
  qtail = 0;
  commandsDone = 0;
  sectorsRead = 0;
  sectorsWritten = 0;
  dmaFaults = 0;
  firmwareWrites = 0;
  firmwareFaults = 0;
  /** Sectors written since power-on; the rest read as their factory pattern. */
  readonly disk = new Map<number, Uint8Array>();
  readonly #clock: VirtualClock;
  readonly #dma: DmaPort;
  readonly #trace: Trace;
  #timer: EventHandle | undefined;
  #lastFaultAddr: number | undefined;
  readonly #desc = new Uint8Array(STC_DESC_SIZE);

  constructor(config: StorageControllerConfig, clock: VirtualClock, dma: DmaPort, trace: Trace) {
    if (!(config.bytesPerSecond > 0)) throw new RangeError(`Cannot build storage controller "${config.name}": rate ${config.bytesPerSecond} B/s is not positive`);
    this.name = config.name;
    this.bdf = config.bdf;
    this.config = config;
    this.#clock = clock;
    this.#dma = dma;
    this.#trace = trace;
    if (config.firmwareRegion !== undefined) this.#armFirmware();
  }

  /** Power-on state of the queue engine. kexec does not call this; CTRL.RST or a platform reset does. The firmware keeps running. */
  reset(): void {
    this.ctrl = 0;
    this.qba = 0;
    this.qlen = 0;
    this.qhead = 0;
    this.qtail = 0;
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  mmioRead(offset: number): bigint {
    switch (offset) {
      case STC_CTRL: return BigInt(this.ctrl);
      case STC_STATUS: return BigInt(this.#timer === undefined ? 0 : 1);
      case STC_QBAL: return BigInt(this.qba % 2 ** 32);
      case STC_QBAH: return BigInt(Math.floor(this.qba / 2 ** 32));
      case STC_QLEN: return BigInt(this.qlen);
      case STC_QHEAD: return BigInt(this.qhead);
      case STC_QTAIL: return BigInt(this.qtail);
      default: return 0n;
    }
  }

  mmioWrite(offset: number, _size: 4 | 8, value: bigint): void {
    const v = Number(value & 0xffff_ffffn);
    switch (offset) {
      case STC_CTRL:
        if ((v & STC_CTRL_RST) !== 0) {
          this.#trace.record(this.name, 'reset', 'device reset, queue stopped');
          this.reset();
          return;
        }
        this.ctrl = v;
        if ((v & STC_CTRL_EN) === 0) {
          this.#timer?.cancel();
          this.#timer = undefined;
        } else this.#kick();
        return;
      case STC_QBAL: this.qba = Math.floor(this.qba / 2 ** 32) * 2 ** 32 + v; return;
      case STC_QBAH: this.qba = v * 2 ** 32 + (this.qba % 2 ** 32); return;
      case STC_QLEN: this.qlen = v; return;
      case STC_QHEAD: this.qhead = v; return;
      case STC_QTAIL:
        this.qtail = v;
        this.#kick();
        return;
      default:
    }
  }

  /** Time the device takes for one transfer of `bytes`. */
  transferNs(bytes: number): number {
    return Math.max(1, Math.ceil((bytes * 1e9) / this.config.bytesPerSecond));
  }

  /** Starts on the head command when enabled, idle and there is one. */
  #kick(): void {
    if (this.#timer !== undefined || (this.ctrl & STC_CTRL_EN) === 0 || this.qlen === 0 || this.qhead === this.qtail) return;
    const descAddr = this.qba + this.qhead * STC_DESC_SIZE;
    const r = this.#dma.read(this.bdf, descAddr, this.#desc);
    // A descriptor it cannot fetch: the engine retries after a transfer's time.
    const bytes = r.ok ? new DataView(this.#desc.buffer).getUint32(DESC_LEN, true) : SECTOR_BYTES;
    if (!r.ok) this.#fault('descriptor read', descAddr, r.detail);
    this.#timer = this.#clock.schedule(this.transferNs(bytes), `${this.name}-io`, () => {
      this.#timer = undefined;
      if (r.ok) this.#execute(descAddr);
      this.#kick();
    });
  }

  /** Carries out the fetched command at `descAddr` and completes it. */
  #execute(descAddr: number): void {
    const d = this.#desc;
    const dv = new DataView(d.buffer);
    const lba = Number(dv.getBigUint64(DESC_LBA, true));
    const bytes = dv.getUint32(DESC_LEN, true);
    const op = d[DESC_OP]!;
    const bus = Number(dv.getBigUint64(DESC_BUF, true));
    const sectors = Math.ceil(bytes / SECTOR_BYTES);
    const buf = new Uint8Array(sectors * SECTOR_BYTES);
    let status = STAT_DONE;
    let pa: number | undefined;
    if (op === OP_READ) {
      for (let s = 0; s < sectors; s++) buf.set(this.sector(lba + s), s * SECTOR_BYTES);
      const w = this.#dma.write(this.bdf, bus, buf.subarray(0, bytes));
      if (w.ok) { pa = w.pa; this.sectorsRead += sectors; } else { this.#fault('read data write', bus, w.detail); status |= STAT_ERROR; }
    } else if (op === OP_WRITE) {
      const r = this.#dma.read(this.bdf, bus, buf.subarray(0, bytes));
      if (r.ok) {
        pa = r.pa;
        for (let s = 0; s < sectors; s++) this.disk.set(lba + s, buf.slice(s * SECTOR_BYTES, (s + 1) * SECTOR_BYTES));
        this.sectorsWritten += sectors;
      } else { this.#fault('write data read', bus, r.detail); status |= STAT_ERROR; }
    } else status |= STAT_ERROR;
    if (pa !== undefined) {
      const io: StorageIo = { op: op === OP_READ ? 'read' : 'write', lba, bytes, bus, pa };
      this.#trace.record(this.name, 'storage-io', `${this.name}: ${io.op} LBA ${lba} (${bytes} bytes) at bus 0x${bus.toString(16)} -> 0x${pa.toString(16)}`, { ...io });
    }
    d[DESC_STATUS] = status;
    const wb = this.#dma.write(this.bdf, descAddr + DESC_STATUS, d.subarray(DESC_STATUS, DESC_STATUS + 1));
    if (!wb.ok) this.#fault('status write-back', descAddr, wb.detail);
    this.commandsDone++;
    this.qhead = (this.qhead + 1) % this.qlen;
  }

  /** Sector `lba` as the disk holds it. */
  sector(lba: number): Uint8Array {
    return this.disk.get(lba) ?? factorySector(this.config.seed, lba);
  }

  #armFirmware(): void {
    const fw = this.config.firmwareRegion!;
    this.#clock.schedule(fw.intervalNs, `${this.name}-firmware`, () => {
      this.#firmwareWrite(fw.base);
      this.#armFirmware();
    });
  }

  /** The firmware's status record: a magic, a sequence number and the time, at the start of its region. */
  #firmwareWrite(base: number): void {
    const rec = new Uint8Array(16);
    const dv = new DataView(rec.buffer);
    dv.setUint32(0, 0x7277_6673, false); // "rwfs"
    dv.setUint32(4, this.firmwareWrites + this.firmwareFaults, true);
    dv.setBigUint64(8, BigInt(this.#clock.now), true);
    const w = this.#dma.write(this.bdf, base, rec);
    if (w.ok) {
      this.firmwareWrites++;
      this.#trace.record(this.name, 'firmware-dma', `${this.name} firmware: status record at bus 0x${base.toString(16)} -> 0x${w.pa.toString(16)}`, { bus: base, pa: w.pa });
    } else {
      this.firmwareFaults++;
      this.#fault('firmware status write', base, w.detail);
    }
  }

  #fault(what: string, addr: number, detail: string): void {
    this.dmaFaults++;
    if (this.#lastFaultAddr === addr) return;
    this.#lastFaultAddr = addr;
    this.#trace.record(this.name, 'dma-fault', `${this.name}: ${what} at 0x${addr.toString(16)} failed: ${detail}`, { addr });
  }
}

/** A sector never written since power-on: a header naming it, then a pattern seeded by (seed, lba). */
export function factorySector(seed: number, lba: number): Uint8Array {
  const b = new Uint8Array(SECTOR_BYTES);
  const dv = new DataView(b.buffer);
  let x = (Math.imul(seed ^ 0x64736b21, 0x9e3779b1) ^ Math.imul(lba + 1, 0xc2b2ae35)) >>> 0 || 1;
  for (let i = 0; i < SECTOR_BYTES / 4; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    dv.setUint32(i * 4, x >>> 0, true);
  }
  dv.setUint32(0, 0x6b64736b, false); // "kdsk"
  dv.setUint32(4, lba % 2 ** 32, true);
  return b;
}
