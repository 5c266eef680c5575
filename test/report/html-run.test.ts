// The run report as a string: self-contained, escaped, deterministic, and
// showing what a reader needs (the sections, the milestones, the odd pages).

import { describe, expect, it } from 'vitest';
import { logMarks, renderRunHtml } from '../../src/report/html.js';
import { MIN_W, RUN_TABLE_LIMIT } from '../../src/report/svg-memory-map.js';
import { runScenario } from '../../src/scenario/run.js';
import { smallScenario } from '../helpers/small-scenario.js';
import { TIB_WRONG_PFN, XSS_IMG, XSS_SCRIPT, completeRun, hangRun, hostileRun, partialRun, scatteredRun, tibRun } from './report-fixtures.js';

const SECTION_IDS = ['timeline', 'memory-map', 'chain', 'logs-first', 'logs-capture', 'accounting'];

/** The markup of the element with this id, up to its closing tag (sections do not nest). */
function section(html: string, id: string): string {
  const start = html.indexOf(`id="${id}"`);
  expect(start, `no element with id="${id}"`).toBeGreaterThan(0);
  const open = html.lastIndexOf('<', start);
  const tag = /^<(\w+)/.exec(html.slice(open))![1]!;
  const end = html.indexOf(`</${tag}>`, start);
  return html.slice(open, end + tag.length + 3);
}

function rects(svg: string): { attrs: Record<string, string> }[] {
  return [...svg.matchAll(/<rect\b([^>]*)>/g)].map((m) => ({
    attrs: Object.fromEntries([...m[1]!.matchAll(/([\w-]+)="([^"]*)"/g)].map((a) => [a[1]!, a[2]!])),
  }));
}

describe('run report HTML', () => {
  it('renders a fresh run of the small scenario with every section', () => {
    const r = runScenario(smallScenario());
    const html = renderRunHtml(r);
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    for (const id of SECTION_IDS) expect(html).toContain(`id="${id}"`);
    expect(html).toContain(`>${r.verdict}</span>`);
    expect(html).toContain(r.scenario);
    // Each id once: tests and links can rely on them.
    for (const id of SECTION_IDS) expect(html.split(`id="${id}"`).length - 1).toBe(1);
  });

  it('is self-contained: no scripts, no external resources, and a policy that forbids both', () => {
    for (const r of [completeRun(), hangRun(), tibRun()]) {
      const html = renderRunHtml(r);
      expect(html).not.toMatch(/<script/i);
      expect(html).not.toMatch(/<link\b|<img\b|<iframe\b|<object\b|@import|url\(/i);
      expect(html).not.toMatch(/\s(src|srcset)=/i);
      // The only URLs are SVG namespace names, which are never fetched.
      const urls = [...html.matchAll(/https?:\/\/[^\s"'<>)]+/g)].map((m) => m[0]);
      expect(new Set(urls)).toEqual(new Set(['http://www.w3.org/2000/svg']));
      expect(html).toContain(`<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`);
    }
  });

  it('escapes markup from logs, chain, trace, page errors and the scenario name', () => {
    const html = renderRunHtml(hostileRun());
    expect(html).not.toContain(XSS_SCRIPT);
    expect(html).not.toContain(XSS_IMG);
    expect(html).not.toContain('<b>"host"</b>');
    expect(html).toContain('&lt;script&gt;window.__kdumpsimXss = 1&lt;/script&gt;');
    expect(html).toContain('&lt;img src=x onerror=&quot;window.__kdumpsimXss = 2&quot;&gt;');
    expect(html).toContain('evil &lt;b&gt;&quot;host&quot;&lt;/b&gt; &amp; &#39;friends&#39;');
    // Inside an SVG <title> too: the trace detail cannot close the tooltip.
    expect(html).toContain('&lt;/title&gt;&lt;script&gt;');
    // The closing tags in a capture-log line do not end the log early.
    const capture = section(html, 'logs-capture');
    expect(capture).toContain('&lt;/li&gt;&lt;/ol&gt;&lt;/div&gt;');
  });

  it('is deterministic: the same result, and the same scenario run twice, give the same bytes', () => {
    const r = partialRun();
    const a = renderRunHtml(r);
    expect(renderRunHtml(JSON.parse(JSON.stringify(r)))).toBe(a);
    expect(renderRunHtml(partialRun())).toBe(a);
    const s = smallScenario({ seed: 11 });
    expect(renderRunHtml(runScenario(s))).toBe(renderRunHtml(runScenario(smallScenario({ seed: 11 }))));
    expect(a).not.toMatch(/\b20\d\d-\d\d-\d\d/); // no dates
  });

  it('heads the page with the scenario, seed, a coloured verdict and key figures', () => {
    const r = completeRun();
    const head = section(renderRunHtml(r), 'summary');
    expect(head).toMatch(/<span class="verdict big" style="background:#1f8a4c;color:#ffffff"[^>]*>dump-complete<\/span>/);
    expect(head).toContain('<dt>Seed</dt><dd>7</dd>');
    expect(head).toContain('Panic → capture kernel');
    expect(head).toContain('Pages correct');
    const hang = section(renderRunHtml(hangRun()), 'summary');
    expect(hang).toMatch(/style="background:#8c1d40[^"]*"[^>]*>crash-kernel-hang</);
    expect(hang).toContain('never started');
    expect(hang).toContain('not saved');
  });

  it('lists the causal chain in order, the decisive step last', () => {
    const r = partialRun();
    const chain = section(renderRunHtml(r), 'chain');
    const items = [...chain.matchAll(/<li( class="([^"]*)")?>/g)];
    expect(items).toHaveLength(r.chain.length);
    expect(items[items.length - 1]![2]).toBe('decisive');
    expect(chain).toContain('fault injected (crash-kernel-init)');
    const at = (s: string): number => chain.indexOf(s);
    expect(at('panic on CPU 1')).toBeLessThan(at('jumps to purgatory'));
    expect(at('jumps to purgatory')).toBeLessThan(at('2 wrong'));
  });

  it('draws the timeline in three lanes with the handoff milestones and trace events as tooltips', () => {
    const r = completeRun();
    const tl = section(renderRunHtml(r), 'timeline');
    for (const lane of ['first', 'handoff', 'capture']) expect(tl).toContain(`data-lane="${lane}"`);
    for (const m of ['boot', 'panic', 'purgatory', 'capture-start', 'vmcore-saved']) expect(tl).toContain(`data-milestone="${m}"`);
    expect(rects(tl).length).toBeGreaterThan(6);
    const dots = [...tl.matchAll(/<circle class="event(?: alarm)?" data-count="(\d+)"/g)].reduce((n, m) => n + Number(m[1]), 0);
    // Every event is drawn in the full view; the zoomed handoff draws some again.
    expect(dots).toBeGreaterThanOrEqual(r.trace.length);
    expect(tl).toContain('purgatory digest-ok: SHA-256 of 4 segments');
    // The handoff takes microseconds of a run of seconds: a zoomed panel shows it.
    expect(tl).toContain('id="timeline-handoff-svg"');
  });

  it('leaves out the milestones a hang never reached', () => {
    const tl = section(renderRunHtml(hangRun()), 'timeline');
    expect(tl).toContain('data-milestone="panic"');
    expect(tl).toContain('data-milestone="purgatory"');
    expect(tl).not.toContain('data-milestone="capture-start"');
    expect(tl).not.toContain('data-milestone="vmcore-saved"');
    expect(tl).toContain('after the panic: no capture kernel');
    // The injected fault and purgatory's digest mismatch stand out.
    const alarms = [...tl.matchAll(/<circle class="event alarm"[^>]*><title>([^<]*)<\/title>/g)].map((m) => m[1]!);
    expect(alarms.some((t) => t.includes('stray-dma fault: fault injected'))).toBe(true);
    expect(alarms.some((t) => t.includes('purgatory digest-mismatch'))).toBe(true);
  });

  it('charts the page accounting with the oracle figures', () => {
    const r = partialRun();
    const acc = section(renderRunHtml(r), 'accounting');
    const value = (key: string): number => Number(new RegExp(`data-key="${key}" data-value="(\\d+)"`).exec(acc)![1]);
    expect(value('expected')).toBe(r.oracle.pagesExpected);
    expect(value('correct')).toBe(r.oracle.pagesCorrect);
    expect(value('wrong')).toBe(2);
    expect(value('changed-after-panic')).toBe(r.oracle.pagesChangedAfterPanic);
    expect(acc).toContain('overwritten after the panic by DMA from stray-dma');
  });

  it('marks log lines that mattered: chain quotes, panic, crashkernel, warnings', () => {
    const chain = ['[    1.0] kernel: AMD-Vi: Completion-Wait loop timed out'];
    expect(logMarks('[    1.000000] AMD-Vi: Completion-Wait loop timed out', chain)).toEqual(['chain', 'warning']);
    expect(logMarks('[    3.443830] Kernel panic - not syncing: sysrq triggered crash', [])).toEqual(['panic']);
    expect(logMarks('[    0.004000] Reserving 256MB of memory at 2800MB for crashkernel (System RAM: 8191MB)', [])).toEqual(['reserve']);
    expect(logMarks('[    0.5] WARNING: CPU: 0 PID: 1 at drivers/iommu/amd/init.c:123', [])).toEqual(['warning']);
    expect(logMarks('[    0.000000] BIOS-e820: [mem 0x0-0x9fbff] usable', [])).toEqual([]);

    const html = renderRunHtml(completeRun());
    const first = section(html, 'logs-first');
    expect(first).toMatch(/<li class="marked m-panic">[^\n]*Kernel panic - not syncing/);
    expect(first).toMatch(/<li class="marked m-reserve">[^\n]*crashkernel=160M/);
    expect(first).toMatch(/<li><span class="ts">[^\n]*BIOS-provided physical RAM map/);
    expect(first.match(/<li\b/g)).toHaveLength(completeRun().logs.firstKernel.length);
    const capture = section(html, 'logs-capture');
    expect(capture).toMatch(/<li class="marked m-reserve">[^\n]*elfcorehdr=/);
  });

  it('says so when the capture kernel printed nothing', () => {
    const capture = section(renderRunHtml(hangRun()), 'logs-capture');
    expect(capture).toContain('The capture kernel printed nothing');
    expect(capture).not.toContain('<li');
  });

  it('maps 1 TiB with a single wrong page: the page gets a visible mark and a table row', () => {
    const html = renderRunHtml(tibRun());
    const map = section(html, 'memory-map');
    const all = rects(map);
    const wrong = all.filter((r) => r.attrs['data-fate'] === 'wrong');
    expect(wrong).toHaveLength(1);
    expect(Number(wrong[0]!.attrs['width'])).toBeGreaterThanOrEqual(MIN_W);
    expect(wrong[0]!.attrs['data-start-pfn']).toBe(String(TIB_WRONG_PFN));
    const dma = all.filter((r) => r.attrs['data-fate'] === 'changed-by-dma');
    expect(dma).toHaveLength(1);
    // The mark near the top of memory stays inside the drawing.
    const svgW = Number(/viewBox="0 0 (\d+)/.exec(map)![1]);
    expect(Number(dma[0]!.attrs['x']) + Number(dma[0]!.attrs['width'])).toBeLessThanOrEqual(svgW);
    expect(map).toContain(`<tr data-fate="wrong"><td class="mono">0x${(TIB_WRONG_PFN * 4096).toString(16)}</td>`);
    expect(map).toContain('1 TiB of physical address space');
    // The legend names every fate.
    for (const f of ['correct', 'changed-by-dma', 'ciphertext', 'wrong', 'missing', 'not-in-dump']) expect(map).toContain(`<span data-fate="${f}"`);
  });

  it('keeps a map with many odd pages bounded and lists only the first runs', () => {
    // 20,000 one-page runs in 8 GiB: closer together than the minimum mark width.
    const n = 20_000;
    const map = section(renderRunHtml(scatteredRun(n)), 'memory-map');
    const special = rects(map).filter((r) => r.attrs['class'] === 'run special');
    expect(special.length).toBeGreaterThan(1000);
    // At most one mark per fate per MIN_W slot of each of the 8 rows.
    expect(special.length).toBeLessThanOrEqual(8 * Math.ceil(1100 / MIN_W) * 4);
    expect(special.length).toBeLessThan(n / 2);
    expect(map).toMatch(/\(\d+ runs, \d+ pages\)<\/title>/);
    expect(map.match(/<tr data-fate=/g)).toHaveLength(RUN_TABLE_LIMIT);
    expect(map).toContain(`first ${RUN_TABLE_LIMIT} of 20,000`);
    expect(map).toContain('19,950 more runs not listed');
  });

  it('colours the failed run\'s memory as missing', () => {
    const map = section(renderRunHtml(hangRun()), 'memory-map');
    const missing = rects(map).filter((r) => r.attrs['data-fate'] === 'missing');
    expect(missing.length).toBeGreaterThan(0);
    expect(missing.reduce((w, r) => w + Number(r.attrs['width']), 0)).toBeGreaterThan(500);
  });
});
