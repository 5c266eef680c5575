// One matrix cell: an ordinary scenario run, reduced to what a sweep keeps.
// Worker threads load this module (and the simulator) only, not the matrix
// file machinery, so they start quickly.

import { InputError } from '../util/errors.js';
import { runScenario } from './run.js';
import type { RunResult } from './result.js';
import type { MatrixCell } from './matrix-result.js';
import type { MatrixCellSpec } from './matrix.js';

/** Runs one cell in this thread. No vmcore file is written. */
export function runMatrixCell(spec: MatrixCellSpec): MatrixCell {
  let r: RunResult;
  try {
    r = runScenario(spec.scenario);
  } catch (e) {
    if (e instanceof InputError) throw new InputError(`Cannot run cell "${spec.id}": ${e.message}`);
    throw e;
  }
  // The page map and error list stay with the run; a cell keeps the figures.
  const oracle: MatrixCell['oracle'] & Partial<Pick<RunResult['oracle'], 'pageMap' | 'errors'>> = { ...r.oracle };
  delete oracle.pageMap;
  delete oracle.errors;
  return {
    index: spec.index,
    id: spec.id,
    coords: { ...spec.coords },
    verdict: r.verdict,
    reason: cellReason(r),
    expectationMet: r.expectation === null ? null : r.expectation.met,
    expectationDifferences: r.expectation === null ? [] : [...r.expectation.differences],
    chain: r.chain,
    oracle,
    seed: r.seed,
    input: r.input,
  };
}

const STAMP = /^\[\s*\d+\.\d+\]\s+/;

/**
 * The decisive step, in one line: for a dump, the oracle's page figures; for
 * a first kernel that failed, its failure; otherwise the last timestamped
 * step of the chain (what a kernel or device did last before the verdict),
 * without its timestamp.
 */
export function cellReason(r: Pick<RunResult, 'verdict' | 'chain' | 'oracle'>): string {
  const chain = r.chain;
  if (r.verdict === 'dump-complete' || r.verdict === 'dump-partial') {
    const o = r.oracle;
    const parts = [`${o.pagesCorrect}/${o.pagesExpected} pages correct`];
    if (o.pagesWrong > 0) parts.push(`${o.pagesWrong} wrong`);
    if (o.pagesCiphertext > 0) parts.push(`${o.pagesCiphertext} ciphertext`);
    if (o.pagesMissing > 0) parts.push(`${o.pagesMissing} missing`);
    if (o.pagesChangedAfterPanic > 0) parts.push(`${o.pagesChangedAfterPanic} changed by DMA`);
    return parts.join(', ');
  }
  if (r.verdict !== 'first-kernel-failed') {
    const stamped = [...chain].reverse().find((l) => STAMP.test(l));
    if (stamped !== undefined) return stamped.replace(STAMP, '');
  }
  return (chain[chain.length - 1] ?? r.verdict).replace(STAMP, '');
}

/** A message between the pool and a worker. */
export type WorkerReply =
  | { index: number; ok: true; cell: MatrixCell }
  | { index: number; ok: false; message: string; inputError: boolean; stack: string | undefined };

