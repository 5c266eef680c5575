// Physical memory as one kernel sees it: through its own encryption view.
// Under SME a kernel's data lives encrypted (its direct map carries the
// C-bit) except the few ranges it maps decrypted; code that writes kernel
// structures goes through this so each access uses the key the kernel's
// mapping of that address would.

import type { MemoryController, Requester } from '../platform/memory-controller.js';

export interface PhysAccess {
  read(pa: number, dst: Uint8Array): void;
  write(pa: number, src: Uint8Array): void;
  /** Zeroes as the kernel would (memset through its mapping). */
  zero(pa: number, length: number): void;
  /** The key slot the kernel's mapping of `pa` uses (0: unencrypted). */
  keyFor(pa: number): number;
}

export function physAccess(mc: MemoryController, who: Requester, keyFor: (pa: number) => number): PhysAccess {
  return {
    read: (pa, dst) => mc.read(pa, dst, { keyId: keyFor(pa) }),
    write: (pa, src) => mc.write(pa, src, who, { keyId: keyFor(pa) }),
    zero: (pa, length) => mc.zero(pa, length, who, { keyId: keyFor(pa) }),
    keyFor,
  };
}
