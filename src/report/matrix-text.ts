// A matrix sweep on a terminal: the support table (the axes the file puts in
// rows down the side, the others across), each cell its verdict and the
// decisive step, then a summary line of counts per verdict.

import type { MatrixCell, MatrixResult } from '../scenario/matrix-result.js';
import type { Verdict } from '../scenario/schema.js';

export interface MatrixTextOptions {
  color: boolean;
  /** Terminal width to fit: reasons are cut with "…" so the table fits (default: reasons up to 120 characters). */
  width?: number;
}

function paint(on: boolean, code: string, s: string): string {
  return on ? `\u001b[${code}m${s}\u001b[0m` : s;
}

function verdictColour(v: Verdict): string {
  if (v === 'dump-complete') return '32';
  if (v === 'dump-partial') return '33';
  return '31';
}

function cut(s: string, w: number): string {
  if (s.length <= w) return s;
  // Short of room, the step matters more than which device or kernel logged it.
  const bare = s.replace(/^[\w.-]+: /, '');
  return bare.length <= w ? bare : bare.slice(0, Math.max(0, w - 1)) + '…';
}

/** All combinations of the named axes' labels, in the axes' own label order. */
function combos(m: MatrixResult, names: string[]): Record<string, string>[] {
  let acc: Record<string, string>[] = [{}];
  for (const n of names) {
    const labels = m.axes.find((a) => a.name === n)?.labels ?? [];
    acc = acc.flatMap((c) => labels.map((l) => ({ ...c, [n]: l })));
  }
  return acc;
}

export function renderMatrixText(m: MatrixResult, opts: MatrixTextOptions): string {
  const c = opts.color;
  const out: string[] = [];
  const axisNames = m.axes.map((a) => a.name);
  const key = (coords: Record<string, string>): string => axisNames.map((n) => coords[n]).join('\u0000');
  const cells = new Map<string, MatrixCell>(m.cells.map((x) => [key(x.coords), x]));

  const shardNote = m.shard ? `, shard ${m.shard.index}/${m.shard.count}: ${m.cells.length} of them here` : '';
  out.push(`${paint(c, '1', 'Matrix')} ${m.name}: ${m.total} cells (${m.axes.map((a) => `${a.name} ${a.labels.length}`).join(' × ')})${shardNote}`);
  out.push('');

  const rowCombos = combos(m, m.rows);
  const colCombos = combos(m, m.columns);
  const rowW = m.rows.map((n) => Math.max(n.length, ...rowCombos.map((r) => r[n]!.length)));
  const headW = rowW.reduce((s, w) => s + w, 0) + Math.max(0, rowW.length - 1) * 2;
  const sideW = Math.max(headW, ...m.columns.map((n) => n.length + 1));
  // What a reason may take: an equal share of the width left beside the row labels.
  const share = opts.width === undefined ? 120 : Math.floor((opts.width - sideW) / Math.max(1, colCombos.length)) - 3;
  const rw = Math.max(24, Math.min(120, share));
  const text = (x: MatrixCell | undefined): [string, string] => {
    if (x === undefined) return ['·', ''];
    return [x.verdict + (x.expectationMet === false ? ' ✗' : ''), cut(x.reason, rw)];
  };

  // Column widths: one per column combination.
  const colW = colCombos.map((col) => {
    let w = Math.max(...m.columns.map((n) => col[n]!.length));
    for (const row of rowCombos) {
      const [a, b] = text(cells.get(key({ ...row, ...col })));
      w = Math.max(w, a.length, b.length);
    }
    return w;
  });
  const sep = ' │ ';
  const rule = '─'.repeat(sideW) + colW.map((w) => '─┼─' + '─'.repeat(w)).join('');

  m.columns.forEach((n, k) => {
    const side = (n + ':').padStart(sideW);
    out.push(paint(c, '2', side) + colCombos.map((col, j) => sep + paint(c, '1', col[n]!.padEnd(colW[j]!))).join('').trimEnd());
    if (k === m.columns.length - 1) {
      const names = m.rows.map((r, i) => r.padEnd(rowW[i]!)).join('  ').padEnd(sideW);
      out.push(paint(c, '2', names) + colW.map((w) => sep + ' '.repeat(w)).join('').trimEnd());
    }
  });
  if (m.columns.length === 0) out.push(paint(c, '2', m.rows.map((r, i) => r.padEnd(rowW[i]!)).join('  ')));
  out.push(rule);

  for (const row of rowCombos) {
    const side = m.rows.map((n, i) => row[n]!.padEnd(rowW[i]!)).join('  ').padEnd(sideW);
    const lines: [string[], string[]] = [[], []];
    colCombos.forEach((col, j) => {
      const x = cells.get(key({ ...row, ...col }));
      const [a, b] = text(x);
      lines[0].push(sep + (x === undefined ? paint(c, '2', a.padEnd(colW[j]!)) : paint(c, verdictColour(x.verdict), a.padEnd(colW[j]!))));
      lines[1].push(sep + paint(c, '2', b.padEnd(colW[j]!)));
    });
    out.push((paint(c, '1', side) + lines[0].join('')).trimEnd());
    out.push((' '.repeat(sideW) + lines[1].join('')).trimEnd());
  }
  out.push('');

  const unmet = m.cells.filter((x) => x.expectationMet === false);
  if (unmet.length > 0) {
    out.push(paint(c, '1;31', 'Expectations not met:'));
    for (const x of unmet) {
      for (const d of x.expectationDifferences.length > 0 ? x.expectationDifferences : ['(no detail)']) out.push(`  ${x.id}: ${d}`);
    }
    out.push('');
  }
  out.push(matrixSummaryLine(m, c));
  return out.join('\n') + '\n';
}

/** "18 cells: 12 dump-complete, 6 crash-kernel-panic; expectations met in 18 of 18" */
export function matrixSummaryLine(m: MatrixResult, color = false): string {
  const counts = Object.entries(m.summary).map(([v, n]) => paint(color, verdictColour(v as Verdict), `${n} ${v}`));
  const withExpect = m.cells.filter((x) => x.expectationMet !== null);
  const met = withExpect.filter((x) => x.expectationMet === true).length;
  const exp = withExpect.length === 0 ? 'no expectations'
    : `expectations met in ${met} of ${withExpect.length}`;
  return `${m.cells.length} cells: ${counts.join(', ') || 'none'}; ${exp}`;
}
