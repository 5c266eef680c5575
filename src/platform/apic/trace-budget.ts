// A per-key allowance of trace entries for periodic hardware work. A timer
// ticking at 1 kHz through a long virtual run would otherwise fill the trace
// and push out what happens after it; the allowance renews whenever software
// reprograms the source, so every new configuration is traced from its start.

export type BudgetVerdict = 'record' | 'last' | 'skip';

export const DEFAULT_TRACE_BUDGET = 4096;

export class TraceBudget {
  readonly limit: number;
  readonly #used = new Map<number, number>();

  constructor(limit = DEFAULT_TRACE_BUDGET) {
    if (!(Number.isInteger(limit) && limit >= 1)) throw new RangeError(`Cannot build trace budget: limit ${limit} is not a positive integer`);
    this.limit = limit;
  }

  /** One more event for `key`: record it; record it and say the rest go untraced ('last'); or skip it. */
  take(key: number): BudgetVerdict {
    const used = (this.#used.get(key) ?? 0) + 1;
    if (used > this.limit) return 'skip';
    this.#used.set(key, used);
    return used === this.limit ? 'last' : 'record';
  }

  reset(key: number): void {
    this.#used.delete(key);
  }
}
