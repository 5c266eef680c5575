// The physical-memory map, as inline SVG: memory from address 0 to the top
// of DRAM, wrapped into rows of a power-of-two size, coloured by what became
// of each page in the dump.
//
// Memory can be a terabyte with a handful of odd pages in it, so the map is
// drawn in three layers: the rows in the not-in-dump colour, the spans the
// dump covers in the 'correct' colour at their true width, and on top every
// run of a notable fate (changed by DMA, ciphertext, wrong, missing) at least
// MIN_W wide. Notable runs closer together than that are merged into one
// mark whose tooltip counts them, which also bounds the size of the SVG.

import type { PageFate, PageFateRun } from '../scenario/result.js';
import { FATE_ORDER, FATE_STYLES, esc, fmtBytes, fmtInt, fmtPages, fmtPercent, isSpecialFate, pfnToPa, r2 } from './html-common.js';

const W = 1100;
const GUTTER = 150;
const RIGHT = 16;
const PLOT_W = W - GUTTER - RIGHT;
const ROW_H = 24;
const ROW_GAP = 9;
const TOP = 26;
/** The narrowest a notable run is drawn, in SVG units (about 4 px on a laptop screen). */
export const MIN_W = 4;
const PAGE = 4096;
/** Rows in the table of notable runs. */
export const RUN_TABLE_LIMIT = 50;

/** Drawing order of notable fates: the worst on top. */
const SPECIAL_Z: readonly PageFate[] = ['changed-by-dma', 'ciphertext', 'missing', 'wrong'];

function rowPagesFor(total: number): number {
  let p = 1;
  while (p * 8 < total) p *= 2;
  return p;
}

interface Mark {
  row: number;
  x: number;
  w: number;
  fate: PageFate;
  startPfn: number;
  endPfn: number;
  pages: number;
  runs: number;
}

/** Totals per fate, in pages. */
export function fateTotals(map: readonly PageFateRun[]): Record<PageFate, number> {
  const t: Record<PageFate, number> = { correct: 0, 'changed-by-dma': 0, wrong: 0, ciphertext: 0, missing: 0, 'not-in-dump': 0 };
  for (const run of map) t[run.fate] = (t[run.fate] ?? 0) + (run.endPfn - run.startPfn);
  return t;
}

/** The memory map SVG, its legend and the table of notable runs. */
export function renderMemoryMap(map: readonly PageFateRun[]): string {
  const total = map.reduce((m, run) => Math.max(m, run.endPfn), 0);
  if (total === 0) return '<p class="empty">The oracle reported no page map for this run.</p>';
  const rowPages = rowPagesFor(total);
  const rows = Math.ceil(total / rowPages);
  const unit = PLOT_W / rowPages;
  const rowY = (row: number): number => TOP + row * (ROW_H + ROW_GAP);
  const height = rowY(rows) - ROW_GAP + 12;

  // Splits [start, end) into per-row pieces.
  const pieces = (start: number, end: number, fn: (row: number, x0: number, x1: number) => void): void => {
    for (let s = start; s < end; ) {
      const row = Math.floor(s / rowPages);
      const rowEnd = Math.min(end, (row + 1) * rowPages);
      fn(row, GUTTER + (s - row * rowPages) * unit, GUTTER + (rowEnd - row * rowPages) * unit);
      s = rowEnd;
    }
  };

  const out: string[] = [];
  out.push(
    `<svg id="memory-map-svg" class="chart memory-map" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${r2(height)}" role="img" aria-label="Physical memory by page fate">`,
    `<title>Physical memory from 0 to ${esc(pfnToPa(total))} (${esc(fmtBytes(total * PAGE))}), ${esc(fmtBytes(rowPages * PAGE))} per row</title>`,
  );

  // Offsets within a row along the top.
  out.push('<g class="axis">');
  for (let i = 0; i <= 4; i++) {
    const tx = GUTTER + (PLOT_W * i) / 4;
    const label = i === 0 ? '+0' : `+${fmtBytes((rowPages * PAGE * i) / 4)}`;
    out.push(
      `<line x1="${r2(tx)}" x2="${r2(tx)}" y1="${TOP - 6}" y2="${TOP - 2}" stroke="#9aa3b2"/>`,
      `<text x="${r2(tx)}" y="${TOP - 10}" text-anchor="${i === 0 ? 'start' : i === 4 ? 'end' : 'middle'}">${esc(label)}</text>`,
    );
  }
  out.push('</g>');

  // Layer 1: rows, in the not-in-dump colour, with their start address.
  const nid = FATE_STYLES['not-in-dump'];
  for (let row = 0; row < rows; row++) {
    const y = rowY(row);
    const end = Math.min(total, (row + 1) * rowPages);
    out.push(
      `<text x="${GUTTER - 10}" y="${r2(y + ROW_H / 2 + 4)}" text-anchor="end" font-family="ui-monospace, 'DejaVu Sans Mono', monospace" font-size="11.5">${esc(pfnToPa(row * rowPages))}</text>`,
      `<rect class="row" data-fate="not-in-dump" x="${GUTTER}" y="${r2(y)}" width="${r2((end - row * rowPages) * unit)}" height="${ROW_H}" fill="${nid.bg}">` +
        `<title>${esc(`${pfnToPa(row * rowPages)}–${pfnToPa(end)}`)}</title></rect>`,
    );
  }

  // Layer 2: the spans the dump covers (any fate but not-in-dump), at true width.
  const extents: { row: number; x0: number; x1: number; start: number; end: number }[] = [];
  let open: { start: number; end: number } | null = null;
  const flush = (): void => {
    if (!open) return;
    const { start, end } = open;
    pieces(start, end, (row, x0, x1) => {
      const last = extents[extents.length - 1];
      if (last && last.row === row && x0 - last.x1 < 0.25) {
        last.x1 = x1;
        last.end = end;
      } else extents.push({ row, x0, x1, start, end });
    });
    open = null;
  };
  for (const run of map) {
    if (run.fate === 'not-in-dump') flush();
    else if (open && open.end === run.startPfn) open.end = run.endPfn;
    else {
      flush();
      open = { start: run.startPfn, end: run.endPfn };
    }
  }
  flush();
  const ok = FATE_STYLES.correct;
  for (const e of extents) {
    out.push(
      `<rect class="run" data-fate="correct" x="${r2(e.x0)}" y="${r2(rowY(e.row))}" width="${r2(Math.max(0.3, e.x1 - e.x0))}" height="${ROW_H}" fill="${ok.bg}">` +
        `<title>${esc(`${pfnToPa(e.start)}–${pfnToPa(e.end)}: in the dump`)}</title></rect>`,
    );
  }

  // Layer 3: notable runs, at least MIN_W wide, merged when closer than that.
  const marks = new Map<string, Mark>();
  const bigMarks: Mark[] = [];
  for (const run of map) {
    if (!isSpecialFate(run.fate)) continue;
    pieces(run.startPfn, run.endPfn, (row, x0, x1) => {
      const pages = Math.round((x1 - x0) / unit);
      if (x1 - x0 >= MIN_W) {
        bigMarks.push({ row, x: x0, w: x1 - x0, fate: run.fate, startPfn: run.startPfn, endPfn: run.endPfn, pages, runs: 1 });
        return;
      }
      const key = `${row}:${Math.floor((x0 - GUTTER) / MIN_W)}:${run.fate}`;
      const m = marks.get(key);
      if (m) {
        m.endPfn = run.endPfn;
        m.pages += pages;
        m.runs += 1;
      } else {
        marks.set(key, { row, x: x0, w: MIN_W, fate: run.fate, startPfn: run.startPfn, endPfn: run.endPfn, pages, runs: 1 });
      }
    });
  }
  const all = [...bigMarks, ...marks.values()].sort((a, b) => SPECIAL_Z.indexOf(a.fate) - SPECIAL_Z.indexOf(b.fate) || a.row - b.row || a.x - b.x);
  for (const m of all) {
    const rowRight = GUTTER + Math.min(rowPages, total - m.row * rowPages) * unit;
    const x = Math.max(GUTTER, Math.min(m.x, rowRight - m.w));
    const st = FATE_STYLES[m.fate];
    const what = m.runs > 1 ? `${m.runs} runs, ${fmtPages(m.pages)}` : fmtPages(m.endPfn - m.startPfn);
    out.push(
      `<rect class="run special" data-fate="${m.fate}" data-start-pfn="${m.startPfn}" x="${r2(x)}" y="${r2(rowY(m.row) - 2)}" width="${r2(m.w)}" height="${ROW_H + 4}" fill="${st.bg}" stroke="#ffffff" stroke-width="0.6">` +
        `<title>${esc(`${pfnToPa(m.startPfn)}–${pfnToPa(m.endPfn)}: ${st.label} (${what})`)}</title></rect>`,
    );
  }
  out.push('</svg>');

  // Legend with totals.
  const totals = fateTotals(map);
  const legend = FATE_ORDER.map((f) => {
    const st = FATE_STYLES[f];
    return `<span data-fate="${f}" title="${esc(st.help)}"><span class="sw" style="background:${st.bg}"></span>${esc(st.label)}: ${fmtPages(totals[f])} <span class="muted">(${fmtBytes(totals[f] * PAGE)})</span></span>`;
  });

  // Table of notable runs.
  const special = map.filter((run) => isSpecialFate(run.fate));
  let table: string;
  if (special.length === 0) {
    table = '<p class="muted small">No page ended up changed, wrong, encrypted or missing: every page in the dump is correct.</p>';
  } else {
    const rowsHtml = special.slice(0, RUN_TABLE_LIMIT).map((run) => {
      const st = FATE_STYLES[run.fate];
      const n = run.endPfn - run.startPfn;
      return `<tr data-fate="${run.fate}"><td class="mono">${esc(pfnToPa(run.startPfn))}</td><td class="mono">${esc(pfnToPa(run.endPfn))}</td>` +
        `<td class="num">${fmtInt(n)}</td><td class="num">${esc(fmtBytes(n * PAGE))}</td>` +
        `<td><span class="sw-inline" style="background:${st.bg}"></span>${esc(st.label)}</td></tr>`;
    });
    const more = special.length > RUN_TABLE_LIMIT ? `<p class="muted small">… and ${fmtInt(special.length - RUN_TABLE_LIMIT)} more runs not listed.</p>` : '';
    table =
      `<h3>Runs of notable pages${special.length > RUN_TABLE_LIMIT ? ` (first ${RUN_TABLE_LIMIT} of ${fmtInt(special.length)})` : ` (${special.length})`}</h3>` +
      `<table class="data runs"><thead><tr><th>Start</th><th>End (exclusive)</th><th class="num">Pages</th><th class="num">Size</th><th>Fate</th></tr></thead><tbody>\n` +
      rowsHtml.join('\n') +
      `\n</tbody></table>${more}`;
  }

  const dumped = total - totals['not-in-dump'];
  const caption =
    `<p class="muted small">${esc(fmtBytes(total * PAGE))} of physical address space in rows of ${esc(fmtBytes(rowPages * PAGE))}; ` +
    `${fmtPercent(dumped, total)} of it is in the dump. Notable runs are drawn at least ${MIN_W} units wide so a single page stays visible; hover for addresses.</p>`;
  return [caption, out.join('\n'), `<div class="legend">${legend.join('')}</div>`, table].join('\n');
}
