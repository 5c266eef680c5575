// crashkernel= as the kernel parses it (kernel/crash_reserve.c grammar):
//   crashkernel=SIZE[@OFFSET]
//   crashkernel=START-[END]:SIZE[,START-[END]:SIZE...][@OFFSET]
//   crashkernel=SIZE,high  [crashkernel=SIZE,low]
// The last occurrence of each suffix class wins, found by plain substring
// search as get_last_crashkernel does.

import { memparse } from '../util/hex.js';

export const MiB = 2 ** 20;
export const GiB = 2 ** 30;
/** CRASH_ALIGN on x86. */
export const CRASH_ALIGN = 16 * MiB;
export const CRASH_ADDR_LOW_MAX = 4 * GiB;
export const CRASH_ADDR_HIGH_MAX = 64 * 2 ** 40;
/** DEFAULT_CRASH_KERNEL_LOW_SIZE on x86 (max(swiotlb + 8 MiB, 256 MiB)). */
export const DEFAULT_CRASH_KERNEL_LOW_SIZE = 256 * MiB;

export type CrashkernelRequest =
  | { ok: true; size: number; base?: number; high: boolean; lowSize?: number }
  | { ok: false; message: string };

/** Last "crashkernel=" value whose suffix class matches (plain, ",high" or ",low"). */
function lastValue(cmdline: string, suffix: '' | ',high' | ',low'): string | undefined {
  let found: string | undefined;
  let from = 0;
  for (;;) {
    const i = cmdline.indexOf('crashkernel=', from);
    if (i < 0) break;
    const start = i + 'crashkernel='.length;
    let end = cmdline.indexOf(' ', start);
    if (end < 0) end = cmdline.length;
    const v = cmdline.slice(start, end);
    const hasSuffix = v.endsWith(',high') ? ',high' : v.endsWith(',low') ? ',low' : '';
    if (hasSuffix === suffix) found = suffix === '' ? v : v.slice(0, -suffix.length);
    from = start;
  }
  return found;
}

/** Parses the range form against `systemRam` bytes (rounded up to 128 MiB first). */
function parseRanges(v: string, systemRam: number): { size: number; base?: number } | { error: string } {
  const ram = Math.ceil(systemRam / (128 * MiB)) * 128 * MiB;
  let i = 0;
  let chosen = 0;
  for (;;) {
    const start = memparse(v, i);
    if (!start) return { error: 'crashkernel: Memory value expected' };
    i = start.end;
    if (v[i] !== '-') return { error: "crashkernel: '-' expected" };
    i++;
    let end = Infinity;
    if (v[i] !== ':') {
      const e = memparse(v, i);
      if (!e) return { error: 'crashkernel: Memory value expected' };
      end = e.value;
      i = e.end;
      if (end <= start.value) return { error: 'crashkernel: end <= start' };
    }
    if (v[i] !== ':') return { error: "crashkernel: ':' expected" };
    i++;
    const size = memparse(v, i);
    if (!size) return { error: 'crashkernel: Memory value expected' };
    i = size.end;
    if (size.value >= ram) return { error: 'crashkernel: invalid size' };
    // The first matching entry wins (even with size 0); the kernel stops parsing there.
    if (ram >= start.value && ram < end) {
      chosen = size.value;
      break;
    }
    if (v[i] !== ',') break;
    i++;
  }
  // No match, or a zero size: the kernel looks no further (not even at '@').
  if (chosen === 0) return { size: 0 };
  // After a match it skips the rest of the list up to '@' or the end.
  while (i < v.length && v[i] !== '@') i++;
  let base: number | undefined;
  if (v[i] === '@') {
    const b = memparse(v, i + 1);
    if (!b) return { error: 'crashkernel: Memory value expected' };
    base = b.value;
    i = b.end;
  }
  if (i < v.length) return { error: `crashkernel: unrecognized char: ${v[i]}` };
  return base === undefined ? { size: chosen } : { size: chosen, base };
}

function parseSimple(v: string): { size: number; base?: number } | { error: string } {
  const s = memparse(v, 0);
  if (!s) return { error: 'crashkernel: memory value expected' };
  let i = s.end;
  let base: number | undefined;
  if (v[i] === '@') {
    const b = memparse(v, i + 1);
    if (!b) return { error: 'crashkernel: memory value expected' };
    base = b.value;
    i = b.end;
  }
  if (i < v.length) return { error: `crashkernel: unrecognized char: ${v[i]}` };
  return base === undefined ? { size: s.value } : { size: s.value, base };
}

/**
 * What the command line asks for. Undefined when it has no crashkernel= at all.
 * `systemRam` is memblock's total usable memory, which the range form matches on.
 */
export function parseCrashkernel(cmdline: string, systemRam: number): CrashkernelRequest | undefined {
  const plain = lastValue(cmdline, '');
  if (plain !== undefined) {
    const firstSpace = plain.indexOf(' ');
    const head = firstSpace < 0 ? plain : plain.slice(0, firstSpace);
    const r = head.includes(':') ? parseRanges(plain, systemRam) : parseSimple(plain);
    if ('error' in r) return { ok: false, message: r.error };
    if (r.size === 0) return { ok: false, message: 'crashkernel size resulted in zero bytes' };
    return r.base === undefined ? { ok: true, size: r.size, high: false } : { ok: true, size: r.size, base: r.base, high: false };
  }
  const high = lastValue(cmdline, ',high');
  if (high === undefined) return undefined;
  const h = memparse(high, 0);
  if (!h || h.end !== high.length) return { ok: false, message: 'crashkernel: memory value expected' };
  // parse_crashkernel(): a ,high size of zero is -EINVAL (the kernel reserves nothing).
  if (h.value === 0) return { ok: false, message: 'crashkernel size resulted in zero bytes' };
  const low = lastValue(cmdline, ',low');
  let lowSize: number | undefined;
  if (low !== undefined) {
    const l = memparse(low, 0);
    if (!l || l.end !== low.length) return { ok: false, message: 'crashkernel: memory value expected' };
    lowSize = l.value;
  }
  return lowSize === undefined ? { ok: true, size: h.value, high: true } : { ok: true, size: h.value, high: true, lowSize };
}
