// The matrix report as a string: a heat map with one coloured cell per
// combination, links to runs or to in-page details, a verdict summary,
// escaping and determinism.

import { describe, expect, it } from 'vitest';
import { renderMatrixHtml } from '../../src/report/html.js';
import type { MatrixResult } from '../../src/scenario/matrix-result.js';
import { XSS_IMG, XSS_SCRIPT, fourAxisMatrix, smallMatrix } from './report-fixtures.js';

function cellsOf(html: string): { verdict: string; index: number; href: string; text: string }[] {
  return [...html.matchAll(/<td class="cell[^"]*" data-verdict="([^"]+)" data-cell="(\d+)"[^>]*><a href="([^"]*)"[^>]*>(.*?)<\/a><\/td>/g)].map((m) => ({
    verdict: m[1]!,
    index: Number(m[2]),
    href: m[3]!,
    text: m[4]!,
  }));
}

describe('matrix report HTML', () => {
  it('draws one coloured cell per combination, rows and columns in axis order', () => {
    const m = smallMatrix();
    const html = renderMatrixHtml(m);
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toContain('id="heatmap"');
    const cells = cellsOf(html);
    expect(cells).toHaveLength(6);
    // Row-major: crashkernel 160M first, fault none / stray-dma-kernel / stray-dma-256M across.
    expect(cells.map((c) => c.index)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(cells.map((c) => c.verdict)).toEqual(m.cells.map((c) => c.verdict));
    expect(html).toMatch(/data-verdict="dump-complete" data-cell="0" style="background:#1f8a4c;color:#ffffff"/);
    expect(html).toMatch(/data-verdict="crash-kernel-hang" data-cell="1" style="background:#8c1d40/);
    // Verdict and short reason in the cell.
    expect(cells[1]!.text).toContain('<span class="v">crash-kernel-hang</span>');
    expect(cells[1]!.text).toContain('the capture kernel never came up');
    expect(cells[0]!.text).toContain('✓ as expected');
    const headers = [...html.matchAll(/<th class="col-label"[^>]*>([^<]*)<\/th>/g)].map((h) => h[1]);
    expect(headers).toEqual(['none', 'stray-dma-kernel', 'stray-dma-256M']);
  });

  it('counts cells per verdict', () => {
    const html = renderMatrixHtml(smallMatrix());
    const counts = Object.fromEntries([...html.matchAll(/<span class="count" data-verdict="([^"]+)">.*?<span class="n">(\d+)<\/span>/g)].map((c) => [c[1], Number(c[2])]));
    expect(counts).toEqual(smallMatrix().summary);
    expect(counts).toEqual({ 'dump-complete': 1, 'dump-partial': 1, 'crash-kernel-panic': 2, 'crash-kernel-hang': 2 });
    expect(html).toContain('6 cells. 1 of 1 cells with an expectation met it.');
  });

  it('links each cell to its run when runLink names one, and leaves out the in-page details', () => {
    const html = renderMatrixHtml(smallMatrix(), { runLink: (c) => `runs/${c.index}.html?id=${encodeURIComponent(c.id)}&x=1` });
    const cells = cellsOf(html);
    expect(cells.map((c) => c.href)).toEqual([0, 1, 2, 3, 4, 5].map((i) => `runs/${i}.html?id=${encodeURIComponent(smallMatrix().cells[i]!.id)}&amp;x=1`));
    expect(html).not.toContain('id="details"');
  });

  it('links to in-page details with each cell\'s chain when there is no run to link to', () => {
    const m = smallMatrix();
    const html = renderMatrixHtml(m, { runLink: (c) => (c.index === 2 ? 'javascript:alert(1)' : c.index === 3 ? 'runs/3.html' : undefined) });
    const cells = cellsOf(html);
    expect(cells.map((c) => c.href)).toEqual(['#cell-0', '#cell-1', '#cell-2', 'runs/3.html', '#cell-4', '#cell-5']);
    expect(html).not.toContain('javascript:');
    expect(html).toContain('id="details"');
    for (const c of m.cells) {
      const at = html.indexOf(`<section class="cell-detail" id="cell-${c.index}">`);
      expect(at).toBeGreaterThan(0);
      const end = html.indexOf('</section>', at);
      const detail = html.slice(at, end);
      expect(detail.match(/<li>/g)).toHaveLength(c.chain.length);
    }
  });

  it('merges header cells of two row and two column axes', () => {
    const m = fourAxisMatrix();
    const html = renderMatrixHtml(m);
    expect(cellsOf(html)).toHaveLength(24);
    // Columns: iommu (2) over dma (3): two groups of three.
    expect(html).toContain('<th class="col-label" scope="col" colspan="3">off</th><th class="col-label" scope="col" colspan="3">on</th>');
    // Rows: kernel (2) over memory (2): each kernel label spans two rows.
    expect(html.match(/<th scope="row" rowspan="2">6\.1<\/th>/g)).toHaveLength(1);
    expect(html).toContain('<th class="axis-name" colspan="2" scope="row">iommu →</th>');
    expect(html).toContain('<th class="row-axis-name" scope="col">memory ↓</th>');
  });

  it('marks combinations a shard did not run', () => {
    const m = smallMatrix();
    const shard: MatrixResult = { ...m, cells: m.cells.filter((c) => c.index % 2 === 0), shard: { index: 0, count: 2 } };
    const html = renderMatrixHtml(shard);
    expect(cellsOf(html)).toHaveLength(3);
    expect(html.match(/<td class="empty-cell"/g)).toHaveLength(3);
    expect(html).toContain('Shard 1 of 2: 3 of 6 cells.');
  });

  it('escapes axis labels, ids, reasons and chains', () => {
    const m = smallMatrix();
    m.name = `sweep ${XSS_SCRIPT}`;
    m.axes[1]!.labels[0] = XSS_IMG;
    m.cells[0]!.coords['fault'] = XSS_IMG;
    m.cells[0]!.id = `fault=${XSS_IMG}`;
    m.cells[0]!.reason = `because ${XSS_SCRIPT}`;
    m.cells[0]!.chain = [`[    1.0] kernel: ${XSS_SCRIPT}`];
    m.cells[0]!.expectationDifferences = [`verdict ${XSS_IMG}`];
    const html = renderMatrixHtml(m);
    expect(html).not.toContain(XSS_SCRIPT);
    expect(html).not.toContain(XSS_IMG);
    expect(html).not.toMatch(/<script|<img/i);
    expect(html).toContain('&lt;script&gt;window.__kdumpsimXss = 1&lt;/script&gt;');
    expect(cellsOf(html)[0]!.text).toContain('because &lt;script&gt;');
  });

  it('is deterministic', () => {
    const a = renderMatrixHtml(fourAxisMatrix());
    expect(renderMatrixHtml(fourAxisMatrix())).toBe(a);
    expect(renderMatrixHtml(JSON.parse(JSON.stringify(fourAxisMatrix())))).toBe(a);
  });
});
