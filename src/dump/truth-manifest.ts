// The truth manifest: what a dump of a simulated run must contain, page by
// page, written by `kdumpsim run --truth` so any vmcore (ours, or one another
// tool rewrote) can be checked later. Pages in `ranges` that are not listed
// in `pages` were zero. `alternatives` lists, for pages a device legitimately
// wrote after the panic, every content the page may hold depending on when
// the dump read it ("0" stands for a zero page).

import { readFileSync } from 'node:fs';
import { InputError } from '../util/errors.js';
import { PAGE_CLASSES, type PageClass } from './page-class.js';

export const TRUTH_FORMAT = 'kdumpsim-truth';
export const TRUTH_VERSION = 1;
export const ZERO_PAGE_HASH = '0';

export interface TruthManifest {
  format: typeof TRUTH_FORMAT;
  version: number;
  pageSize: number;
  scenario: string;
  seed: number;
  /** [startPfn, endPfn) ranges the dump must cover, ascending. */
  ranges: [number, number][];
  /** SHA-256 hex of every non-zero page at the moment the first kernel stopped. */
  pages: Record<string, string>;
  /** Other acceptable contents of pages changed by legitimate DMA after the panic. */
  alternatives: Record<string, string[]>;
  /** Struct-page classes at the panic, as classified at dump level 31 (absent in manifests of older versions). */
  classes?: Partial<Record<PageClass, [number, number][]>>;
}

export function parseTruthManifest(text: string, file: string): TruthManifest {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new InputError(`Cannot parse truth manifest "${file}": ${(e as Error).message}`);
  }
  const bad = (field: string, why: string): never => {
    throw new InputError(`Cannot use truth manifest "${file}": field "${field}" ${why}`);
  };
  if (typeof j !== 'object' || j === null) return bad('(root)', 'is not an object');
  const o = j as Record<string, unknown>;
  if (o['format'] !== TRUTH_FORMAT) bad('format', `is ${JSON.stringify(o['format'])}, expected "${TRUTH_FORMAT}"`);
  if (o['version'] !== TRUTH_VERSION) bad('version', `is ${JSON.stringify(o['version'])}, expected ${TRUTH_VERSION}`);
  if (o['pageSize'] !== 4096) bad('pageSize', 'must be 4096');
  const ranges = o['ranges'];
  if (!Array.isArray(ranges)) return bad('ranges', 'is not an array');
  for (const [i, r] of ranges.entries()) {
    if (!Array.isArray(r) || r.length !== 2 || !Number.isSafeInteger(r[0]) || !Number.isSafeInteger(r[1]) || (r[0] as number) < 0 || (r[1] as number) < (r[0] as number)) {
      bad(`ranges[${i}]`, 'is not a [startPfn, endPfn] pair');
    }
  }
  const pages = o['pages'];
  if (typeof pages !== 'object' || pages === null || Array.isArray(pages)) return bad('pages', 'is not an object');
  for (const [k, v] of Object.entries(pages)) {
    if (!/^\d+$/.test(k) || typeof v !== 'string' || !/^[0-9a-f]{64}$/.test(v)) bad(`pages.${k}`, 'is not a page number mapped to a SHA-256 hex digest');
  }
  const alts = o['alternatives'] ?? {};
  if (typeof alts !== 'object' || alts === null || Array.isArray(alts)) return bad('alternatives', 'is not an object');
  for (const [k, v] of Object.entries(alts)) {
    if (!/^\d+$/.test(k) || !Array.isArray(v) || v.some((h) => typeof h !== 'string')) bad(`alternatives.${k}`, 'is not a page number mapped to a list of digests');
  }
  const classes = o['classes'];
  if (classes !== undefined) {
    if (typeof classes !== 'object' || classes === null || Array.isArray(classes)) return bad('classes', 'is not an object');
    for (const [k, v] of Object.entries(classes)) {
      if (!(PAGE_CLASSES as readonly string[]).includes(k)) bad(`classes.${k}`, `is not a page class (${PAGE_CLASSES.join(', ')})`);
      if (!Array.isArray(v) || v.some((r) => !Array.isArray(r) || r.length !== 2 || !Number.isSafeInteger(r[0]) || !Number.isSafeInteger(r[1]) || (r[0] as number) < 0 || (r[1] as number) <= (r[0] as number))) {
        bad(`classes.${k}`, 'is not a list of [startPfn, endPfn] runs');
      }
    }
  }
  return {
    format: TRUTH_FORMAT,
    version: TRUTH_VERSION,
    pageSize: 4096,
    scenario: typeof o['scenario'] === 'string' ? o['scenario'] : '',
    seed: typeof o['seed'] === 'number' ? o['seed'] : 0,
    ranges: ranges as [number, number][],
    pages: pages as Record<string, string>,
    alternatives: alts as Record<string, string[]>,
    ...(classes === undefined ? {} : { classes: classes as Partial<Record<PageClass, [number, number][]>> }),
  };
}

export function readTruthManifest(file: string): TruthManifest {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new InputError(`Cannot read truth manifest "${file}": ${(e as Error).message}`);
  }
  return parseTruthManifest(text, file);
}
