// The oracle's page accounting as a horizontal bar chart (inline SVG), with
// exact figures beside each bar and the first wrong or missing pages below.

import type { OracleReport } from '../scenario/result.js';
import { FATE_STYLES, esc, fmtInt, fmtPages, fmtPercent, r2 } from './html-common.js';

const W = 1100;
const GUTTER = 250;
const VALUE_W = 190;
const PLOT_W = W - GUTTER - VALUE_W;
const BAR_H = 20;
const ROW_H = 30;
/** Rows in the table of page errors. */
export const ERROR_TABLE_LIMIT = 50;

interface Bar {
  key: string;
  label: string;
  help: string;
  value: number;
  color: string;
}

function bars(o: OracleReport): Bar[] {
  return [
    { key: 'expected', label: 'Expected in the dump', help: 'Pages the oracle expects a complete dump to hold', value: o.pagesExpected, color: '#8c9bb5' },
    { key: 'captured', label: 'Captured', help: 'Pages the vmcore holds', value: o.pagesCaptured, color: '#54657f' },
    { key: 'correct', label: 'Correct', help: FATE_STYLES.correct.help, value: o.pagesCorrect, color: FATE_STYLES.correct.bg },
    { key: 'changed-after-panic', label: 'Changed by DMA after the panic', help: FATE_STYLES['changed-by-dma'].help, value: o.pagesChangedAfterPanic, color: FATE_STYLES['changed-by-dma'].bg },
    { key: 'ciphertext', label: 'Ciphertext', help: FATE_STYLES.ciphertext.help, value: o.pagesCiphertext, color: FATE_STYLES.ciphertext.bg },
    { key: 'wrong', label: 'Wrong', help: FATE_STYLES.wrong.help, value: o.pagesWrong, color: FATE_STYLES.wrong.bg },
    { key: 'missing', label: 'Missing', help: FATE_STYLES.missing.help, value: o.pagesMissing, color: FATE_STYLES.missing.bg },
  ];
}

/** The bar chart and the error table. */
export function renderAccounting(o: OracleReport): string {
  const bs = bars(o);
  const max = Math.max(1, ...bs.map((b) => b.value));
  const height = bs.length * ROW_H + 10;
  const out: string[] = [
    `<svg id="accounting-svg" class="chart accounting" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${height}" role="img" aria-label="Page accounting">`,
    '<title>Page accounting: pages expected, captured, and what became of them</title>',
  ];
  bs.forEach((b, i) => {
    const y = 5 + i * ROW_H;
    const w = b.value > 0 ? Math.max(2, (b.value / max) * PLOT_W) : 0;
    const pct = b.key === 'expected' ? '' : ` (${fmtPercent(b.value, o.pagesExpected)})`;
    out.push(
      `<g class="bar" data-key="${b.key}" data-value="${b.value}"><title>${esc(`${b.label}: ${fmtPages(b.value)}${pct}. ${b.help}`)}</title>`,
      `<text x="${GUTTER - 12}" y="${r2(y + BAR_H / 2 + 4.5)}" text-anchor="end" font-size="13">${esc(b.label)}</text>`,
      `<rect x="${GUTTER}" y="${y}" width="${PLOT_W}" height="${BAR_H}" fill="#f1f3f7" rx="3"/>`,
      `<rect x="${GUTTER}" y="${y}" width="${r2(w)}" height="${BAR_H}" fill="${b.color}" rx="3"/>`,
      `<text x="${r2(GUTTER + PLOT_W + 12)}" y="${r2(y + BAR_H / 2 + 4.5)}" font-size="13" font-weight="600">${esc(fmtInt(b.value))}<tspan class="muted" font-weight="400" fill="#5b6473">${esc(pct)}</tspan></text>`,
      '</g>',
    );
  });
  out.push('</svg>');

  let errors = '';
  if (o.errors.length > 0) {
    const rows = o.errors
      .slice(0, ERROR_TABLE_LIMIT)
      .map((e) => `<tr><td class="num">${fmtInt(e.pfn)}</td><td class="mono">${esc(e.pa)}</td><td>${esc(e.cause)}</td></tr>`);
    errors =
      `<h3>Pages the oracle flagged${o.errors.length > ERROR_TABLE_LIMIT ? ` (first ${ERROR_TABLE_LIMIT} of ${fmtInt(o.errors.length)})` : ''}</h3>` +
      `<table class="data errors"><thead><tr><th class="num">PFN</th><th>Address</th><th>Cause</th></tr></thead><tbody>\n${rows.join('\n')}\n</tbody></table>`;
  }
  return out.join('\n') + '\n' + errors;
}
