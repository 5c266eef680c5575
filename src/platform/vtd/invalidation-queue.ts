// Queued invalidation (ref §1.2, §1.5): a ring of descriptors at IQA of
// 2^QS pages; software writes descriptors at IQT and advances it, the unit
// fetches from IQH, one descriptor per DESCRIPTOR_DELAY_NS of virtual time
// (our stand-in for hardware latency), while GSTS.QIES is set. A descriptor
// it cannot execute, or a fetch outside memory, sets FSTS.IQE and stops the
// queue with IQH on the offending slot until software clears IQE.
// Disabling queued invalidation resets IQH to 0.

import type { EventHandle, VirtualClock } from '../clock.js';
import { decodeDescriptor, type InvDescriptor } from './invalidation-descriptor.js';
import { IQA_ADDR_MASK, IQA_DW, IQA_QS_MASK, IQ_PTR_MASK } from './registers.js';
import type { IommuMemory } from '../iommu-memory.js';

export const DESCRIPTOR_DELAY_NS = 1_000;

export type DescriptorOutcome = 'done' | 'invalid';

export interface InvalidationQueueHost {
  readonly memory: IommuMemory;
  /** GSTS.QIES. */
  enabled(): boolean;
  /** IQA.DW is honoured (scalable-mode parts). */
  wideAllowed(): boolean;
  /** Carries out one descriptor (undefined: unknown type) fetched from `addr`. */
  execute(desc: InvDescriptor | undefined, lo: bigint, addr: number): DescriptorOutcome;
  /** The queue could not be read at `addr`. */
  fetchFailed(addr: number): void;
}

export class InvalidationQueue {
  iqa = 0n;
  iqh = 0n;
  iqt = 0n;
  /** Stopped on an invalid descriptor (FSTS.IQE) until software clears IQE. */
  stopped = false;
  descriptorsExecuted = 0;
  readonly #clock: VirtualClock;
  readonly #host: InvalidationQueueHost;
  readonly #name: string;
  readonly #delayNs: number;
  #pending: EventHandle | undefined;

  constructor(clock: VirtualClock, host: InvalidationQueueHost, name: string, delayNs = DESCRIPTOR_DELAY_NS) {
    this.#clock = clock;
    this.#host = host;
    this.#name = name;
    this.#delayNs = delayNs;
  }

  get wide(): boolean {
    return (this.iqa & IQA_DW) !== 0n && this.#host.wideAllowed();
  }

  get descriptorBytes(): number {
    return this.wide ? 32 : 16;
  }

  /** 2^QS pages. */
  get queueBytes(): number {
    return 4096 * 2 ** Number(this.iqa & IQA_QS_MASK);
  }

  get base(): number {
    return Number(this.iqa & IQA_ADDR_MASK);
  }

  get pending(): boolean {
    return Number(this.iqh) % this.queueBytes !== Number(this.iqt) % this.queueBytes;
  }

  get running(): boolean {
    return this.#host.enabled() && !this.stopped;
  }

  writeIqa(v: bigint): void {
    this.iqa = v & (IQA_ADDR_MASK | IQA_DW | IQA_QS_MASK);
  }

  writeTail(v: bigint): void {
    // 256-bit descriptors: offsets are multiples of 32, bit 4 is reserved.
    this.iqt = v & (this.wide ? IQ_PTR_MASK & ~0x10n : IQ_PTR_MASK);
    this.kick();
  }

  /** QIE went from set to clear. */
  disable(): void {
    this.halt();
    this.iqh = 0n;
  }

  /** Software cleared FSTS.IQE: the queue may run again. */
  resume(): void {
    this.stopped = false;
    this.kick();
  }

  kick(): void {
    if (this.#pending !== undefined || !this.running || !this.pending) return;
    this.#pending = this.#clock.schedule(this.#delayNs, `${this.#name}-qi`, () => {
      this.#pending = undefined;
      this.#step();
    });
  }

  halt(): void {
    this.#pending?.cancel();
    this.#pending = undefined;
  }

  reset(): void {
    this.halt();
    this.iqa = this.iqh = this.iqt = 0n;
    this.stopped = false;
  }

  #step(): void {
    if (!this.running || !this.pending) return;
    const size = this.queueBytes;
    const head = Number(this.iqh) % size;
    const addr = this.base + head;
    const w = this.#host.memory.readWords(addr, 2);
    if (w === undefined) {
      this.stopped = true;
      this.#host.fetchFailed(addr);
      return;
    }
    const [lo = 0n, hi = 0n] = w;
    if (this.#host.execute(decodeDescriptor(lo, hi), lo, addr) !== 'done') {
      this.stopped = true;
      return;
    }
    this.descriptorsExecuted++;
    this.iqh = BigInt((head + this.descriptorBytes) % size);
    this.kick();
  }
}
