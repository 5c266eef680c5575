// Formatting of addresses and sizes the way kernel logs and tools print them.

/** `0x` + lower-case hex, for numbers or bigints. */
export function hex(v: number | bigint): string {
  return '0x' + v.toString(16);
}

/** Zero-padded hex without prefix, as `%016llx` prints it. */
export function hexPad(v: number | bigint, width: number): string {
  return v.toString(16).padStart(width, '0');
}

const UNITS: Record<string, number> = { K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40, P: 2 ** 50, E: 2 ** 60 };

/**
 * Parses a size the way the kernel's memparse() does: a number (decimal, or
 * hex with 0x) followed by an optional K/M/G/T/P/E suffix (either case).
 * Returns the value and the index just past what was consumed, or undefined
 * when no number starts at `from`.
 */
export function memparse(s: string, from = 0): { value: number; end: number } | undefined {
  const m = /^(0[xX][0-9a-fA-F]+|[0-9]+)([kKmMgGtTpPeE]?)/.exec(s.slice(from));
  if (!m || m[1] === undefined) return undefined;
  let value = Number(m[1].startsWith('0x') || m[1].startsWith('0X') ? BigInt(m[1]) : BigInt(m[1]));
  const unit = m[2] ? UNITS[m[2].toUpperCase()] : undefined;
  if (unit !== undefined) value *= unit;
  return { value, end: from + m[0].length };
}

/** Human size: 256M, 8G, 1T (exact binary units only, otherwise bytes). */
export function formatSize(bytes: number): string {
  for (const [u, n] of [['T', 2 ** 40], ['G', 2 ** 30], ['M', 2 ** 20], ['K', 2 ** 10]] as const) {
    if (bytes >= n && bytes % n === 0) return `${bytes / n}${u}`;
  }
  return `${bytes}`;
}
