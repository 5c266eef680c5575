// The kernel command line: space-separated words, `key=value` or bare flags;
// for repeated keys the last one wins, as with most early_param handlers.

export class Cmdline {
  readonly raw: string;
  readonly #words: string[];

  constructor(raw: string) {
    this.raw = raw.trim();
    this.#words = this.raw.length === 0 ? [] : this.raw.split(/\s+/);
  }

  /** The value of the last `key=...`, `true` for a bare `key`, undefined when absent. */
  get(key: string): string | true | undefined {
    let v: string | true | undefined;
    for (const w of this.#words) {
      if (w === key) v = true;
      else if (w.startsWith(key + '=')) v = w.slice(key.length + 1);
    }
    return v;
  }

  /** The comma-separated options of the last `key=a,b,c` (`iommu=pt`, `intel_iommu=on,sm_on`); [] when absent or bare. */
  options(key: string): string[] {
    const v = this.get(key);
    return typeof v === 'string' ? v.split(',') : [];
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  /** A copy with `word` appended (or replacing an existing key=). */
  with(word: string): Cmdline {
    const key = word.split('=')[0]!;
    const kept = this.#words.filter((w) => w !== key && !w.startsWith(key + '='));
    return new Cmdline([...kept, word].join(' '));
  }

  without(key: string): Cmdline {
    return new Cmdline(this.#words.filter((w) => w !== key && !w.startsWith(key + '=')).join(' '));
  }

  toString(): string {
    return this.raw;
  }
}
