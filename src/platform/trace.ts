// The hardware trace: what devices and CPUs did, in virtual time. Phenomenon
// tests assert causal chains against it, so entries carry structured data.

export interface TraceEvent {
  /** Virtual time in nanoseconds. */
  t: number;
  /** Who acted: "cpu0", "mc", "nic0", "kernel", "crash-kernel", "purgatory". */
  source: string;
  /** What happened, a short stable identifier ("nmi", "dma-write", "jump"). */
  kind: string;
  /** Human-readable detail. */
  detail: string;
  data?: Record<string, number | string | boolean>;
}

export class Trace {
  readonly events: TraceEvent[] = [];
  #clock: { readonly now: number };
  /** Caps the stored entries so a long DMA run cannot grow memory without bound. */
  readonly limit: number;
  dropped = 0;
  #listeners: ((ev: TraceEvent) => void)[] = [];

  /** Kinds stored even past the limit: the few milestones a run's story is told from. */
  readonly #keep: ReadonlySet<string>;

  constructor(clock: { readonly now: number }, limit = 200_000, keep: Iterable<string> = ['step']) {
    this.#clock = clock;
    this.limit = limit;
    this.#keep = new Set(keep);
  }

  record(source: string, kind: string, detail: string, data?: TraceEvent['data']): TraceEvent {
    const ev: TraceEvent = data === undefined
      ? { t: this.#clock.now, source, kind, detail }
      : { t: this.#clock.now, source, kind, detail, data };
    if (this.events.length < this.limit || this.#keep.has(kind)) this.events.push(ev);
    else this.dropped++;
    for (const l of this.#listeners) l(ev);
    return ev;
  }

  /** Calls `fn` for every event from now on (tests and reports watching a run). */
  subscribe(fn: (ev: TraceEvent) => void): () => void {
    this.#listeners.push(fn);
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== fn);
    };
  }

  /** Events of one kind (and optionally one source), in time order. */
  find(kind: string, source?: string): TraceEvent[] {
    return this.events.filter((e) => e.kind === kind && (source === undefined || e.source === source));
  }
}
