// Code inside a guest, as the simulator needs it: bytes the guest wrote at a
// guest-physical address plus the behaviour they stand for. A vCPU that
// starts or resumes at that address runs the behaviour only if the bytes are
// still the ones placed, fetched through the key the guest wrote them with;
// anything else is garbage and the vCPU triple-faults. This is what makes
// code left in memory a new kernel overwrites (or a VMSA the host tampered
// with) fail the way it does on hardware.

import { createHash } from 'node:crypto';

/** How the code is fetched: through the VM's memory path, as the vCPU would. */
export interface CodeFetch {
  /** Reads guest-physical bytes; `encrypted` selects the guest key. Undefined when nothing backs the range. */
  fetch(gpa: number, length: number, encrypted: boolean): Uint8Array | undefined;
}

interface Placed<V> {
  readonly name: string;
  readonly length: number;
  readonly digest: string;
  readonly encrypted: boolean;
  readonly run: (vcpu: V) => void;
}

export class GuestCode<V> {
  readonly #entries = new Map<number, Placed<V>>();
  readonly #fetch: CodeFetch;

  constructor(fetch: CodeFetch) {
    this.#fetch = fetch;
  }

  /**
   * Records that the bytes at `gpa` (already written by the guest, with the
   * C-bit `encrypted`) behave as `run`.
   */
  place(gpa: number, name: string, bytes: Uint8Array, run: (vcpu: V) => void, encrypted = true): void {
    if (!(Number.isSafeInteger(gpa) && gpa >= 0)) throw new RangeError(`Cannot place guest code "${name}": GPA ${gpa} is not a non-negative integer`);
    this.#entries.set(gpa, { name, length: bytes.length, digest: digest(bytes), encrypted, run });
  }

  /** Name of what is placed at `gpa`, if anything. */
  nameAt(gpa: number): string | undefined {
    return this.#entries.get(gpa)?.name;
  }

  /** Checks the bytes at `gpa` and, when they are intact, returns the behaviour to run. */
  resolve(gpa: bigint): { ok: true; name: string; run: (vcpu: V) => void } | { ok: false; detail: string } {
    if (gpa > BigInt(Number.MAX_SAFE_INTEGER)) return { ok: false, detail: `fetch from GPA 0x${gpa.toString(16)}: no memory there` };
    const e = this.#entries.get(Number(gpa));
    if (e === undefined) return { ok: false, detail: `no code was placed at GPA 0x${gpa.toString(16)}` };
    const now = this.#fetch.fetch(Number(gpa), e.length, e.encrypted);
    if (now === undefined) return { ok: false, detail: `fetch of ${e.name} at GPA 0x${gpa.toString(16)} failed` };
    if (digest(now) !== e.digest) return { ok: false, detail: `the bytes of ${e.name} at GPA 0x${gpa.toString(16)} were overwritten, or fetch as ciphertext` };
    return { ok: true, name: e.name, run: e.run };
  }
}

function digest(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}
