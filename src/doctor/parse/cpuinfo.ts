// /proc/cpuinfo: "key\t\t: value" lines, one block per logical CPU. The doctor
// needs the vendor, the CPU count and the first CPU's flags (sme, sev,
// sev_es, sev_snp, hypervisor); the flags are the same on every CPU of a host.

import type { Fact } from '../host-facts.js';
import { evidence, known, splitLines, unknown } from './fact.js';

export interface CpuinfoFacts {
  vendor: Fact<'amd' | 'intel' | 'other'>;
  count: Fact<number>;
  flags: Fact<string[]>;
}

const VENDORS: Record<string, 'amd' | 'intel'> = { AuthenticAMD: 'amd', GenuineIntel: 'intel' };

export function parseCpuinfo(text: string, file = '/proc/cpuinfo'): CpuinfoFacts {
  let vendor: CpuinfoFacts['vendor'] | undefined;
  let flags: CpuinfoFacts['flags'] | undefined;
  let processors = 0;
  let lastProcessor: { line: number; text: string } | undefined;
  const lines = splitLines(text);
  for (let i = 0; i < lines.length; i++) {
    const m = /^([A-Za-z][A-Za-z0-9 _]*?)\s*:\s?(.*)$/.exec(lines[i]!);
    if (!m) continue;
    const key = m[1]!;
    const value = m[2]!.trim();
    const ev = evidence(file, i + 1, lines[i]);
    if (key === 'processor' && /^\d+$/.test(value)) {
      processors++;
      lastProcessor = { line: i + 1, text: lines[i]! };
    } else if (key === 'vendor_id' && vendor === undefined) {
      if (value === '') vendor = unknown(`${file}: empty 'vendor_id'`, [ev]);
      else vendor = known(VENDORS[value] ?? 'other', [ev]);
    } else if (key === 'flags' && flags === undefined && processors <= 1) {
      // Only the first CPU's block: a later block's flags would describe another CPU.
      const words = value.split(/\s+/).filter((w) => w !== '');
      if (words.every((w) => /^[a-z0-9_.-]+$/.test(w))) flags = known(words, [ev]);
      else flags = unknown(`${file}: 'flags' line is not a list of flag names`, [ev]);
    }
  }
  return {
    vendor: vendor ?? unknown(`${file}: no 'vendor_id' line`),
    // The last "processor" line shows the highest number; the count is how many there were.
    count: lastProcessor ? known(processors, [evidence(file, lastProcessor.line, lastProcessor.text)]) : unknown(`${file}: no 'processor' line`),
    flags: flags ?? unknown(`${file}: no 'flags' line`),
  };
}
