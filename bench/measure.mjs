// Timing helpers shared by the benchmarks.

/** Median of a list of numbers (the upper middle for an even count). */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Wall time of fn() in milliseconds. */
export function timeMs(fn) {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** How many times each measurement repeats (BENCH_REPEAT, default 3). */
export const REPEAT = Number(process.env['BENCH_REPEAT'] ?? 3);
