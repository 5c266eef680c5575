import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { memparse, hex, hexPad, formatSize } from '../../../src/util/hex.js';

describe('memparse', () => {
  it('parses decimal, hex and unit suffixes in either case', () => {
    expect(memparse('4096')).toEqual({ value: 4096, end: 4 });
    expect(memparse('0x1000')).toEqual({ value: 4096, end: 6 });
    expect(memparse('0X1f')).toEqual({ value: 31, end: 4 });
    expect(memparse('4k')).toEqual({ value: 4096, end: 2 });
    expect(memparse('256M')).toEqual({ value: 256 * 2 ** 20, end: 4 });
    expect(memparse('8g')).toEqual({ value: 8 * 2 ** 30, end: 2 });
    expect(memparse('2T')).toEqual({ value: 2 * 2 ** 40, end: 2 });
    expect(memparse('1P')).toEqual({ value: 2 ** 50, end: 2 });
    expect(memparse('1e')).toEqual({ value: 2 ** 60, end: 2 });
    expect(memparse('0x10M')).toEqual({ value: 16 * 2 ** 20, end: 5 });
  });

  it('stops at the first character that is not part of the number or unit, and starts at `from`', () => {
    expect(memparse('256M@16M')).toEqual({ value: 256 * 2 ** 20, end: 4 });
    expect(memparse('256M@16M', 5)).toEqual({ value: 16 * 2 ** 20, end: 8 });
    expect(memparse('1G-4G:192M', 3)).toEqual({ value: 4 * 2 ** 30, end: 5 });
    expect(memparse('12MB')).toEqual({ value: 12 * 2 ** 20, end: 3 });
    expect(memparse('7x')).toEqual({ value: 7, end: 1 });
  });

  it('hex digits that look like units belong to the number', () => {
    expect(memparse('0x1E')).toEqual({ value: 0x1e, end: 4 });
  });

  it('returns undefined when no number starts there', () => {
    expect(memparse('')).toBeUndefined();
    expect(memparse('auto')).toBeUndefined();
    expect(memparse('M')).toBeUndefined();
    expect(memparse('-1')).toBeUndefined();
    expect(memparse('256M', 4)).toBeUndefined();
  });

  it('reads back what the kernel spelling of a size says (property)', () => {
    const units = [['', 1], ['K', 2 ** 10], ['M', 2 ** 20], ['G', 2 ** 30], ['T', 2 ** 40]] as const;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4095 }), fc.nat(units.length - 1), fc.boolean(), fc.boolean(), (n, u, lower, asHex) => {
        const [suffix, mult] = units[u]!;
        const num = asHex ? `0x${n.toString(16)}` : `${n}`;
        const text = `${num}${lower ? suffix.toLowerCase() : suffix}`;
        expect(memparse(`${text},rest`)).toEqual({ value: n * mult, end: text.length });
      }),
    );
  });
});

describe('hex formatting', () => {
  it('prints 0x-prefixed lower-case hex and zero-padded hex', () => {
    expect(hex(255)).toBe('0xff');
    expect(hex(0xffff_8880_0000_0000n)).toBe('0xffff888000000000');
    expect(hexPad(0x1000, 16)).toBe('0000000000001000');
    expect(hexPad(0xabcn, 2)).toBe('abc');
  });

  it('formatSize uses the largest exact binary unit', () => {
    expect(formatSize(256 * 2 ** 20)).toBe('256M');
    expect(formatSize(2 ** 30)).toBe('1G');
    expect(formatSize(1536 * 2 ** 20)).toBe('1536M');
    expect(formatSize(2 ** 40)).toBe('1T');
    expect(formatSize(4096)).toBe('4K');
    expect(formatSize(1000)).toBe('1000');
    expect(formatSize(0)).toBe('0');
  });

  it('formatSize output parses back with memparse (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 50 }), (n) => {
        expect(memparse(formatSize(n))?.value).toBe(n);
      }),
    );
  });
});
