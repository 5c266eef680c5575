// The context cache: what a walk of root and context tables found for a
// requester, keyed by source id (bus << 8 | devfn). In scalable mode a PASID
// cache beside it holds the PASID-table entry used for requests without
// PASID. Neither notices changes to the tables in memory: only a
// context-cache (or PASID-cache) invalidation, or SRTP on a part with
// ESRTPS, drops entries. Not-present entries are never cached (CAP.CM is
// clear on the modelled parts).

export type CachedContext =
  | {
    readonly mode: 'legacy';
    readonly did: number;
    readonly fpd: boolean;
    readonly translationType: number;
    readonly slptptr: number;
    readonly addressWidth: number;
  }
  | {
    readonly mode: 'scalable';
    readonly fpd: boolean;
    readonly pasidDirectory: number;
    readonly pdts: number;
    readonly ridPasid: number;
  };

export interface CachedPasidEntry {
  readonly sid: number;
  readonly pasid: number;
  readonly did: number;
  /** FPD of the directory or the table entry. */
  readonly fpd: boolean;
  readonly pgtt: number;
  readonly slptptr: number;
  readonly addressWidth: number;
}

/** Function-number bits a device-selective invalidation ignores, by FM (ref §1.5 CCMD.FM). */
const FM_IGNORE = [0, 0b100, 0b110, 0b111] as const;

export class ContextCache {
  readonly #byId = new Map<number, CachedContext>();

  get size(): number {
    return this.#byId.size;
  }

  get(sid: number): CachedContext | undefined {
    return this.#byId.get(sid);
  }

  fill(sid: number, c: CachedContext): void {
    this.#byId.set(sid, c);
  }

  clear(): number {
    const n = this.#byId.size;
    this.#byId.clear();
    return n;
  }

  /**
   * Domain-selective: legacy entries of `did`. Scalable-mode context entries
   * carry no domain id (it lives in the PASID entry), so they all go.
   */
  invalidateDomain(did: number): number {
    return this.#dropIf((c) => c.mode === 'scalable' || c.did === did);
  }

  /** Device-selective: entries whose source id matches `sid` outside the FM-masked function bits. */
  invalidateDevice(sid: number, fm: number): number {
    const ignore = FM_IGNORE[fm & 3]!;
    let n = 0;
    for (const k of [...this.#byId.keys()]) {
      if (((k ^ sid) & 0xffff & ~ignore) === 0) {
        this.#byId.delete(k);
        n++;
      }
    }
    return n;
  }

  #dropIf(pred: (c: CachedContext) => boolean): number {
    let n = 0;
    for (const [k, c] of [...this.#byId]) {
      if (pred(c)) {
        this.#byId.delete(k);
        n++;
      }
    }
    return n;
  }
}

export const DEFAULT_PASID_CACHE_CAPACITY = 4096;

export class PasidCache {
  readonly capacity: number;
  readonly #entries = new Map<string, CachedPasidEntry>();

  constructor(capacity = DEFAULT_PASID_CACHE_CAPACITY) {
    this.capacity = capacity;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(sid: number, pasid: number): CachedPasidEntry | undefined {
    return this.#entries.get(`${sid}:${pasid}`);
  }

  fill(e: CachedPasidEntry): void {
    const k = `${e.sid}:${e.pasid}`;
    this.#entries.delete(k);
    if (this.#entries.size >= this.capacity) {
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
    this.#entries.set(k, e);
  }

  /** Drops entries of `did` (and of `pasid` when given); undefined did: all. */
  invalidate(did: number | undefined, pasid?: number): number {
    let n = 0;
    for (const [k, e] of [...this.#entries]) {
      if ((did === undefined || e.did === did) && (pasid === undefined || e.pasid === pasid)) {
        this.#entries.delete(k);
        n++;
      }
    }
    return n;
  }
}
