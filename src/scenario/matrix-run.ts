// Running a matrix: each cell is an ordinary scenario run. With jobs > 1 the
// cells go to worker threads, one at a time as workers come free; results
// are sorted by index, so they are the same whatever the number of jobs.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { InputError } from '../util/errors.js';
import type { MatrixCell, MatrixResult } from './matrix-result.js';
import { assembleMatrixResult, shardCells, type MatrixCellSpec, type MatrixPlan, type ShardSpec } from './matrix.js';
import { runMatrixCell, type WorkerReply } from './matrix-cell.js';

export { runMatrixCell, cellReason } from './matrix-cell.js';

export interface MatrixRunOptions {
  shard?: ShardSpec;
  /** Worker threads; 1 (the default) runs the cells in this thread. */
  jobs?: number;
  /** Called as each cell finishes (in completion order), with the count done so far. */
  onCell?: (cell: MatrixCell, done: number, total: number) => void;
}

/** Runs the plan's cells (the shard's, if given) and returns the result in index order. */
export async function runMatrix(plan: MatrixPlan, opts: MatrixRunOptions = {}): Promise<MatrixResult> {
  const specs = shardCells(plan.cells, opts.shard);
  const cells = await runMatrixCells(specs, opts);
  return assembleMatrixResult(plan, cells, opts.shard);
}

/**
 * How to start a worker. In the built package this module and the worker are
 * .js files. Under tsx (tests, `node --import tsx`) both are .ts, and the
 * worker needs tsx's hooks before its entry loads: on Node 20 a worker's
 * `execArgv: ['--import', 'tsx']` does not apply them to the entry module, so
 * a two-line bootstrap registers them through tsx's API and then imports it.
 */
function workerStart(): { target: URL | string; options: WorkerOptions } {
  if (!import.meta.url.endsWith('.ts')) return { target: new URL('./matrix-worker.js', import.meta.url), options: {} };
  const entry = new URL('./matrix-worker.ts', import.meta.url).href;
  const req = createRequire(import.meta.url);
  const pkgFile = req.resolve('tsx/package.json');
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { exports: Record<string, { import: { default: string } }> };
  const api = pathToFileURL(join(dirname(pkgFile), pkg.exports['./esm/api']!.import.default)).href;
  const code = `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
  return { target: code, options: { eval: true } };
}

export async function runMatrixCells(specs: readonly MatrixCellSpec[], opts: Omit<MatrixRunOptions, 'shard'> = {}): Promise<MatrixCell[]> {
  const jobs = Math.max(1, Math.min(Math.floor(opts.jobs ?? 1), specs.length));
  const out: MatrixCell[] = [];
  if (jobs <= 1) {
    for (const spec of specs) {
      const cell = runMatrixCell(spec);
      out.push(cell);
      opts.onCell?.(cell, out.length, specs.length);
    }
    return out.sort((a, b) => a.index - b.index);
  }

  const start = workerStart();
  const byIndex = new Map(specs.map((s) => [s.index, s]));
  const workers: Worker[] = [];
  let next = 0;
  try {
    await new Promise<void>((resolveAll, rejectAll) => {
      let settled = false;
      const fail = (e: Error): void => {
        if (settled) return;
        settled = true;
        rejectAll(e);
      };
      const feed = (w: Worker): void => {
        if (settled) return;
        if (next < specs.length) {
          w.postMessage(specs[next++]);
        } else if (out.length === specs.length) {
          settled = true;
          resolveAll();
        }
      };
      for (let i = 0; i < jobs; i++) {
        const w = new Worker(start.target, start.options);
        workers.push(w);
        w.on('message', (m: WorkerReply) => {
          if (!m.ok) {
            const id = byIndex.get(m.index)?.id ?? String(m.index);
            if (m.inputError) fail(new InputError(m.message));
            else {
              const e = new Error(`Cell "${id}" failed in a worker thread: ${m.message}`);
              if (m.stack !== undefined) e.stack = `${e.message}\n${m.stack}`;
              fail(e);
            }
            return;
          }
          out.push(m.cell);
          opts.onCell?.(m.cell, out.length, specs.length);
          feed(w);
        });
        w.on('error', (e) => fail(e instanceof Error ? e : new Error(String(e))));
        w.on('exit', (code) => {
          if (!settled) fail(new Error(`A matrix worker thread exited with code ${code} before the sweep finished`));
        });
        feed(w);
      }
    });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return out.sort((a, b) => a.index - b.index);
}
