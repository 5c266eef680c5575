// What crash_save_vmcoreinfo_init() publishes: the symbols, sizes, offsets
// and numbers dump tools need, each pointing at the bytes this kernel model
// really laid out. The note lives in the image at vmcoreinfo_note; at crash
// time CRASHTIME is appended and the note rewritten.

import { VmcoreInfo } from '../dump/vmcoreinfo.js';
import { encodeNotes } from '../dump/elf-note.js';
import type { PhysAccess } from './phys-access.js';
import type { KernelImage } from './kernel-image.js';
import { MAX_ORDER, STRUCT_PAGE, PG, PG_HEAD_MASK, PAGE_BUDDY_MAPCOUNT_VALUE, PAGE_OFFLINE_MAPCOUNT_VALUE } from './mem-map.js';
import { KERNEL_IMAGE_SIZE, PAGE_SIZE } from './layout.js';
import { MAX_PHYSMEM_BITS, MEM_SECTION_SIZE, NR_SECTION_ROOTS, SECTION_SIZE_BITS, VMEMMAP_START } from './mem-section.js';
import { FREE_AREA, LIST_HEAD, MIGRATE_TYPES, NODEMASK_SIZE, NR_FREE_PAGES, PGLIST_DATA, ZONE } from './pglist-data.js';

/** VMCOREINFO_BYTES: the text buffer is one page. */
export const VMCOREINFO_BYTES = PAGE_SIZE;
/** VMCOREINFO_NOTE_SIZE: two note headers, the padded name, and the text buffer. */
export const VMCOREINFO_NOTE_SIZE = 2 * 12 + 12 + VMCOREINFO_BYTES;

export interface VmcoreinfoFacts {
  release: string;
  image: KernelImage;
  /** The memory encryption mask (0 without SME). */
  smeMask: bigint;
  /** Whether this kernel exports NUMBER(sme_mask) at all (5.1 on). */
  emitSmeMask: boolean;
  /** The mem_section pointer's value: the SPARSEMEM_EXTREME root array (VMCOREINFO_SYMBOL_ARRAY exports the pointer, not the variable). */
  memSection: bigint;
}

export function buildVmcoreinfo(f: VmcoreinfoFacts): VmcoreInfo {
  const vi = new VmcoreInfo();
  const img = f.image;
  vi.set('OSRELEASE', f.release);
  vi.set('PAGESIZE', String(PAGE_SIZE));
  vi.setSymbol('init_uts_ns', img.va('init_uts_ns'));
  vi.setOffset('uts_namespace.name', 0);
  vi.setSymbol('node_online_map', img.va('node_online_map'));
  vi.setSymbol('swapper_pg_dir', img.va('init_top_pgt'));
  vi.setSymbol('_stext', img.va('_stext'));
  // !NUMA: node 0 is contig_page_data (mem_map, NULL under SPARSEMEM, is left out).
  vi.setSymbol('contig_page_data', img.va('contig_page_data'));
  vi.setSymbol('vmemmap', VMEMMAP_START);
  vi.setSymbol('mem_section', f.memSection);
  vi.setLength('mem_section', NR_SECTION_ROOTS);
  vi.setSize('mem_section', MEM_SECTION_SIZE);
  vi.setOffset('mem_section.section_mem_map', 0);
  vi.setSize('page', STRUCT_PAGE.size);
  vi.setSize('pglist_data', PGLIST_DATA.size);
  vi.setSize('zone', ZONE.size);
  vi.setSize('free_area', FREE_AREA.size);
  vi.setSize('list_head', LIST_HEAD.size);
  vi.setSize('nodemask_t', NODEMASK_SIZE);
  vi.setOffset('page.flags', STRUCT_PAGE.flags);
  vi.setOffset('page._refcount', STRUCT_PAGE._refcount);
  vi.setOffset('page.mapping', STRUCT_PAGE.mapping);
  vi.setOffset('page.lru', STRUCT_PAGE.lru);
  vi.setOffset('page._mapcount', STRUCT_PAGE._mapcount);
  vi.setOffset('page.private', STRUCT_PAGE.private);
  vi.setOffset('pglist_data.node_zones', PGLIST_DATA.node_zones);
  vi.setOffset('pglist_data.nr_zones', PGLIST_DATA.nr_zones);
  vi.setOffset('pglist_data.node_start_pfn', PGLIST_DATA.node_start_pfn);
  vi.setOffset('pglist_data.node_spanned_pages', PGLIST_DATA.node_spanned_pages);
  vi.setOffset('pglist_data.node_id', PGLIST_DATA.node_id);
  vi.setOffset('zone.free_area', ZONE.free_area);
  vi.setOffset('zone.vm_stat', ZONE.vm_stat);
  vi.setOffset('zone.spanned_pages', ZONE.spanned_pages);
  vi.setOffset('free_area.free_list', FREE_AREA.free_list);
  vi.setOffset('list_head.next', LIST_HEAD.next);
  vi.setOffset('list_head.prev', LIST_HEAD.prev);
  vi.setLength('zone.free_area', MAX_ORDER);
  vi.setLength('free_area.free_list', MIGRATE_TYPES);
  vi.setNumber('NR_FREE_PAGES', NR_FREE_PAGES);
  vi.setNumber('PG_lru', PG.lru);
  vi.setNumber('PG_private', PG.private);
  vi.setNumber('PG_swapcache', PG.swapcache);
  vi.setNumber('PG_swapbacked', PG.swapbacked);
  vi.setNumber('PG_slab', PG.slab);
  vi.setNumber('PG_hwpoison', PG.hwpoison);
  vi.setNumber('PG_head_mask', PG_HEAD_MASK);
  vi.setNumber('PAGE_BUDDY_MAPCOUNT_VALUE', PAGE_BUDDY_MAPCOUNT_VALUE);
  vi.setNumber('PAGE_OFFLINE_MAPCOUNT_VALUE', PAGE_OFFLINE_MAPCOUNT_VALUE);
  vi.setNumber('phys_base', 0);
  vi.setSymbol('init_top_pgt', img.va('init_top_pgt'));
  vi.setNumber('pgtable_l5_enabled', 0);
  vi.set('KERNELOFFSET', '0');
  vi.setNumber('KERNEL_IMAGE_SIZE', KERNEL_IMAGE_SIZE);
  vi.setNumber('SECTION_SIZE_BITS', SECTION_SIZE_BITS);
  vi.setNumber('MAX_PHYSMEM_BITS', MAX_PHYSMEM_BITS);
  if (f.emitSmeMask) vi.setNumber('sme_mask', f.smeMask);
  return vi;
}

/** Writes vmcoreinfo_data and the note built from it into the image. */
export function writeVmcoreinfoNote(mem: PhysAccess, image: KernelImage, vi: VmcoreInfo): void {
  const text = new TextEncoder().encode(vi.toText());
  if (text.length > VMCOREINFO_BYTES) {
    throw new RangeError(`Cannot publish VMCOREINFO: ${text.length} bytes exceed VMCOREINFO_BYTES (${VMCOREINFO_BYTES})`);
  }
  const data = new Uint8Array(VMCOREINFO_BYTES);
  data.set(text);
  mem.write(image.pa('vmcoreinfo_data'), data);
  const note = encodeNotes([{ name: 'VMCOREINFO', type: 0, desc: text }], { terminator: true });
  const buf = new Uint8Array(VMCOREINFO_NOTE_SIZE);
  buf.set(note);
  mem.write(image.pa('vmcoreinfo_note'), buf);
}
