// Checks a vmcore against a truth manifest, page by page: every page the
// manifest lists must be in the file with the content the manifest allows.

import { hash } from 'node:crypto';
import type { PageStatus, VmcoreReader } from './vmcore-reader.js';
import { ZERO_PAGE_HASH, type TruthManifest } from './truth-manifest.js';

export interface PageMismatch {
  pfn: number;
  problem: 'missing' | 'excluded' | 'differs';
  expected: string;
  actual: string;
}

export interface VerifyReport {
  pagesChecked: number;
  pagesEqual: number;
  /** Equal to a post-panic DMA state rather than the state at the panic. */
  pagesChangedAfterPanic: number;
  mismatches: number;
  /** The first mismatches, for the report. */
  firstMismatches: PageMismatch[];
}

/** SHA-256 hex of a page, or ZERO_PAGE_HASH for an all-zero page. */
export function pageDigest(page: Uint8Array): string {
  return isZeroPage(page) ? ZERO_PAGE_HASH : hash('sha256', page);
}

const ZEROS = Buffer.alloc(65536);

/** True when every byte is zero (native memcmp against a zero buffer). */
export function isZeroPage(b: Uint8Array): boolean {
  for (let off = 0; off < b.length; off += ZEROS.length) {
    const n = Math.min(ZEROS.length, b.length - off);
    if (Buffer.compare(b.subarray(off, off + n), ZEROS.subarray(0, n)) !== 0) return false;
  }
  return true;
}

export function verifyVmcore(reader: VmcoreReader, truth: TruthManifest, opts: { maxListed?: number; onProgress?: (done: number, total: number) => void } = {}): VerifyReport {
  const maxListed = opts.maxListed ?? 20;
  const report: VerifyReport = { pagesChecked: 0, pagesEqual: 0, pagesChangedAfterPanic: 0, mismatches: 0, firstMismatches: [] };
  const total = truth.ranges.reduce((n, [a, b]) => n + (b - a), 0);
  const CHUNK = 256;
  const buf = new Uint8Array(CHUNK * 4096);
  const status: PageStatus[] = [];
  for (const [start, end] of truth.ranges) {
    for (let base = start; base < end; base += CHUNK) {
      const n = Math.min(CHUNK, end - base);
      reader.readPages(base, n, buf, status);
      for (let i = 0; i < n; i++) {
        const pfn = base + i;
        const page = buf.subarray(i * 4096, (i + 1) * 4096);
        const st = status[i]!;
        const expected = truth.pages[pfn] ?? ZERO_PAGE_HASH;
        report.pagesChecked++;
        if (st !== 'present') {
          note(report, maxListed, { pfn, problem: st === 'absent' ? 'missing' : 'excluded', expected, actual: st });
          continue;
        }
        const actual = pageDigest(page);
        if (actual === expected) {
          report.pagesEqual++;
          continue;
        }
        if (truth.alternatives[pfn]?.includes(actual)) {
          report.pagesEqual++;
          report.pagesChangedAfterPanic++;
          continue;
        }
        note(report, maxListed, { pfn, problem: 'differs', expected, actual });
      }
      opts.onProgress?.(report.pagesChecked, total);
    }
  }
  opts.onProgress?.(total, total);
  return report;
}

function note(r: VerifyReport, max: number, m: PageMismatch): void {
  r.mismatches++;
  if (r.firstMismatches.length < max) r.firstMismatches.push(m);
}
