// RunResult: everything a report shows about one run is derived from it.

import type { Scenario, Verdict } from './schema.js';
import type { TraceEvent } from '../platform/trace.js';

export interface PageError {
  pfn: number;
  /** Physical address, hex. */
  pa: string;
  cause: string;
}

/** What became of a run of physical pages, for the memory map. */
export type PageFate = 'correct' | 'changed-by-dma' | 'wrong' | 'ciphertext' | 'missing' | 'not-in-dump';

export interface PageFateRun {
  startPfn: number;
  /** Exclusive. */
  endPfn: number;
  fate: PageFate;
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
  /**
   * Physical memory from 0 to the top of DRAM as runs of page fates,
   * ascending and contiguous (holes and the crash region are 'not-in-dump').
   */
  pageMap: PageFateRun[];
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
  /** Format marker, so `run --replay` can recognise the file. */
  kind: 'kdumpsim-run-result';
  scenario: string;
  seed: number;
  verdict: Verdict;
  /** The causal steps that led to the verdict, in virtual-time order. */
  chain: string[];
  logs: { firstKernel: string[]; crashKernel: string[] };
  oracle: OracleReport;
  metrics: RunMetrics;
  vmcore: { path: string; format: 'elf' | 'kdump'; size: number; bytesWritten: number } | null;
  /** Hardware and kernel milestones (bulk DMA traffic is counted, not listed). */
  trace: TraceEvent[];
  /** The fully resolved scenario this run executed (defaults filled in), for replay. */
  input: Scenario;
  /** When the scenario has `expect`: whether it held, and what differed. */
  expectation: { met: boolean; differences: string[] } | null;
}
