// /proc/meminfo: "MemTotal:       16316412 kB". MemTotal is RAM the kernel
// manages, a little less than the System RAM ranges of /proc/iomem.

import type { Fact } from '../host-facts.js';
import { evidence, known, splitLines, unknown } from './fact.js';

export function parseMemTotal(text: string, file = '/proc/meminfo'): Fact<number> {
  const lines = splitLines(text);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line.startsWith('MemTotal:')) continue;
    const m = /^MemTotal:\s+(\d+)\s+kB\s*$/.exec(line);
    const ev = evidence(file, i + 1, line);
    if (!m) return unknown(`${file}: 'MemTotal' line is not "<n> kB"`, [ev]);
    const bytes = Number(m[1]) * 1024;
    if (!Number.isSafeInteger(bytes)) return unknown(`${file}: MemTotal ${m[1]} kB is out of range`, [ev]);
    return known(bytes, [ev]);
  }
  return unknown(`${file}: no 'MemTotal' line`);
}
