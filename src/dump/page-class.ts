// Dump levels: which pages a filtered dump may leave out, decided from the
// dumped kernel's own struct pages, with the tests and the order of tests
// makedumpfile applies (ref: vmcore-formats-and-tools.md §3.12):
//
//   bit 1  zero pages (by content, not by struct page)
//   bit 2  page cache without private data: PG_lru, or PG_swapcache with
//          PG_swapbacked; PG_private clear; mapping not anonymous
//   bit 4  all page cache: as bit 2 but PG_private may be set
//   bit 8  user data: anonymous mapping (low bit of page->mapping) and not
//          slab, or a hugetlb compound page
//   bit 16 free pages: a buddy block head (_mapcount holds the buddy page
//          type) and the 2^private pages it heads; unaccepted memory
//   always hardware-poisoned pages (PG_hwpoison) and offline pages
//
// The struct pages are walked in frame order, only for frames the dump
// holds; a block (free, or a compound page) is decided by its head and its
// other pages are not looked at. The first test that matches wins.

import { VmcoreFormatError } from '../util/errors.js';
import { KernelVm, type PhysMemory } from './kernel-vm.js';
import type { VmcoreInfo } from './vmcoreinfo.js';

export const DL_EXCLUDE_ZERO = 1;
export const DL_EXCLUDE_CACHE = 2;
export const DL_EXCLUDE_CACHE_PRI = 4;
export const DL_EXCLUDE_USER_DATA = 8;
export const DL_EXCLUDE_FREE = 16;
export const MAX_DUMP_LEVEL = 31;

/** What a struct page says a frame is, for the classes a dump level may drop. */
export type PageClass = 'free' | 'cache' | 'cache-private' | 'user' | 'hwpoison' | 'offline';
export const PAGE_CLASSES: readonly PageClass[] = ['free', 'cache', 'cache-private', 'user', 'hwpoison', 'offline'];

/** Whether dump level `level` leaves out a page of `cls` (as classified at level 31). */
export function levelExcludes(level: number, cls: PageClass): boolean {
  switch (cls) {
    case 'free': return (level & DL_EXCLUDE_FREE) !== 0;
    case 'cache': return (level & (DL_EXCLUDE_CACHE | DL_EXCLUDE_CACHE_PRI)) !== 0;
    case 'cache-private': return (level & DL_EXCLUDE_CACHE_PRI) !== 0;
    case 'user': return (level & DL_EXCLUDE_USER_DATA) !== 0;
    case 'hwpoison':
    case 'offline': return true;
  }
}

/** Whether a dump level needs struct pages (anything beyond zero pages). */
export function levelNeedsStructPages(level: number): boolean {
  return (level & ~DL_EXCLUDE_ZERO) !== 0;
}

export function checkDumpLevel(level: number, what: string): void {
  if (!Number.isInteger(level) || level < 0 || level > MAX_DUMP_LEVEL) {
    throw new RangeError(`Cannot use dump level ${level} for ${what}: it must be an integer from 0 to ${MAX_DUMP_LEVEL}`);
  }
}

/** How many frames makedumpfile reads struct pages for at a time (PGMM_CACHED); a compound head in the last slot is not seen as one. */
const STRUCT_PAGE_BATCH = 512;

/** The VMCOREINFO facts the tests use; an absent NUMBER or OFFSET disables the test that needs it, as in makedumpfile. */
interface Rules {
  size: number;
  flags: number;
  refcount: number;
  mapping: number;
  private: number | undefined;
  mapcount: number | undefined;
  compoundHead: number | undefined;
  compoundOrder: number | undefined;
  compoundDtor: number | undefined;
  pgLru: number | undefined;
  pgPrivate: number | undefined;
  pgSwapcache: number | undefined;
  pgSwapbacked: number | undefined;
  pgSlab: number | undefined;
  pgHwpoison: number | undefined;
  pgHugetlb: number | undefined;
  /** PG_head_mask as its low and high 32 bits. */
  headLo: number;
  headHi: number;
  buddy: number | undefined;
  slab: number | undefined;
  offline: number | undefined;
  unaccepted: number | undefined;
  hugetlbMapcount: number | undefined;
  hugetlbDtor: bigint | undefined;
  freeHugePage: bigint | undefined;
  maxOrders: number | undefined;
}

function int32(v: bigint | undefined): number | undefined {
  return v === undefined ? undefined : Number(BigInt.asIntN(32, v));
}

/** A page flag bit number, or undefined when absent or not a bit of a 64-bit word (then the test never matches). */
function flagBit(v: bigint | undefined): number | undefined {
  return v === undefined || v < 0n || v > 63n ? undefined : Number(v);
}

function rulesOf(vi: VmcoreInfo, where: string): Rules {
  const need = (v: number | undefined, key: string): number => {
    if (v === undefined) {
      throw new VmcoreFormatError(`Cannot classify pages of "${where}": VMCOREINFO has no ${key}, needed to read struct page`, { file: where, field: key });
    }
    return v;
  };
  return {
    size: need(vi.size('page'), 'SIZE(page)'),
    flags: need(vi.offset('page.flags'), 'OFFSET(page.flags)'),
    refcount: need(vi.offset('page._refcount') ?? vi.offset('page._count'), 'OFFSET(page._refcount)'),
    mapping: need(vi.offset('page.mapping'), 'OFFSET(page.mapping)'),
    private: vi.offset('page.private'),
    mapcount: vi.offset('page._mapcount'),
    compoundHead: vi.offset('page.compound_head'),
    compoundOrder: vi.offset('page.compound_order'),
    compoundDtor: vi.offset('page.compound_dtor'),
    pgLru: flagBit(vi.number('PG_lru')),
    pgPrivate: flagBit(vi.number('PG_private')),
    pgSwapcache: flagBit(vi.number('PG_swapcache')),
    pgSwapbacked: flagBit(vi.number('PG_swapbacked')),
    pgSlab: flagBit(vi.number('PG_slab')),
    pgHwpoison: flagBit(vi.number('PG_hwpoison')),
    pgHugetlb: flagBit(vi.number('PG_hugetlb')),
    headLo: Number(BigInt.asUintN(64, vi.number('PG_head_mask') ?? 0n) & 0xffff_ffffn),
    headHi: Number(BigInt.asUintN(64, vi.number('PG_head_mask') ?? 0n) >> 32n),
    buddy: int32(vi.number('PAGE_BUDDY_MAPCOUNT_VALUE')),
    slab: int32(vi.number('PAGE_SLAB_MAPCOUNT_VALUE')),
    offline: int32(vi.number('PAGE_OFFLINE_MAPCOUNT_VALUE')),
    unaccepted: int32(vi.number('PAGE_UNACCEPTED_MAPCOUNT_VALUE')),
    hugetlbMapcount: int32(vi.number('PAGE_HUGETLB_MAPCOUNT_VALUE')),
    hugetlbDtor: vi.number('HUGETLB_PAGE_DTOR'),
    freeHugePage: vi.symbol('free_huge_page'),
    maxOrders: vi.length('zone.free_area'),
  };
}

/** Bit `nr` of a 64-bit flags word given as its low and high halves. */
const bit = (lo: number, hi: number, nr: number | undefined): boolean =>
  nr !== undefined && (nr < 32 ? (lo >>> nr) & 1 : (hi >>> (nr - 32)) & 1) === 1;

/** section_mem_map's low bits are state flags (present, has a mem_map, online, early, device); the rest is the encoded mem_map. */
const SECTION_FLAG_BITS = 0x1fn;
const SECTION_MARKED_PRESENT = 1n;
const SECTION_HAS_MEM_MAP = 2n;

/**
 * A dump's struct pages, found as the dumped kernel's memory model says:
 * FLATMEM (SYMBOL(mem_map), one array) or SPARSEMEM (SYMBOL(mem_section):
 * per 2^SECTION_SIZE_BITS of physical memory a struct mem_section whose
 * section_mem_map encodes that section's mem_map, with SPARSEMEM_EXTREME's
 * root array when LENGTH(mem_section) counts roots). Frames of a section
 * without a mem_map read as zeroed struct pages, which no dump level
 * excludes, as makedumpfile keeps them.
 */
export class MemMapReader {
  readonly #vm: KernelVm;
  readonly #size: number;
  readonly #flat: bigint | undefined;
  readonly #sparse: { table: bigint; extreme: boolean; perRoot: number; sectionSize: number; mapOffset: number; pfnShift: number } | undefined;
  readonly #sections = new Map<number, bigint | null>();

  constructor(vi: VmcoreInfo, phys: PhysMemory, where: string, size: number) {
    this.#vm = new KernelVm(vi, phys, where);
    this.#size = size;
    const memMapSym = vi.symbol('mem_map');
    if (memMapSym !== undefined) {
      this.#flat = this.#vm.readU64(memMapSym, 'the mem_map pointer');
      return;
    }
    const table = vi.symbol('mem_section');
    if (table === undefined) {
      throw new VmcoreFormatError(`Cannot classify pages of "${where}": VMCOREINFO has neither SYMBOL(mem_map) (FLATMEM) nor SYMBOL(mem_section) (SPARSEMEM)`, { file: where, field: 'SYMBOL(mem_section)' });
    }
    const need = (v: number | bigint | undefined, key: string): number => {
      if (v === undefined) throw new VmcoreFormatError(`Cannot classify pages of "${where}": VMCOREINFO has SYMBOL(mem_section) but no ${key}`, { file: where, field: key });
      return Number(v);
    };
    const sectionSize = need(vi.size('mem_section'), 'SIZE(mem_section)');
    const sectionBits = need(vi.number('SECTION_SIZE_BITS'), 'NUMBER(SECTION_SIZE_BITS)');
    const physBits = Number(vi.number('MAX_PHYSMEM_BITS') ?? 46n);
    if (sectionSize < 8 || sectionSize > 4096 || sectionBits < 12 || sectionBits > physBits || physBits > 52) {
      throw new VmcoreFormatError(`Cannot classify pages of "${where}": SIZE(mem_section) ${sectionSize}, SECTION_SIZE_BITS ${sectionBits}, MAX_PHYSMEM_BITS ${physBits} do not describe a sparse memory model`, { file: where, field: 'SIZE(mem_section)' });
    }
    const perRoot = Math.floor(4096 / sectionSize);
    // SPARSEMEM_EXTREME exports LENGTH(mem_section) = NR_SECTION_ROOTS; the static array has NR_MEM_SECTIONS entries.
    const extreme = vi.length('mem_section') === 2 ** (physBits - sectionBits) / perRoot;
    this.#sparse = { table, extreme, perRoot, sectionSize, mapOffset: vi.offset('mem_section.section_mem_map') ?? 0, pfnShift: sectionBits - 12 };
  }

  /** The decoded mem_map of a section (struct page of its pfn p at result + p * SIZE(page)), or null without one. */
  #sectionMemMap(nr: number): bigint | null {
    const cached = this.#sections.get(nr);
    if (cached !== undefined) return cached;
    const sp = this.#sparse!;
    let section: bigint;
    if (sp.extreme) {
      const root = this.#vm.readU64(sp.table + BigInt(Math.floor(nr / sp.perRoot) * 8), `mem_section root ${Math.floor(nr / sp.perRoot)}`);
      section = root === 0n ? 0n : root + BigInt((nr % sp.perRoot) * sp.sectionSize);
    } else {
      section = sp.table + BigInt(nr * sp.sectionSize);
    }
    let map: bigint | null = null;
    if (section !== 0n) {
      const coded = this.#vm.readU64(section + BigInt(sp.mapOffset), `section_mem_map of section ${nr}`);
      const want = SECTION_MARKED_PRESENT | SECTION_HAS_MEM_MAP;
      if ((coded & want) === want) map = coded & ~SECTION_FLAG_BITS;
    }
    if (this.#sections.size >= 65536) this.#sections.clear();
    this.#sections.set(nr, map);
    return map;
  }

  /** Struct pages of frames [pfn, pfn + count) into dst. */
  read(pfn: number, count: number, dst: Uint8Array): void {
    const size = BigInt(this.#size);
    if (this.#flat !== undefined) {
      this.#vm.read(this.#flat + BigInt(pfn) * size, dst.subarray(0, count * this.#size), `struct page of frame 0x${pfn.toString(16)}`);
      return;
    }
    const shift = this.#sparse!.pfnShift;
    let done = 0;
    while (done < count) {
      const p = pfn + done;
      const nr = Math.floor(p / 2 ** shift);
      const n = Math.min(count - done, (nr + 1) * 2 ** shift - p);
      const out = dst.subarray(done * this.#size, (done + n) * this.#size);
      const map = this.#sectionMemMap(nr);
      if (map === null) out.fill(0);
      else this.#vm.read(BigInt.asUintN(64, map + BigInt(p) * size), out, `struct page of frame 0x${p.toString(16)}`);
      done += n;
    }
  }
}

export interface PfnSpan {
  startPfn: number;
  endPfn: number;
}

/**
 * A dump's struct pages, classified. `scan` reports every run of frames a
 * level leaves out, and why.
 */
export class PageClassifier {
  readonly #rules: Rules;
  readonly #mm: MemMapReader;

  constructor(vi: VmcoreInfo, phys: PhysMemory, where: string) {
    this.#rules = rulesOf(vi, where);
    this.#mm = new MemMapReader(vi, phys, where, this.#rules.size);
  }

  /**
   * Walks the frames of `spans` (ascending, not overlapping: the frames the
   * dump holds) and calls `exclude` for each run level `level` leaves out
   * because of its struct page (zero pages are not decided here). A block
   * may run past the end of a span; frames past it are reported too, as
   * makedumpfile clears them all.
   */
  scan(spans: readonly PfnSpan[], level: number, exclude: (startPfn: number, endPfn: number, cls: PageClass) => void): void {
    const r = this.#rules;
    const size = r.size;
    const buf = new Uint8Array(STRUCT_PAGE_BATCH * size + size);
    const dv = new DataView(buf.buffer);
    let skipTo = 0; // frames below this were covered by a block already reported
    for (const span of spans) {
      let pfn = Math.max(span.startPfn, skipTo);
      while (pfn < span.endPfn) {
        // One batch: up to the next multiple of STRUCT_PAGE_BATCH (and the page after it, for compound orders).
        const batchEnd = Math.min(span.endPfn, (Math.floor(pfn / STRUCT_PAGE_BATCH) + 1) * STRUCT_PAGE_BATCH);
        this.#mm.read(pfn, batchEnd - pfn, buf);
        let nextRead = false;
        let p = pfn;
        for (; p < batchEnd; p++) {
          const o = (p - pfn) * size;
          const lo = dv.getUint32(o + r.flags, true);
          const hi = dv.getUint32(o + r.flags + 4, true);
          const anonBit = dv.getUint8(o + r.mapping) & 1; // PAGE_MAPPING_ANON, the low bit of page->mapping
          const mapcount = r.mapcount === undefined ? 0 : dv.getInt32(o + r.mapcount, true);
          // page->private as a number (orders are small; anything past 2^53 is invalid anyway)
          const priv = r.private === undefined ? 0 : dv.getUint32(o + r.private + 4, true) * 2 ** 32 + dv.getUint32(o + r.private, true);
          let order = 0;
          let hugetlb = false;
          if (p % STRUCT_PAGE_BATCH !== STRUCT_PAGE_BATCH - 1 && ((lo & r.headLo) !== 0 || (hi & r.headHi) !== 0)) {
            // The head's order (and hugetlb-ness) live in the struct page after it.
            const o1 = o + size;
            if (p + 1 >= batchEnd && !nextRead) {
              this.#mm.read(p + 1, 1, buf.subarray(o1));
              nextRead = true;
            }
            ({ order, hugetlb } = this.#compound(dv, o1, mapcount));
            if (order >= 64 || p % 2 ** order !== 0) order = 0;
          }
          if (r.compoundHead !== undefined && (dv.getUint8(o + r.compoundHead) & 1) === 1) continue; // a compound tail
          const isSlab = (r.slab !== undefined && mapcount === r.slab) || bit(lo, hi, r.pgSlab);
          const isAnon = anonBit === 1 && !isSlab;
          const isCache = bit(lo, hi, r.pgLru) || ((r.pgSwapbacked === undefined || bit(lo, hi, r.pgSwapbacked)) && bit(lo, hi, r.pgSwapcache));
          const isPrivate = bit(lo, hi, r.pgPrivate);
          let cls: PageClass | undefined;
          let n = 2 ** order;
          if ((level & DL_EXCLUDE_FREE) !== 0 && r.buddy !== undefined && r.mapcount !== undefined && r.private !== undefined && !isSlab && mapcount === r.buddy) {
            if (r.maxOrders !== undefined && priv >= r.maxOrders) continue; // not a valid order: left in
            cls = 'free';
            n = 2 ** priv;
          } else if ((level & DL_EXCLUDE_FREE) !== 0 && r.unaccepted !== undefined && mapcount === r.unaccepted) {
            cls = 'free';
            n = 2 ** ((r.maxOrders ?? 1) - 1);
          } else if ((level & DL_EXCLUDE_CACHE) !== 0 && isCache && !isPrivate && !isAnon) {
            cls = 'cache';
          } else if ((level & DL_EXCLUDE_CACHE_PRI) !== 0 && isCache && !isAnon) {
            cls = isPrivate ? 'cache-private' : 'cache';
          } else if ((level & DL_EXCLUDE_USER_DATA) !== 0 && (isAnon || hugetlb)) {
            cls = 'user';
          } else if (bit(lo, hi, r.pgHwpoison)) {
            cls = 'hwpoison';
          } else if (r.offline !== undefined && !isSlab && mapcount === r.offline) {
            cls = 'offline';
          } else {
            continue;
          }
          exclude(p, p + n, cls);
          if (n > 1) {
            skipTo = p + n;
            p = skipTo - 1; // the block's other frames are not looked at
          }
        }
        pfn = p;
      }
    }
  }

  /** Order and hugetlb-ness of a compound page, from the struct page after its head (at byte o1). */
  #compound(dv: DataView, o1: number, headMapcount: number): { order: number; hugetlb: boolean } {
    const r = this.#rules;
    if (r.hugetlbMapcount !== undefined || r.pgHugetlb !== undefined) {
      // 6.6 on: the order is the low byte of the second page's flags.
      const lo1 = dv.getUint32(o1 + r.flags, true);
      const hi1 = dv.getUint32(o1 + r.flags + 4, true);
      const order = lo1 & 0xff;
      const hugetlb = r.hugetlbMapcount !== undefined ? headMapcount === r.hugetlbMapcount : bit(lo1, hi1, r.pgHugetlb);
      return { order, hugetlb };
    }
    const order = r.compoundOrder === undefined ? 0 : dv.getUint8(o1 + r.compoundOrder);
    const dtor = r.compoundDtor === undefined ? 0n : BigInt(dv.getUint8(o1 + r.compoundDtor));
    const hugetlb = dtor !== 0n && (dtor === r.hugetlbDtor || dtor === r.freeHugePage);
    return { order, hugetlb };
  }
}

/**
 * Every frame of `spans` a level-31 filter would leave out because of its
 * struct page, grouped by class as merged [startPfn, endPfn) runs clipped to
 * the spans: what a truth manifest records.
 */
export function classifyFrames(vi: VmcoreInfo, phys: PhysMemory, where: string, spans: readonly PfnSpan[]): Partial<Record<PageClass, [number, number][]>> {
  const out: Partial<Record<PageClass, [number, number][]>> = {};
  const sorted = [...spans].sort((a, b) => a.startPfn - b.startPfn);
  let si = 0;
  const add = (a: number, b: number, cls: PageClass): void => {
    const runs = (out[cls] ??= []);
    const last = runs[runs.length - 1];
    if (last !== undefined && last[1] === a) last[1] = b;
    else runs.push([a, b]);
  };
  new PageClassifier(vi, phys, where).scan(sorted, MAX_DUMP_LEVEL, (a, b, cls) => {
    // Clip to the spans: a block may run over a hole or past the last span.
    while (si < sorted.length && sorted[si]!.endPfn <= a) si++;
    for (let i = si; i < sorted.length && sorted[i]!.startPfn < b; i++) {
      const lo = Math.max(a, sorted[i]!.startPfn);
      const hi = Math.min(b, sorted[i]!.endPfn);
      if (hi > lo) add(lo, hi, cls);
    }
  });
  return out;
}

/** Looks up frames' classes in ascending order (a cursor over a manifest's runs). */
export class ClassCursor {
  readonly #runs: { a: number; b: number; cls: PageClass }[];
  #i = 0;

  constructor(classes: Partial<Record<PageClass, [number, number][]>> | undefined) {
    this.#runs = [];
    for (const cls of PAGE_CLASSES) for (const [a, b] of classes?.[cls] ?? []) this.#runs.push({ a, b, cls });
    this.#runs.sort((x, y) => x.a - y.a);
  }

  /** The class of `pfn`; calls must not go backwards except to restart from 0. */
  classOf(pfn: number): PageClass | undefined {
    if (this.#i > 0 && this.#runs[this.#i - 1]!.a > pfn) this.#i = 0;
    while (this.#i < this.#runs.length && this.#runs[this.#i]!.b <= pfn) this.#i++;
    const r = this.#runs[this.#i];
    return r !== undefined && r.a <= pfn ? r.cls : undefined;
  }
}

/**
 * Frames of `spans` dump level `level` leaves out because of their struct
 * pages, as a bitmap over [0, maxPfn) (bit pfn, LSB first), with counts per
 * class. `where` names the dump in errors.
 */
export function excludedByStructPages(
  vi: VmcoreInfo, phys: PhysMemory, where: string, spans: readonly PfnSpan[], maxPfn: number, level: number,
): { bitmap: Uint8Array; counts: Partial<Record<PageClass, number>> } {
  const bitmap = new Uint8Array(Math.ceil(maxPfn / 8));
  const counts: Partial<Record<PageClass, number>> = {};
  const inDump = [...spans].sort((a, b) => a.startPfn - b.startPfn);
  new PageClassifier(vi, phys, where).scan(inDump, level, (a, b, cls) => {
    for (let p = a; p < Math.min(b, maxPfn); p++) {
      const m = 1 << (p & 7);
      if ((bitmap[p >>> 3]! & m) !== 0) continue;
      bitmap[p >>> 3]! |= m;
      counts[cls] = (counts[cls] ?? 0) + 1;
    }
  });
  return { bitmap, counts };
}
