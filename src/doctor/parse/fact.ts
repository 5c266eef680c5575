// Small helpers every parser shares: building facts, splitting lines, and
// keeping evidence short enough that a 16 MiB garbage file cannot blow up a report.

import type { Evidence, Fact } from '../host-facts.js';

/** Evidence text beyond this is cut (a cpuinfo flags line is ~1.5 KiB; garbage can be one 4 MiB line). */
export const EVIDENCE_TEXT_MAX = 2048;

export function known<T>(value: T, evidence: Evidence[]): Fact<T> {
  return { known: true, value, evidence };
}

export function unknown<T>(reason: string, evidence: Evidence[] = []): Fact<T> {
  return { known: false, reason, evidence };
}

export function clip(s: string): string {
  const t = s.trim();
  return t.length > EVIDENCE_TEXT_MAX ? t.slice(0, EVIDENCE_TEXT_MAX) + '…' : t;
}

export function evidence(file: string, line?: number, text?: string): Evidence {
  const e: Evidence = { file };
  if (line !== undefined) e.line = line;
  if (text !== undefined) e.text = clip(text);
  return e;
}

/** Lines without their terminators ("\n", "\r\n"); a final newline does not make an empty last line. */
export function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

/** Strict unsigned integer in decimal, or hex with 0x; undefined otherwise. */
export function parseUint(s: string): number | undefined {
  const t = s.trim();
  if (/^0[xX][0-9a-fA-F]+$/.test(t)) {
    const v = Number.parseInt(t.slice(2), 16);
    return Number.isSafeInteger(v) ? v : undefined;
  }
  if (/^[0-9]+$/.test(t)) {
    const v = Number(t);
    return Number.isSafeInteger(v) ? v : undefined;
  }
  return undefined;
}
