import { describe, expect, it } from 'vitest';
import { PageClassifier, levelExcludes, type PageClass } from '../../src/dump/page-class.js';
import { framePhysMemory } from '../../src/dump/kernel-vm.js';
import { VmcoreInfo } from '../../src/dump/vmcoreinfo.js';
import { Prng } from '../../src/util/prng.js';

// A FLATMEM kernel in a few frames: the mem_map pointer at phys 0x44000 (a
// kernel-image symbol), the struct page array at phys 0x100000 (direct map).
// No page-table symbol, so kernel addresses resolve by their fixed offsets.
const MEM_MAP_PA = 0x100000;
const PG = { lru: 4, slab: 9, swapcache: 10, private: 13, swapbacked: 19, hwpoison: 23 };
const HEAD = 16;
const SP = { size: 64, flags: 0, mapping: 24, private: 40, mapcount: 48, refcount: 52, compoundOrder: 32 };
const BUDDY = -129;
const OFFLINE = -257;

interface Page { flags?: number[]; anon?: boolean; mapping?: boolean; priv?: number; mapcount?: number; order1?: number }

function kernel(pages: Map<number, Page>, extra: (vi: VmcoreInfo) => void = () => {}): { vi: VmcoreInfo; frames: Map<number, Uint8Array> } {
  const frames = new Map<number, Uint8Array>();
  const write = (pa: number, fn: (dv: DataView, off: number) => void): void => {
    const pfn = Math.floor(pa / 4096);
    let f = frames.get(pfn);
    if (!f) frames.set(pfn, (f = new Uint8Array(4096)));
    fn(new DataView(f.buffer), pa % 4096);
  };
  write(0x44000, (dv, o) => dv.setBigUint64(o, 0xffff_8880_0000_0000n + BigInt(MEM_MAP_PA), true));
  for (const [pfn, p] of pages) {
    write(MEM_MAP_PA + pfn * SP.size, (dv, o) => {
      let flags = 0n;
      for (const b of p.flags ?? []) flags |= 1n << BigInt(b);
      dv.setBigUint64(o + SP.flags, flags, true);
      dv.setBigUint64(o + SP.mapping, p.anon ? 0xffff_8880_0300_0001n : p.mapping ? 0xffff_8880_0100_0000n : 0n, true);
      dv.setBigUint64(o + SP.private, BigInt(p.priv ?? 0), true);
      dv.setInt32(o + SP.mapcount, p.mapcount ?? -1, true);
      dv.setInt32(o + SP.refcount, p.mapcount === BUDDY ? 0 : 1, true);
    });
    if (p.order1 !== undefined) write(MEM_MAP_PA + (pfn + 1) * SP.size, (dv, o) => dv.setUint8(o + SP.compoundOrder, p.order1!));
  }
  const vi = new VmcoreInfo();
  vi.set('OSRELEASE', '6.1.0').set('PAGESIZE', '4096');
  vi.setSymbol('mem_map', 0xffff_ffff_8000_0000n + 0x44000n);
  vi.setSize('page', SP.size);
  vi.setOffset('page.flags', SP.flags).setOffset('page._refcount', SP.refcount).setOffset('page.mapping', SP.mapping);
  vi.setOffset('page.private', SP.private).setOffset('page._mapcount', SP.mapcount).setOffset('page.compound_order', SP.compoundOrder);
  vi.setLength('zone.free_area', 11);
  vi.setNumber('PG_lru', PG.lru).setNumber('PG_private', PG.private).setNumber('PG_swapcache', PG.swapcache);
  vi.setNumber('PG_swapbacked', PG.swapbacked).setNumber('PG_slab', PG.slab).setNumber('PG_hwpoison', PG.hwpoison);
  vi.setNumber('PG_head_mask', 1 << HEAD);
  vi.setNumber('PAGE_BUDDY_MAPCOUNT_VALUE', BUDDY).setNumber('PAGE_OFFLINE_MAPCOUNT_VALUE', OFFLINE);
  extra(vi);
  return { vi, frames };
}

function scan(k: { vi: VmcoreInfo; frames: Map<number, Uint8Array> }, level: number, spans = [{ startPfn: 0, endPfn: 0x800 }]): Map<number, PageClass> {
  const out = new Map<number, PageClass>();
  new PageClassifier(k.vi, framePhysMemory((pfn) => k.frames.get(pfn)), 'test').scan(spans, level, (a, b, cls) => {
    for (let p = a; p < b; p++) {
      expect(out.has(p), `frame 0x${p.toString(16)} reported twice`).toBe(false);
      out.set(p, cls);
    }
  });
  return out;
}

const SAMPLE = new Map<number, Page>([
  [0x10, { mapcount: BUDDY, priv: 2 }], // free block 0x10-0x13
  [0x11, { flags: [PG.lru], mapping: true }], // junk in a free block's tail: not looked at when bit 16 is set
  [0x20, { flags: [PG.lru], mapping: true }],
  [0x21, { flags: [PG.lru, PG.private], mapping: true }],
  [0x22, { flags: [PG.lru, PG.swapbacked], anon: true, mapcount: 0 }],
  [0x23, { flags: [PG.swapcache, PG.swapbacked] }], // swap cache
  [0x24, { flags: [PG.swapcache] }], // PG_swapcache alone is another flag's alias: not cache
  [0x25, { flags: [PG.slab], anon: true }], // slab's low mapping bit is not PAGE_MAPPING_ANON
  [0x26, { flags: [PG.hwpoison] }],
  [0x27, { mapcount: OFFLINE }],
  [0x28, { flags: [PG.slab], mapcount: BUDDY, priv: 3 }], // slab is never free
  [0x29, { mapcount: BUDDY, priv: 11 }], // order past LENGTH(zone.free_area): left in
  [0x40, { flags: [HEAD], anon: true, order1: 3 }], // an anonymous compound page 0x40-0x47
  [0x1ff, { flags: [HEAD], anon: true, order1: 1 }], // a head in the last slot of a 512-frame batch is not seen as compound
  [0x200, { flags: [PG.lru], mapping: true }],
]);

describe('page classification from struct pages (makedumpfile\'s tests and their order)', () => {
  it('level 31: free blocks whole, cache with and without private data, user data, swap cache, hwpoison and offline', () => {
    const got = scan(kernel(SAMPLE), 31);
    const want = new Map<number, PageClass>([
      [0x10, 'free'], [0x11, 'free'], [0x12, 'free'], [0x13, 'free'],
      [0x20, 'cache'], [0x21, 'cache-private'], [0x22, 'user'], [0x23, 'cache'], [0x26, 'hwpoison'], [0x27, 'offline'],
      ...Array.from({ length: 8 }, (_, i) => [0x40 + i, 'user'] as [number, PageClass]),
      [0x1ff, 'user'], [0x200, 'cache'],
    ]);
    expect(got).toEqual(want);
  });

  it('each level drops only its classes; without bit 16 a free block\'s tail pages are looked at one by one', () => {
    const k = kernel(SAMPLE);
    expect([...scan(k, 0)]).toEqual([[0x26, 'hwpoison'], [0x27, 'offline']]);
    // Level 2: the free block's tail 0x11 carries LRU, so it is dropped as cache; 0x21 (private) stays.
    expect([...scan(k, 2).keys()]).toEqual([0x11, 0x20, 0x23, 0x26, 0x27, 0x200]);
    expect(scan(k, 4).get(0x21)).toBe('cache-private');
    expect([...scan(k, 16)].filter(([, c]) => c === 'free').map(([p]) => p)).toEqual([0x10, 0x11, 0x12, 0x13]);
    expect([...scan(k, 8)].filter(([, c]) => c === 'user').length).toBe(1 + 8 + 1);
  });

  it('only frames of the spans are looked at, but a block that starts in one covers what follows it', () => {
    const k = kernel(new Map([[0x100, { mapcount: BUDDY, priv: 4 }], [0x108, { flags: [PG.lru], mapping: true }], [0x120, { flags: [PG.lru], mapping: true }]]));
    const got = scan(k, 31, [{ startPfn: 0x100, endPfn: 0x104 }, { startPfn: 0x106, endPfn: 0x121 }]);
    // The block 0x100-0x10f is reported whole (as makedumpfile clears it), 0x108 inside it never examined.
    expect(got.get(0x10f)).toBe('free');
    expect(got.get(0x108)).toBe('free');
    expect(got.get(0x120)).toBe('cache');
    expect(got.size).toBe(16 + 1);
  });

  it('a 6.10-style slab page type (PAGE_SLAB_MAPCOUNT_VALUE) keeps a page with the anon bit from counting as user data', () => {
    const SLAB = -4097;
    const k = kernel(new Map([[0x30, { anon: true, mapcount: SLAB }]]), (vi) => vi.setNumber('PAGE_SLAB_MAPCOUNT_VALUE', SLAB));
    expect(scan(k, 31).size).toBe(0);
  });

  it('at every level, a consistent population is dropped exactly as its level-31 classes say (levelExcludes)', () => {
    const rng = new Prng(99, 1);
    const pages = new Map<number, Page>();
    for (let pfn = 0; pfn < 0x800;) {
      const kind = rng.below(7);
      if (kind === 0) {
        const order = rng.below(4);
        if (pfn % 2 ** order === 0) {
          pages.set(pfn, { mapcount: BUDDY, priv: order });
          pfn += 2 ** order;
          continue;
        }
      }
      if (kind === 1) pages.set(pfn, { flags: [PG.lru], mapping: true });
      if (kind === 2) pages.set(pfn, { flags: [PG.lru, PG.private], mapping: true });
      if (kind === 3) pages.set(pfn, { flags: [PG.lru, PG.swapbacked], anon: true, mapcount: 0 });
      if (kind === 4) pages.set(pfn, { flags: [PG.slab] });
      pfn++;
    }
    const k = kernel(pages);
    const all = scan(k, 31);
    for (let level = 0; level <= 31; level++) {
      const want = [...all].filter(([, c]) => levelExcludes(level, c));
      expect(scan(k, level), `level ${level}`).toEqual(new Map(want));
    }
  });

  it('SPARSEMEM_EXTREME: finds the same struct pages section by section; a section without a mem_map excludes nothing', () => {
    // 2^20-byte sections (256 frames), 32 physical address bits: 4096 sections, 16 roots of 256.
    const sparse = () => kernel(SAMPLE, (vi) => {
      vi.delete('SYMBOL(mem_map)');
      vi.setSymbol('mem_section', 0xffff_8880_0005_0000n);
      vi.setLength('mem_section', 16).setSize('mem_section', 16).setOffset('mem_section.section_mem_map', 0);
      vi.setNumber('SECTION_SIZE_BITS', 20).setNumber('MAX_PHYSMEM_BITS', 32);
    });
    const withSections = (absent: number[]) => {
      const k = sparse();
      const roots = new Uint8Array(4096);
      new DataView(roots.buffer).setBigUint64(0, 0xffff_8880_0005_1000n, true);
      const sections = new Uint8Array(4096);
      for (let nr = 0; nr < 8; nr++) {
        if (absent.includes(nr)) continue;
        // The encoded mem_map: the array's address (its first pfn is 0), plus present | has-mem-map | online.
        new DataView(sections.buffer).setBigUint64(nr * 16, (0xffff_8880_0000_0000n + BigInt(MEM_MAP_PA)) | 7n, true);
      }
      k.frames.set(0x50, roots);
      k.frames.set(0x51, sections);
      return k;
    };
    const flat = scan(kernel(SAMPLE), 31);
    expect(flat.size).toBeGreaterThan(0);
    expect(scan(withSections([]), 31)).toEqual(flat);
    // Section 0 (frames 0x0-0xff, every sample page) has no mem_map: nothing there is excluded.
    expect([...scan(withSections([0]), 31).keys()].filter((p) => p < 0x100)).toEqual([]);
  });

  it('names what is missing when VMCOREINFO cannot locate struct pages', () => {
    const k = kernel(new Map());
    k.vi.delete('SIZE(page)');
    expect(() => scan(k, 31)).toThrow(/VMCOREINFO has no SIZE\(page\)/);
    const none = kernel(new Map());
    none.vi.delete('SYMBOL(mem_map)');
    expect(() => scan(none, 31)).toThrow(/neither SYMBOL\(mem_map\) \(FLATMEM\) nor SYMBOL\(mem_section\) \(SPARSEMEM\)/);
    const s = kernel(new Map());
    s.vi.delete('SYMBOL(mem_map)');
    s.vi.setSymbol('mem_section', 0xffff_ffff_8100_0000n);
    expect(() => scan(s, 31)).toThrow(/has SYMBOL\(mem_section\) but no SIZE\(mem_section\)/);
    s.vi.setSize('mem_section', 16);
    expect(() => scan(s, 31)).toThrow(/no NUMBER\(SECTION_SIZE_BITS\)/);
  });
});
