import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { PRSTATUS_SIZE, X86_PRSTATUS_REGS, decodePrStatus, encodePrStatus, zeroRegs, type PrStatus, type RegName } from '../../src/dump/prstatus.js';
import { VmcoreFormatError } from '../../src/util/errors.js';

const where = { file: 'p.core', offset: 0x2014 };
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const regs = fc.tuple(...X86_PRSTATUS_REGS.map(() => u64)).map((vals) => {
  const r = zeroRegs();
  X86_PRSTATUS_REGS.forEach((name, i) => (r[name] = vals[i] ?? 0n));
  return r;
});
const prstatus: fc.Arbitrary<PrStatus> = fc.record({ pid: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), regs });

describe('NT_PRSTATUS (x86_64)', () => {
  it('has 27 registers, r15 first and gs last', () => {
    expect(X86_PRSTATUS_REGS.length).toBe(27);
    expect(X86_PRSTATUS_REGS[0]).toBe('r15');
    expect(X86_PRSTATUS_REGS[16]).toBe('rip');
    expect(X86_PRSTATUS_REGS[19]).toBe('rsp');
    expect(X86_PRSTATUS_REGS[26]).toBe('gs');
  });

  it('decodes what it encodes', () => {
    fc.assert(
      fc.property(prstatus, (p) => {
        const b = encodePrStatus(p);
        expect(b.length).toBe(PRSTATUS_SIZE);
        expect(decodePrStatus(b, where)).toEqual(p);
      }),
    );
  });

  it('puts pid at 32, rip at 240, rsp at 264', () => {
    const r = zeroRegs();
    r.rip = 0xffffffff81000000n;
    r.rsp = 0xffffc90000123f00n;
    const b = encodePrStatus({ pid: 1234, regs: r });
    const v = new DataView(b.buffer);
    expect(v.getInt32(32, true)).toBe(1234);
    expect(v.getBigUint64(240, true)).toBe(r.rip);
    expect(v.getBigUint64(264, true)).toBe(r.rsp);
    expect(b[328]).toBe(0);
  });

  it('reads a 328-byte descriptor (up to the end of pr_reg) and rejects a shorter one', () => {
    const r: Record<RegName, bigint> = zeroRegs();
    r.gs = 0x2bn;
    const b = encodePrStatus({ pid: 7, regs: r });
    expect(decodePrStatus(b.subarray(0, 328), where).regs.gs).toBe(0x2bn);
    expect(() => decodePrStatus(b.subarray(0, 327), where)).toThrow(VmcoreFormatError);
    expect(() => decodePrStatus(b.subarray(0, 327), where)).toThrow(
      'Cannot read NT_PRSTATUS note at offset 0x2014 of "p.core": descriptor is 327 bytes, x86_64 needs at least 328',
    );
  });
});
