// The doctor's answer as one self-contained HTML page (no scripts, no network).

import type { Diagnosis } from '../doctor/diagnose.js';
import { esc, htmlDocument, verdictBadge } from './html-common.js';
import { evidenceRef } from './doctor-text.js';

const CSS = `
.ready { color: #17603a; } .not-ready { color: #8a1f27; } .unknown { color: #6b4b00; }
table.model td { vertical-align: top; padding: 2px 10px 2px 0; }
table.model td.ev { font-family: var(--mono); font-size: 12px; color: var(--muted); }
ol.fixes li { margin-bottom: 8px; } ol.fixes code { display: block; white-space: pre-wrap; }
`;

export function renderDoctorHtml(d: Diagnosis): string {
  const parts: string[] = [];
  parts.push(`<h1>kdumpsim doctor: ${esc(d.origin)}</h1>`);
  parts.push(`<section class="card"><h2>Verdict</h2><p class="${esc(d.readiness)}"><strong>${esc(d.headline)}</strong></p>`);
  if (d.reasons.length > 0) parts.push(`<ul>${d.reasons.map((r) => `<li>${esc(r)}</li>`).join('')}</ul>`);
  parts.push('</section>');
  if (d.reproduced.length > 0) {
    parts.push(`<section class="card"><h2>Seen on this host before, and printed by the model too</h2><ul class="log">${d.reproduced.map((e) => `<li><span class="ts">${esc(evidenceRef(e))}</span> ${esc(e.text ?? '')}</li>`).join('')}</ul></section>`);
  }
  if (d.readiness !== 'ready' && d.runs.length > 0) {
    parts.push('<section class="card"><h2>Changes that give a complete dump, cheapest first</h2>');
    parts.push(d.fixes.length === 0
      ? '<p class="empty">None of the changes tried gives a complete dump.</p>'
      : `<ol class="fixes">${d.fixes.map((f) => `<li>${esc(f.fixes.map((x) => x.title).join(', and '))}${f.fixes.map((x) => (x.drawback ? ` <em>(${esc(x.drawback)})</em>` : '')).join('')}${f.fixes.flatMap((x) => x.lines).map((l) => `<code>${esc(l)}</code>`).join('')}</li>`).join('')}</ol>`);
    if (d.rejected.length > 0) parts.push(`<h3>Tried, no complete dump</h3><ul>${d.rejected.map((r) => `<li>${esc(r.title)}: ${[...new Set(r.verdicts)].map((v) => verdictBadge(v)).join(' ')}</li>`).join('')}</ul>`);
    parts.push('</section>');
  }
  if (d.hazards.length > 0) {
    parts.push(`<section class="card"><h2>Ready today, but</h2><ul>${d.hazards.map((z) => `<li>if ${esc(z.title)}: ${esc(z.outcome)}${z.fixes.length === 0 ? ' <em>(no change tried helps then)</em>' : `<ul>${z.fixes.slice(0, 3).map((f) => `<li>then: ${esc(f.fixes.map((x) => x.title).join(', and '))}${f.fixes.flatMap((x) => x.lines).map((l) => `<code>${esc(l)}</code>`).join('')}</li>`).join('')}</ul>`}</li>`).join('')}</ul></section>`);
  }
  parts.push(`<section class="card"><h2>Runs</h2><ul>${d.runs.map((r) => `<li>${verdictBadge(r.verdict)} ${esc(r.variant || 'the host as read')}<ul class="log">${r.why.map((w) => `<li>${esc(w)}</li>`).join('')}</ul></li>`).join('')}</ul></section>`);
  parts.push(`<section class="card"><h2>The host as modelled</h2><table class="model">${d.model.lines.map((l) => `<tr><td>${esc(l.field)}</td><td>${esc(l.value)}</td><td>${esc(l.because)}</td><td class="ev">${esc(l.evidence.map(evidenceRef).join(', '))}</td></tr>`).join('')}</table>`);
  if (d.model.unknowns.length > 0) parts.push(`<h3>Unknown</h3><ul>${d.model.unknowns.map((u) => `<li>${esc(u.fact)}: ${esc(u.reason)} (ran ${esc(u.alternatives.join(' / '))})</li>`).join('')}</ul>`);
  if (d.model.notes.length > 0) parts.push(`<h3>Notes</h3><ul>${d.model.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`);
  parts.push('</section>');
  parts.push(`<section class="card"><h2>What was read</h2><table class="model">${d.facts.sources.map((s) => `<tr><td>${esc(s.path)}</td><td>${esc(s.status)}</td><td>${esc(s.optional ? 'optional' : 'needed')}</td><td class="ev">${esc(s.reason ?? '')}</td></tr>`).join('')}</table></section>`);
  return htmlDocument(`kdumpsim doctor: ${d.origin}`, parts.join('\n'), CSS);
}
