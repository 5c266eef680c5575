// Checking a run against the scenario's `expect`: every difference is one
// line a person can act on.

import type { Expect, OracleField } from './schema.js';
import type { RunResult } from './result.js';

export function checkExpectation(e: Expect, r: Pick<RunResult, 'verdict' | 'logs' | 'chain' | 'oracle'>): string[] {
  const diff: string[] = [];
  if (e.verdict !== undefined && e.verdict !== r.verdict) diff.push(`verdict: expected ${e.verdict}, got ${r.verdict}`);
  for (const [which, lines] of [['firstKernel', r.logs.firstKernel], ['crashKernel', r.logs.crashKernel]] as const) {
    for (const want of e.logs?.[which] ?? []) {
      if (!lines.some((l) => l.includes(want))) diff.push(`logs.${which}: no line contains "${want}"`);
    }
  }
  let from = 0;
  for (const want of e.chain ?? []) {
    const i = r.chain.findIndex((c, idx) => idx >= from && c.includes(want));
    if (i < 0) {
      const anywhere = r.chain.some((c) => c.includes(want));
      diff.push(anywhere ? `chain: "${want}" appears, but not after the previous expected step` : `chain: no step contains "${want}"`);
    } else from = i + 1;
  }
  for (const [field, want] of Object.entries(e.oracle ?? {}) as [OracleField, number | string][]) {
    const got = r.oracle[field];
    if (!holds(got, want)) diff.push(`oracle.${field}: expected ${typeof want === 'number' ? want : want.replace(/\s+/g, '')}, got ${got}`);
  }
  return diff;
}

function holds(got: number, want: number | string): boolean {
  if (typeof want === 'number') return got === want;
  const m = /^(==|!=|>=|<=|>|<)\s*(\d+)$/.exec(want);
  if (!m) return false;
  const n = Number(m[2]);
  switch (m[1]) {
    case '==': return got === n;
    case '!=': return got !== n;
    case '>=': return got >= n;
    case '<=': return got <= n;
    case '>': return got > n;
    default: return got < n;
  }
}
