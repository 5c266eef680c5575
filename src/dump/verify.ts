// Checks a vmcore against a truth manifest, page by page: every page the
// manifest lists must be in the file with the content the manifest allows.
// A filtered dump may leave pages out: at dump level N, a page the file
// excludes passes only if the manifest says it was zero (level bit 1) or of
// a struct-page class level N drops (free, cache, user data, ...).

import { hash } from 'node:crypto';
import type { PageStatus, VmcoreReader } from './vmcore-reader.js';
import { ZERO_PAGE_HASH, type TruthManifest } from './truth-manifest.js';
import { ClassCursor, DL_EXCLUDE_ZERO, checkDumpLevel, levelExcludes, type PageClass } from './page-class.js';
import { KdumpCompressedReader } from './kdump-compressed-reader.js';
import { SplitKdumpReader } from './split-kdump-reader.js';

export interface PageMismatch {
  pfn: number;
  problem: 'missing' | 'excluded' | 'differs';
  expected: string;
  actual: string;
  /** For an excluded page: what the manifest says it was ('zero' or a page class, or 'in use'). */
  was?: string;
}

export interface VerifyReport {
  pagesChecked: number;
  pagesEqual: number;
  /** Equal to a post-panic DMA state rather than the state at the panic. */
  pagesChangedAfterPanic: number;
  /** The dump level exclusions were checked against. */
  dumpLevel: number;
  /** Pages the file leaves out that the dump level allowed it to, by what they were ('zero' or a page class). */
  pagesExcluded: Partial<Record<PageClass | 'zero', number>>;
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

export interface VerifyOptions {
  maxListed?: number;
  /** The level the file was filtered at; default: the one a kdump-compressed header records, else 0 (nothing may be left out). */
  dumpLevel?: number;
  onProgress?: (done: number, total: number) => void;
}

/** The dump level a file says it was filtered at (kdump-compressed sub header), or 0. */
export function recordedDumpLevel(reader: VmcoreReader): number {
  if (!(reader instanceof KdumpCompressedReader) && !(reader instanceof SplitKdumpReader)) return 0;
  const l = reader.dumpLevel;
  return Number.isInteger(l) && l >= 0 && l <= 31 ? l : 0;
}

export function verifyVmcore(reader: VmcoreReader, truth: TruthManifest, opts: VerifyOptions = {}): VerifyReport {
  const maxListed = opts.maxListed ?? 20;
  const level = opts.dumpLevel ?? recordedDumpLevel(reader);
  checkDumpLevel(level, `verifying "${reader.file}"`);
  const classes = new ClassCursor(truth.classes);
  const report: VerifyReport = { pagesChecked: 0, pagesEqual: 0, pagesChangedAfterPanic: 0, dumpLevel: level, pagesExcluded: {}, mismatches: 0, firstMismatches: [] };
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
        if (st === 'absent') {
          note(report, maxListed, { pfn, problem: 'missing', expected, actual: st });
          continue;
        }
        if (st === 'excluded') {
          const cls = classes.classOf(pfn);
          const was = cls ?? (expected === ZERO_PAGE_HASH ? 'zero' : 'in use');
          const zeroOk = expected === ZERO_PAGE_HASH && (level & DL_EXCLUDE_ZERO) !== 0;
          if ((cls !== undefined && levelExcludes(level, cls)) || zeroOk) {
            const as = cls !== undefined && levelExcludes(level, cls) ? cls : 'zero';
            report.pagesExcluded[as] = (report.pagesExcluded[as] ?? 0) + 1;
          } else {
            note(report, maxListed, { pfn, problem: 'excluded', expected, actual: st, was });
          }
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
