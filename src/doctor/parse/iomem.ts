// /proc/iomem: "%*s%0*llx-%0*llx : %s", two spaces of indent per nesting
// level. Readers without CAP_SYS_ADMIN see every address as zero, which must
// read as "unknown", not as "no RAM".

import type { Evidence, Fact } from '../host-facts.js';
import { evidence, known, splitLines, unknown } from './fact.js';

export interface IomemRange {
  depth: number;
  start: bigint;
  end: bigint;
  name: string;
  line: number;
  text: string;
}

export interface IomemFacts {
  /** Sum of the top-level "System RAM" ranges, in bytes. */
  systemRam: Fact<number>;
  /** "Crash kernel" ranges (main and low), inclusive ends. */
  crashKernel: Fact<{ start: bigint; end: bigint }[]>;
}

const LINE = /^((?: {2})*)([0-9a-fA-F]{1,16})-([0-9a-fA-F]{1,16}) : (.*)$/;

export function parseIomemRanges(text: string): { ranges: IomemRange[]; malformed: number } {
  const ranges: IomemRange[] = [];
  let malformed = 0;
  const lines = splitLines(text);
  for (let i = 0; i < lines.length; i++) {
    const m = LINE.exec(lines[i]!);
    if (!m) {
      if (lines[i]!.trim() !== '') malformed++;
      continue;
    }
    ranges.push({ depth: m[1]!.length / 2, start: BigInt('0x' + m[2]!), end: BigInt('0x' + m[3]!), name: m[4]!.trim(), line: i + 1, text: lines[i]! });
  }
  return { ranges, malformed };
}

export function parseIomem(text: string, file = '/proc/iomem'): IomemFacts {
  const { ranges } = parseIomemRanges(text);
  if (ranges.length === 0) {
    const why = `${file}: no "start-end : name" lines`;
    return { systemRam: unknown(why), crashKernel: unknown(why) };
  }
  if (ranges.every((r) => r.start === 0n && r.end === 0n)) {
    const why = `${file}: all addresses read as zero (not read as root)`;
    const ev = [evidence(file, ranges[0]!.line, ranges[0]!.text)];
    return { systemRam: unknown(why, ev), crashKernel: unknown(why, ev) };
  }
  const ram = ranges.filter((r) => r.depth === 0 && r.name === 'System RAM');
  const bad = ranges.find((r) => r.end < r.start);
  let systemRam: Fact<number>;
  if (bad) systemRam = unknown(`${file}: range ends before it starts`, [evidence(file, bad.line, bad.text)]);
  else if (ram.length === 0) systemRam = unknown(`${file}: no top-level 'System RAM' range`);
  else {
    const total = ram.reduce((s, r) => s + (r.end - r.start + 1n), 0n);
    systemRam = total <= BigInt(Number.MAX_SAFE_INTEGER)
      ? known(Number(total), ram.map((r) => evidence(file, r.line, r.text)).slice(0, 64))
      : unknown(`${file}: System RAM total ${total} is out of range`);
  }
  const crash = ranges.filter((r) => r.name === 'Crash kernel' && r.end >= r.start);
  const crashEv: Evidence[] = crash.map((r) => evidence(file, r.line, r.text));
  // No "Crash kernel" line is itself a fact: nothing is reserved.
  const crashKernel = known(crash.map((r) => ({ start: r.start, end: r.end })), crashEv.length ? crashEv : [evidence(file, undefined, "no 'Crash kernel' range")]);
  return { systemRam, crashKernel };
}
