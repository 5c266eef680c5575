// qi_submit_sync() as the driver uses it: descriptors go into the ring at
// IQT followed by an invalidation-wait descriptor that stores a sequence
// number to a status dword in kernel memory; the driver then spins (in
// virtual time) until that store lands. The unit runs the ring on its own
// clock, so a wait that never completes is a timeout here, not a hang.

import { descriptorBytes, invWait, type InvDescriptor } from '../../../platform/vtd/invalidation-descriptor.js';
import { REG_IQT } from '../../../platform/vtd/registers.js';
import type { IommuHost } from '../iommu.js';

/** QI_LENGTH: 256 descriptors. */
export const QI_LENGTH = 256;
/** How long the driver spins for one wait descriptor before giving up (the unit runs one descriptor per µs). */
const WAIT_LIMIT_NS = 10_000_000;
const POLL_NS = 1_000;

export class QueuedInvalidation {
  readonly #h: IommuHost;
  readonly #mmio: number;
  readonly queuePa: number;
  readonly statusPa: number;
  /** 256-bit descriptors (IQA.DW, scalable mode). */
  readonly wide: boolean;
  #tail = 0;
  #seq = 0;
  submitted = 0;
  timeouts = 0;

  constructor(h: IommuHost, mmio: number, queuePa: number, statusPa: number, wide: boolean) {
    this.#h = h;
    this.#mmio = mmio;
    this.queuePa = queuePa;
    this.statusPa = statusPa;
    this.wide = wide;
  }

  get queueBytes(): number {
    return QI_LENGTH * (this.wide ? 32 : 16);
  }

  /** Queues `descs` and a wait, rings IQT and waits for the status store; false on timeout. */
  submit(descs: readonly InvDescriptor[]): boolean {
    const h = this.#h;
    const seq = ++this.#seq;
    const size = this.wide ? 32 : 16;
    for (const d of [...descs, invWait(this.statusPa, seq)]) {
      h.mem.write(this.queuePa + this.#tail, descriptorBytes(d, this.wide));
      this.#tail = (this.#tail + size) % this.queueBytes;
    }
    this.submitted += descs.length;
    h.machine.mmio.write(this.#mmio + REG_IQT, BigInt(this.#tail), 8);
    const status = new Uint8Array(4);
    const dv = new DataView(status.buffer);
    for (let waited = 0; waited <= WAIT_LIMIT_NS; waited += POLL_NS) {
      h.mem.read(this.statusPa, status);
      if (dv.getUint32(0, true) === seq) return true;
      h.machine.clock.advance(POLL_NS);
    }
    this.timeouts++;
    h.step(`queued invalidation: wait descriptor ${seq} never completed within ${WAIT_LIMIT_NS / 1e6} ms`);
    return false;
  }
}
