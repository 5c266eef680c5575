import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  encodeRmpEntry, decodeRmpEntry, rmpEntryAddress, rmpLocationFromMsrs, rmpCovers, readRmpEntry, writeRmpEntry,
  RMP_LO_ASSIGNED, RMP_LO_VALIDATED, type RmpEntry,
} from '../../../src/platform/snp/rmp.js';
import { snpMachine, RMP_BASE, RMP_END, PFNS } from './helpers.js';

const entryArb: fc.Arbitrary<RmpEntry> = fc.record({
  assigned: fc.boolean(),
  pageSize: fc.constantFrom(0 as const, 1 as const),
  immutable: fc.boolean(),
  gpa: fc.integer({ min: 0, max: 2 ** 39 - 1 }).map((g) => g * 4096),
  asid: fc.integer({ min: 0, max: 1023 }),
  vmsa: fc.boolean(),
  validated: fc.boolean(),
  hi: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
});

describe('RMP entry format', () => {
  it('encode then decode is identity', () => {
    fc.assert(fc.property(entryArb, (e) => {
      const { lo, hi } = encodeRmpEntry(e);
      expect(decodeRmpEntry(lo, hi)).toEqual(e);
    }));
  });

  it('puts each field at its architectural bit position', () => {
    const { lo } = encodeRmpEntry({ assigned: true, pageSize: 1, immutable: true, gpa: 0x1234_5000, asid: 0x3ff, vmsa: true, validated: true, hi: 0n });
    expect(lo & 7n).toBe(7n);
    expect((lo >> 12n) & ((1n << 39n) - 1n)).toBe(0x12345n);
    expect((lo >> 51n) & 0x3ffn).toBe(0x3ffn);
    expect((lo >> 61n) & 3n).toBe(3n);
    expect(lo >> 63n).toBe(0n);
  });

  it('rejects an ASID wider than 10 bits', () => {
    expect(() => encodeRmpEntry({ assigned: true, pageSize: 0, immutable: false, gpa: 0, asid: 1024, vmsa: false, validated: false, hi: 0n })).toThrow(RangeError);
  });
});

describe('RMP location', () => {
  it('masks both MSRs to bits 51:13 and counts entries after the bookkeeping area', () => {
    const loc = rmpLocationFromMsrs(BigInt(RMP_BASE) | 0x123n, BigInt(RMP_END));
    expect(loc).toEqual({ base: RMP_BASE, end: RMP_END, entries: PFNS });
    expect(rmpCovers(loc!, PFNS - 1)).toBe(true);
    expect(rmpCovers(loc!, PFNS)).toBe(false);
  });

  it('has no RMP when either MSR is zero or base is above end', () => {
    expect(rmpLocationFromMsrs(0n, BigInt(RMP_END))).toBeUndefined();
    expect(rmpLocationFromMsrs(BigInt(RMP_BASE), 0x1fffn)).toBeUndefined();
    expect(rmpLocationFromMsrs(BigInt(RMP_END) + 0x4000n, BigInt(RMP_BASE))).toBeUndefined();
  });

  it('the machine takes it from the BSP MSRs the firmware programmed', () => {
    const m = snpMachine();
    expect(m.rmp).toEqual({ base: RMP_BASE, end: RMP_END, entries: PFNS });
    expect(snpMachine({ rmp: false }).rmp).toBeUndefined();
  });
});

describe('RMP entries are bytes in simulated memory', () => {
  it('the entry for a PFN is read back from RMP_BASE + 0x4000 + 16 * pfn', () => {
    const m = snpMachine();
    const loc = m.rmp!;
    const pfn = 0x1234;
    const e: RmpEntry = { assigned: true, pageSize: 0, immutable: false, gpa: 0x7000, asid: 5, vmsa: false, validated: true, hi: 0xabcdn };
    writeRmpEntry(m.mc, loc, pfn, e);
    const addr = rmpEntryAddress(loc.base, pfn);
    expect(addr).toBe(RMP_BASE + 0x4000 + 16 * 0x1234);
    const raw = new Uint8Array(16);
    m.dram.read(addr, raw);
    const dv = new DataView(raw.buffer);
    const lo = dv.getBigUint64(0, true);
    expect(lo & RMP_LO_ASSIGNED).toBe(RMP_LO_ASSIGNED);
    expect(lo & RMP_LO_VALIDATED).toBe(RMP_LO_VALIDATED);
    expect(Number((lo >> 51n) & 0x3ffn)).toBe(5);
    expect(dv.getBigUint64(8, true)).toBe(0xabcdn);
    // Neighbours untouched.
    m.dram.read(addr - 16, raw);
    expect(raw.every((b) => b === 0)).toBe(true);
    // And a raw store is what the decoder sees.
    const mine = new Uint8Array(16);
    new DataView(mine.buffer).setBigUint64(0, encodeRmpEntry({ ...e, asid: 9, gpa: 0x9000 }).lo, true);
    m.dram.write(rmpEntryAddress(loc.base, pfn + 1), mine);
    expect(readRmpEntry(m.mc, loc, pfn + 1)).toMatchObject({ assigned: true, asid: 9, gpa: 0x9000 });
  });

  it('refuses to touch an entry the RMP does not cover', () => {
    const m = snpMachine();
    expect(() => readRmpEntry(m.mc, m.rmp!, PFNS)).toThrow(RangeError);
  });
});
