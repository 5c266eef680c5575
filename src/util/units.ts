// Sizes and durations as scenario files write them: "256M", "8G", "1T";
// "100us", "2ms", "1.5s".

import { memparse } from './hex.js';

/** Parses a memparse-style size; returns undefined when the whole string is not one. */
export function parseSize(v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : undefined;
  const r = memparse(v.trim(), 0);
  if (!r || r.end !== v.trim().length) return undefined;
  return Number.isSafeInteger(r.value) ? r.value : undefined;
}

const DURATION_UNITS: Record<string, number> = { ns: 1, us: 1e3, ms: 1e6, s: 1e9 };

/** Parses a duration into nanoseconds. */
export function parseDuration(v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? v : undefined;
  const m = /^(\d+(?:\.\d+)?)\s*(ns|us|ms|s)$/.exec(v.trim());
  if (!m || m[1] === undefined || m[2] === undefined) return undefined;
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2]]!);
}
