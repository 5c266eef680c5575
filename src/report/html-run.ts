// One run as a self-contained HTML page: the verdict and key figures, the
// causal chain, a timeline in virtual time, the oracle's page accounting, a
// map of physical memory by page fate, and both kernels' logs with the lines
// that mattered marked. Everything shown is derived from the RunResult.

import type { RunResult } from '../scenario/result.js';
import { esc, fmtBytes, fmtDuration, fmtInt, fmtPercent, fmtSeconds, htmlDocument, splitTimestamp, verdictBadge } from './html-common.js';
import { renderAccounting } from './svg-accounting.js';
import { renderMemoryMap } from './svg-memory-map.js';
import { renderTimeline } from './svg-timeline.js';

/** Why a log line is highlighted. */
export type LogMark = 'chain' | 'panic' | 'reserve' | 'warning';

const MARK_LABEL: Record<LogMark, string> = { chain: 'in chain', panic: 'panic', reserve: 'crashkernel', warning: 'warning' };
const MARK_PRIORITY: readonly LogMark[] = ['panic', 'chain', 'warning', 'reserve'];

const PANIC_RE = /Kernel panic|\bpanic\b|\bBUG:|\bOops\b|sysrq: Trigger a crash|Call Trace|\bRIP:/i;
const RESERVE_RE = /crashkernel|Reserving .*crash|crash region|elfcorehdr|\bkdump\b|\bkexec\b|\/proc\/vmcore/i;
const WARNING_RE = /\bwarn(ing)?\b|\berror\b|\bfail(s|ed|ure)?\b|timed? ?out|\brefus|\bcannot\b|can't|\bunable\b|\bnot (found|supported|enough)\b|IO_PAGE_FAULT|\bfault\b|\bdenied\b|\bcorrupt/i;

/** The text of each chain step, without its timestamp and with and without its "source:" prefix. */
function chainTexts(chain: readonly string[]): string[] {
  const out: string[] = [];
  for (const line of chain) {
    const { text } = splitTimestamp(line);
    out.push(text);
    const m = /^[A-Za-z0-9_.-]+:\s(.*)$/s.exec(text);
    if (m) out.push(m[1]!);
  }
  return out;
}

/** Why a dmesg line matters, if it does: it is quoted in the chain, is part of the panic, is about the crash reservation, or warns. */
export function logMarks(line: string, chain: readonly string[]): LogMark[] {
  return marksOf(line, chainTexts(chain));
}

function marksOf(line: string, texts: readonly string[]): LogMark[] {
  const text = splitTimestamp(line).text.trim();
  const marks: LogMark[] = [];
  if (text.length >= 6 && texts.some((c) => c.includes(text) || (c.length >= 16 && text.includes(c)))) marks.push('chain');
  if (PANIC_RE.test(text)) marks.push('panic');
  if (RESERVE_RE.test(text)) marks.push('reserve');
  if (WARNING_RE.test(text)) marks.push('warning');
  return MARK_PRIORITY.filter((m) => marks.includes(m));
}

function renderLog(id: string, title: string, lines: readonly string[], chain: readonly string[], emptyNote: string): string {
  const head = `<section class="card logblock" id="${id}">\n<h2>${esc(title)}</h2>`;
  if (lines.length === 0) return `${head}\n<p class="empty">${esc(emptyNote)}</p>\n</section>`;
  let marked = 0;
  const texts = chainTexts(chain);
  const items = lines.map((line) => {
    const { ts, text } = splitTimestamp(line);
    const marks = marksOf(line, texts);
    if (marks.length > 0) marked++;
    const cls = marks.length > 0 ? ` class="marked m-${marks[0]}"` : '';
    const tags = marks.map((m) => `<span class="tag t-${m}">${MARK_LABEL[m]}</span>`).join('');
    return `<li${cls}><span class="ts">${ts === null ? '' : esc(`[${ts.padStart(12)}]`)}</span><span class="text">${esc(text)}</span><span class="tags">${tags}</span></li>`;
  });
  return [
    head,
    `<label class="only-marked"><input type="checkbox" class="only-marked-toggle"> show only the ${marked} marked of ${lines.length} lines</label>`,
    `<div class="log"><ol>`,
    ...items,
    '</ol></div>',
    '</section>',
  ].join('\n');
}

function renderChain(r: RunResult): string {
  if (r.chain.length === 0) return '<p class="empty">The run recorded no causal chain.</p>';
  const good = r.verdict === 'dump-complete';
  const items = r.chain.map((line, i) => {
    const { ts, text } = splitTimestamp(line);
    const m = /^([A-Za-z0-9_.-]+):\s(.*)$/s.exec(text);
    const src = m ? m[1]! : '';
    const detail = m ? m[2]! : text;
    const last = i === r.chain.length - 1;
    const cls = last ? ` class="decisive${good ? ' good' : ''}"` : '';
    return `<li${cls}><span class="ts">${ts === null ? '' : esc(`${ts} s`)}</span><span class="src">${src ? `<span>${esc(src)}</span>` : ''}</span><span class="text">${esc(detail)}</span></li>`;
  });
  return `<ol class="chain">\n${items.join('\n')}\n</ol>`;
}

function figure(label: string, value: string, title = ''): string {
  return `<div${title ? ` title="${esc(title)}"` : ''}><dt>${esc(label)}</dt><dd>${value}</dd></div>`;
}

function renderHeader(r: RunResult): string {
  const m = r.metrics;
  const o = r.oracle;
  const inp = r.input;
  const figures: string[] = [
    figure('Seed', esc(r.seed)),
    figure('First kernel booted', esc(fmtSeconds(m.firstKernelBootedNs))),
    figure('Panic', esc(fmtSeconds(m.panicNs))),
    figure(
      'Panic → capture kernel',
      m.crashKernelStartNs === null ? '<span class="expect-bad">never started</span>' : esc(fmtDuration(m.crashKernelStartNs - m.panicNs)),
    ),
    figure(
      'vmcore saved',
      m.vmcoreSavedNs === null
        ? '<span class="expect-bad">not saved</span>'
        : esc(`${fmtSeconds(m.vmcoreSavedNs)}`) +
            (m.crashKernelStartNs === null ? '' : ` <span class="muted small">(${esc(fmtDuration(m.vmcoreSavedNs - m.crashKernelStartNs))} in the capture kernel)</span>`),
    ),
    figure('Pages correct', `${esc(fmtInt(o.pagesCorrect))} <span class="muted small">of ${esc(fmtInt(o.pagesExpected))} (${esc(fmtPercent(o.pagesCorrect, o.pagesExpected))})</span>`),
    figure('Pages missing / wrong', esc(`${fmtInt(o.pagesMissing)} / ${fmtInt(o.pagesWrong)}`)),
    figure('DMA after the panic', `${esc(fmtInt(m.dmaPacketsAfterPanic))} packets <span class="muted small">(${esc(fmtInt(m.dmaPacketsDropped))} dropped)</span>`, 'Packets devices delivered by DMA after the panic, and packets they dropped'),
    figure('Run ended', esc(fmtSeconds(m.endNs))),
  ];
  if (r.vmcore) figures.push(figure('vmcore', esc(`${fmtBytes(r.vmcore.size)} (${fmtBytes(r.vmcore.bytesWritten)} written)`), r.vmcore.path));
  const machine: string[] = [];
  if (inp.machine.memory !== undefined) machine.push(`${String(inp.machine.memory)} memory`);
  machine.push(`${inp.machine.cpus} CPUs`);
  machine.push(`first kernel ${inp.firstKernel.profile}`, `capture kernel ${inp.crashKernel.profile}`);
  if (inp.faults.length > 0) machine.push(`${inp.faults.length} injected fault${inp.faults.length === 1 ? '' : 's'}`);

  let expectation = '';
  let differences = '';
  if (r.expectation) {
    expectation = r.expectation.met
      ? '<span class="expect-ok" id="expectation">✓ expectation met</span>'
      : '<span class="expect-bad" id="expectation">✗ expectation not met</span>';
    if (r.expectation.differences.length > 0) {
      differences = `<ul class="small expect-differences">${r.expectation.differences.map((d) => `<li>${esc(d)}</li>`).join('')}</ul>`;
    }
  }
  return [
    '<header class="card" id="summary">',
    '<div class="header-top">',
    `<h1>${esc(r.scenario)}</h1>`,
    verdictBadge(r.verdict, 'big'),
    expectation,
    '</div>',
    inp.description ? `<p class="description">${esc(inp.description)}</p>` : '',
    `<p class="muted small">${esc(machine.join(' · '))}</p>`,
    differences,
    `<dl class="figures">${figures.join('')}</dl>`,
    '<nav class="toc small">' +
      [['chain', 'What happened'], ['timeline', 'Timeline'], ['accounting', 'Page accounting'], ['memory-map', 'Memory map'], ['logs-first', 'First kernel log'], ['logs-capture', 'Capture kernel log'], ['trace', 'Trace'], ['input', 'Scenario']]
        .map(([id, label]) => `<a href="#${id}">${label}</a>`)
        .join('') +
      '</nav>',
    '</header>',
  ]
    .filter((s) => s !== '')
    .join('\n');
}

const TRACE_TABLE_LIMIT = 2000;

function renderTraceTable(r: RunResult): string {
  const rows = r.trace
    .slice(0, TRACE_TABLE_LIMIT)
    .map((e) => `<tr><td class="num mono">${esc(fmtSeconds(e.t))}</td><td class="mono">${esc(e.source)}</td><td class="mono">${esc(e.kind)}</td><td>${esc(e.detail)}</td></tr>`);
  const more = r.trace.length > TRACE_TABLE_LIMIT ? `<p class="muted small">… and ${fmtInt(r.trace.length - TRACE_TABLE_LIMIT)} more events not listed.</p>` : '';
  return [
    '<section class="card" id="trace">',
    `<details><summary>Trace: ${fmtInt(r.trace.length)} hardware and kernel events</summary>`,
    '<table class="data"><thead><tr><th class="num">Time</th><th>Source</th><th>Kind</th><th>Detail</th></tr></thead><tbody>',
    ...rows,
    '</tbody></table>',
    more,
    '</details>',
    '</section>',
  ].join('\n');
}

/** The run report: one self-contained HTML file. */
export function renderRunHtml(r: RunResult): string {
  const body = [
    renderHeader(r),
    '<section class="card" id="chain">',
    '<h2>What happened</h2>',
    '<p class="muted small">The causal chain the simulator recorded, in virtual-time order; the last step decided the verdict.</p>',
    renderChain(r),
    '</section>',
    '<section class="card" id="timeline">',
    '<h2>Timeline</h2>',
    '<p class="muted small">Virtual time. Bars are the phases each party was in, dashed lines the milestones, dots the trace events, red for injected faults and failures (hover for details; a larger dot stands for several events at once).</p>',
    renderTimeline(r),
    '</section>',
    '<section class="card" id="accounting">',
    '<h2>Page accounting</h2>',
    '<p class="muted small">The oracle compares every captured page with what the first kernel left in memory.</p>',
    renderAccounting(r.oracle),
    '</section>',
    '<section class="card" id="memory-map">',
    '<h2>Physical memory</h2>',
    renderMemoryMap(r.oracle.pageMap),
    '</section>',
    renderLog('logs-first', 'First kernel log', r.logs.firstKernel, r.chain, 'The first kernel printed nothing.'),
    renderLog('logs-capture', 'Capture kernel log', r.logs.crashKernel, r.chain, 'The capture kernel printed nothing: it never started.'),
    '<section class="card small muted">Marked lines: ' +
      ['chain', 'panic', 'reserve', 'warning']
        .map((m) => `<span class="tag t-${m}">${MARK_LABEL[m as LogMark]}</span>`)
        .join(' ') +
      ' — quoted in the causal chain; part of the panic; about the crash reservation, kexec or the dump; a warning or error.</section>',
    renderTraceTable(r),
    '<section class="card" id="input">',
    '<details><summary>Scenario as run (defaults filled in)</summary>',
    `<pre class="input">${esc(JSON.stringify(r.input, null, 2))}</pre>`,
    '</details>',
    '</section>',
  ].join('\n');
  return htmlDocument(`kdumpsim: ${r.scenario}: ${r.verdict}`, body);
}
