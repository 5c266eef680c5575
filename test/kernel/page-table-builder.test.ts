import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { physAccess } from '../../src/kernel/phys-access.js';
import { PageTableBuilder } from '../../src/kernel/page-table-builder.js';
import { walk, PF_PRESENT, PF_WRITE, type WalkResult } from '../../src/platform/cpu/paging.js';
import { MemoryController } from '../../src/platform/memory-controller.js';
import { PhysicalMemory } from '../../src/platform/physical-memory.js';

const KiB4 = 4096;
const MiB2 = 2 ** 21;
const GiB = 2 ** 30;
const SLOT = 8 * GiB;
const HIGH_HALF = 0xffff_8000_0000_0000n;
const who = { kind: 'cpu', id: 0 } as const;

/** Tables live in a 64 MiB DRAM; mapped physical addresses need not exist (walk never touches them). */
function setup(gbPages = true): { mc: MemoryController; ptb: PageTableBuilder; allocs: () => number } {
  const mc = new MemoryController(new PhysicalMemory(64 * 2 ** 20));
  let next = 0x10_0000;
  let n = 0;
  const root = next;
  next += KiB4;
  const ptb = new PageTableBuilder(physAccess(mc, who, () => 0), root, () => {
    n++;
    const p = next;
    next += KiB4;
    return p;
  }, gbPages);
  return { mc, ptb, allocs: () => n };
}

interface Region {
  va: bigint;
  pa: number;
  size: number;
  writable: boolean;
}

interface Page {
  v48: number;
  pa: number;
  size: number;
  writable: boolean;
}

/**
 * The kernel's rule (init_memory_mapping): the largest page both addresses are
 * aligned to and the rest of the range fills; 1 GiB only when the CPU has pdpe1gb.
 */
function decompose(r: Region, gbPages: boolean): Page[] {
  const out: Page[] = [];
  const v48 = Number(r.va & 0xffff_ffff_ffffn);
  for (let off = 0; off < r.size;) {
    const v = v48 + off;
    const p = r.pa + off;
    const left = r.size - off;
    const size = gbPages && v % GiB === 0 && p % GiB === 0 && left >= GiB ? GiB : v % MiB2 === 0 && p % MiB2 === 0 && left >= MiB2 ? MiB2 : KiB4;
    out.push({ v48: v, pa: p, size, writable: r.writable });
    off += size;
  }
  return out;
}

/**
 * The reference MMU: which leaves are mapped now, and which tables were ever
 * created (unmap clears leaves but leaves tables in place).
 */
class RefMmu {
  readonly leaves = new Map<string, Page>(); // `${size}:${v48/size}`
  readonly pdpts = new Set<number>(); // 512 GiB blocks with a PDPT
  readonly pds = new Set<number>(); // 1 GiB blocks with a PD
  readonly pts = new Set<number>(); // 2 MiB blocks with a PT

  add(p: Page): void {
    this.leaves.set(`${p.size}:${p.v48 / p.size}`, p);
    this.pdpts.add(Math.floor(p.v48 / 2 ** 39));
    if (p.size < GiB) this.pds.add(Math.floor(p.v48 / GiB));
    if (p.size < MiB2) this.pts.add(Math.floor(p.v48 / MiB2));
  }

  remove(p: Page): void {
    this.leaves.delete(`${p.size}:${p.v48 / p.size}`);
  }

  get tableCount(): number {
    return this.pdpts.size + this.pds.size + this.pts.size;
  }

  lookup(v48: number): { ok: true; page: Page } | { ok: false; level: number } {
    for (const size of [GiB, MiB2, KiB4]) {
      const p = this.leaves.get(`${size}:${Math.floor(v48 / size)}`);
      if (p !== undefined) return { ok: true, page: p };
    }
    if (!this.pdpts.has(Math.floor(v48 / 2 ** 39))) return { ok: false, level: 4 };
    if (!this.pds.has(Math.floor(v48 / GiB))) return { ok: false, level: 3 };
    if (!this.pts.has(Math.floor(v48 / MiB2))) return { ok: false, level: 2 };
    return { ok: false, level: 1 };
  }
}

function toVirt(v48: number): bigint {
  const b = BigInt(v48);
  return v48 >= 2 ** 47 ? b | 0xffff_0000_0000_0000n : b;
}

function checkAddress(mc: MemoryController, root: number, ref: RefMmu, v48: number): void {
  const va = toVirt(v48);
  const exp = ref.lookup(v48);
  const r: WalkResult = walk(mc, root, va);
  const w: WalkResult = walk(mc, root, va, { write: true });
  const where = `va 0x${va.toString(16)}`;
  if (exp.ok) {
    const p = exp.page;
    const level = p.size === GiB ? 3 : p.size === MiB2 ? 2 : 1;
    expect(r, where).toEqual({ ok: true, pa: p.pa + (v48 - p.v48), pageSize: p.size, writable: p.writable, nx: false, encrypted: false, level });
    if (p.writable) expect(w, where).toMatchObject({ ok: true, pa: p.pa + (v48 - p.v48) });
    else expect(w, where).toMatchObject({ ok: false, fault: 'write-protect', level, errorCode: PF_PRESENT | PF_WRITE });
  } else {
    expect(r, where).toMatchObject({ ok: false, fault: 'not-present', level: exp.level, errorCode: 0 });
    expect(w, where).toMatchObject({ ok: false, fault: 'not-present', level: exp.level, errorCode: PF_WRITE });
  }
}

/** A region inside its own 8 GiB slot; the slot picks the PML4 entry (both halves) and the place in it. */
const region: fc.Arbitrary<{ slot: string; r: Region }> = fc
  .record({
    high: fc.boolean(),
    pml4: fc.constantFrom(0, 1, 255),
    slot: fc.nat(63),
    vaAlign: fc.constantFrom(KiB4, MiB2, GiB),
    paAlign: fc.constantFrom(KiB4, MiB2, GiB),
    writable: fc.boolean(),
    k: fc.nat(),
    pk: fc.nat(),
    a: fc.nat(2),
    b: fc.nat(3),
    c: fc.nat(16),
  })
  .map((g) => {
    const align = Math.min(g.vaAlign, g.paAlign);
    // Keep the number of 4 KiB / 2 MiB entries small; sizes stay below 4 GiB.
    const gib = align === GiB ? Math.max(1, g.a) : align === MiB2 ? Math.min(g.a, 1) : 0;
    const mib2 = align === KiB4 ? Math.min(g.b, 1) : g.b;
    const pages = align === KiB4 ? Math.max(1, g.c) : g.c % 5;
    const size = gib * GiB + mib2 * MiB2 + pages * KiB4 || KiB4;
    const vOff = (g.k % Math.floor((4 * GiB) / g.vaAlign)) * g.vaAlign;
    const pa = (g.pk % Math.floor(2 ** 45 / g.paAlign)) * g.paAlign;
    const base = BigInt(g.pml4 * 2 ** 39 + g.slot * SLOT + vOff);
    return { slot: `${g.high}:${g.pml4}:${g.slot}`, r: { va: g.high ? HIGH_HALF + base : base, pa, size, writable: g.writable } };
  });

const scenario = fc.record({
  regions: fc.uniqueArray(region, { minLength: 1, maxLength: 8, selector: (x) => x.slot }).map((xs) => xs.map((x) => x.r)),
  unmap: fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
  probes: fc.array(fc.bigInt({ min: 0n, max: (1n << 48n) - 1n }), { maxLength: 20 }),
  offsets: fc.array(fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), { minLength: 4, maxLength: 4 }),
  gbPages: fc.boolean(),
});

describe('PageTableBuilder with walk (model-based)', () => {
  it('maps random regions with the largest aligned pages; walk agrees with a reference MMU before and after unmap', () => {
    fc.assert(
      fc.property(scenario, ({ regions, unmap, probes, offsets, gbPages }) => {
        const { mc, ptb, allocs } = setup(gbPages);
        const ref = new RefMmu();
        const pagesOf = regions.map((r) => decompose(r, gbPages));
        regions.forEach((r, i) => {
          ptb.map(r.va, r.pa, r.size, { writable: r.writable });
          for (const p of pagesOf[i]!) ref.add(p);
        });
        // Tables are created only where needed, each exactly once.
        expect(allocs()).toBe(ref.tableCount);
        expect(ptb.tablePages).toBe(ref.tableCount + 1);

        // Sample: first/last byte of some pages, random offsets, around each region, and random addresses.
        const samples: number[] = [];
        for (const [i, r] of regions.entries()) {
          const v48 = Number(r.va & 0xffff_ffff_ffffn);
          const pages = pagesOf[i]!;
          const step = Math.max(1, Math.floor(pages.length / 12));
          for (let j = 0; j < pages.length; j += step) samples.push(pages[j]!.v48, pages[j]!.v48 + pages[j]!.size - 1);
          const last = pages[pages.length - 1]!;
          samples.push(last.v48 + last.size - 1);
          for (const f of offsets) samples.push(v48 + Math.floor(f * r.size));
          samples.push(v48 - 1, v48 + r.size, v48 + r.size + MiB2, v48 - GiB);
        }
        for (const p of probes) samples.push(Number(p));
        const inRange = samples.filter((s) => s >= 0 && s < 2 ** 48);

        for (const s of inRange) checkAddress(mc, ptb.root, ref, s);

        // Unmap some whole regions: their addresses fault, the others still translate.
        regions.forEach((r, i) => {
          if (!unmap[i]) return;
          ptb.unmap(r.va, r.size);
          for (const p of pagesOf[i]!) ref.remove(p);
        });
        expect(ptb.tablePages).toBe(ref.tableCount + 1); // unmap frees no tables
        for (const s of inRange) checkAddress(mc, ptb.root, ref, s);
      }),
      { numRuns: 120 },
    );
  });

  it('maps a 2 MiB-aligned run as 2 MiB pages and its unaligned tail as 4 KiB pages', () => {
    const { mc, ptb } = setup();
    const va = 0xffff_8880_0000_0000n + BigInt(GiB - 2 * MiB2);
    ptb.map(va, 5 * GiB - 2 * MiB2, 3 * MiB2 + 3 * KiB4 + GiB, { writable: true });
    const sizes = (off: number): number => {
      const r = walk(mc, ptb.root, va + BigInt(off));
      return r.ok ? r.pageSize : -1;
    };
    expect(sizes(0)).toBe(MiB2);
    expect(sizes(MiB2)).toBe(MiB2);
    expect(sizes(2 * MiB2)).toBe(GiB); // both addresses reach a 1 GiB boundary here
    expect(sizes(2 * MiB2 + GiB)).toBe(MiB2);
    expect(sizes(3 * MiB2 + GiB)).toBe(KiB4);
    expect(sizes(3 * MiB2 + GiB + 3 * KiB4)).toBe(-1);
  });

  it('without 1 GiB page support maps a 1 GiB-aligned gibibyte as 2 MiB pages', () => {
    const { mc, ptb, allocs } = setup(false);
    ptb.map(0xffff_8880_0000_0000n, 4 * GiB, GiB, { writable: true });
    expect(walk(mc, ptb.root, 0xffff_8880_0000_0000n + 0x1234_5678n)).toMatchObject({ ok: true, pa: 4 * GiB + 0x1234_5678, pageSize: MiB2, level: 2 });
    expect(allocs()).toBe(2); // a PDPT and one PD holding 512 entries
  });

  it('uses 4 KiB pages when virtual and physical addresses disagree in alignment', () => {
    const { mc, ptb } = setup();
    ptb.map(0x4000_0000n, 0x20_1000, MiB2, { writable: false });
    const r = walk(mc, ptb.root, 0x4000_0000n + 0x12345n);
    expect(r).toMatchObject({ ok: true, pa: 0x20_1000 + 0x12345, pageSize: KiB4, writable: false });
  });

  it('refuses to map 4 KiB pages inside an existing 1 GiB page', () => {
    const { ptb } = setup();
    ptb.map(0x40_0000_0000n, GiB, GiB, { writable: true });
    expect(() => ptb.map(0x40_0000_0000n + 0x1000n, 0x1000, KiB4, { writable: true })).toThrow(/larger page already covers it/);
  });

  it('refuses to map a non-canonical address', () => {
    const { ptb } = setup();
    expect(() => ptb.map(0x0000_8000_0000_0000n, 0, KiB4, { writable: true })).toThrow(RangeError);
  });

  // unmap() clears whole leaves: a range starting inside a large page must go on
  // from that leaf's end, not from start + leaf size.
  it('unmap of a range that starts inside a large page also removes the pages after it', () => {
    const { mc, ptb } = setup();
    const va = 0x4000_0000n;
    ptb.map(va, 0x4000_0000, MiB2, { writable: true }); // one 2 MiB page
    ptb.map(va + BigInt(MiB2), 0x8000_0000, 2 * KiB4, { writable: true }); // two 4 KiB pages after it
    // Unmap from the middle of the 2 MiB page to the end of the second 4 KiB page.
    ptb.unmap(va + BigInt(MiB2 / 2), MiB2 / 2 + 2 * KiB4);
    expect(walk(mc, ptb.root, va)).toMatchObject({ ok: false, fault: 'not-present' }); // the whole large page goes
    expect(walk(mc, ptb.root, va + BigInt(MiB2))).toMatchObject({ ok: false, fault: 'not-present' });
    expect(walk(mc, ptb.root, va + BigInt(MiB2 + KiB4))).toMatchObject({ ok: false, fault: 'not-present' });
  });
});
