// RunResult: everything a report shows about one run is derived from it.

import type { Verdict } from './schema.js';
import type { TraceEvent } from '../platform/trace.js';

export interface PageError {
  pfn: number;
  /** Physical address, hex. */
  pa: string;
  cause: string;
}

export interface OracleReport {
  pagesExpected: number;
  pagesCaptured: number;
  pagesCorrect: number;
  pagesMissing: number;
  pagesCiphertext: number;
  pagesChangedAfterPanic: number;
  /** Pages whose captured content matched no state the oracle allows. */
  pagesWrong: number;
  /** The first wrong or missing pages, with their cause. */
  errors: PageError[];
}

export interface RunMetrics {
  /** Virtual times, ns. */
  firstKernelBootedNs: number;
  panicNs: number;
  crashKernelStartNs: number | null;
  vmcoreSavedNs: number | null;
  endNs: number;
  eventsFired: number;
  framesTouched: number;
  dmaPacketsAfterPanic: number;
  dmaPacketsDropped: number;
}

export interface RunResult {
  scenario: string;
  seed: number;
  verdict: Verdict;
  /** The causal steps that led to the verdict, in virtual-time order. */
  chain: string[];
  logs: { firstKernel: string[]; crashKernel: string[] };
  oracle: OracleReport;
  metrics: RunMetrics;
  vmcore: { path: string; size: number; bytesWritten: number } | null;
  /** Hardware and kernel milestones (bulk DMA traffic is counted, not listed). */
  trace: TraceEvent[];
  /** When the scenario has `expect`: whether it held, and what differed. */
  expectation: { met: boolean; differences: string[] } | null;
}
