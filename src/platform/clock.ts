// Virtual time: one clock in nanoseconds and one event queue. Nothing in the
// simulator reads wall-clock time, so a run with the same inputs replays exactly.

export type EventHandler = () => void;

interface QueuedEvent {
  at: number;
  seq: number; // ties broken by scheduling order, so replay is deterministic
  name: string;
  handler: EventHandler;
  cancelled: boolean;
}

/** A handle to cancel a scheduled event. */
export interface EventHandle {
  cancel(): void;
}

export const NS_PER_US = 1_000;
export const NS_PER_MS = 1_000_000;
export const NS_PER_S = 1_000_000_000;

export class VirtualClock {
  #now = 0;
  #seq = 0;
  #heap: QueuedEvent[] = [];
  #firing = false;
  eventsFired = 0;

  /** Current virtual time in nanoseconds. */
  get now(): number {
    return this.#now;
  }

  /** Schedules `handler` to run `delayNs` from now. */
  schedule(delayNs: number, name: string, handler: EventHandler): EventHandle {
    if (!(delayNs >= 0)) throw new RangeError(`Cannot schedule event "${name}": delay ${delayNs} ns is negative`);
    return this.scheduleAt(this.#now + delayNs, name, handler);
  }

  scheduleAt(at: number, name: string, handler: EventHandler): EventHandle {
    const ev: QueuedEvent = { at: Math.max(at, this.#now), seq: this.#seq++, name, handler, cancelled: false };
    this.#push(ev);
    return { cancel: () => { ev.cancelled = true; } };
  }

  /** Advances time by `ns`, firing every event that falls due on the way. */
  advance(ns: number): void {
    this.advanceTo(this.#now + ns);
  }

  /**
   * Advances time to `t`, firing due events in time order. Events scheduled by
   * handlers for a time <= t fire in the same call. Re-entrant calls (a
   * handler that waits) only move time forward; the outer loop keeps order.
   */
  advanceTo(t: number): void {
    if (t < this.#now) return;
    if (this.#firing) {
      // A handler waiting inside an event: time moves, nested events fire later in order.
      this.#now = t;
      return;
    }
    this.#firing = true;
    try {
      for (;;) {
        const top = this.#heap[0];
        if (top === undefined || top.at > t) break;
        this.#pop();
        if (top.cancelled) continue;
        this.#now = Math.max(this.#now, top.at);
        this.eventsFired++;
        top.handler();
      }
      this.#now = Math.max(this.#now, t);
    } finally {
      this.#firing = false;
    }
  }

  /** Number of events still queued (cancelled ones included until they surface). */
  get pending(): number {
    return this.#heap.length;
  }

  #less(a: QueuedEvent, b: QueuedEvent): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  #push(ev: QueuedEvent): void {
    const h = this.#heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const hp = h[p]!;
      if (!this.#less(ev, hp)) break;
      h[i] = hp;
      i = p;
    }
    h[i] = ev;
  }

  #pop(): void {
    const h = this.#heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && this.#less(h[r]!, h[l]!) ? r : l;
      if (!this.#less(h[c]!, last)) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
  }
}
