// The kernel log: lines stamped with virtual time in printk's "[%5lu.%06lu] " form.

export interface LogLine {
  /** Virtual time in ns. */
  t: number;
  text: string;
}

export function formatTimestamp(tNs: number): string {
  const us = Math.floor(tNs / 1000);
  const sec = Math.floor(us / 1_000_000);
  const frac = us % 1_000_000;
  return `[${String(sec).padStart(5, ' ')}.${String(frac).padStart(6, '0')}] `;
}

export class KernelLog {
  readonly lines: LogLine[] = [];
  readonly #clock: { readonly now: number };

  constructor(clock: { readonly now: number }) {
    this.#clock = clock;
  }

  /** Appends a message; multi-line messages become several lines at the same time. */
  printk(text: string): void {
    for (const l of text.split('\n')) this.lines.push({ t: this.#clock.now, text: l });
  }

  /** The log as dmesg prints it. */
  formatted(): string[] {
    return this.lines.map((l) => formatTimestamp(l.t) + l.text);
  }

  includes(fragment: string): boolean {
    return this.lines.some((l) => l.text.includes(fragment));
  }
}
