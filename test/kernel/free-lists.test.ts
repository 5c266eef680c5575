// The buddy allocator's free lists as a dump tool finds them: contig_page_data's
// zones, free_area[order].free_list[migratetype] threaded through the lru of
// each free block's head struct page, walked with nothing but VMCOREINFO. They
// must hold exactly the blocks the allocator has (the heads mem_map marks as
// buddy), each once, on its zone's list of its order, with nr_free and
// vm_stat[NR_FREE_PAGES] agreeing — after boot and after every allocation.

import { describe, expect, it } from 'vitest';
import { Machine } from '../../src/platform/machine.js';
import { FirstKernel } from '../../src/kernel/first-kernel.js';
import { kernelProfile } from '../../src/kernel/profile.js';
import { KernelImage } from '../../src/kernel/kernel-image.js';
import { MAX_ORDER, MemMap, PAGE_BUDDY_MAPCOUNT_VALUE } from '../../src/kernel/mem-map.js';
import { VMEMMAP_START } from '../../src/kernel/mem-section.js';
import { PageAllocator } from '../../src/kernel/page-allocator.js';
import { MIGRATE_MOVABLE, PglistData, ZONE_DMA32_END_PFN, ZONE_DMA_END_PFN, zoneBuddyBlocks, zoneOf } from '../../src/kernel/pglist-data.js';
import { buildVmcoreinfo, VMCOREINFO_NOTE_SIZE } from '../../src/kernel/vmcoreinfo-export.js';
import { readVirt } from '../../src/kernel/virtual-access.js';
import { runWorkload } from '../../src/kernel/workload.js';
import { START_KERNEL_MAP } from '../../src/kernel/layout.js';
import { decodeNotes } from '../../src/dump/elf-note.js';
import { VmcoreInfo } from '../../src/dump/vmcoreinfo.js';
import { Prng } from '../../src/util/prng.js';
import { heads, memory, walkFreeLists, type FreeListWalk } from './free-list-walk.js';

/** What the walk must show for an allocator whose free blocks are `blocks` (pfn -> order). */
function expectListsHold(w: FreeListWalk, blocks: Map<number, number>, node: PglistData, what: string): void {
  expect(w.problems, what).toEqual([]);
  expect(w.nodeOnline, what).toBe(true);
  expect(new Map([...w.blocks].map(([pfn, b]) => [pfn, b.order])), what).toEqual(blocks);
  for (const [pfn, b] of w.blocks) {
    if (b.migratetype !== MIGRATE_MOVABLE || b.zone !== zoneOf(pfn) || b.private !== b.order || b.mapcount !== PAGE_BUDDY_MAPCOUNT_VALUE) {
      expect({ pfn, ...b }, what).toEqual({ pfn, zone: zoneOf(pfn), order: b.order, migratetype: MIGRATE_MOVABLE, private: b.order, mapcount: PAGE_BUDDY_MAPCOUNT_VALUE });
    }
  }
  expect(w.zones.length, what).toBe(node.nrZones);
  w.zones.forEach((z, i) => {
    const mine = [...blocks].filter(([pfn]) => zoneOf(pfn) === i);
    const perOrder = Array.from({ length: MAX_ORDER }, (_, o) => mine.filter(([, order]) => order === o).length);
    expect(z.nrFree, `${what}: zone ${i} nr_free`).toEqual(perOrder);
    const pages = mine.reduce((n, [, order]) => n + 2 ** order, 0);
    expect(z.freePages, `${what}: zone ${i} NR_FREE_PAGES`).toBe(pages);
    expect(node.freePages(i)).toBe(pages);
    expect(z.spanned).toBe(node.zones[i]!.spanned);
  });
}

describe('free lists kept by the page allocator', () => {
  it('hold every free block once, on its zone\'s list of its order, through random allocations across the DMA boundary', () => {
    const size = 64 << 20;
    const usable = [{ start: 0, end: 0x9f000 }, { start: 0x100000, end: size }];
    const mem = memory();
    const pa = new PageAllocator(usable);
    const image = new KernelImage(0x200_0000);
    expect(pa.reserve(image.base, image.size)).toBe(true);
    const map = new MemMap(pa.alloc(MemMap.bytesFor(size / 4096), 4096)!, size / 4096);
    const node = new PglistData(image.pa('contig_page_data'), image.va('contig_page_data'), map.base, usable);
    expect(node.zones.map((z) => [z.startPfn, z.spanned, z.present])).toEqual([[0, 4096, 4096 - 0x61], [4096, size / 4096 - 4096, size / 4096 - 4096], [0, 0, 0], [0, 0, 0]]);
    expect(node.nrZones).toBe(2);
    node.init(mem);
    mem.write(image.pa('node_online_map'), new Uint8Array([1]));
    pa.freeAll(mem, map, node);
    const vi = buildVmcoreinfo({ release: '6.1.0-test', image, smeMask: 0n, emitSmeMask: false, memSection: 0xffff_8880_0100_0000n });
    const read = (va: bigint, n: number): Uint8Array => {
      const b = new Uint8Array(n);
      mem.read(va >= START_KERNEL_MAP ? Number(va - START_KERNEL_MAP) : map.base + Number(va - VMEMMAP_START), b);
      return b;
    };
    const check = (what: string): void => {
      const blocks = pa.freeBlocks();
      expect(heads(mem, map), what).toEqual(blocks);
      expectListsHold(walkFreeLists(vi, read), blocks, node, what);
    };
    check('after memblock_free_all');
    // No block crosses 16 MiB although [0x100000, 0x2000000) is free on both sides of it.
    const blocks = pa.freeBlocks();
    expect([...blocks].some(([pfn, order]) => pfn < ZONE_DMA_END_PFN && pfn + 2 ** order > ZONE_DMA_END_PFN)).toBe(false);
    expect(blocks.get(ZONE_DMA_END_PFN)).toBe(12);
    const rng = new Prng(23, 4);
    for (let i = 0; i < 80; i++) {
      const bytes = (1 + rng.below(300)) * (rng.below(4) === 0 ? 1000 : 4096);
      const kind = rng.below(3);
      if (kind === 0) pa.alloc(bytes, 4096);
      else if (kind === 1) pa.allocLow(bytes, 2 ** (12 + rng.below(8)));
      else pa.reserve(rng.below(size / 4096) * 4096, bytes);
      check(`after step ${i}`);
    }
  });

  it('tile within zones: the tiling of a range is the buddy tiling of its pieces either side of 16 MiB and 4 GiB', () => {
    const all = [...zoneBuddyBlocks(ZONE_DMA_END_PFN - 3, ZONE_DMA32_END_PFN + 2 ** 18 + 5)];
    expect(all[0]).toEqual({ pfn: ZONE_DMA_END_PFN - 3, order: 0 });
    expect(all.find((b) => b.pfn === ZONE_DMA_END_PFN)).toEqual({ pfn: ZONE_DMA_END_PFN, order: 12 });
    expect(all.find((b) => b.pfn === ZONE_DMA32_END_PFN)).toEqual({ pfn: ZONE_DMA32_END_PFN, order: 18 });
    expect(all.reduce((n, b) => n + 2 ** b.order, 0)).toBe(ZONE_DMA32_END_PFN + 2 ** 18 + 5 - (ZONE_DMA_END_PFN - 3));
  });
});

describe('the first kernel\'s free lists, read through its page tables as VMCOREINFO describes them', () => {
  const m = new Machine({ memoryBytes: 6 * 2 ** 30, cpus: 2, seed: 9, nics: [], gbPages: true });
  const k = new FirstKernel(m, { profile: kernelProfile('linux-6.1'), cmdline: 'root=/dev/vda1 crashkernel=256M', seed: 9, nic: { ringEntries: 16, bufferBytes: 2048, pollIntervalNs: 1e6 } });
  expect(k.boot().ok).toBe(true);
  const noteBytes = new Uint8Array(VMCOREINFO_NOTE_SIZE);
  m.mc.read(k.image.pa('vmcoreinfo_note'), noteBytes);
  const vi = VmcoreInfo.parse(new TextDecoder().decode(decodeNotes(noteBytes, { file: 'memory', offset: 0 })[0]!.desc));
  const read = (va: bigint, n: number): Uint8Array => {
    const b = new Uint8Array(n);
    const r = readVirt(m.mc, m.bsp, va, b);
    if (!r.ok) throw new Error(`cannot read 0x${va.toString(16)}: ${r.fault.detail}`);
    return b;
  };

  it('VMCOREINFO names node 0, its zones, the free-area and list layouts and vmemmap', () => {
    expect(vi.symbol('contig_page_data')).toBe(k.image.va('contig_page_data'));
    expect(vi.symbol('node_online_map')).toBe(k.image.va('node_online_map'));
    expect(vi.symbol('vmemmap')).toBe(VMEMMAP_START);
    expect(vi.length('zone.free_area')).toBe(MAX_ORDER);
    expect(vi.length('free_area.free_list')).toBe(6);
    expect(vi.size('free_area')).toBe(104);
    expect(vi.size('list_head')).toBe(16);
    expect(vi.number('NR_FREE_PAGES')).toBe(0n);
    // The free-area array and vm_stat fit in the zone, the zones in the node.
    expect(vi.offset('zone.free_area')! + MAX_ORDER * 104).toBeLessThanOrEqual(vi.offset('zone.vm_stat')!);
    expect(vi.offset('zone.vm_stat')! + 11 * 8).toBeLessThanOrEqual(vi.size('zone')!);
    expect(vi.offset('pglist_data.node_zones')! + 4 * vi.size('zone')!).toBeLessThanOrEqual(vi.offset('pglist_data.nr_zones')!);
    expect(vi.offset('pglist_data.node_id')!).toBeLessThan(vi.size('pglist_data')!);
  });

  it('node 0 spans RAM in three zones: DMA, DMA32 and Normal', () => {
    const u64 = (va: bigint): bigint => new DataView(read(va, 8).buffer).getBigUint64(0, true);
    const pgdat = vi.symbol('contig_page_data')!;
    expect(new DataView(read(pgdat + BigInt(vi.offset('pglist_data.nr_zones')!), 4).buffer).getInt32(0, true)).toBe(3);
    const first = k.pgdat.zones[0]!.startPfn;
    expect(u64(pgdat + BigInt(vi.offset('pglist_data.node_start_pfn')!))).toBe(BigInt(first));
    expect(Number(u64(pgdat + BigInt(vi.offset('pglist_data.node_spanned_pages')!))) + first).toBe(k.pgdat.zones[2]!.startPfn + k.pgdat.zones[2]!.spanned);
    expect(k.pgdat.zones[2]!.startPfn).toBe(ZONE_DMA32_END_PFN);
  });

  it('hold exactly the allocator\'s free blocks after boot and after the workload\'s allocations', () => {
    expectListsHold(walkFreeLists(vi, read), k.memblock.freeBlocks(), k.pgdat, 'after boot');
    const freeAfterBoot = k.pgdat.freePages(0) + k.pgdat.freePages(1) + k.pgdat.freePages(2);
    expect(freeAfterBoot).toBe(k.memblock.freeRanges.reduce((n, r) => n + Math.floor(r.end / 4096) - Math.ceil(r.start / 4096), 0));
    const w = runWorkload(k, { pages: 2000, seed: 9 });
    expect(w.pages).toBe(2000);
    const after = walkFreeLists(vi, read);
    expectListsHold(after, k.memblock.freeBlocks(), k.pgdat, 'after the workload');
    expect(after.zones.reduce((n, z) => n + z.freePages, 0)).toBe(freeAfterBoot - 2000);
  });
});
