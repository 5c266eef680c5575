// The AMD IOMMU driver's command queue (iommu.c): copy a command into the
// ring at the driver's tail, publish the tail, and for COMPLETION_WAIT poll
// the semaphore in memory — never a register — LOOP_TIMEOUT times with
// udelay(1) between reads. When the hardware stores elsewhere, or fetches
// from another ring, the poll runs out: "Completion-Wait loop timed out".

import type { Machine } from '../../../platform/machine.js';
import { encodeCommand, COMMAND_BYTES, type AmdIommuCommand } from '../../../platform/amd-iommu/command-buffer.js';
import { REG_CMD_BUF_HEAD, REG_CMD_BUF_TAIL } from '../../../platform/amd-iommu/registers.js';
import type { KernelLog } from '../../dmesg.js';
import type { PhysAccess } from '../../phys-access.js';

/** LOOP_TIMEOUT polls of the semaphore, udelay(1) apart (amd_iommu_types.h). */
export const LOOP_TIMEOUT = 100_000;
/** The poll is modelled 10 µs at a time: the same 100 ms, a tenth of the reads. */
const POLL_STEP_US = 10;

export interface CommandRing {
  /** Physical address of the ring this kernel writes (its own, or the previous kernel's on the reuse path). */
  pa: number;
  bytes: number;
  /** The completion-wait semaphore (8 bytes in the CWB page) the driver polls. */
  semPa: number;
  /** The address COMPLETION_WAIT stores to: semPa with the C-bit when memory is encrypted. */
  semBusAddr: number;
}

export class CommandQueue {
  readonly #m: Machine;
  readonly #mem: PhysAccess;
  readonly #log: KernelLog;
  readonly #mmio: number;
  ring: CommandRing;
  #tail = 0;
  #semVal = 0n;
  timeouts = 0;
  commands = 0;

  constructor(m: Machine, mem: PhysAccess, log: KernelLog, mmio: number, ring: CommandRing) {
    this.#m = m;
    this.#mem = mem;
    this.#log = log;
    this.#mmio = mmio;
    this.ring = ring;
  }

  /** iommu_enable_command_buffer(): head and tail back to 0 (with the buffer disabled). */
  resetPointers(): void {
    this.#tail = 0;
    this.#m.mmio.write(this.#mmio + REG_CMD_BUF_HEAD, 0n);
    this.#m.mmio.write(this.#mmio + REG_CMD_BUF_TAIL, 0n);
  }

  queue(c: AmdIommuCommand): void {
    const r = this.ring;
    // Room check against the hardware's head, as iommu_queue_command_sync does.
    for (let i = 0; i < LOOP_TIMEOUT; i++) {
      const head = Number(this.#m.mmio.read(this.#mmio + REG_CMD_BUF_HEAD) & 0x7_fff0n);
      const free = (head - this.#tail - COMMAND_BYTES + r.bytes) % r.bytes;
      if (free > 0x20) break;
      if (i === LOOP_TIMEOUT - 1) {
        this.#log.printk('AMD-Vi: Command buffer timeout');
        return;
      }
      this.#m.clock.advance(1_000);
    }
    this.#mem.write(r.pa + this.#tail, encodeCommand(c));
    this.#tail = (this.#tail + COMMAND_BYTES) % r.bytes;
    this.#m.mmio.write(this.#mmio + REG_CMD_BUF_TAIL, BigInt(this.#tail));
    this.commands++;
  }

  /** COMPLETION_WAIT with a store of the next semaphore value, then wait_on_sem. False: timed out. */
  completionWait(): boolean {
    const data = ++this.#semVal;
    this.queue({ op: 'completion-wait', store: true, interrupt: false, flush: false, address: this.ring.semBusAddr, data });
    const word = new Uint8Array(8);
    const dv = new DataView(word.buffer);
    for (let i = 0; i < LOOP_TIMEOUT; i += POLL_STEP_US) {
      this.#mem.read(this.ring.semPa, word);
      if (dv.getBigUint64(0, true) === data) return true;
      this.#m.clock.advance(POLL_STEP_US * 1_000);
    }
    this.timeouts++;
    this.#log.printk('AMD-Vi: Completion-Wait loop timed out');
    return false;
  }

  /** A command and the completion wait that follows it (iommu_queue_command + iommu_completion_wait). */
  sync(c: AmdIommuCommand): boolean {
    this.queue(c);
    return this.completionWait();
  }
}
