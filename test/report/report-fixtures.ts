// Results for the HTML report tests: saved runs and a saved matrix (see
// fixtures/make-fixtures.ts), and synthetic variants built from them: a run
// whose logs and names try to inject markup, and a 1 TiB machine with a
// single odd page in it.

import * as fs from 'node:fs';
import type { PageFateRun, RunResult } from '../../src/scenario/result.js';
import type { MatrixCell, MatrixResult } from '../../src/scenario/matrix-result.js';

const FIXTURES = new URL('./fixtures/', import.meta.url);

function load<T>(name: string): T {
  return JSON.parse(fs.readFileSync(new URL(name, FIXTURES), 'utf8')) as T;
}

/** A complete dump of the small host (with DMA-changed pages). */
export const completeRun = (): RunResult => load<RunResult>('run-complete.json');
/** A partial dump: a stray DMA write corrupted two pages as the capture kernel started. */
export const partialRun = (): RunResult => load<RunResult>('run-partial.json');
/** A hang: purgatory found the kernel segment corrupted and spun; no capture kernel, empty capture log. */
export const hangRun = (): RunResult => load<RunResult>('run-hang.json');
/** Six cells: crashkernel (160M, 16M) × fault (none, stray-dma-kernel, stray-dma-256M). */
export const smallMatrix = (): MatrixResult => load<MatrixResult>('matrix.json');

/** Sets `window.__kdumpsimXss` if it ever runs. */
export const XSS_SCRIPT = '<script>window.__kdumpsimXss = 1</script>';
export const XSS_IMG = '<img src=x onerror="window.__kdumpsimXss = 2">';

/** A run whose scenario name, logs, chain and trace carry markup that must be shown as text. */
export function hostileRun(): RunResult {
  const r = completeRun();
  r.scenario = `evil <b>"host"</b> & 'friends'`;
  r.logs.firstKernel = [...r.logs.firstKernel, `[    3.500000] hostile: ${XSS_SCRIPT}`, `[    3.500001] hostile: ${XSS_IMG}`];
  r.logs.crashKernel = [...r.logs.crashKernel, `[    9.100000] ${XSS_SCRIPT}</li></ol></div>`];
  r.chain = [...r.chain.slice(0, -1), `[    3.500000] kernel: chain step with ${XSS_SCRIPT}`, r.chain[r.chain.length - 1]!];
  r.trace = [...r.trace, { t: r.metrics.panicNs, source: 'nic0', kind: 'dma-write', detail: `</title>${XSS_SCRIPT}<title>` }];
  r.oracle.errors = [{ pfn: 5, pa: '0x5000', cause: `cause with ${XSS_IMG}` }];
  return r;
}

export const TIB_PAGES = 2 ** 28;
/** The one bad page of `tibRun`, in the middle of memory. */
export const TIB_WRONG_PFN = 0x0800_0123;

/** A 1 TiB machine whose dump is correct but for one wrong page and one DMA-changed page near the top. */
export function tibRun(): RunResult {
  const r = completeRun();
  const map: PageFateRun[] = [
    { startPfn: 0, endPfn: 256, fate: 'not-in-dump' },
    { startPfn: 256, endPfn: 0xc0000, fate: 'correct' },
    { startPfn: 0xc0000, endPfn: 0x100000, fate: 'not-in-dump' },
    { startPfn: 0x100000, endPfn: TIB_WRONG_PFN, fate: 'correct' },
    { startPfn: TIB_WRONG_PFN, endPfn: TIB_WRONG_PFN + 1, fate: 'wrong' },
    { startPfn: TIB_WRONG_PFN + 1, endPfn: TIB_PAGES - 100, fate: 'correct' },
    { startPfn: TIB_PAGES - 100, endPfn: TIB_PAGES - 99, fate: 'changed-by-dma' },
    { startPfn: TIB_PAGES - 99, endPfn: TIB_PAGES, fate: 'correct' },
  ];
  r.oracle.pageMap = map;
  return r;
}

/** A map with `n` one-page runs of mixed bad fates scattered through 8 GiB. */
export function scatteredRun(n: number): RunResult {
  const r = completeRun();
  const fates = ['missing', 'wrong', 'ciphertext', 'changed-by-dma'] as const;
  const total = 2 ** 21;
  const map: PageFateRun[] = [];
  let at = 0;
  for (let i = 0; i < n; i++) {
    const pfn = Math.floor(((i + 1) * total) / (n + 1));
    map.push({ startPfn: at, endPfn: pfn, fate: 'correct' });
    map.push({ startPfn: pfn, endPfn: pfn + 1, fate: fates[i % fates.length]! });
    at = pfn + 1;
  }
  map.push({ startPfn: at, endPfn: total, fate: 'correct' });
  r.oracle.pageMap = map;
  return r;
}

/** A matrix with two row axes and two column axes, built by relabelling one cell. */
export function fourAxisMatrix(): MatrixResult {
  const base = smallMatrix();
  const template = base.cells;
  const axes = [
    { name: 'kernel', labels: ['6.1', '6.6'] },
    { name: 'memory', labels: ['1G', '8G'] },
    { name: 'iommu', labels: ['off', 'on'] },
    { name: 'dma', labels: ['idle', 'busy', 'flood'] },
  ];
  const cells: MatrixCell[] = [];
  for (const kernel of axes[0]!.labels)
    for (const memory of axes[1]!.labels)
      for (const iommu of axes[2]!.labels)
        for (const dma of axes[3]!.labels) {
          const t = template[cells.length % template.length]!;
          const coords = { kernel, memory, iommu, dma };
          cells.push({ ...t, index: cells.length, id: Object.entries(coords).map(([k, v]) => `${k}=${v}`).join(','), coords });
        }
  const summary: MatrixResult['summary'] = {};
  for (const c of cells) summary[c.verdict] = (summary[c.verdict] ?? 0) + 1;
  return { kind: 'kdumpsim-matrix-result', name: 'four axes', axes, rows: ['kernel', 'memory'], columns: ['iommu', 'dma'], total: cells.length, cells, summary };
}
