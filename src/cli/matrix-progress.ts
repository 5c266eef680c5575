// Progress of a sweep on stderr: a bar with cells done/total on a terminal,
// one plain line per finished cell otherwise (CI logs show a long sweep is
// alive); stdout stays clean for --json.

import type { MatrixCell } from '../scenario/matrix-result.js';

export interface MatrixProgress {
  cell(c: MatrixCell, done: number): void;
  done(): void;
}

export function matrixProgress(total: number, opts: { lines: boolean }, stream: NodeJS.WriteStream = process.stderr): MatrixProgress {
  if (!stream.isTTY) {
    if (!opts.lines) return { cell() {}, done() {} };
    const w = String(total).length;
    return {
      cell(c, done) {
        stream.write(`[${String(done).padStart(w)}/${total}] ${c.id}: ${c.verdict}\n`);
      },
      done() {},
    };
  }
  const width = 30;
  let shown = false;
  const draw = (done: number): void => {
    const fill = total > 0 ? Math.round((done / total) * width) : width;
    stream.write(`\rmatrix [${'#'.repeat(fill)}${' '.repeat(width - fill)}] ${done}/${total} cells`);
    shown = true;
  };
  draw(0);
  return {
    cell(_c, done) {
      draw(done);
    },
    done() {
      if (shown) stream.write('\r' + ' '.repeat(width + 30 + 2 * String(total).length) + '\r');
    },
  };
}
