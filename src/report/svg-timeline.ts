// The run's timeline in virtual time, as inline SVG: three lanes (first
// kernel; hardware and purgatory; capture kernel) with the phases each was
// in, the milestones of the handoff as vertical markers, and the trace
// events as dots whose <title> is the tooltip.
//
// The handoff from panic to capture kernel usually takes microseconds of a
// run that lasts seconds, so when it would be squeezed into a few pixels a
// second, zoomed panel shows just that window.

import type { RunResult } from '../scenario/result.js';
import { esc, fmtDuration, fmtSeconds, fmtTick, niceTicks, r2 } from './html-common.js';

type TraceEvent = RunResult['trace'][number];
type LaneId = 'first' | 'handoff' | 'capture';

const LANES: readonly { id: LaneId; label: string; sub: string; track: string; dot: string }[] = [
  { id: 'first', label: 'First kernel', sub: 'source "kernel"', track: '#eef3fb', dot: '#2f5fb3' },
  { id: 'handoff', label: 'Hardware / purgatory', sub: 'CPUs, devices, purgatory', track: '#fbf5ea', dot: '#b86e00' },
  { id: 'capture', label: 'Capture kernel', sub: 'source "crash-kernel"', track: '#eef8f1', dot: '#1f8a4c' },
];

/** Which lane an event belongs in, by who acted. */
export function laneOf(ev: Pick<TraceEvent, 'source'>): LaneId {
  if (ev.source === 'kernel') return 'first';
  if (ev.source === 'crash-kernel') return 'capture';
  return 'handoff';
}

const ALARM_COLOR = '#d7263d';

/** Events drawn in red: injected faults and things that went wrong. */
export function isAlarm(ev: Pick<TraceEvent, 'kind'>): boolean {
  return /fault|mismatch|timeout|timed-out|error|violation|refused|fail|hang|oops/i.test(ev.kind);
}

export interface Milestone {
  id: 'boot' | 'panic' | 'purgatory' | 'capture-start' | 'vmcore-saved';
  label: string;
  t: number;
  color: string;
}

/** The handoff milestones of a run, in time order; those that never happened are left out. */
export function milestones(r: RunResult): Milestone[] {
  const m = r.metrics;
  const out: Milestone[] = [{ id: 'boot', label: 'booted', t: m.firstKernelBootedNs, color: '#2f5fb3' }];
  out.push({ id: 'panic', label: 'panic', t: m.panicNs, color: '#c62f3b' });
  const purg =
    r.trace.find((e) => e.kind === 'jump' && /purgatory/i.test(e.detail) && e.t >= m.panicNs) ??
    r.trace.find((e) => e.source === 'purgatory');
  if (purg) out.push({ id: 'purgatory', label: 'purgatory', t: purg.t, color: '#b86e00' });
  if (m.crashKernelStartNs !== null) out.push({ id: 'capture-start', label: 'capture kernel', t: m.crashKernelStartNs, color: '#1f8a4c' });
  if (m.vmcoreSavedNs !== null) out.push({ id: 'vmcore-saved', label: 'vmcore saved', t: m.vmcoreSavedNs, color: '#0f6b3a' });
  return out.sort((a, b) => a.t - b.t);
}

interface Span {
  lane: LaneId;
  from: number;
  to: number;
  label: string;
  fill: string;
  fg: string;
}

function phaseSpans(r: RunResult): Span[] {
  const m = r.metrics;
  const end = Math.max(m.endNs, m.panicNs, m.vmcoreSavedNs ?? 0, m.crashKernelStartNs ?? 0);
  const booted = Math.min(m.firstKernelBootedNs, m.panicNs);
  const spans: Span[] = [
    { lane: 'first', from: 0, to: booted, label: 'boot', fill: '#9fbbe3', fg: '#10264d' },
    { lane: 'first', from: booted, to: m.panicNs, label: 'running', fill: '#4f7fcc', fg: '#ffffff' },
  ];
  const handoffEnd = m.crashKernelStartNs ?? end;
  spans.push({
    lane: 'handoff',
    from: m.panicNs,
    to: handoffEnd,
    label: m.crashKernelStartNs === null ? 'after the panic: no capture kernel' : 'panic → capture kernel',
    fill: '#f0b54d',
    fg: '#3b2500',
  });
  if (m.crashKernelStartNs !== null) {
    const saved = m.vmcoreSavedNs ?? end;
    spans.push({
      lane: 'capture',
      from: m.crashKernelStartNs,
      to: saved,
      label: m.vmcoreSavedNs === null ? 'capture kernel (no vmcore saved)' : 'capture kernel saving the vmcore',
      fill: '#45a86e',
      fg: '#ffffff',
    });
    if (m.vmcoreSavedNs !== null && end > m.vmcoreSavedNs) {
      spans.push({ lane: 'capture', from: m.vmcoreSavedNs, to: end, label: 'reboot', fill: '#a9d9bb', fg: '#0b2815' });
    }
  }
  return spans.filter((s) => s.to > s.from || s.lane === 'handoff');
}

export interface TimelineWindow {
  t0: number;
  t1: number;
  /** Ticks are shown relative to this time (the panic in the zoomed panel). */
  origin: number | null;
  title: string;
}

const W = 1100;
const GUTTER = 176;
const RIGHT = 24;
const PLOT_W = W - GUTTER - RIGHT;
const LANE_H = 48;
/** Within a lane: trace events along the top, the phase bar below them. */
const EVENT_Y = 14;
const BAR_Y = 27;
const BAR_H = 17;
const LANE_GAP = 10;
const LABEL_ROW_H = 17;
const CHAR_W = 6.6;

/** One SVG panel of the timeline over `win`. */
export function timelinePanel(r: RunResult, win: TimelineWindow, id: string): string {
  const span = Math.max(1, win.t1 - win.t0);
  const x = (t: number): number => GUTTER + ((Math.min(Math.max(t, win.t0), win.t1) - win.t0) / span) * PLOT_W;
  const inWin = (t: number): boolean => t >= win.t0 && t <= win.t1;
  const rel = (t: number): string => (win.origin === null ? fmtSeconds(t) : `${t >= win.origin ? '+' : '−'}${fmtDuration(Math.abs(t - win.origin))} after the panic`);

  // Milestone labels, laid out in rows so they never overlap.
  const ms = milestones(r).filter((m) => inWin(m.t));
  const rowsEnd: number[] = [];
  const placed = ms.map((m) => {
    const text = `${m.label} ${win.origin === null ? `${(m.t / 1e9).toFixed(3)} s` : relLabel(m.t - win.origin)}`;
    const w = text.length * CHAR_W;
    const mx = x(m.t);
    const anchorEnd = mx + w > W - 4;
    const left = anchorEnd ? mx - w : mx;
    let row = rowsEnd.findIndex((end) => left > end + 10);
    if (row < 0) {
      row = rowsEnd.length;
      rowsEnd.push(0);
    }
    rowsEnd[row] = left + w;
    return { m, text, mx, row, anchorEnd };
  });
  const labelRows = Math.max(1, rowsEnd.length);
  const lanesTop = 10 + labelRows * LABEL_ROW_H + 6;
  const laneY = (i: number): number => lanesTop + i * (LANE_H + LANE_GAP);
  const lanesBottom = laneY(LANES.length) - LANE_GAP;
  const axisY = lanesBottom + 8;
  const height = axisY + 30;

  const out: string[] = [];
  out.push(
    `<svg id="${esc(id)}" class="chart timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${r2(height)}" role="img" aria-label="${esc(win.title)}">`,
    `<title>${esc(win.title)}</title>`,
  );

  // Axis with ticks.
  const origin = win.origin ?? 0;
  const { step, ticks } = niceTicks(win.t0 - origin, win.t1 - origin, 9);
  out.push(`<g class="axis"><line x1="${GUTTER}" x2="${GUTTER + PLOT_W}" y1="${r2(axisY)}" y2="${r2(axisY)}" stroke="#9aa3b2"/>`);
  for (const tk of ticks) {
    const tx = x(tk + origin);
    const label = win.origin === null ? fmtTick(tk, step) : (tk > 0 ? '+' : tk < 0 ? '−' : '') + fmtTick(Math.abs(tk), step);
    out.push(
      `<line x1="${r2(tx)}" x2="${r2(tx)}" y1="${r2(lanesTop)}" y2="${r2(axisY + 4)}" stroke="#e3e7ee" stroke-width="1"/>`,
      `<text x="${r2(tx)}" y="${r2(axisY + 18)}" text-anchor="middle">${esc(label)}</text>`,
    );
  }
  out.push('</g>');

  // Lanes: label, track, phase spans.
  LANES.forEach((lane, i) => {
    const y = laneY(i);
    out.push(
      `<g class="lane" data-lane="${lane.id}">`,
      `<text x="8" y="${r2(y + 20)}" font-weight="600">${esc(lane.label)}</text>`,
      `<text x="8" y="${r2(y + 35)}" class="muted" font-size="11">${esc(lane.sub)}</text>`,
      `<rect x="${GUTTER}" y="${r2(y)}" width="${PLOT_W}" height="${LANE_H}" rx="4" fill="${lane.track}" fill-opacity="0.8"/>`,
    );
    for (const s of phaseSpans(r).filter((p) => p.lane === lane.id)) {
      if (s.to < win.t0 || s.from > win.t1) continue;
      const x0 = x(s.from);
      const w = Math.max(2, x(s.to) - x0);
      out.push(
        `<rect class="phase" x="${r2(x0)}" y="${r2(y + BAR_Y)}" width="${r2(w)}" height="${BAR_H}" rx="3" fill="${s.fill}">` +
          `<title>${esc(`${s.label}: ${rel(s.from)} to ${rel(s.to)} (${fmtDuration(s.to - s.from)})`)}</title></rect>`,
      );
      if (w > s.label.length * CHAR_W + 12) {
        out.push(`<text x="${r2(x0 + 6)}" y="${r2(y + BAR_Y + BAR_H / 2 + 4)}" fill="${s.fg}" font-size="11.5" pointer-events="none">${esc(s.label)}</text>`);
      }
    }
    if (lane.id === 'capture' && r.metrics.crashKernelStartNs === null && inWin(r.metrics.panicNs)) {
      out.push(`<text x="${r2(Math.min(x(r.metrics.panicNs) + 6, W - RIGHT - 140))}" y="${r2(y + BAR_Y + BAR_H / 2 + 4)}" class="muted" font-style="italic" font-size="11.5">never started</text>`);
    }
    out.push('</g>');
  });

  // Milestones: a line through the lanes and a label above them.
  out.push('<g class="milestones">');
  for (const p of placed) {
    const ly = 10 + p.row * LABEL_ROW_H + 12;
    out.push(
      `<g class="milestone" data-milestone="${p.m.id}">`,
      `<title>${esc(`${p.m.label} at ${fmtSeconds(p.m.t)}`)}</title>`,
      `<line x1="${r2(p.mx)}" x2="${r2(p.mx)}" y1="${r2(ly + 3)}" y2="${r2(lanesBottom)}" stroke="${p.m.color}" stroke-width="1.5" stroke-dasharray="4 3"/>`,
      `<text x="${r2(p.anchorEnd ? p.mx - 3 : p.mx + 3)}" y="${r2(ly)}" fill="${p.m.color}" font-weight="600" text-anchor="${p.anchorEnd ? 'end' : 'start'}">${esc(p.text)}</text>`,
      '</g>',
    );
  }
  out.push('</g>');

  // Trace events: grouped by lane and pixel so a burst becomes one dot whose tooltip lists it.
  out.push('<g class="events">');
  LANES.forEach((lane, i) => {
    const evs = r.trace.filter((e) => laneOf(e) === lane.id && inWin(e.t)).sort((a, b) => a.t - b.t);
    const groups: { x: number; evs: TraceEvent[] }[] = [];
    for (const e of evs) {
      const ex = x(e.t);
      const g = groups[groups.length - 1];
      if (g && ex - g.x < 1.5) g.evs.push(e);
      else groups.push({ x: ex, evs: [e] });
    }
    const levelEnd = [-Infinity, -Infinity, -Infinity];
    const offsets = [0, -6, 6];
    const cy = laneY(i) + EVENT_Y;
    for (const g of groups) {
      let level = levelEnd.findIndex((end) => g.x - end >= 9);
      if (level < 0) level = levelEnd.indexOf(Math.min(...levelEnd));
      levelEnd[level] = g.x;
      const lines = g.evs.slice(0, 12).map((e) => `${fmtSeconds(e.t)}  ${e.source} ${e.kind}: ${e.detail}`);
      if (g.evs.length > 12) lines.push(`… and ${g.evs.length - 12} more`);
      const rad = g.evs.length > 1 ? 5.5 : 4.5;
      const alarm = g.evs.some(isAlarm);
      out.push(
        `<circle class="event${alarm ? ' alarm' : ''}" data-count="${g.evs.length}" cx="${r2(g.x)}" cy="${r2(cy + offsets[level]!)}" r="${rad}" fill="${alarm ? ALARM_COLOR : lane.dot}" stroke="#ffffff" stroke-width="1.5">` +
          `<title>${esc(lines.join('\n'))}</title></circle>`,
      );
    }
  });
  out.push('</g>');
  out.push('</svg>');
  return out.join('\n');
}

function relLabel(d: number): string {
  if (d === 0) return '+0';
  return `${d > 0 ? '+' : '−'}${fmtDuration(Math.abs(d))}`;
}

/**
 * The whole timeline: the full run, and when the panic-to-capture handoff is
 * too short to see at that scale, a zoomed panel of it.
 */
export function renderTimeline(r: RunResult): string {
  const m = r.metrics;
  const end = Math.max(1, m.endNs, m.panicNs, m.vmcoreSavedNs ?? 0, m.crashKernelStartNs ?? 0);
  const parts: string[] = [timelinePanel(r, { t0: 0, t1: end, origin: null, title: 'Timeline of the whole run in virtual time' }, 'timeline-svg')];

  // The handoff: from the panic to the capture kernel's start, or to the last
  // thing that happened before the run gave up.
  const lastEvent = r.trace.reduce((t, e) => Math.max(t, e.t), m.panicNs);
  const hEnd = m.crashKernelStartNs ?? lastEvent;
  const hSpan = hEnd - m.panicNs;
  if (hSpan < end * 0.02) {
    const pad = Math.max(hSpan * 0.12, 1000);
    parts.push(
      m.crashKernelStartNs === null
        ? `<h3>The handoff, zoomed: the last event came ${esc(fmtDuration(hSpan))} after the panic, then nothing for ${esc(fmtDuration(end - hEnd))}</h3>`
        : `<h3>The handoff, zoomed: panic to capture kernel start took ${esc(fmtDuration(hSpan))}</h3>`,
      timelinePanel(r, { t0: m.panicNs - pad, t1: hEnd + pad, origin: m.panicNs, title: 'The handoff from panic to capture kernel, zoomed' }, 'timeline-handoff-svg'),
    );
  }
  return parts.join('\n');
}
