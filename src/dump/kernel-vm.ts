// The dumped kernel's virtual addresses, as a dump tool reaches them: an
// x86-64 page-table walk from the kernel's top-level table (SYMBOL(init_top_pgt)),
// reading each table from the dump's physical memory. makedumpfile resolves
// mem_map and init_uts_ns this way; so does this.

import { hex } from '../util/hex.js';
import { VmcoreFormatError } from '../util/errors.js';
import type { PageStatus, VmcoreReader } from './vmcore-reader.js';
import type { VmcoreInfo } from './vmcoreinfo.js';
import { PAGE_SIZE, type PageSource } from './page-source.js';

/** Physical memory of a dump, or of a simulated machine's DRAM at one instant. */
export interface PhysMemory {
  /** Copies dst.length bytes from physical address pa; false when any of them is not in the dump. */
  read(pa: number, dst: Uint8Array): boolean;
}

/** __START_KERNEL_map: kernel text and data symbols are this plus their physical address minus phys_base. */
export const START_KERNEL_MAP = 0xffff_ffff_8000_0000n;
/** The direct map's base with 4-level paging and no KASLR (page_offset_base default). */
export const DEFAULT_PAGE_OFFSET = 0xffff_8880_0000_0000n;

const PRESENT = 1n;
const PAGE_SIZE_BIT = 1n << 7n;
/** Physical address bits of an entry (bits 12..51). */
const ENTRY_ADDR_MASK = 0x000f_ffff_ffff_f000n;

/** A dump's pages, read through a small cache of recently used frames. */
export class ReaderPhysMemory implements PhysMemory {
  readonly #reader: VmcoreReader;
  readonly #cache = new Map<number, Uint8Array | null>();
  readonly #status: PageStatus[] = [];

  constructor(reader: VmcoreReader) {
    this.#reader = reader;
  }

  #frame(pfn: number): Uint8Array | null {
    let f = this.#cache.get(pfn);
    if (f !== undefined) return f;
    const buf = new Uint8Array(PAGE_SIZE);
    this.#reader.readPages(pfn, 1, buf, this.#status);
    f = this.#status[0] === 'present' ? buf : null;
    if (this.#cache.size >= 1024) this.#cache.clear();
    this.#cache.set(pfn, f);
    return f;
  }

  read(pa: number, dst: Uint8Array): boolean {
    let done = 0;
    while (done < dst.length) {
      const a = pa + done;
      const off = a % PAGE_SIZE;
      const f = this.#frame((a - off) / PAGE_SIZE);
      if (f === null) return false;
      const n = Math.min(PAGE_SIZE - off, dst.length - done);
      dst.set(f.subarray(off, off + n), done);
      done += n;
    }
    return true;
  }
}

/**
 * A page source's frames as physical memory (what makedumpfile sees reading
 * mem_map from /proc/vmcore): frames inside `spans` read through the source,
 * through a small cache; any other address is not in the dump.
 */
export class SourcePhysMemory implements PhysMemory {
  readonly #source: PageSource;
  readonly #spans: readonly { startPfn: number; endPfn: number }[];
  readonly #cache = new Map<number, Uint8Array>();

  constructor(source: PageSource, spans: readonly { startPfn: number; endPfn: number }[]) {
    this.#source = source;
    this.#spans = spans;
  }

  read(pa: number, dst: Uint8Array): boolean {
    let done = 0;
    while (done < dst.length) {
      const a = pa + done;
      const off = a % PAGE_SIZE;
      const pfn = (a - off) / PAGE_SIZE;
      let f = this.#cache.get(pfn);
      if (f === undefined) {
        if (!this.#spans.some((s) => pfn >= s.startPfn && pfn < s.endPfn)) return false;
        f = new Uint8Array(PAGE_SIZE);
        this.#source.readFrame(pfn, f);
        if (this.#cache.size >= 1024) this.#cache.clear();
        this.#cache.set(pfn, f);
      }
      const n = Math.min(PAGE_SIZE - off, dst.length - done);
      dst.set(f.subarray(off, off + n), done);
      done += n;
    }
    return true;
  }
}

/** Physical memory from a frame lookup (undefined: the frame is all zero), every address readable. */
export function framePhysMemory(frame: (pfn: number) => Uint8Array | undefined): PhysMemory {
  return {
    read(pa, dst) {
      let done = 0;
      while (done < dst.length) {
        const a = pa + done;
        const off = a % PAGE_SIZE;
        const n = Math.min(PAGE_SIZE - off, dst.length - done);
        const f = frame((a - off) / PAGE_SIZE);
        if (f === undefined) dst.fill(0, done, done + n);
        else dst.set(f.subarray(off, off + n), done);
        done += n;
      }
      return true;
    },
  };
}

/** One translation the walker found: [va, va+size) maps to [pa, pa+size). */
interface Mapping {
  va: bigint;
  size: bigint;
  pa: bigint;
}

export class KernelVm {
  readonly #phys: PhysMemory;
  readonly #root: bigint | undefined;
  readonly #levels: number;
  readonly #smeMask: bigint;
  readonly #physBase: bigint;
  readonly #where: string;
  #last: Mapping | undefined;
  readonly #entry = new Uint8Array(8);
  readonly #entryView = new DataView(this.#entry.buffer);

  /**
   * where: names the dump in error messages. Without a top-level table
   * symbol, kernel text and the direct map are resolved by their fixed
   * offsets instead.
   */
  constructor(vi: VmcoreInfo, phys: PhysMemory, where: string) {
    this.#phys = phys;
    this.#where = where;
    this.#physBase = vi.number('phys_base') ?? 0n;
    this.#smeMask = BigInt.asUintN(64, vi.number('sme_mask') ?? 0n);
    this.#levels = vi.number('pgtable_l5_enabled') === 1n ? 5 : 4;
    const sym = vi.symbol('init_top_pgt') ?? vi.symbol('init_level4_pgt') ?? vi.symbol('swapper_pg_dir');
    this.#root = sym === undefined ? undefined : this.#symbolPa(sym);
  }

  /** __pa_symbol(): a kernel-image address to physical. */
  #symbolPa(va: bigint): bigint {
    return va - START_KERNEL_MAP + this.#physBase;
  }

  /** The physical address `va` maps to, or undefined when it is not mapped (or a table is not in the dump). */
  toPhys(va: bigint): number | undefined {
    const m = this.#last;
    if (m !== undefined && va >= m.va && va < m.va + m.size) return Number(m.pa + (va - m.va));
    const found = this.#root === undefined ? this.#fixed(va) : this.#walk(va);
    if (found === undefined) return undefined;
    this.#last = found;
    return Number(found.pa + (va - found.va));
  }

  #fixed(va: bigint): Mapping | undefined {
    if (va >= START_KERNEL_MAP) return { va: START_KERNEL_MAP, size: 1n << 30n, pa: this.#physBase };
    if (va >= DEFAULT_PAGE_OFFSET && va < DEFAULT_PAGE_OFFSET + (1n << 46n)) return { va: DEFAULT_PAGE_OFFSET, size: 1n << 46n, pa: 0n };
    return undefined;
  }

  #walk(va: bigint): Mapping | undefined {
    let table = this.#root!;
    for (let level = this.#levels; level >= 1; level--) {
      const shift = 12n + 9n * BigInt(level - 1);
      const index = (va >> shift) & 0x1ffn;
      if (!this.#phys.read(Number(table + index * 8n), this.#entry)) return undefined;
      const e = this.#entryView.getBigUint64(0, true) & ~this.#smeMask;
      if ((e & PRESENT) === 0n) return undefined;
      const next = e & ENTRY_ADDR_MASK;
      const size = 1n << shift;
      if (level === 1 || ((level === 2 || level === 3) && (e & PAGE_SIZE_BIT) !== 0n)) {
        const base = va & ~(size - 1n);
        return { va: base, size, pa: next & ~(size - 1n) };
      }
      table = next;
    }
    return undefined;
  }

  /** Reads dst.length bytes at kernel virtual address va; throws a VmcoreFormatError naming the first address it cannot read. */
  read(va: bigint, dst: Uint8Array, what: string): void {
    let done = 0;
    while (done < dst.length) {
      const a = va + BigInt(done);
      const pa = this.toPhys(a);
      const n = Math.min(PAGE_SIZE - Number(a & 0xfffn), dst.length - done);
      if (pa === undefined || !this.#phys.read(pa, dst.subarray(done, done + n))) {
        throw new VmcoreFormatError(
          `Cannot read ${what} of "${this.#where}": virtual address 0x${a.toString(16)} ${pa === undefined ? 'is not mapped by the dumped kernel\'s page tables' : `(physical ${hex(pa)}) is not in the dump`}`,
          { file: this.#where, field: what },
        );
      }
      done += n;
    }
  }

  readU64(va: bigint, what: string): bigint {
    const b = new Uint8Array(8);
    this.read(va, b, what);
    return new DataView(b.buffer).getBigUint64(0, true);
  }
}
