// Code a kernel placed in physical memory, as far as the simulator needs it:
// an entry point is the bytes written at an address plus the behaviour they
// stand for. Jumping there runs the behaviour only if the bytes are still the
// ones placed; anything else is garbage, and the CPU triple-faults.

import { createHash } from 'node:crypto';
import type { Cpu } from './cpu/cpu.js';
import type { MemoryController } from './memory-controller.js';
import type { Trace } from './trace.js';

interface Entry {
  name: string;
  length: number;
  digest: string;
  keyId: number;
  run: (cpu: Cpu) => void;
}

export class EntryPoints {
  #entries = new Map<number, Entry>();
  readonly #mc: MemoryController;
  readonly #trace: Trace;

  constructor(mc: MemoryController, trace: Trace) {
    this.#mc = mc;
    this.#trace = trace;
  }

  /**
   * Records that the code at [pa, pa + bytes.length) (already written by the
   * caller, through key slot `keyId`) behaves as `run`.
   */
  place(pa: number, name: string, bytes: Uint8Array, run: (cpu: Cpu) => void, keyId = 0): void {
    this.#entries.set(pa, { name, length: bytes.length, digest: digest(bytes), keyId, run });
  }

  /** The CPU jumps to `pa`. */
  execute(cpu: Cpu, pa: number): void {
    const e = this.#entries.get(pa);
    if (e === undefined) {
      this.#fault(cpu, pa, 'no code was placed there');
      return;
    }
    const now = new Uint8Array(e.length);
    this.#mc.read(pa, now, { keyId: e.keyId });
    if (digest(now) !== e.digest) {
      this.#fault(cpu, pa, `the bytes of ${e.name} were overwritten, or were written through an encryption key and fetch as ciphertext`);
      return;
    }
    this.#trace.record(`cpu${cpu.id}`, 'jump', `CPU ${cpu.id} jumps to ${e.name} at 0x${pa.toString(16)}`, { pa });
    e.run(cpu);
  }

  #fault(cpu: Cpu, pa: number, why: string): void {
    cpu.state = 'shutdown';
    this.#trace.record(`cpu${cpu.id}`, 'triple-fault', `CPU ${cpu.id} executes garbage at 0x${pa.toString(16)} (${why}): triple fault`, { pa });
  }
}

function digest(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}
