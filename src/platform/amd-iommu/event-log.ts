// The event log: a ring of 16-byte entries in memory the IOMMU appends to at
// EventLogBase + tail and software consumes from head (ref §3.7). The type is
// in word 1 bits 31:28. The other fields follow the AMD layout the Linux
// driver decodes: word 0 bits 15:0 device id (bits 31:16 RMP flags for
// RMP faults), word 1 bits 15:0 domain id / PASID / vmg tag, bits 27:16
// flags, words 2-3 the address.

import { baseAddress, ringEntries, RING_PTR_MASK } from './registers.js';
import type { IommuMemory } from '../iommu-memory.js';

export const EVENT_BYTES = 16;

export const EV_ILLEGAL_DEV_TABLE_ENTRY = 0x1;
export const EV_IO_PAGE_FAULT = 0x2;
export const EV_DEV_TAB_HARDWARE_ERROR = 0x3;
export const EV_PAGE_TAB_HARDWARE_ERROR = 0x4;
export const EV_ILLEGAL_COMMAND_ERROR = 0x5;
export const EV_COMMAND_HARDWARE_ERROR = 0x6;
export const EV_IOTLB_INV_TIMEOUT = 0x7;
export const EV_INVALID_DEVICE_REQUEST = 0x8;
export const EV_INVALID_PPR_REQUEST = 0x9;
export const EV_RMP_PAGE_FAULT = 0xd;
export const EV_RMP_HW_ERROR = 0xe;

export const EVENT_NAMES: Readonly<Record<number, string>> = {
  [EV_ILLEGAL_DEV_TABLE_ENTRY]: 'ILLEGAL_DEV_TABLE_ENTRY',
  [EV_IO_PAGE_FAULT]: 'IO_PAGE_FAULT',
  [EV_DEV_TAB_HARDWARE_ERROR]: 'DEV_TAB_HARDWARE_ERROR',
  [EV_PAGE_TAB_HARDWARE_ERROR]: 'PAGE_TAB_HARDWARE_ERROR',
  [EV_ILLEGAL_COMMAND_ERROR]: 'ILLEGAL_COMMAND_ERROR',
  [EV_COMMAND_HARDWARE_ERROR]: 'COMMAND_HARDWARE_ERROR',
  [EV_IOTLB_INV_TIMEOUT]: 'IOTLB_INV_TIMEOUT',
  [EV_INVALID_DEVICE_REQUEST]: 'INVALID_DEVICE_REQUEST',
  [EV_INVALID_PPR_REQUEST]: 'INVALID_PPR_REQUEST',
  [EV_RMP_PAGE_FAULT]: 'RMP_PAGE_FAULT',
  [EV_RMP_HW_ERROR]: 'RMP_HW_ERROR',
};

export function eventName(type: number): string {
  return EVENT_NAMES[type] ?? `UNKNOWN_0x${type.toString(16)}`;
}

/** Fault flags (word 1 bits 27:16) of page-fault style events. */
export const EVF_GN = 1 << 0;
export const EVF_NX = 1 << 1;
export const EVF_US = 1 << 2;
/** The faulting request was an interrupt. */
export const EVF_I = 1 << 3;
/** The page was present (a permission fault, not a missing mapping). */
export const EVF_PR = 1 << 4;
/** The request was a write. */
export const EVF_RW = 1 << 5;
/** Permission denied. */
export const EVF_PE = 1 << 6;
/** A reserved bit or level field was set. */
export const EVF_RZ = 1 << 7;
export const EVF_TR = 1 << 8;

export interface AmdIommuEvent {
  readonly type: number;
  readonly devid: number;
  /** Domain id for page faults; PASID or vmg tag for other types. */
  readonly domainId: number;
  readonly flags: number;
  /** RMP flags of RMP_PAGE_FAULT (word 0 bits 31:16). */
  readonly flagsRmp: number;
  /** IOVA, command address or physical address, by type. */
  readonly address: number;
}

export interface DecodedEvent extends AmdIommuEvent {
  readonly name: string;
}

export function encodeEvent(e: AmdIommuEvent): Uint8Array {
  const out = new Uint8Array(EVENT_BYTES);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, ((e.devid & 0xffff) | ((e.flagsRmp & 0xffff) << 16)) >>> 0, true);
  dv.setUint32(4, ((e.domainId & 0xffff) | ((e.flags & 0xfff) << 16) | ((e.type & 0xf) << 28)) >>> 0, true);
  dv.setUint32(8, e.address % 2 ** 32, true);
  dv.setUint32(12, Math.floor(e.address / 2 ** 32) % 2 ** 32, true);
  return out;
}

export function decodeEvent(bytes: Uint8Array): DecodedEvent {
  if (bytes.length < EVENT_BYTES) throw new RangeError(`Cannot decode IOMMU event: ${bytes.length} bytes, need ${EVENT_BYTES}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, EVENT_BYTES);
  const w0 = dv.getUint32(0, true);
  const w1 = dv.getUint32(4, true);
  const type = w1 >>> 28;
  return {
    type, name: eventName(type),
    devid: w0 & 0xffff, flagsRmp: w0 >>> 16,
    domainId: w1 & 0xffff, flags: (w1 >>> 16) & 0xfff,
    address: dv.getUint32(8, true) + dv.getUint32(12, true) * 2 ** 32,
  };
}

/** Decodes a run of entries (a copy of the log between head and tail, say); all-zero entries are skipped. */
export function decodeEvents(bytes: Uint8Array): DecodedEvent[] {
  const out: DecodedEvent[] = [];
  for (let off = 0; off + EVENT_BYTES <= bytes.length; off += EVENT_BYTES) {
    const e = bytes.subarray(off, off + EVENT_BYTES);
    if (e.some((b) => b !== 0)) out.push(decodeEvent(e));
  }
  return out;
}

export type AppendResult = 'written' | 'overflow' | 'no-memory';

/**
 * The log's registers and the append rule. The log is full when advancing
 * tail would meet head; the entry is then dropped and the log stops (software
 * restarts it by toggling EventLogEn, as the Linux driver's overflow handler does).
 */
export class EventLog {
  base = 0n;
  head = 0n;
  tail = 0n;
  /** Stopped by an overflow until EventLogEn is set again. */
  overflowed = false;

  get bytes(): number {
    return ringEntries(this.base) * EVENT_BYTES;
  }

  writeHead(v: bigint): void {
    this.head = v & RING_PTR_MASK;
  }

  writeTail(v: bigint): void {
    this.tail = v & RING_PTR_MASK;
  }

  append(mem: IommuMemory, e: AmdIommuEvent): AppendResult {
    const size = this.bytes;
    const tail = Number(this.tail) % size;
    const next = (tail + EVENT_BYTES) % size;
    if (next === Number(this.head) % size) {
      this.overflowed = true;
      return 'overflow';
    }
    const w = mem.write(baseAddress(this.base) + tail, encodeEvent(e), true);
    if (w === 'no-memory') return 'no-memory';
    this.tail = BigInt(next);
    return 'written';
  }
}
