// A receive-only network controller modelled on the e1000 receive path: a
// ring of 16-byte descriptors in memory, each pointing at a packet buffer.
// Descriptors from head up to (not including) tail belong to the device. When
// a packet arrives the device DMA-writes it into the head buffer, sets DD in
// the descriptor and advances head. Nobody refilling the ring (a dead kernel)
// means it fills and the device drops packets: DMA after a panic is bounded
// by the descriptors the first kernel had handed over.

import type { VirtualClock, EventHandle } from '../clock.js';
import type { DmaPort } from '../dma-port.js';
import type { MmioDevice } from '../mmio.js';
import type { Trace } from '../trace.js';

export const NIC_CTRL = 0x0000;
export const NIC_STATUS = 0x0008;
export const NIC_RDBAL = 0x2800;
export const NIC_RDBAH = 0x2804;
export const NIC_RDLEN = 0x2808;
export const NIC_RDH = 0x2810;
export const NIC_RDT = 0x2818;

/** CTRL bits. */
export const CTRL_RXEN = 1 << 1;
export const CTRL_RST = 1 << 26;

export const RX_DESC_SIZE = 16;
/** Descriptor status bits (byte 12). */
export const RXD_STAT_DD = 1 << 0;
export const RXD_STAT_EOP = 1 << 1;

export interface RxNicConfig {
  name: string;
  bdf: string;
  /** Time between arriving packets, ns. */
  packetIntervalNs: number;
  /** Bytes per packet (at most the buffer size the driver gives). */
  packetBytes: number;
  seed: number;
}

export class RxNic implements MmioDevice {
  readonly name: string;
  readonly bdf: string;
  readonly config: RxNicConfig;
  ctrl = 0;
  rdba = 0;
  rdlen = 0;
  rdh = 0;
  rdt = 0;
  packetsReceived = 0;
  packetsDropped = 0;
  dmaFaults = 0;
  readonly #clock: VirtualClock;
  readonly #dma: DmaPort;
  readonly #trace: Trace;
  #timer: EventHandle | undefined;
  #packetNo = 0;
  /** Address of the last DMA fault traced (repeats at it are only counted). */
  #lastFaultAddr: number | undefined;
  /** Set while the ring is full: packets arriving meanwhile are dropped without DMA, counted when it resumes. */
  #fullSince: number | undefined;
  readonly #desc = new Uint8Array(RX_DESC_SIZE);
  /** Reused for every packet: DMA copies it into memory before the next one. */
  readonly #packet: Uint8Array;

  constructor(config: RxNicConfig, clock: VirtualClock, dma: DmaPort, trace: Trace) {
    this.name = config.name;
    this.bdf = config.bdf;
    this.config = config;
    this.#clock = clock;
    this.#dma = dma;
    this.#trace = trace;
    this.#packet = new Uint8Array(config.packetBytes);
  }

  /** Power-on state. kexec does not call this; only a reset (CTRL.RST) or platform reset does. */
  reset(): void {
    this.#settleDrops(); // drops before the reset happened, whether or not anyone asked yet
    this.ctrl = 0;
    this.rdba = 0;
    this.rdlen = 0;
    this.rdh = 0;
    this.rdt = 0;
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#fullSince = undefined;
  }

  mmioRead(offset: number): bigint {
    switch (offset) {
      case NIC_CTRL: return BigInt(this.ctrl);
      case NIC_STATUS: return BigInt((this.ctrl & CTRL_RXEN) !== 0 ? 1 : 0);
      case NIC_RDBAL: return BigInt(this.rdba % 2 ** 32);
      case NIC_RDBAH: return BigInt(Math.floor(this.rdba / 2 ** 32));
      case NIC_RDLEN: return BigInt(this.rdlen);
      case NIC_RDH: return BigInt(this.rdh);
      case NIC_RDT: return BigInt(this.rdt);
      default: return 0n;
    }
  }

  mmioWrite(offset: number, _size: 4 | 8, value: bigint): void {
    const v = Number(value & 0xffff_ffffn);
    switch (offset) {
      case NIC_CTRL:
        if ((v & CTRL_RST) !== 0) {
          this.#trace.record(this.name, 'reset', 'device reset, DMA stopped');
          this.reset();
          return;
        }
        this.ctrl = v;
        this.#updateTimer();
        return;
      case NIC_RDBAL: this.rdba = Math.floor(this.rdba / 2 ** 32) * 2 ** 32 + v; return;
      case NIC_RDBAH: this.rdba = v * 2 ** 32 + (this.rdba % 2 ** 32); return;
      case NIC_RDLEN: this.rdlen = v; return;
      case NIC_RDH: this.rdh = v; return;
      case NIC_RDT:
        this.rdt = v;
        this.#resumeIfRoom();
        return;
      default:
    }
  }

  get ringEntries(): number {
    return Math.floor(this.rdlen / RX_DESC_SIZE);
  }

  #updateTimer(): void {
    const on = (this.ctrl & CTRL_RXEN) !== 0;
    // While the ring is full the timer is stopped on purpose; #resumeIfRoom restarts it.
    if (on && this.#timer === undefined && this.#fullSince === undefined) this.#arm();
    if (!on) {
      // A disabled receiver takes no packets, so it drops none either.
      this.#settleDrops();
      this.#fullSince = undefined;
      this.#timer?.cancel();
      this.#timer = undefined;
    }
  }

  #arm(): void {
    this.#timer = this.#clock.schedule(this.config.packetIntervalNs, `${this.name}-rx`, () => {
      this.#timer = undefined;
      this.#receive();
      if ((this.ctrl & CTRL_RXEN) !== 0 && this.#fullSince === undefined) this.#arm();
    });
  }

  /**
   * The ring is full: every packet from now on is dropped until the driver
   * returns descriptors. Rather than an event per dropped packet, the timer
   * stops and the drops are counted when the ring has room again (or when
   * asked), which keeps a long-dead host cheap to simulate.
   */
  #stopWhileFull(): void {
    this.#fullSince = this.#clock.now;
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  #settleDrops(): void {
    if (this.#fullSince === undefined) return;
    const iv = this.config.packetIntervalNs;
    const missed = Math.floor((this.#clock.now - this.#fullSince) / iv);
    this.packetsDropped += missed;
    this.#packetNo += missed;
    this.#fullSince += missed * iv;
  }

  #resumeIfRoom(): void {
    if (this.#fullSince === undefined || this.rdh === this.rdt || (this.ctrl & CTRL_RXEN) === 0) return;
    this.#settleDrops();
    const next = this.#fullSince + this.config.packetIntervalNs;
    this.#fullSince = undefined;
    this.#timer = this.#clock.scheduleAt(next, `${this.name}-rx`, () => {
      this.#timer = undefined;
      this.#receive();
      if ((this.ctrl & CTRL_RXEN) !== 0 && this.#fullSince === undefined) this.#arm();
    });
  }

  /** Packets dropped so far, including those of a full ring not yet settled. */
  get dropped(): number {
    this.#settleDrops();
    return this.packetsDropped;
  }

  /** One packet arrives from the wire. */
  #receive(): void {
    const n = this.ringEntries;
    const packetNo = this.#packetNo++;
    if (n === 0 || this.rdh === this.rdt) {
      this.packetsDropped++;
      this.#stopWhileFull();
      return;
    }
    const descAddr = this.rdba + this.rdh * RX_DESC_SIZE;
    const r = this.#dma.read(this.bdf, descAddr, this.#desc);
    if (!r.ok) {
      this.#dmaFault('descriptor read', descAddr, r.detail);
      return;
    }
    const dv = new DataView(this.#desc.buffer);
    const bufAddr = dv.getUint32(0, true) + dv.getUint32(4, true) * 2 ** 32;
    const payload = this.#packet;
    fillPacket(payload, this.config.seed, packetNo);
    const w = this.#dma.write(this.bdf, bufAddr, payload);
    if (!w.ok) {
      this.#dmaFault('packet write', bufAddr, w.detail);
      return;
    }
    dv.setUint16(8, payload.length, true);
    this.#desc[12] = RXD_STAT_DD | RXD_STAT_EOP;
    const wd = this.#dma.write(this.bdf, descAddr, this.#desc);
    if (!wd.ok) {
      this.#dmaFault('descriptor write-back', descAddr, wd.detail);
      return;
    }
    this.packetsReceived++;
    this.rdh = (this.rdh + 1) % n;
  }

  #dmaFault(what: string, addr: number, detail: string): void {
    this.dmaFaults++;
    // The engine retries the same descriptor on every packet: trace a fault once per address, count them all.
    if (this.#lastFaultAddr === addr) return;
    this.#lastFaultAddr = addr;
    this.#trace.record(this.name, 'dma-fault', `${this.name}: ${what} at 0x${addr.toString(16)} failed: ${detail}`, { addr });
  }
}

/** The bytes of packet `n` (see fillPacket). */
export function packetBytes(seed: number, n: number, length: number): Uint8Array {
  const b = new Uint8Array(length);
  fillPacket(b, seed, n);
  return b;
}

/**
 * Packet `n`'s bytes: a header that names it, then a 64-byte pattern seeded
 * by (seed, n) and repeated, as payloads of real traffic repeat.
 */
export function fillPacket(b: Uint8Array, seed: number, n: number): void {
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  let x = (Math.imul(seed ^ 0x6b64736d, 0x9e3779b1) ^ Math.imul(n + 1, 0x85ebca6b)) >>> 0 || 1;
  const words = Math.min(16, b.length >>> 2);
  for (let i = 0; i < words; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    dv.setUint32(i * 4, x >>> 0, true);
  }
  for (let have = words * 4; have < b.length; have *= 2) b.copyWithin(have, 0, Math.min(have, b.length - have));
  dv.setUint32(0, 0x6b64736d, false); // "kdsm"
  dv.setUint32(4, n, true);
}
