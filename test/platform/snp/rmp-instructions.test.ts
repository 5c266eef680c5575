import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  rmpupdate, psmash, rmpread, pvalidate,
  RMP_RC_FAIL_INPUT, RMP_RC_FAIL_PERMISSION, RMP_RC_FAIL_INUSE, RMP_RC_FAIL_OVERLAP, RMP_RC_FAIL_SIZEMISMATCH,
  type RmpState,
} from '../../../src/platform/snp/rmp-instructions.js';
import { readRmpEntry } from '../../../src/platform/snp/rmp.js';
import { snpMachine, enableSnp, PFNS, MiB } from './helpers.js';

const private4k = (gpa: number, asid: number): RmpState => ({ gpa, assigned: true, pageSize: 0, immutable: false, asid });
const private2m = (gpa: number, asid: number): RmpState => ({ gpa, assigned: true, pageSize: 1, immutable: false, asid });
const shared4k: RmpState = { gpa: 0, assigned: false, pageSize: 0, immutable: false, asid: 0 };
const firmware4k: RmpState = { gpa: 0, assigned: true, pageSize: 0, immutable: true, asid: 0 };

function rcOf(r: { ok: true } | { ok: false; fault: string; rc?: number }): number | string {
  if (r.ok) return 0;
  return r.fault === 'rmp-fail' ? r.rc! : r.fault;
}

function ready() {
  const m = snpMachine();
  enableSnp(m);
  return { m, cpu: m.bsp };
}

describe('RMPUPDATE', () => {
  it('raises #UD on a CPU without SNP_EN', () => {
    const m = snpMachine();
    const r = rmpupdate(m, m.bsp, 0x10_0000, private4k(0, 1));
    expect(r).toMatchObject({ ok: false, fault: 'invalid-opcode' });
  });

  it('assigns a page, clears Validated, and records the update in the trace', () => {
    const { m, cpu } = ready();
    expect(rmpupdate(m, cpu, 0x10_0000, private4k(0x5000, 3))).toEqual({ ok: true, rc: 0 });
    expect(readRmpEntry(m.mc, m.rmp!, 0x100)).toMatchObject({ assigned: true, asid: 3, gpa: 0x5000, validated: false, pageSize: 0 });
    const ev = m.trace.find('rmpupdate', 'cpu0');
    expect(ev).toHaveLength(1);
    expect(ev[0]!.data).toMatchObject({ pfn: 0x100, asid: 3, rc: 0 });
  });

  it('FAIL_INPUT for a misaligned or uncovered address, a wide ASID or a misaligned GPA', () => {
    const { m, cpu } = ready();
    expect(rcOf(rmpupdate(m, cpu, 0x10_0800, private4k(0, 1)))).toBe(RMP_RC_FAIL_INPUT);
    expect(rcOf(rmpupdate(m, cpu, PFNS * 4096, private4k(0, 1)))).toBe(RMP_RC_FAIL_INPUT);
    expect(rcOf(rmpupdate(m, cpu, 0x10_1000, private2m(0, 1)))).toBe(RMP_RC_FAIL_INPUT);
    expect(rcOf(rmpupdate(m, cpu, 0x10_0000, private4k(0, 1024)))).toBe(RMP_RC_FAIL_INPUT);
    expect(rcOf(rmpupdate(m, cpu, 0x20_0000, private2m(0x1000, 1)))).toBe(RMP_RC_FAIL_INPUT);
    expect(m.trace.find('rmpupdate').map((e) => e.data?.['rc'])).toEqual([1, 1, 1, 1, 1]);
  });

  it('FAIL_PERMISSION when the entry is immutable (firmware-owned)', () => {
    const { m, cpu } = ready();
    expect(rcOf(rmpupdate(m, cpu, 0x10_0000, firmware4k))).toBe(0);
    expect(rcOf(rmpupdate(m, cpu, 0x10_0000, shared4k))).toBe(RMP_RC_FAIL_PERMISSION);
    expect(rcOf(rmpupdate(m, cpu, 0, private2m(0, 1)))).toBe(RMP_RC_FAIL_PERMISSION);
  });

  it('FAIL_OVERLAP for a 4 KiB update inside an assigned 2 MiB page and a 2 MiB assignment over assigned 4 KiB pages', () => {
    const { m, cpu } = ready();
    expect(rcOf(rmpupdate(m, cpu, 0x20_0000, private2m(0x20_0000, 2)))).toBe(0);
    expect(rcOf(rmpupdate(m, cpu, 0x20_3000, private4k(0x3000, 2)))).toBe(RMP_RC_FAIL_OVERLAP);
    expect(rcOf(rmpupdate(m, cpu, 0x40_5000, private4k(0x5000, 2)))).toBe(0);
    expect(rcOf(rmpupdate(m, cpu, 0x40_0000, private2m(0, 2)))).toBe(RMP_RC_FAIL_OVERLAP);
  });
});

describe('PSMASH', () => {
  it('splits an assigned 2 MiB page into 512 4 KiB entries with consecutive GPAs, keeping Validated', () => {
    const { m, cpu } = ready();
    rmpupdate(m, cpu, 0x20_0000, private2m(0x60_0000, 4));
    expect(pvalidate(m, cpu, { pa: 0x20_0000, asid: 4, pageSize: 1, validate: true })).toEqual({ ok: true, rc: 0, changed: true });
    expect(psmash(m, cpu, 0x20_0000)).toEqual({ ok: true, rc: 0 });
    for (const i of [0, 1, 511]) {
      expect(readRmpEntry(m.mc, m.rmp!, 0x200 + i)).toMatchObject({ assigned: true, pageSize: 0, asid: 4, gpa: 0x60_0000 + i * 4096, validated: true });
    }
    // Now a 4 KiB update inside it is allowed.
    expect(rcOf(rmpupdate(m, cpu, 0x20_3000, shared4k))).toBe(0);
  });

  it('FAIL_INPUT when misaligned, FAIL_INUSE when not an assigned 2 MiB page', () => {
    const { m, cpu } = ready();
    expect(rcOf(psmash(m, cpu, 0x20_1000))).toBe(RMP_RC_FAIL_INPUT);
    expect(rcOf(psmash(m, cpu, 0x20_0000))).toBe(RMP_RC_FAIL_INUSE);
    rmpupdate(m, cpu, 0x40_0000, private4k(0, 1));
    expect(rcOf(psmash(m, cpu, 0x40_0000))).toBe(RMP_RC_FAIL_INUSE);
  });
});

describe('RMPREAD', () => {
  it('returns struct rmpentry, with hpage_region_status for assigned 4 KiB pages in the region', () => {
    const { m, cpu } = ready();
    rmpupdate(m, cpu, 0x40_3000, private4k(0x8000, 7));
    const r = rmpread(m, cpu, 0x40_3000);
    expect(r).toEqual({ ok: true, rc: 0, entry: { gpa: 0x8000, assigned: true, pageSize: 0, hpageRegionStatus: true, immutable: false, asid: 7 } });
    const other = rmpread(m, cpu, 0x40_0000);
    expect(other.ok && other.entry).toMatchObject({ assigned: false, hpageRegionStatus: true });
    expect(rcOf(rmpread(m, cpu, 64 * MiB))).toBe(RMP_RC_FAIL_INPUT);
  });
});

describe('PVALIDATE', () => {
  it('sets and clears Validated for an assigned page of the guest ASID; CF (changed: false) when already so', () => {
    const { m, cpu } = ready();
    rmpupdate(m, cpu, 0x10_0000, private4k(0x1000, 5));
    expect(pvalidate(m, cpu, { pa: 0x10_0000, asid: 5, pageSize: 0, validate: true })).toEqual({ ok: true, rc: 0, changed: true });
    expect(readRmpEntry(m.mc, m.rmp!, 0x100).validated).toBe(true);
    expect(pvalidate(m, cpu, { pa: 0x10_0000, asid: 5, pageSize: 0, validate: true })).toEqual({ ok: true, rc: 0, changed: false });
    expect(pvalidate(m, cpu, { pa: 0x10_0000, asid: 5, pageSize: 0, validate: false })).toEqual({ ok: true, rc: 0, changed: true });
    expect(readRmpEntry(m.mc, m.rmp!, 0x100).validated).toBe(false);
  });

  it('FAIL_INPUT for a page of another ASID or unassigned, FAIL_SIZEMISMATCH for the wrong size, #UD outside a guest', () => {
    const { m, cpu } = ready();
    rmpupdate(m, cpu, 0x10_0000, private4k(0x1000, 5));
    rmpupdate(m, cpu, 0x20_0000, private2m(0x20_0000, 5));
    expect(rcOf(pvalidate(m, cpu, { pa: 0x10_0000, asid: 6, pageSize: 0, validate: true }))).toBe(RMP_RC_FAIL_INPUT);
    expect(rcOf(pvalidate(m, cpu, { pa: 0x30_0000 + 0x1000 * 400, asid: 5, pageSize: 0, validate: true }))).toBe(RMP_RC_FAIL_INPUT);
    expect(rcOf(pvalidate(m, cpu, { pa: 0x20_4000, asid: 5, pageSize: 0, validate: true }))).toBe(RMP_RC_FAIL_SIZEMISMATCH);
    expect(rcOf(pvalidate(m, cpu, { pa: 0, asid: 5, pageSize: 1, validate: true }))).toBe(RMP_RC_FAIL_INPUT);
    rmpupdate(m, cpu, 0x40_0000, private4k(0, 5));
    expect(rcOf(pvalidate(m, cpu, { pa: 0x40_0000, asid: 5, pageSize: 1, validate: true }))).toBe(RMP_RC_FAIL_SIZEMISMATCH);
    expect(rcOf(pvalidate(m, cpu, { pa: 0x10_0000, asid: 0, pageSize: 0, validate: true }))).toBe('invalid-opcode');
  });
});

// A trivially correct reference: a Map from PFN to its state, with the rules written out plainly.
interface Ref { assigned: boolean; pageSize: 0 | 1; immutable: boolean; gpa: number; asid: number; validated: boolean }
const EMPTY: Ref = { assigned: false, pageSize: 0, immutable: false, gpa: 0, asid: 0, validated: false };

function refUpdate(ref: Map<number, Ref>, pfn: number, s: RmpState): number {
  const get = (p: number): Ref => ref.get(p) ?? EMPTY;
  const n = s.pageSize === 1 ? 512 : 1;
  if (pfn % n !== 0 || pfn + n > PFNS || s.asid > 1023 || s.gpa % (n * 4096) !== 0) return 1;
  if (get(pfn).immutable) return 2;
  if (n === 1) {
    const big = get(pfn - (pfn % 512));
    if (big.assigned && big.pageSize === 1) return 4;
  } else {
    for (let i = 1; i < 512; i++) {
      if (get(pfn + i).immutable) return 2;
      if (s.assigned && get(pfn + i).assigned) return 4;
    }
  }
  ref.set(pfn, { assigned: s.assigned, pageSize: s.pageSize, immutable: s.immutable, gpa: s.gpa, asid: s.asid, validated: false });
  return 0;
}

function refPsmash(ref: Map<number, Ref>, pfn: number): number {
  if (pfn % 512 !== 0 || pfn + 512 > PFNS) return 1;
  const big = ref.get(pfn) ?? EMPTY;
  if (!big.assigned || big.pageSize !== 1) return 3;
  if (big.immutable) return 2;
  for (let i = 0; i < 512; i++) ref.set(pfn + i, { ...big, pageSize: 0, gpa: big.gpa + i * 4096 });
  return 0;
}

describe('RMPUPDATE and PSMASH against a reference Map', () => {
  const pfnArb = fc.oneof(
    fc.integer({ min: 0, max: 2047 }),
    fc.integer({ min: 0, max: 3 }).map((r) => r * 512),
    fc.constantFrom(PFNS - 1, PFNS - 512, PFNS),
  );
  const stateArb: fc.Arbitrary<RmpState> = fc.record({
    gpa: fc.oneof(fc.integer({ min: 0, max: 7 }).map((g) => g * 2 ** 21), fc.integer({ min: 0, max: 4095 }).map((g) => g * 4096)),
    assigned: fc.boolean(),
    pageSize: fc.constantFrom(0 as const, 1 as const),
    immutable: fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
    asid: fc.oneof(fc.integer({ min: 0, max: 8 }), fc.constant(1024)),
  });
  const opArb = fc.oneof(
    { weight: 4, arbitrary: fc.record({ op: fc.constant('update' as const), pfn: pfnArb, state: stateArb }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('psmash' as const), pfn: pfnArb }) },
  );

  it('return codes and final entries agree', () => {
    fc.assert(fc.property(fc.array(opArb, { maxLength: 25 }), (ops) => {
      const { m, cpu } = ready();
      const ref = new Map<number, Ref>();
      for (const o of ops) {
        if (o.op === 'update') expect(rcOf(rmpupdate(m, cpu, o.pfn * 4096, o.state))).toBe(refUpdate(ref, o.pfn, o.state));
        else expect(rcOf(psmash(m, cpu, o.pfn * 4096))).toBe(refPsmash(ref, o.pfn));
      }
      const pfns = new Set([...ref.keys(), 0, 1, 511, 512, 1000, 2047]);
      for (const pfn of pfns) {
        const { assigned, pageSize, immutable, gpa, asid, validated } = readRmpEntry(m.mc, m.rmp!, pfn);
        expect({ assigned, pageSize, immutable, gpa, asid, validated }).toEqual(ref.get(pfn) ?? EMPTY);
      }
    }), { numRuns: 150 });
  });
});
