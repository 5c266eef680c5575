// VMCOREINFO: the kernel's KEY=VALUE text that tells dump tools its layout
// (symbols in hex without 0x, sizes and offsets in decimal, NUMBER() signed).
// Lines keep their order so a parsed note writes back byte for byte.

import { VmcoreFormatError } from '../util/errors.js';
import { hex } from '../util/hex.js';
import { NT_VMCOREINFO, VMCOREINFO_NOTE_NAME, type ElfNote } from './elf-note.js';

/** The kernel's buffer for the text (one page); it truncates beyond this. */
export const VMCOREINFO_BYTES = 4096;

const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);

interface Line {
  key: string;
  value: string;
  /** Offset of the line in the source text, when it came from one. */
  at: number | undefined;
}

export interface VmcoreInfoSource {
  file: string;
  /** File offset of the first byte of the text. */
  offset?: number;
}

export class VmcoreInfo {
  #lines: Line[] = [];
  readonly #where: VmcoreInfoSource;

  constructor(where?: VmcoreInfoSource) {
    this.#where = where ?? { file: 'VMCOREINFO' };
  }

  /**
   * Reads KEY=VALUE lines. Like drgn, text after the last newline is ignored
   * (the kernel truncates at VMCOREINFO_BYTES mid-line); like libkdumpfile,
   * lines without "=" are skipped. Values are checked only when asked for.
   */
  static parse(text: string, where?: VmcoreInfoSource): VmcoreInfo {
    const info = new VmcoreInfo(where);
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      const line = text.slice(start, nl);
      const eq = line.indexOf('=');
      if (eq > 0) info.#lines.push({ key: line.slice(0, eq), value: line.slice(eq + 1), at: start });
      start = nl + 1;
    }
    return info;
  }

  /** Parses a note descriptor (bytes are taken as Latin-1 so nothing is lost). */
  static fromBytes(desc: Uint8Array, where?: VmcoreInfoSource): VmcoreInfo {
    return VmcoreInfo.parse(Buffer.from(desc.buffer, desc.byteOffset, desc.length).toString('latin1'), where);
  }

  toText(): string {
    let s = '';
    for (const l of this.#lines) s += `${l.key}=${l.value}\n`;
    return s;
  }

  toBytes(): Uint8Array {
    return new Uint8Array(Buffer.from(this.toText(), 'latin1'));
  }

  /** The note the kernel writes: name "VMCOREINFO", type 0, the text without NUL. */
  toNote(): ElfNote {
    return { name: VMCOREINFO_NOTE_NAME, type: NT_VMCOREINFO, desc: this.toBytes() };
  }

  /** Key/value pairs in order (duplicates included, as read). */
  entries(): [string, string][] {
    return this.#lines.map((l) => [l.key, l.value]);
  }

  get lineCount(): number {
    return this.#lines.length;
  }

  /** The first value for `key`, as makedumpfile's scan finds it. */
  get(key: string): string | undefined {
    return this.#find(key)?.value;
  }

  has(key: string): boolean {
    return this.#find(key) !== undefined;
  }

  /** Replaces the value in place (dropping later duplicates) or appends a new line. */
  set(key: string, value: string): this {
    if (key.length === 0 || /[=\n]/.test(key) || /[^\x00-\xff]/.test(key)) {
      throw new RangeError(`Cannot set VMCOREINFO key "${key}": a key must be non-empty Latin-1 text without "=" or newline`);
    }
    if (/[\n]/.test(value) || /[^\x00-\xff]/.test(value)) {
      throw new RangeError(`Cannot set VMCOREINFO ${key}: value "${value}" must be Latin-1 text without newline`);
    }
    const i = this.#lines.findIndex((l) => l.key === key);
    if (i < 0) {
      this.#lines.push({ key, value, at: undefined });
    } else {
      this.#lines[i] = { key, value, at: undefined };
      this.#lines = this.#lines.filter((l, j) => j <= i || l.key !== key);
    }
    return this;
  }

  delete(key: string): boolean {
    const n = this.#lines.length;
    this.#lines = this.#lines.filter((l) => l.key !== key);
    return this.#lines.length !== n;
  }

  // Typed accessors. Each returns undefined when the key is missing and
  // throws VmcoreFormatError when it is present but malformed.

  get osrelease(): string | undefined {
    return this.get('OSRELEASE');
  }

  get pageSize(): number | undefined {
    return this.#unsigned('PAGESIZE');
  }

  /** KERNELOFFSET (KASLR slide), hex without 0x. */
  get kernelOffset(): bigint | undefined {
    return this.#hex('KERNELOFFSET');
  }

  /** CRASHTIME, seconds since the epoch, appended at panic time. */
  get crashTime(): bigint | undefined {
    return this.#signed('CRASHTIME');
  }

  symbol(name: string): bigint | undefined {
    return this.#hex(`SYMBOL(${name})`);
  }

  number(name: string): bigint | undefined {
    return this.#signed(`NUMBER(${name})`);
  }

  size(name: string): number | undefined {
    return this.#unsigned(`SIZE(${name})`);
  }

  offset(name: string): number | undefined {
    return this.#unsigned(`OFFSET(${name})`);
  }

  length(name: string): number | undefined {
    return this.#unsigned(`LENGTH(${name})`);
  }

  // Writers use the kernel's formats: %lx for symbols, %ld / %lu otherwise.

  setSymbol(name: string, addr: bigint): this {
    if (addr < 0n || addr > U64_MAX) {
      throw new RangeError(`Cannot set VMCOREINFO SYMBOL(${name}): ${addr} does not fit 64 bits`);
    }
    return this.set(`SYMBOL(${name})`, addr.toString(16));
  }

  setNumber(name: string, v: bigint | number): this {
    const b = toBigInt(v, `NUMBER(${name})`);
    if (b < I64_MIN || b > U64_MAX) throw new RangeError(`Cannot set VMCOREINFO NUMBER(${name}): ${b} does not fit 64 bits`);
    return this.set(`NUMBER(${name})`, b.toString(10));
  }

  setSize(name: string, v: bigint | number): this {
    return this.set(`SIZE(${name})`, unsignedText(v, `SIZE(${name})`));
  }

  setOffset(name: string, v: bigint | number): this {
    return this.set(`OFFSET(${name})`, unsignedText(v, `OFFSET(${name})`));
  }

  setLength(name: string, v: bigint | number): this {
    return this.set(`LENGTH(${name})`, unsignedText(v, `LENGTH(${name})`));
  }

  #find(key: string): Line | undefined {
    return this.#lines.find((l) => l.key === key);
  }

  #bad(line: Line, detail: string): VmcoreFormatError {
    const base = this.#where.offset;
    const offset = base !== undefined && line.at !== undefined ? base + line.at : undefined;
    const where = offset !== undefined ? ` at offset ${hex(offset)}` : '';
    return new VmcoreFormatError(
      `Cannot read VMCOREINFO ${line.key}${where} of "${this.#where.file}": value "${line.value}" ${detail}`,
      offset !== undefined ? { file: this.#where.file, offset, field: line.key } : { file: this.#where.file, field: line.key },
    );
  }

  #hex(key: string): bigint | undefined {
    const line = this.#find(key);
    if (!line) return undefined;
    const m = /^(?:0[xX])?([0-9a-fA-F]{1,16})$/.exec(line.value);
    if (!m?.[1]) throw this.#bad(line, 'is not a 64-bit hexadecimal number');
    return BigInt('0x' + m[1]);
  }

  /** Decimal, possibly negative; a few kernel NUMBER() lines are hex with 0x. */
  #signed(key: string): bigint | undefined {
    const line = this.#find(key);
    if (!line) return undefined;
    const v = parseInteger(line.value);
    if (v === undefined || v < I64_MIN || v > U64_MAX) throw this.#bad(line, 'is not a 64-bit integer');
    return v;
  }

  #unsigned(key: string): number | undefined {
    const line = this.#find(key);
    if (!line) return undefined;
    const v = parseInteger(line.value);
    if (v === undefined || v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) throw this.#bad(line, 'is not a non-negative integer');
    return Number(v);
  }
}

function parseInteger(s: string): bigint | undefined {
  if (/^-?[0-9]{1,20}$/.test(s)) return BigInt(s);
  if (/^0[xX][0-9a-fA-F]{1,16}$/.test(s)) return BigInt(s);
  return undefined;
}

function toBigInt(v: bigint | number, what: string): bigint {
  if (typeof v === 'number' && !Number.isSafeInteger(v)) {
    throw new RangeError(`Cannot set VMCOREINFO ${what}: ${v} is not a safe integer`);
  }
  return BigInt(v);
}

function unsignedText(v: bigint | number, what: string): string {
  const b = toBigInt(v, what);
  if (b < 0n || b > U64_MAX) throw new RangeError(`Cannot set VMCOREINFO ${what}: ${b} is not an unsigned 64-bit value`);
  return b.toString(10);
}
