// A progress bar on stderr when it is a terminal; nothing when piped, so
// logs and CI output stay clean.

export interface Progress {
  update(done: number, total: number): void;
  done(): void;
}

export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return { update() {}, done() {} };
  let last = -1;
  let shown = false;
  return {
    update(done, total) {
      const pct = total > 0 ? Math.floor((done / total) * 100) : 100;
      if (pct === last) return;
      last = pct;
      shown = true;
      const width = 30;
      const fill = Math.round((pct / 100) * width);
      stream.write(`\r${label} [${'#'.repeat(fill)}${' '.repeat(width - fill)}] ${String(pct).padStart(3)}%`);
    },
    done() {
      if (shown) stream.write('\r' + ' '.repeat(label.length + 40) + '\r');
    },
  };
}
