// SPARSEMEM with a virtual memory map, as every x86-64 kernel has it: the
// struct pages sit at VMEMMAP_START + pfn * sizeof(struct page), mapped by the
// kernel's page tables, and each 128 MiB section of physical memory has a
// struct mem_section whose section_mem_map holds that base (the encoded mem_map,
// minus the section's first pfn) and its state flags. SPARSEMEM_EXTREME keeps
// the sections in pages hung off a root array that `mem_section` points to;
// dump tools find it through SYMBOL(mem_section) and LENGTH(mem_section).

import { writeU64, type PhysAccess } from './phys-access.js';
import { PAGE_OFFSET } from './layout.js';

/** x86-64: 2^27-byte (128 MiB) sections. */
export const SECTION_SIZE_BITS = 27;
/** x86-64 with 4-level paging. */
export const MAX_PHYSMEM_BITS = 46;
export const PFN_SECTION_SHIFT = SECTION_SIZE_BITS - 12;
/** struct mem_section: section_mem_map, then the usage pointer. */
export const MEM_SECTION_SIZE = 16;
/** SECTIONS_PER_ROOT: a page of sections. */
export const SECTIONS_PER_ROOT = 4096 / MEM_SECTION_SIZE;
/** NR_SECTION_ROOTS = NR_MEM_SECTIONS / SECTIONS_PER_ROOT, exported as LENGTH(mem_section). */
export const NR_SECTION_ROOTS = 2 ** (MAX_PHYSMEM_BITS - SECTION_SIZE_BITS) / SECTIONS_PER_ROOT;
/** The vmemmap base with 4-level paging and no KASLR (vmemmap_base default). */
export const VMEMMAP_START = 0xffff_ea00_0000_0000n;

/** section_mem_map state bits (mmzone.h). */
export const SECTION_MARKED_PRESENT = 1n << 0n;
export const SECTION_HAS_MEM_MAP = 1n << 1n;
export const SECTION_IS_ONLINE = 1n << 2n;
export const SECTION_IS_EARLY = 1n << 3n;

/** Section numbers that hold RAM, from the usable ranges. */
export function presentSections(usable: readonly { start: number; end: number }[]): number[] {
  const out = new Set<number>();
  for (const r of usable) {
    if (r.end <= r.start) continue;
    const first = Math.floor(r.start / 2 ** SECTION_SIZE_BITS);
    const last = Math.floor((r.end - 1) / 2 ** SECTION_SIZE_BITS);
    for (let n = first; n <= last; n++) out.add(n);
  }
  return [...out].sort((a, b) => a - b);
}

/**
 * sparse_init(): the root array and one page of sections per root in use,
 * each present section encoding the vmemmap base. `alloc` returns zeroed,
 * page-aligned physical memory. Returns the root array's physical address.
 */
export function buildMemSections(mem: PhysAccess, alloc: (bytes: number) => number, sections: readonly number[]): number {
  const rootsBytes = NR_SECTION_ROOTS * 8;
  const roots = alloc(rootsBytes);
  const rootPages = new Map<number, number>();
  for (const nr of sections) {
    const root = Math.floor(nr / SECTIONS_PER_ROOT);
    let page = rootPages.get(root);
    if (page === undefined) {
      page = alloc(4096);
      rootPages.set(root, page);
      writeU64(mem, roots + root * 8, PAGE_OFFSET + BigInt(page));
    }
    // sparse_encode_mem_map(): the section's mem_map (vmemmap + its first pfn) minus that pfn, in struct pages: vmemmap itself.
    const coded = VMEMMAP_START | SECTION_MARKED_PRESENT | SECTION_HAS_MEM_MAP | SECTION_IS_ONLINE | SECTION_IS_EARLY;
    writeU64(mem, page + (nr % SECTIONS_PER_ROOT) * MEM_SECTION_SIZE, coded);
  }
  return roots;
}
