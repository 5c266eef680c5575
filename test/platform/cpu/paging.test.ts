import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  walk, makePte, splitVirt,
  PTE_P, PTE_RW, PTE_PS, PTE_A, PTE_D, PTE_US, PTE_G, PTE_HI_NX, PF_PRESENT, PF_WRITE,
} from '../../../src/platform/cpu/paging.js';
import { MemoryController } from '../../../src/platform/memory-controller.js';
import { PhysicalMemory } from '../../../src/platform/physical-memory.js';

const GiB = 2 ** 30;
const MiB2 = 2 ** 21;
const cpu = { kind: 'cpu', id: 0 } as const;

/** A canonical address from 48 bits of address (sign-extended from bit 47). */
function canonical(v48: bigint): bigint {
  return (v48 & (1n << 47n)) !== 0n ? v48 | 0xffff_0000_0000_0000n : v48;
}

function putEntry(mc: MemoryController, pa: number, e: { lo: number; hi: number }): void {
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, e.lo, true);
  dv.setUint32(4, e.hi, true);
  mc.write(pa, b, cpu);
}

/** Hand-built tables: PML4 at 0x1000, PDPT at 0x2000, PD at 0x3000, PT at 0x4000, for the indices of `v`. */
function handTables(v: bigint, leaf: { level: 1 | 2 | 3; pa: number; lo: number; hi?: number }, tableLo = PTE_P | PTE_RW, tableHi = 0): MemoryController {
  const mc = new MemoryController(new PhysicalMemory(64 * 4096));
  const sv = splitVirt(v);
  if (!sv.ok) throw new Error('test address must be canonical');
  const [i4, i3, i2, i1] = sv.idx;
  putEntry(mc, 0x1000 + i4 * 8, makePte(0x2000, tableLo, tableHi));
  if (leaf.level === 3) {
    putEntry(mc, 0x2000 + i3 * 8, makePte(leaf.pa, leaf.lo | PTE_PS, leaf.hi ?? 0));
    return mc;
  }
  putEntry(mc, 0x2000 + i3 * 8, makePte(0x3000, tableLo, tableHi));
  if (leaf.level === 2) {
    putEntry(mc, 0x3000 + i2 * 8, makePte(leaf.pa, leaf.lo | PTE_PS, leaf.hi ?? 0));
    return mc;
  }
  putEntry(mc, 0x3000 + i2 * 8, makePte(0x4000, tableLo, tableHi));
  putEntry(mc, 0x4000 + i1 * 8, makePte(leaf.pa, leaf.lo, leaf.hi ?? 0));
  return mc;
}

describe('splitVirt', () => {
  it('splits a canonical address into indices that rebuild it', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 48n) - 1n }), (v48) => {
        const v = canonical(v48);
        const sv = splitVirt(v);
        expect(sv.ok).toBe(true);
        if (!sv.ok) return;
        const [i4, i3, i2, i1] = sv.idx;
        for (const i of sv.idx) expect(i >= 0 && i < 512).toBe(true);
        const rebuilt = (((BigInt(i4) * 512n + BigInt(i3)) * 512n + BigInt(i2)) * 512n + BigInt(i1)) * 4096n + (v48 & 0xfffn);
        expect(rebuilt).toBe(v48);
        expect(BigInt(sv.low)).toBe(v48 & 0x3fff_ffffn);
      }),
    );
  });

  it('rejects every non-canonical address', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (v) => {
        const top = v >> 47n;
        fc.pre(top !== 0n && top !== 0x1ffffn);
        expect(splitVirt(v).ok).toBe(false);
      }),
    );
    for (const v of [0x0000_8000_0000_0000n, 0xffff_7fff_ffff_ffffn, 0x8000_0000_0000_0000n, 0x7fff_ffff_ffff_ffffn]) {
      expect(splitVirt(v).ok).toBe(false);
    }
    expect(splitVirt(0x0000_7fff_ffff_ffffn).ok).toBe(true);
    expect(splitVirt(0xffff_8000_0000_0000n).ok).toBe(true);
  });
});

describe('makePte', () => {
  it('encodes a 4 KiB-aligned 52-bit address and flags so they decode back', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 - 1 }), fc.integer({ min: 0, max: 0xfff }), fc.boolean(), (pfn, flags, nx) => {
        const pa = pfn * 4096;
        const e = makePte(pa, flags, nx ? PTE_HI_NX : 0);
        expect(e.lo >>> 0).toBe(e.lo);
        expect(e.hi >>> 0).toBe(e.hi);
        expect(e.lo & 0xfff).toBe(flags);
        expect((e.hi & 0x000f_ffff) * 2 ** 32 + ((e.lo & 0xffff_f000) >>> 0)).toBe(pa);
        expect((e.hi & PTE_HI_NX) !== 0).toBe(nx);
      }),
    );
  });
});

describe('walk', () => {
  const v = 0xffff_8880_1234_5678n;

  it('translates through hand-built 4 KiB, 2 MiB and 1 GiB leaves', () => {
    const pa4k = 0x7_6543_2000;
    const r1 = walk(handTables(v, { level: 1, pa: pa4k, lo: PTE_P | PTE_RW }), 0x1000, v);
    expect(r1).toMatchObject({ ok: true, pa: pa4k + 0x678, pageSize: 4096, level: 1, writable: true, nx: false });
    const pa2m = 0x40_0000_0000;
    const r2 = walk(handTables(v, { level: 2, pa: pa2m, lo: PTE_P }), 0x1000, v);
    expect(r2).toMatchObject({ ok: true, pa: pa2m + (0x1234_5678 % MiB2), pageSize: MiB2, level: 2, writable: false });
    const pa1g = 3 * GiB;
    const r3 = walk(handTables(v, { level: 3, pa: pa1g, lo: PTE_P | PTE_RW }), 0x1000, v);
    expect(r3).toMatchObject({ ok: true, pa: pa1g + 0x1234_5678 % GiB, pageSize: GiB, level: 3 });
  });

  it('ignores the low bits of CR3 and of a large-page frame address', () => {
    const mc = handTables(v, { level: 2, pa: 0x40_0000_0000 + 0x1000 /* PAT bit area, not address */, lo: PTE_P });
    const r = walk(mc, 0x1000 | 0x18 /* PWT|PCD in CR3 */, v);
    expect(r).toMatchObject({ ok: true, pa: 0x40_0000_0000 + (0x1234_5678 % MiB2) });
  });

  it('reports NX from any level and read-only from any level', () => {
    const nxLeaf = walk(handTables(v, { level: 1, pa: 0x5000, lo: PTE_P | PTE_RW, hi: PTE_HI_NX }), 0x1000, v);
    expect(nxLeaf).toMatchObject({ ok: true, nx: true });
    const nxTable = walk(handTables(v, { level: 1, pa: 0x5000, lo: PTE_P | PTE_RW }, PTE_P | PTE_RW, PTE_HI_NX), 0x1000, v);
    expect(nxTable).toMatchObject({ ok: true, nx: true });
    // A read-only table entry makes a writable leaf read-only.
    const mc = handTables(v, { level: 1, pa: 0x5000, lo: PTE_P | PTE_RW }, PTE_P);
    expect(walk(mc, 0x1000, v)).toMatchObject({ ok: true, writable: false });
    expect(walk(mc, 0x1000, v, { write: true })).toMatchObject({ ok: false, fault: 'write-protect', level: 1, errorCode: PF_PRESENT | PF_WRITE });
  });

  it('faults write-protect on a write to a read-only page, with P and W/R in the error code', () => {
    for (const level of [1, 2, 3] as const) {
      const mc = handTables(v, { level, pa: level === 3 ? GiB : level === 2 ? MiB2 : 0x5000, lo: PTE_P | PTE_A | PTE_D | PTE_US | PTE_G });
      expect(walk(mc, 0x1000, v)).toMatchObject({ ok: true, writable: false, level });
      const w = walk(mc, 0x1000, v, { write: true });
      expect(w).toMatchObject({ ok: false, fault: 'write-protect', level });
      if (!w.ok) expect(w.errorCode).toBe(PF_PRESENT | PF_WRITE);
    }
  });

  it('faults not-present at the level whose entry is missing', () => {
    const mc = new MemoryController(new PhysicalMemory(64 * 4096));
    const sv = splitVirt(v);
    if (!sv.ok) throw new Error('canonical');
    const [i4, i3, i2] = sv.idx;
    expect(walk(mc, 0x1000, v)).toMatchObject({ ok: false, fault: 'not-present', level: 4, errorCode: 0 });
    putEntry(mc, 0x1000 + i4 * 8, makePte(0x2000, PTE_P | PTE_RW));
    expect(walk(mc, 0x1000, v)).toMatchObject({ ok: false, fault: 'not-present', level: 3 });
    putEntry(mc, 0x2000 + i3 * 8, makePte(0x3000, PTE_P | PTE_RW));
    expect(walk(mc, 0x1000, v)).toMatchObject({ ok: false, fault: 'not-present', level: 2 });
    putEntry(mc, 0x3000 + i2 * 8, makePte(0x4000, PTE_P | PTE_RW));
    const r = walk(mc, 0x1000, v, { write: true });
    expect(r).toMatchObject({ ok: false, fault: 'not-present', level: 1 });
    // A not-present fault has P clear; W/R says what the access was.
    if (!r.ok) expect(r.errorCode).toBe(PF_WRITE);
    // An entry with P clear but other bits set is still not present.
    putEntry(mc, 0x1000 + i4 * 8, { lo: 0x2000 | PTE_RW, hi: 0 });
    expect(walk(mc, 0x1000, v)).toMatchObject({ ok: false, fault: 'not-present', level: 4 });
  });

  it('faults non-canonical without reading any table', () => {
    const mc = new MemoryController(new PhysicalMemory(4096));
    const r = walk(mc, 0, 0x0000_8000_0000_0000n);
    expect(r).toMatchObject({ ok: false, fault: 'non-canonical', level: 4, errorCode: 0 });
    expect(mc.bytesRead).toBe(0);
  });

  it('strips the SME C-bit from table and frame addresses and reports it as encrypted', () => {
    const cbitHi = 1 << 15; // bit 47
    const mc = handTables(v, { level: 1, pa: 0x9000, lo: PTE_P | PTE_RW, hi: cbitHi }, PTE_P | PTE_RW, cbitHi);
    expect(walk(mc, 0x1000, v, { encMaskHi: cbitHi })).toMatchObject({ ok: true, pa: 0x9678, encrypted: true });
  });
});
