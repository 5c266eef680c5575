// Shared pieces of the HTML reports: escaping, number and time formatting,
// the verdict and page-fate palettes, and the page shell with its stylesheet.
//
// Reports are single self-contained files: inline CSS and SVG, no scripts,
// no fonts or images from anywhere. A Content-Security-Policy in the page
// itself forbids scripts and every kind of fetch, so even a bug in escaping
// could not make the page run or load anything. Output is deterministic: no
// clocks, no random ids, no locale-dependent formatting.

import type { Verdict } from '../scenario/schema.js';
import type { PageFate } from '../scenario/result.js';

/** Escapes text for HTML and SVG content and for quoted attribute values. */
export function esc(s: string | number): string {
  return String(s).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Integer with thousands separators, independent of the locale. */
export function fmtInt(n: number): string {
  const s = String(Math.round(n));
  return s.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** "1 page", "2,031,328 pages". */
export function fmtPages(n: number): string {
  return `${fmtInt(n)} page${n === 1 ? '' : 's'}`;
}

/** A virtual time the way dmesg prints it, in seconds with microseconds. */
export function fmtSeconds(ns: number): string {
  return `${(ns / 1e9).toFixed(6)} s`;
}

/** A duration with a unit that suits it: 92.0 µs, 4.36 s. */
export function fmtDuration(ns: number): string {
  const a = Math.abs(ns);
  const [div, unit] = a >= 1e9 ? [1e9, 's'] : a >= 1e6 ? [1e6, 'ms'] : a >= 1e3 ? [1e3, 'µs'] : [1, 'ns'];
  const v = ns / div;
  const digits = div === 1 ? 0 : Math.abs(v) >= 100 ? 1 : Math.abs(v) >= 10 ? 2 : 3;
  return `${v.toFixed(digits)} ${unit}`;
}

/** Bytes in binary units: 8 GiB, 253.9 MiB, 512 B. */
export function fmtBytes(bytes: number): string {
  const units = [['TiB', 2 ** 40], ['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const;
  for (const [u, n] of units) {
    if (bytes >= n) {
      const v = bytes / n;
      return `${Number.isInteger(v) ? v : v.toFixed(1)} ${u}`;
    }
  }
  return `${bytes} B`;
}

/** Percentage of a whole with one decimal (two below 1%, so small non-zero shares do not read as 0). */
export function fmtPercent(part: number, whole: number): string {
  if (whole <= 0) return '–';
  const p = (100 * part) / whole;
  if (part > 0 && p < 0.01) return '<0.01%';
  const s = p < 1 && p > 0 ? p.toFixed(2) : p.toFixed(1);
  // Two pages short of two hundred thousand is not 100%.
  if (part < whole && s === '100.0') return '>99.9%';
  return `${s}%`;
}

export const PAGE_SHIFT = 12n;

/** The physical address of a page frame, as 0x-prefixed hex. */
export function pfnToPa(pfn: number): string {
  return '0x' + (BigInt(pfn) << PAGE_SHIFT).toString(16);
}

export interface Swatch {
  /** Fill colour. */
  bg: string;
  /** Text colour on that fill. */
  fg: string;
  label: string;
  /** One sentence for a legend or tooltip. */
  help: string;
}

/** Verdicts in report order, best first. */
export const VERDICT_ORDER: readonly Verdict[] = [
  'dump-complete',
  'dump-partial',
  'no-dump',
  'crash-kernel-panic',
  'crash-kernel-hang',
  'kexec-refused',
  'no-crash-kernel',
  'first-kernel-failed',
];

const VERDICT_STYLES: Record<Verdict, Swatch> = {
  'dump-complete': { bg: '#1f8a4c', fg: '#ffffff', label: 'dump complete', help: 'The vmcore was saved and every expected page is correct' },
  'dump-partial': { bg: '#e0a526', fg: '#221a00', label: 'dump partial', help: 'A vmcore was saved but some pages are missing, wrong or unreadable' },
  'no-dump': { bg: '#d9622b', fg: '#ffffff', label: 'no dump', help: 'The capture kernel ran but saved no vmcore' },
  'crash-kernel-panic': { bg: '#c62f3b', fg: '#ffffff', label: 'crash kernel panic', help: 'The capture kernel panicked before saving the vmcore' },
  'crash-kernel-hang': { bg: '#8c1d40', fg: '#ffffff', label: 'crash kernel hang', help: 'The machine stopped making progress after the panic' },
  'kexec-refused': { bg: '#6d4bb0', fg: '#ffffff', label: 'kexec refused', help: 'The capture kernel could not be loaded' },
  'no-crash-kernel': { bg: '#5b3f8c', fg: '#ffffff', label: 'no crash kernel', help: 'Nothing had loaded a capture kernel, so the panic had nowhere to go' },
  'first-kernel-failed': { bg: '#4d5561', fg: '#ffffff', label: 'first kernel failed', help: 'The first kernel did not reach the point of loading a capture kernel' },
};

const UNKNOWN_VERDICT: Swatch = { bg: '#7a7f87', fg: '#ffffff', label: 'unknown', help: 'A verdict this report does not know' };

/** The swatch of a verdict; results replayed from older files may carry verdicts this build does not know. */
export function verdictStyle(v: string): Swatch {
  return (VERDICT_STYLES as Record<string, Swatch | undefined>)[v] ?? { ...UNKNOWN_VERDICT, label: v };
}

/** A coloured verdict badge. */
export function verdictBadge(v: string, extraClass = ''): string {
  const s = verdictStyle(v);
  return `<span class="verdict${extraClass ? ' ' + extraClass : ''}" style="background:${s.bg};color:${s.fg}" title="${esc(s.help)}">${esc(v)}</span>`;
}

/** Page fates in legend order: the dumped and fine first, then the bad, then what the dump does not cover. */
export const FATE_ORDER: readonly PageFate[] = ['correct', 'changed-by-dma', 'ciphertext', 'wrong', 'missing', 'not-in-dump'];

export const FATE_STYLES: Record<PageFate, Swatch> = {
  correct: { bg: '#7fc79a', fg: '#0b2815', label: 'correct', help: 'Captured with the content the first kernel left' },
  'changed-by-dma': { bg: '#2f7fd8', fg: '#ffffff', label: 'changed by DMA', help: 'Captured after a device legitimately wrote it following the panic' },
  ciphertext: { bg: '#8e44ad', fg: '#ffffff', label: 'ciphertext', help: 'Captured as encrypted bytes instead of plaintext' },
  wrong: { bg: '#d7263d', fg: '#ffffff', label: 'wrong', help: 'Captured content matches no state the page was ever in' },
  missing: { bg: '#f08c00', fg: '#221300', label: 'missing', help: 'Expected in the dump but not captured' },
  'not-in-dump': { bg: '#dde1e7', fg: '#2b2f36', label: 'not in dump', help: 'Holes, firmware ranges and the crash region itself' },
};

/** The fates drawn with a minimum width on the memory map and listed in its table. */
export function isSpecialFate(f: PageFate): boolean {
  return f !== 'correct' && f !== 'not-in-dump';
}

/** A "[    3.443830] text" line split into its timestamp and text. */
export function splitTimestamp(line: string): { ts: string | null; text: string } {
  const m = /^\[\s*(\d+\.\d+)\]\s?(.*)$/s.exec(line);
  return m ? { ts: m[1]!, text: m[2]! } : { ts: null, text: line };
}

const CSS = `
:root {
  --ink: #1d2330; --muted: #5b6473; --line: #dfe3ea; --paper: #ffffff; --page: #f4f6f9;
  --accent: #2f5fb3; --mono: ui-monospace, "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace;
}
* { box-sizing: border-box; }
html { background: var(--page); }
body {
  margin: 0; color: var(--ink); font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", Arial, sans-serif;
}
main { max-width: 1240px; margin: 0 auto; padding: 20px 24px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; line-height: 1.25; overflow-wrap: anywhere; }
h2 { font-size: 18px; margin: 0 0 10px; }
h3 { font-size: 15px; margin: 18px 0 8px; }
p { margin: 6px 0; }
a { color: var(--accent); }
code, .mono { font-family: var(--mono); font-size: 13px; }
section.card { background: var(--paper); border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px 18px; margin: 16px 0; }
.muted { color: var(--muted); }
.small { font-size: 13px; }
nav.toc { display: flex; flex-wrap: wrap; gap: 6px 16px; font-size: 14px; margin: 10px 0 0; }
.verdict { display: inline-block; padding: 2px 10px; border-radius: 999px; font-weight: 650; font-size: 14px; letter-spacing: .01em; white-space: nowrap; }
.verdict.big { font-size: 18px; padding: 4px 14px; }
.header-top { display: flex; flex-wrap: wrap; align-items: center; gap: 10px 16px; }
.description { color: var(--muted); max-width: 80ch; }
dl.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 10px 16px; margin: 14px 0 0; }
dl.figures div { border-left: 3px solid var(--line); padding: 2px 0 2px 10px; }
dl.figures dt { font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
dl.figures dd { margin: 0; font-size: 16px; font-weight: 600; font-variant-numeric: tabular-nums; }
.expect-ok { color: #1f8a4c; font-weight: 600; }
.expect-bad { color: #c62f3b; font-weight: 600; }
svg.chart { display: block; width: 100%; height: auto; font-size: 12px; }
svg.chart text { fill: var(--ink); }
svg.chart .axis text, svg.chart text.muted { fill: var(--muted); }
table { border-collapse: collapse; font-size: 13.5px; }
table.data { width: 100%; }
table.data th, table.data td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
table.data th { font-weight: 600; color: var(--muted); font-size: 12.5px; }
table.data td.num, table.data th.num { text-align: right; font-variant-numeric: tabular-nums; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 18px; margin: 10px 0; font-size: 13.5px; }
.sw-inline { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; vertical-align: 0; }
.legend span.sw { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; border: 1px solid rgba(0,0,0,.15); }
ol.chain { margin: 0; padding-left: 0; list-style: none; counter-reset: step; }
ol.chain li { counter-increment: step; display: grid; grid-template-columns: 2.2em 7.6em 8.5em 1fr; gap: 0 10px; padding: 5px 0; border-bottom: 1px solid #eef0f4; align-items: baseline; }
ol.chain li::before { content: counter(step) "."; color: var(--muted); text-align: right; font-variant-numeric: tabular-nums; }
ol.chain li.decisive { background: #fff5f5; border-left: 3px solid #c62f3b; margin-left: -3px; }
ol.chain li.decisive.good { background: #f2fbf5; border-left-color: #1f8a4c; }
ol.chain .ts { font-family: var(--mono); font-size: 12.5px; color: var(--muted); }
ol.chain .src { font-family: var(--mono); font-size: 12px; }
ol.chain .src span { background: #eef2f8; border-radius: 4px; padding: 1px 6px; }
ol.chain .text { overflow-wrap: anywhere; }
.log { font-family: var(--mono); font-size: 12.5px; line-height: 1.45; background: #fbfcfd; border: 1px solid var(--line); border-radius: 6px; max-height: 50em; overflow: auto; }
.log ol { list-style: none; margin: 0; padding: 6px 0; }
.log li { display: grid; grid-template-columns: 9.5em 1fr auto; gap: 0 8px; padding: 1px 10px 1px 8px; border-left: 4px solid transparent; }
.log li .ts { color: #8a93a3; white-space: pre; }
.log li .text { white-space: pre-wrap; overflow-wrap: anywhere; }
.log li .tags { white-space: nowrap; }
.tag { display: inline-block; font-family: system-ui, sans-serif; font-size: 11px; line-height: 1.5; padding: 0 6px; border-radius: 4px; margin-left: 4px; }
.log li.m-chain { background: #eef4ff; border-left-color: #2f5fb3; }
.log li.m-reserve { background: #f1f8f3; border-left-color: #1f8a4c; }
.log li.m-warning { background: #fff8e6; border-left-color: #e0a526; }
.log li.m-panic { background: #fdeeee; border-left-color: #c62f3b; }
.tag.t-chain { background: #dbe6fb; color: #1f3f7a; }
.tag.t-reserve { background: #d9efe0; color: #17603a; }
.tag.t-warning { background: #fcebbf; color: #6b4b00; }
.tag.t-panic { background: #f8d4d6; color: #8a1f27; }
.only-marked { font-size: 13px; color: var(--muted); margin: 4px 0 8px; display: inline-block; }
.logblock:has(input.only-marked-toggle:checked) .log li:not(.marked) { display: none; }
details > summary { cursor: pointer; font-weight: 600; }
pre.input { font-family: var(--mono); font-size: 12.5px; background: #fbfcfd; border: 1px solid var(--line); border-radius: 6px; padding: 10px; overflow: auto; max-height: 30em; white-space: pre-wrap; overflow-wrap: anywhere; }
.empty { color: var(--muted); font-style: italic; }
@media print { section.card { break-inside: avoid; } .log { max-height: none; } }
`;

/** A whole HTML document around `body`. */
export function htmlDocument(title: string, body: string, extraCss = ''): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    // No scripts, no network: everything this page shows is in this file.
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="generator" content="kdumpsim">',
    `<title>${esc(title)}</title>`,
    `<style>${CSS}${extraCss}</style>`,
    '</head>',
    '<body>',
    '<main>',
    body,
    '</main>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

/** Nice tick positions (1, 2 or 5 times a power of ten) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, target: number): { step: number; ticks: number[] } {
  const span = hi - lo;
  if (!(span > 0)) return { step: 1, ticks: [lo] };
  const raw = span / Math.max(1, target);
  const pow = 10 ** Math.floor(Math.log10(raw));
  const f = raw / pow;
  const step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * pow;
  const ticks: number[] = [];
  for (let i = Math.ceil(lo / step); i * step <= hi + step * 1e-9; i++) ticks.push(i * step);
  return { step, ticks };
}

/** A tick label for a time `ns` on an axis whose ticks are `step` apart. */
export function fmtTick(ns: number, step: number): string {
  const [div, unit] = step >= 1e8 ? [1e9, 's'] : step >= 1e5 ? [1e6, 'ms'] : step >= 1e2 ? [1e3, 'µs'] : [1, 'ns'];
  const decimals = Math.max(0, -Math.floor(Math.log10(step / div) + 1e-9));
  const v = ns / div;
  const s = (Math.abs(v) < 1e-12 ? 0 : v).toFixed(decimals);
  return `${s} ${unit}`;
}

/** Rounds a coordinate for SVG output, keeping files small and stable. */
export function r2(v: number): string {
  const s = (Math.round(v * 100) / 100).toString();
  return s === '-0' ? '0' : s;
}
