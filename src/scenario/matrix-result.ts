// The result of a matrix sweep: one cell per combination of axis values.
// Shards of one sweep merge into the same structure.

import type { Scenario, Verdict } from './schema.js';
import type { OracleReport } from './result.js';

export interface MatrixAxisResult {
  name: string;
  /** Value labels in the order the matrix file gives them. */
  labels: string[];
}

export interface MatrixCell {
  /** Position in the full (unsharded) expansion, 0-based; row-major over the axes in file order. */
  index: number;
  /** Stable identifier: axis=label pairs joined with ",", e.g. "crashkernel=256M,dma=fast". */
  id: string;
  /** Axis name -> value label. */
  coords: Record<string, string>;
  verdict: Verdict;
  /** One short line: why this verdict (the decisive chain step or oracle figure). */
  reason: string;
  /** Whether the cell's `expect` held (null when the scenario has none). */
  expectationMet: boolean | null;
  expectationDifferences: string[];
  chain: string[];
  oracle: Omit<OracleReport, 'pageMap' | 'errors'>;
  seed: number;
  /** The resolved scenario this cell ran, so `kdumpsim run --replay` can re-run it. */
  input: Scenario;
}

export interface MatrixResult {
  kind: 'kdumpsim-matrix-result';
  name: string;
  axes: MatrixAxisResult[];
  /** Axis names shown as table rows and as columns. */
  rows: string[];
  columns: string[];
  /** Total combinations in the full sweep. */
  total: number;
  /** Which slice this result holds; absent when unsharded or merged whole. */
  shard?: { index: number; count: number };
  /** Cells in index order. */
  cells: MatrixCell[];
  /** Cells per verdict. */
  summary: Partial<Record<Verdict, number>>;
}
