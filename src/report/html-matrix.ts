// A matrix sweep as a self-contained HTML heat map: rows are combinations of
// the row axes, columns combinations of the column axes, each cell coloured
// by its verdict and showing why. Cells link to their run reports when the
// caller can name them, and otherwise to a details section in the page.

import type { MatrixCell, MatrixResult } from '../scenario/matrix-result.js';
import { VERDICT_ORDER, esc, fmtInt, htmlDocument, verdictBadge, verdictStyle } from './html-common.js';

export interface MatrixHtmlOptions {
  /** The address of a cell's own run report; undefined for none. */
  runLink?: (cell: MatrixCell) => string | undefined;
}

type Coords = Record<string, string>;

/** Every combination of the named axes' labels, the first axis varying slowest. */
function combinations(m: MatrixResult, axes: readonly string[]): Coords[] {
  let out: Coords[] = [{}];
  for (const name of axes) {
    const labels = axisLabels(m, name);
    const next: Coords[] = [];
    for (const c of out) for (const l of labels) next.push({ ...c, [name]: l });
    out = next;
  }
  return out;
}

/** An axis's labels in file order; for an axis the result does not describe, the labels its cells use. */
function axisLabels(m: MatrixResult, name: string): string[] {
  const axis = m.axes.find((a) => a.name === name);
  if (axis) return axis.labels;
  const seen: string[] = [];
  for (const c of m.cells) {
    const l = c.coords[name];
    if (l !== undefined && !seen.includes(l)) seen.push(l);
  }
  return seen;
}

function keyOf(axes: readonly string[], coords: Coords): string {
  return JSON.stringify(axes.map((a) => coords[a] ?? ''));
}

/** A link target that cannot run script. */
function safeHref(href: string): string | undefined {
  return /^\s*(javascript|vbscript|data):/i.test(href) ? undefined : href;
}

const REASON_MAX = 140;

function shortReason(reason: string): string {
  return reason.length > REASON_MAX ? reason.slice(0, REASON_MAX - 1).trimEnd() + '…' : reason;
}

const MATRIX_CSS = `
main { max-width: none; }
.heatmap-wrap { overflow-x: auto; }
table.heatmap { border-collapse: separate; border-spacing: 4px; font-size: 13px; }
table.heatmap th { font-weight: 600; padding: 4px 8px; text-align: center; white-space: nowrap; }
table.heatmap thead th.axis-name, table.heatmap th.row-axis-name { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; text-align: right; }
table.heatmap th.row-axis-name { text-align: left; }
table.heatmap thead th.col-label { background: #eef1f6; border-radius: 4px; font-family: var(--mono); font-size: 12.5px; }
table.heatmap tbody th { background: #eef1f6; border-radius: 4px; text-align: left; font-family: var(--mono); font-size: 12.5px; }
table.heatmap td.cell { width: 220px; min-width: 160px; max-width: 260px; height: 96px; padding: 0; border-radius: 6px; vertical-align: top; }
table.heatmap td.cell a { display: block; height: 100%; padding: 7px 9px; color: inherit; text-decoration: none; border-radius: 6px; }
table.heatmap td.cell a:hover, table.heatmap td.cell a:focus { outline: 3px solid #1d2330; outline-offset: 1px; }
table.heatmap td.cell .v { font-weight: 700; display: block; }
table.heatmap td.cell .why { display: -webkit-box; -webkit-line-clamp: 4; line-clamp: 4; -webkit-box-orient: vertical; overflow: hidden; font-size: 12px; line-height: 1.35; margin-top: 2px; opacity: .95; overflow-wrap: anywhere; }
table.heatmap td.cell .exp { font-size: 11.5px; font-weight: 600; margin-top: 3px; display: block; }
table.heatmap td.cell.unexpected { box-shadow: inset 0 0 0 3px #1d2330; }
table.heatmap td.empty-cell { background: repeating-linear-gradient(45deg, #f1f3f7, #f1f3f7 6px, #e6e9ef 6px, #e6e9ef 12px); color: var(--muted); text-align: center; vertical-align: middle; border-radius: 6px; font-size: 12px; }
.summary-bar { display: flex; height: 18px; border-radius: 4px; overflow: hidden; margin: 10px 0 4px; max-width: 900px; }
.summary-bar span { display: block; height: 100%; }
.counts { display: flex; flex-wrap: wrap; gap: 8px 18px; align-items: center; margin-top: 8px; }
.counts .n { font-weight: 700; font-variant-numeric: tabular-nums; margin-left: 6px; }
section.cell-detail { border-top: 1px solid var(--line); padding: 10px 0 6px; }
section.cell-detail:target { background: #fffbe8; }
section.cell-detail h3 { margin: 4px 0 6px; font-family: var(--mono); font-size: 14px; }
section.cell-detail ol { margin: 6px 0; padding-left: 2.2em; font-family: var(--mono); font-size: 12.5px; }
section.cell-detail ol li { overflow-wrap: anywhere; }
`;

function renderCell(c: MatrixCell, href: string): string {
  const st = verdictStyle(c.verdict);
  const exp = c.expectationMet === false ? '✗ not as expected' : c.expectationMet === true ? '✓ as expected' : '';
  const title = [c.id, `${c.verdict}: ${c.reason}`, ...c.expectationDifferences.map((d) => `expected: ${d}`)].join('\n');
  return (
    `<td class="cell${c.expectationMet === false ? ' unexpected' : ''}" data-verdict="${esc(c.verdict)}" data-cell="${c.index}" style="background:${st.bg};color:${st.fg}">` +
    `<a href="${esc(href)}" title="${esc(title)}"><span class="v">${esc(c.verdict)}</span><span class="why">${esc(shortReason(c.reason))}</span>` +
    (exp ? `<span class="exp">${exp}</span>` : '') +
    '</a></td>'
  );
}

function renderHeatmap(m: MatrixResult, link: (c: MatrixCell) => string): string {
  const rowAxes = m.rows;
  const colAxes = m.columns;
  const rowCombos = combinations(m, rowAxes);
  const colCombos = combinations(m, colAxes);
  const byKey = new Map<string, MatrixCell[]>();
  for (const c of m.cells) {
    const k = keyOf(rowAxes, c.coords) + '|' + keyOf(colAxes, c.coords);
    const list = byKey.get(k);
    if (list) list.push(c);
    else byKey.set(k, [c]);
  }
  const cornerSpan = Math.max(1, rowAxes.length);
  const out: string[] = ['<div class="heatmap-wrap">', `<table class="heatmap" id="heatmap" aria-label="${esc(`Verdicts of ${m.name}`)}">`, '<thead>'];

  // One header row per column axis; equal labels under one parent merge.
  colAxes.forEach((axis, level) => {
    const cells: string[] = [`<th class="axis-name" colspan="${cornerSpan}" scope="row">${esc(axis)} →</th>`];
    for (let i = 0; i < colCombos.length; ) {
      let j = i + 1;
      const same = (a: Coords, b: Coords): boolean => colAxes.slice(0, level + 1).every((ax) => a[ax] === b[ax]);
      while (j < colCombos.length && same(colCombos[i]!, colCombos[j]!)) j++;
      cells.push(`<th class="col-label" scope="col" colspan="${j - i}">${esc(colCombos[i]![axis] ?? '')}</th>`);
      i = j;
    }
    out.push(`<tr>${cells.join('')}</tr>`);
  });
  out.push(
    '<tr>' +
      (rowAxes.length > 0 ? rowAxes.map((a) => `<th class="row-axis-name" scope="col">${esc(a)} ↓</th>`).join('') : '<th></th>') +
      `<th colspan="${colCombos.length}"></th></tr>`,
  );
  out.push('</thead>', '<tbody>');

  rowCombos.forEach((rc, ri) => {
    const cells: string[] = [];
    if (rowAxes.length === 0) cells.push('<th scope="row"></th>');
    rowAxes.forEach((axis, level) => {
      const sameAbove = (a: Coords, b: Coords): boolean => rowAxes.slice(0, level + 1).every((ax) => a[ax] === b[ax]);
      if (ri > 0 && sameAbove(rowCombos[ri - 1]!, rc)) return;
      let span = 1;
      while (ri + span < rowCombos.length && sameAbove(rowCombos[ri + span]!, rc)) span++;
      cells.push(`<th scope="row"${span > 1 ? ` rowspan="${span}"` : ''}>${esc(rc[axis] ?? '')}</th>`);
    });
    for (const cc of colCombos) {
      const found = byKey.get(keyOf(rowAxes, rc) + '|' + keyOf(colAxes, cc));
      if (!found || found.length === 0) {
        cells.push('<td class="empty-cell" title="Not in this result (another shard, or not run)">not run</td>');
      } else {
        cells.push(renderCell(found[0]!, link(found[0]!)));
      }
    }
    out.push(`<tr>${cells.join('')}</tr>`);
  });
  out.push('</tbody>', '</table>', '</div>');
  return out.join('\n');
}

function renderSummary(m: MatrixResult): string {
  const counts = new Map<string, number>();
  for (const c of m.cells) counts.set(c.verdict, (counts.get(c.verdict) ?? 0) + 1);
  const order = [...VERDICT_ORDER.filter((v) => counts.has(v)), ...[...counts.keys()].filter((v) => !(VERDICT_ORDER as readonly string[]).includes(v)).sort()];
  const n = m.cells.length;
  const bar = order
    .map((v) => `<span style="width:${((100 * counts.get(v)!) / Math.max(1, n)).toFixed(3)}%;background:${verdictStyle(v).bg}" title="${esc(`${v}: ${counts.get(v)}`)}"></span>`)
    .join('');
  const chips = order.map((v) => `<span class="count" data-verdict="${esc(v)}">${verdictBadge(v)}<span class="n">${fmtInt(counts.get(v)!)}</span></span>`).join('');
  const unexpected = m.cells.filter((c) => c.expectationMet === false).length;
  const withExpect = m.cells.filter((c) => c.expectationMet !== null).length;
  const scope = m.shard
    ? `Shard ${m.shard.index + 1} of ${m.shard.count}: ${fmtInt(n)} of ${fmtInt(m.total)} cells.`
    : n < m.total
      ? `${fmtInt(n)} of ${fmtInt(m.total)} cells.`
      : `${fmtInt(n)} cells.`;
  return [
    '<section class="card" id="summary">',
    '<h2>Verdicts</h2>',
    `<p class="muted small">${esc(scope)}${withExpect > 0 ? ` ${fmtInt(withExpect - unexpected)} of ${fmtInt(withExpect)} cells with an expectation met it.` : ''}</p>`,
    `<div class="summary-bar" role="img" aria-label="Share of cells per verdict">${bar}</div>`,
    `<div class="counts">${chips}</div>`,
    '</section>',
  ].join('\n');
}

function renderDetails(m: MatrixResult): string {
  const items = m.cells.map((c) => {
    const o = c.oracle;
    const diffs = c.expectationDifferences.length > 0 ? `<ul class="small">${c.expectationDifferences.map((d) => `<li>${esc(d)}</li>`).join('')}</ul>` : '';
    const exp = c.expectationMet === false ? ' <span class="expect-bad">✗ expectation not met</span>' : c.expectationMet === true ? ' <span class="expect-ok">✓ as expected</span>' : '';
    return [
      `<section class="cell-detail" id="cell-${c.index}">`,
      `<h3>${esc(c.id)}</h3>`,
      `<p>${verdictBadge(c.verdict)}${exp} <span class="small">${esc(c.reason)}</span></p>`,
      diffs,
      `<p class="muted small">seed ${esc(c.seed)} · pages correct ${fmtInt(o.pagesCorrect)} of ${fmtInt(o.pagesExpected)}, missing ${fmtInt(o.pagesMissing)}, wrong ${fmtInt(o.pagesWrong)}, ciphertext ${fmtInt(o.pagesCiphertext)}, changed by DMA after the panic ${fmtInt(o.pagesChangedAfterPanic)}</p>`,
      c.chain.length > 0 ? `<ol>${c.chain.map((s) => `<li>${esc(s)}</li>`).join('')}</ol>` : '<p class="empty">No causal chain recorded.</p>',
      '</section>',
    ].filter((s) => s !== '').join('\n');
  });
  return ['<section class="card" id="details">', '<h2>Cells</h2>', ...items, '</section>'].join('\n');
}

/** The matrix report: one self-contained HTML file. */
export function renderMatrixHtml(m: MatrixResult, opts: MatrixHtmlOptions = {}): string {
  const runLink = opts.runLink;
  let anyInPage = false;
  const link = (c: MatrixCell): string => {
    const given = runLink?.(c);
    const safe = given === undefined ? undefined : safeHref(given);
    if (safe !== undefined) return safe;
    anyInPage = true;
    return `#cell-${c.index}`;
  };
  const heatmap = renderHeatmap(m, link);
  const axes = m.axes.map((a) => `${a.name} (${a.labels.length})`).join(' × ');
  const body = [
    '<header class="card">',
    `<h1>${esc(m.name)}</h1>`,
    `<p class="muted small">Matrix sweep over ${esc(axes || 'no axes')}: rows ${esc(m.rows.join(' × ') || '—')}, columns ${esc(m.columns.join(' × ') || '—')}. Each cell is one run, coloured by its verdict; click it for the run.</p>`,
    '</header>',
    renderSummary(m),
    '<section class="card">',
    '<h2>Heat map</h2>',
    heatmap,
    '</section>',
    anyInPage ? renderDetails(m) : '',
  ].filter((s) => s !== '').join('\n');
  return htmlDocument(`kdumpsim matrix: ${m.name}`, body, MATRIX_CSS);
}
