// The doctor's answer on a terminal: the verdict, why (from the model's run),
// what the host's own logs confirm, the changes a re-run confirmed, and how
// the host was read.

import type { Diagnosis } from '../doctor/diagnose.js';
import type { Evidence } from '../doctor/host-facts.js';

function paint(on: boolean, code: string, s: string): string {
  return on ? `\u001b[${code}m${s}\u001b[0m` : s;
}

/** "file:line" for evidence, or the file alone. */
export function evidenceRef(e: Evidence): string {
  return e.line === undefined ? e.file : `${e.file}:${e.line}`;
}

export function renderDoctorText(d: Diagnosis, opts: { color: boolean; verbose?: boolean }): string {
  const c = opts.color;
  const out: string[] = [];
  const h = (s: string): void => {
    out.push('', paint(c, '1', s));
  };
  out.push(`${paint(c, '1', 'kdumpsim doctor')} ${d.origin}`);
  h('Verdict');
  const colour = d.readiness === 'ready' ? '1;32' : d.readiness === 'not-ready' ? '1;31' : '1;33';
  out.push('  ' + paint(c, colour, d.headline));
  if (d.reasons.length > 0) {
    h(d.readiness === 'unknown' ? 'Why the doctor cannot tell' : 'Why (the model\'s run of this host)');
    for (const r of d.reasons) out.push(`  - ${r}`);
  }
  if (d.reproduced.length > 0) {
    h('Seen on this host before, and printed by the model too');
    for (const e of d.reproduced) out.push(`  ${evidenceRef(e)}  ${e.text ?? ''}`);
  }
  if (d.readiness !== 'ready' && d.runs.length > 0) {
    h('Changes that give a complete dump (each confirmed by a re-run), cheapest first');
    if (d.fixes.length === 0) out.push('  none of the changes tried gives a complete dump');
    d.fixes.forEach((f, i) => {
      out.push(`  ${i + 1}. ${f.fixes.map((x) => x.title).join(', and ')}${f.fixes.some((x) => x.drawback) ? paint(c, '33', `  (costs: ${f.fixes.map((x) => x.drawback).filter(Boolean).join('; ')})`) : ''}`);
      for (const x of f.fixes) for (const l of x.lines) out.push(`       ${l}`);
    });
    if (d.rejected.length > 0) {
      h('Tried, no complete dump');
      for (const r of d.rejected) out.push(`  - ${r.title}: ${[...new Set(r.verdicts)].join(', ')}`);
    }
  }
  if (d.hazards.length > 0) {
    h('Ready today, but');
    for (const z of d.hazards) {
      out.push(`  - if ${z.title}: ${z.outcome}`);
      if (z.fixes.length === 0) out.push('      no change tried gives a complete dump then');
      for (const f of z.fixes.slice(0, 3)) {
        out.push(`      then: ${f.fixes.map((x) => x.title).join(', and ')}`);
        for (const x of f.fixes) for (const l of x.lines) out.push(`        ${l}`);
      }
    }
  }
  h('The host as modelled');
  for (const l of d.model.lines) {
    const ev = l.evidence.slice(0, 2).map(evidenceRef).join(', ');
    out.push(`  ${l.field.padEnd(28)} ${l.value}`);
    out.push(`  ${''.padEnd(28)} ${paint(c, '2', l.because + (ev ? ` [${ev}]` : ''))}`);
  }
  if (d.model.unknowns.length > 0) {
    h('Unknown (each value was run)');
    for (const u of d.model.unknowns) out.push(`  - ${u.fact}: ${u.reason}; ran ${u.alternatives.join(' / ')}`);
  }
  if (d.model.notes.length > 0) {
    h('Notes');
    for (const n of d.model.notes) out.push(`  - ${n}`);
  }
  const unread = d.facts.sources.filter((s) => s.status !== 'read');
  h('What was read');
  out.push(`  ${d.facts.sources.filter((s) => s.status === 'read').length} of ${d.facts.sources.length} sources read; ${d.runsMade} model runs`);
  for (const s of unread) {
    if (!opts.verbose && s.optional && s.status === 'missing') continue;
    out.push(`  ${s.optional ? 'optional' : 'needed  '} ${s.path}: ${s.status}${s.reason ? ` (${s.reason})` : ''}`);
  }
  const hidden = unread.filter((s) => s.optional && s.status === 'missing').length;
  if (!opts.verbose && hidden > 0) out.push(`  (${hidden} optional sources absent; --verbose lists them)`);
  if (opts.verbose) {
    for (const r of d.runs) {
      h(`Run${r.variant ? ` (${r.variant})` : ''}: ${r.verdict}`);
      for (const w of r.why) out.push(`  ${w}`);
      for (const l of r.captureLogTail) out.push(`  | ${l}`);
    }
  }
  return out.join('\n') + '\n';
}
