// The command processor: fetches 16-byte commands from the ring at
// CmdBufBase, from head up to tail, one per COMMAND_DELAY_NS of virtual time
// on the machine clock (our stand-in for the hardware's latency), advancing
// head as each completes. It runs while IommuEn and CmdBufEn are both set
// (as QEMU's model has it; the reference does not say) and stops on a
// command it cannot execute until software sets CmdBufEn again.

import type { EventHandle, VirtualClock } from '../clock.js';
import { COMMAND_BYTES, decodeCommand, type AmdIommuCommand } from './command-buffer.js';
import { baseAddress, ringEntries, RING_PTR_MASK } from './registers.js';
import type { IommuMemory } from '../iommu-memory.js';

/** Virtual time the IOMMU takes per command. */
export const COMMAND_DELAY_NS = 1_000;

export type CommandOutcome = 'done' | 'illegal';

export interface CommandHost {
  readonly memory: IommuMemory;
  /** IommuEn and CmdBufEn are both set. */
  enabled(): boolean;
  /** Carries out one command (undefined: unknown opcode) found at `addr`; anything but 'done' stops the processor. */
  execute(command: AmdIommuCommand | undefined, opcode: number, addr: number): CommandOutcome;
  /** The ring could not be read at `addr`. */
  fetchFailed(addr: number): void;
}

export class CommandProcessor {
  base = 0n;
  head = 0n;
  tail = 0n;
  /** Stopped by a bad command; cleared when CmdBufEn is set again. */
  stopped = false;
  commandsExecuted = 0;
  readonly #clock: VirtualClock;
  readonly #delayNs: number;
  readonly #host: CommandHost;
  readonly #name: string;
  readonly #buf = new Uint8Array(COMMAND_BYTES);
  #pending: EventHandle | undefined;

  constructor(clock: VirtualClock, host: CommandHost, name: string, delayNs = COMMAND_DELAY_NS) {
    this.#clock = clock;
    this.#host = host;
    this.#name = name;
    this.#delayNs = delayNs;
  }

  get ringBytes(): number {
    return ringEntries(this.base) * COMMAND_BYTES;
  }

  /** CmdBufRun as Status reports it. */
  get running(): boolean {
    return this.#host.enabled() && !this.stopped;
  }

  /** Commands are waiting between head and tail. */
  get pending(): boolean {
    return Number(this.head) % this.ringBytes !== Number(this.tail) % this.ringBytes;
  }

  writeHead(v: bigint): void {
    this.head = v & RING_PTR_MASK;
  }

  writeTail(v: bigint): void {
    this.tail = v & RING_PTR_MASK;
    this.kick();
  }

  /** CmdBufEn went from clear to set: a stopped processor may run again. */
  restart(): void {
    this.stopped = false;
    this.kick();
  }

  /** Schedules the next fetch if there is work and the processor may run. */
  kick(): void {
    if (this.#pending !== undefined || !this.running || !this.pending) return;
    this.#pending = this.#clock.schedule(this.#delayNs, `${this.#name}-command`, () => {
      this.#pending = undefined;
      this.#step();
    });
  }

  /** Drops a scheduled fetch (the processor was disabled). */
  halt(): void {
    this.#pending?.cancel();
    this.#pending = undefined;
  }

  #step(): void {
    if (!this.running || !this.pending) return;
    const size = this.ringBytes;
    const head = Number(this.head) % size;
    const addr = baseAddress(this.base) + head;
    if (!this.#host.memory.read(addr, this.#buf)) {
      this.stopped = true;
      this.#host.fetchFailed(addr);
      return;
    }
    const { opcode, command } = decodeCommand(this.#buf);
    const outcome = this.#host.execute(command, opcode, addr);
    if (outcome !== 'done') {
      // Head stays on the offending command, as software expects when it inspects the ring.
      this.stopped = true;
      return;
    }
    this.commandsExecuted++;
    this.head = BigInt((head + COMMAND_BYTES) % size);
    this.kick();
  }
}
