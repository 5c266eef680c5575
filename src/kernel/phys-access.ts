// Physical memory as one kernel sees it: through its own encryption view.
// Under SME a kernel's data lives encrypted (its direct map carries the
// C-bit) except the few ranges it maps decrypted; code that writes kernel
// structures goes through this so each access uses the key the kernel's
// mapping of that address would.

import type { MemoryController, Requester, WriteResult } from '../platform/memory-controller.js';

export interface PhysAccess {
  read(pa: number, dst: Uint8Array): void;
  write(pa: number, src: Uint8Array): void;
  /** Zeroes as the kernel would (memset through its mapping). */
  zero(pa: number, length: number): void;
  /** The key slot the kernel's mapping of `pa` uses (0: unencrypted). */
  keyFor(pa: number): number;
}

/** A little-endian 64-bit store (a pointer, a list link, a counter) through `mem`. */
export function writeU64(mem: PhysAccess, pa: number, v: bigint): void {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  mem.write(pa, b);
}

/**
 * A kernel store the hardware refused (the RMP check): the CPU raised #PF
 * and nothing landed. Kernel code has no fix-up for it, so it unwinds to
 * whoever turns it into an oops.
 */
export class KernelWriteFault extends Error {
  readonly pa: number;
  readonly detail: string;
  constructor(pa: number, detail: string) {
    super(`kernel write to physical 0x${pa.toString(16)} refused: ${detail}`);
    this.name = 'KernelWriteFault';
    this.pa = pa;
    this.detail = detail;
  }
}

export function physAccess(mc: MemoryController, who: Requester, keyFor: (pa: number) => number): PhysAccess {
  const landed = (r: WriteResult): void => {
    if (!r.ok) throw new KernelWriteFault(r.pa, r.detail);
  };
  return {
    read: (pa, dst) => mc.read(pa, dst, { keyId: keyFor(pa) }),
    write: (pa, src) => landed(mc.write(pa, src, who, { keyId: keyFor(pa) })),
    zero: (pa, length) => landed(mc.zero(pa, length, who, { keyId: keyFor(pa) })),
    keyFor,
  };
}
