// One-value sysfs and module-parameter files: bool params print "Y"/"N"
// (older int params "1"/"0"), kexec attributes "%d"/"%zd", registers "%llx".

import type { Fact } from '../host-facts.js';
import { evidence, known, unknown } from './fact.js';

function single(text: string): string | undefined {
  const t = text.trim();
  return t === '' || t.includes('\n') ? undefined : t;
}

export function parseSysfsBool(text: string, file: string): Fact<boolean> {
  const v = single(text);
  const ev = [evidence(file, 1, text)];
  if (v === 'Y' || v === '1') return known(true, ev);
  if (v === 'N' || v === '0') return known(false, ev);
  return unknown(`${file}: expected Y, N, 1 or 0, read "${(v ?? text.trim()).slice(0, 40)}"`, ev);
}

/** "%d" / "%zd"; negative values are accepted only when `signed`. */
export function parseSysfsInt(text: string, file: string, signed = false): Fact<number> {
  const v = single(text);
  const ev = [evidence(file, 1, text)];
  if (v !== undefined && (signed ? /^-?\d+$/ : /^\d+$/).test(v)) {
    const n = Number(v);
    if (Number.isSafeInteger(n)) return known(n, ev);
    return unknown(`${file}: ${v} is out of range`, ev);
  }
  return unknown(`${file}: expected a decimal number, read "${(v ?? text.trim()).slice(0, 40)}"`, ev);
}

/** "%llx" or "%#llx": a 64-bit register value. */
export function parseHex64(s: string): bigint | undefined {
  const t = s.trim();
  const m = /^(?:0[xX])?([0-9a-fA-F]{1,16})$/.exec(t);
  return m ? BigInt('0x' + m[1]!) : undefined;
}

export function parseSysfsHex(text: string, file: string): Fact<bigint> {
  const v = single(text);
  const ev = [evidence(file, 1, text)];
  const n = v === undefined ? undefined : parseHex64(v);
  return n === undefined ? unknown(`${file}: expected a hex number, read "${(v ?? text.trim()).slice(0, 40)}"`, ev) : known(n, ev);
}

/** /sys/kernel/vmcoreinfo: "%pa %x" (physical address of the note, its size). */
export function parseVmcoreinfoSysfs(text: string, file = '/sys/kernel/vmcoreinfo'): Fact<{ address: bigint; size: number }> {
  const v = single(text);
  const ev = [evidence(file, 1, text)];
  const m = v === undefined ? null : /^(?:0x)?([0-9a-fA-F]{1,16})\s+([0-9a-fA-F]{1,8})$/.exec(v);
  if (!m) return unknown(`${file}: expected "<address> <size>" in hex`, ev);
  return known({ address: BigInt('0x' + m[1]!), size: Number.parseInt(m[2]!, 16) }, ev);
}
