// The HTML reports in a real browser (Debian's Chromium via playwright-core):
// they render without errors or network requests, the charts have size and
// content, injected markup stays text, and a screenshot has something in it.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderMatrixHtml, renderRunHtml } from '../../src/report/html.js';
import { renderDoctorHtml } from '../../src/report/doctor-html.js';
import { openBundle } from '../../src/doctor/host-source.js';
import { readHostFacts } from '../../src/doctor/read-host-facts.js';
import { diagnose } from '../../src/doctor/diagnose.js';
import { launchChromium, openReport, pngSize, requireBrowser, screenshotDir, type OpenedReport } from './browser.js';
import { TIB_WRONG_PFN, XSS_IMG, XSS_SCRIPT, fourAxisMatrix, hangRun, hostileRun, smallMatrix, tibRun } from './report-fixtures.js';

const haveBrowser = requireBrowser();

/** The DOM as seen from a page function; this project's TypeScript lib has no DOM types. */
interface PageGlobals {
  getComputedStyle(el: unknown): Record<string, string>;
}

/** One computed style of an element (runs in the page). */
function computed(el: unknown, prop: string): string | undefined {
  return (globalThis as unknown as PageGlobals).getComputedStyle(el)[prop];
}

describe.skipIf(!haveBrowser)('HTML reports in Chromium', () => {
  let browser: Browser;
  const shots = screenshotDir();

  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    if (!shots.keep) fs.rmSync(shots.dir, { recursive: true, force: true });
  });

  /** No errors, and no request but the report file itself. */
  function expectQuiet(r: OpenedReport): void {
    expect(r.errors).toEqual([]);
    expect(r.requests).toEqual([r.url]);
  }

  async function expectScreenshot(r: OpenedReport, name: string, minBytes: number): Promise<{ width: number; height: number }> {
    const file = path.join(shots.dir, name);
    await r.page.screenshot({ path: file, fullPage: true });
    const bytes = fs.readFileSync(file);
    expect(bytes.length).toBeGreaterThan(minBytes);
    return pngSize(bytes);
  }

  async function expectChart(r: OpenedReport, selector: string, minRects: number): Promise<void> {
    const svg = r.page.locator(selector);
    const box = await svg.boundingBox();
    expect(box, `${selector} has no box`).not.toBeNull();
    expect(box!.width).toBeGreaterThan(600);
    expect(box!.height).toBeGreaterThan(60);
    expect(await svg.locator('rect').count()).toBeGreaterThanOrEqual(minRects);
  }

  it('shows a run report with charts, tooltips and injected markup as text, fetching nothing', async () => {
    const run = hostileRun();
    run.oracle.pageMap = tibRun().oracle.pageMap;
    const r = await openReport(browser, shots.dir, 'run.html', renderRunHtml(run));
    try {
      expectQuiet(r);
      const { page } = r;
      await expectChart(r, '#timeline svg#timeline-svg', 5);
      await expectChart(r, '#timeline svg#timeline-handoff-svg', 5);
      await expectChart(r, '#memory-map svg', 3);
      await expectChart(r, '#accounting svg', 7);
      for (const id of ['chain', 'logs-first', 'logs-capture']) expect(await page.locator(`#${id}`).isVisible()).toBe(true);

      // Injected markup is shown as text and never ran or loaded anything.
      const firstLog = (await page.textContent('#logs-first')) ?? '';
      expect(firstLog).toContain(XSS_SCRIPT);
      expect(firstLog).toContain(XSS_IMG);
      expect(await page.textContent('#chain')).toContain(XSS_SCRIPT);
      expect(await page.textContent('h1')).toBe(run.scenario);
      expect(await page.evaluate('typeof window.__kdumpsimXss')).toBe('undefined');
      expect(await page.locator('script, img, iframe').count()).toBe(0);

      // Trace events carry their tooltip.
      const tips = await page.locator('#timeline-svg circle.event > title').allTextContents();
      expect(tips.some((t) => t.includes('purgatory digest-ok'))).toBe(true);

      // A single wrong page in 1 TiB is still a few pixels wide on screen.
      const mark = await page.locator(`#memory-map rect[data-fate="wrong"][data-start-pfn="${TIB_WRONG_PFN}"]`).boundingBox();
      expect(mark!.width).toBeGreaterThanOrEqual(3);
      expect(mark!.height).toBeGreaterThanOrEqual(20);

      // Marked log lines stand out; "show only marked" hides the rest without a script.
      const panicLine = page.locator('#logs-first li.m-panic').first();
      expect(await panicLine.evaluate(computed, 'borderLeftColor')).toBe('rgb(198, 47, 59)');
      const before = await page.locator('#logs-first li:visible').count();
      await page.locator('#logs-first input.only-marked-toggle').check();
      const after = await page.locator('#logs-first li:visible').count();
      expect(after).toBe(await page.locator('#logs-first li.marked').count());
      expect(after).toBeLessThan(before);

      // Nothing overflows sideways at a laptop width.
      expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(1280);
      const size = await expectScreenshot(r, 'run.png', 60_000);
      expect(size.width).toBe(1280);
      expect(size.height).toBeGreaterThan(2000);
      expectQuiet(r);
    } finally {
      await r.close();
    }
  });

  it('shows a failed run: empty capture log, memory marked missing, no capture-kernel milestone', async () => {
    const r = await openReport(browser, shots.dir, 'run-hang.html', renderRunHtml(hangRun()));
    try {
      expectQuiet(r);
      await expectChart(r, '#timeline svg#timeline-svg', 5);
      await expectChart(r, '#memory-map svg', 3);
      expect(await r.page.textContent('#logs-capture')).toContain('The capture kernel printed nothing');
      expect(await r.page.locator('#memory-map rect[data-fate="missing"]').count()).toBeGreaterThan(0);
      expect(await r.page.locator('#timeline [data-milestone="capture-start"]').count()).toBe(0);
      await expectScreenshot(r, 'run-hang.png', 50_000);
    } finally {
      await r.close();
    }
  });

  it('shows a doctor report: verdict, confirmed fix, evidence; markup in a host path stays text', async () => {
    const bundle = path.join(import.meta.dirname, '..', 'fixtures', 'doctor', 'F10-no-reservation-ubuntu-range');
    const d = diagnose(readHostFacts(openBundle(bundle), `host ${XSS_SCRIPT}`));
    const r = await openReport(browser, shots.dir, 'doctor.html', renderDoctorHtml(d));
    try {
      expectQuiet(r);
      const text = (await r.page.textContent('main')) ?? '';
      expect(text).toContain('Not ready');
      expect(text).toContain('crashkernel=192M');
      expect(text).toContain('/sys/kernel/kexec_crash_size:1');
      expect(text).toContain(XSS_SCRIPT);
      expect(await r.page.locator('main script').count()).toBe(0);
      await expectScreenshot(r, 'doctor.png', 20_000);
    } finally {
      await r.close();
    }
  });

  it('shows a matrix heat map whose cells lead to their details', async () => {
    const r = await openReport(browser, shots.dir, 'matrix.html', renderMatrixHtml(smallMatrix()));
    try {
      expectQuiet(r);
      const { page } = r;
      const heat = await page.locator('#heatmap').boundingBox();
      expect(heat!.width).toBeGreaterThan(400);
      expect(heat!.height).toBeGreaterThan(150);
      const cells = page.locator('#heatmap td.cell');
      expect(await cells.count()).toBe(6);
      expect(await cells.first().evaluate(computed, 'backgroundColor')).toBe('rgb(31, 138, 76)');
      await page.locator('#heatmap td.cell[data-cell="1"] a').click();
      expect(new URL(page.url()).hash).toBe('#cell-1');
      expect(await page.locator('#cell-1').isVisible()).toBe(true);
      expect(await page.textContent('#cell-1')).toContain('spinning forever');
      await expectScreenshot(r, 'matrix.png', 40_000);
      expect(new Set(r.requests.map((u) => u.split('#')[0]))).toEqual(new Set([r.url]));
      expect(r.errors).toEqual([]);
    } finally {
      await r.close();
    }
  });

  it('shows a 24-cell matrix over four axes with run links, fetching nothing', async () => {
    const r = await openReport(browser, shots.dir, 'matrix-4.html', renderMatrixHtml(fourAxisMatrix(), { runLink: (c) => `runs/${c.index}.html` }));
    try {
      expectQuiet(r);
      expect(await r.page.locator('#heatmap td.cell').count()).toBe(24);
      expect(await r.page.locator('#heatmap td.cell a[href="runs/5.html"]').count()).toBe(1);
      const box = await r.page.locator('#heatmap').boundingBox();
      expect(box!.width).toBeGreaterThan(800);
      await expectScreenshot(r, 'matrix-4.png', 40_000);
    } finally {
      await r.close();
    }
  });
});
