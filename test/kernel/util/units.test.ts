import { describe, it, expect } from 'vitest';
import { parseSize, parseDuration } from '../../../src/util/units.js';

describe('parseSize', () => {
  it('parses memparse sizes, numbers and surrounding blanks', () => {
    expect(parseSize('256M')).toBe(256 * 2 ** 20);
    expect(parseSize(' 8G ')).toBe(8 * 2 ** 30);
    expect(parseSize('1T')).toBe(2 ** 40);
    expect(parseSize('0x1000')).toBe(4096);
    expect(parseSize('0')).toBe(0);
    expect(parseSize(4096)).toBe(4096);
  });

  it('rejects partial sizes, negatives, fractions and values past 2^53', () => {
    expect(parseSize('256MB')).toBeUndefined();
    expect(parseSize('256 M')).toBeUndefined();
    expect(parseSize('1.5G')).toBeUndefined();
    expect(parseSize('-1')).toBeUndefined();
    expect(parseSize('')).toBeUndefined();
    expect(parseSize('lots')).toBeUndefined();
    expect(parseSize('16E')).toBeUndefined(); // 2^64
    expect(parseSize(-1)).toBeUndefined();
    expect(parseSize(1.5)).toBeUndefined();
    expect(parseSize(Number.NaN)).toBeUndefined();
    expect(parseSize(2 ** 60)).toBeUndefined();
  });
});

describe('parseDuration', () => {
  it('parses ns, us, ms and s into nanoseconds, with fractions', () => {
    expect(parseDuration('100ns')).toBe(100);
    expect(parseDuration('100us')).toBe(100_000);
    expect(parseDuration('2ms')).toBe(2_000_000);
    expect(parseDuration('1.5s')).toBe(1_500_000_000);
    expect(parseDuration(' 3 ms ')).toBe(3_000_000);
    expect(parseDuration('0.0015us')).toBe(2); // rounded to whole nanoseconds
    expect(parseDuration(250)).toBe(250);
  });

  it('rejects missing or unknown units and negative numbers', () => {
    expect(parseDuration('100')).toBeUndefined();
    expect(parseDuration('1m')).toBeUndefined();
    expect(parseDuration('1h')).toBeUndefined();
    expect(parseDuration('-1s')).toBeUndefined();
    expect(parseDuration('.5s')).toBeUndefined();
    expect(parseDuration('1e3ns')).toBeUndefined();
    expect(parseDuration('')).toBeUndefined();
    expect(parseDuration(-1)).toBeUndefined();
    expect(parseDuration(Number.POSITIVE_INFINITY)).toBeUndefined();
  });
});
