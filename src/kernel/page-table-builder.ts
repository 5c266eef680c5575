// Builds x86-64 page tables in simulated memory the way the kernel's
// init_memory_mapping does: the largest page that alignment allows (1 GiB,
// 2 MiB, else 4 KiB), table pages taken from the caller's allocator.

import type { PhysAccess } from './phys-access.js';
import { makePte, PTE_P, PTE_PS, PTE_RW, PTE_G, PTE_A, PTE_D, splitVirt } from '../platform/cpu/paging.js';

export interface PageAttrs {
  writable: boolean;
  global?: boolean;
  /** Map without the C-bit (boot data, ACPI tables, kexec pages under SME). */
  decrypted?: boolean;
}

const GiB = 2 ** 30;
const MiB2 = 2 ** 21;

export class PageTableBuilder {
  readonly root: number;
  readonly #mem: PhysAccess;
  readonly #allocTable: () => number;
  /** High-word bits ORed into every entry: the C-bit under SME. */
  readonly #encHi: number;
  readonly #entry = new Uint8Array(8);
  readonly #dv = new DataView(this.#entry.buffer);
  tablePages = 1;
  /** Whether 1 GiB leaf entries may be used (the CPU reports pdpe1gb). */
  readonly gbPages: boolean;

  /**
   * `root` must be a zeroed page; `allocTable` returns zeroed, page-aligned
   * physical pages. Tables are read and written through `mem` (so they are
   * encrypted when the kernel's memory is); `encHi` marks every entry.
   */
  constructor(mem: PhysAccess, root: number, allocTable: () => number, gbPages = true, encHi = 0) {
    this.#mem = mem;
    this.root = root;
    this.#allocTable = allocTable;
    this.gbPages = gbPages;
    this.#encHi = encHi;
  }

  /** Maps [va, va+size) to [pa, pa+size); both 4 KiB aligned. */
  map(va: bigint, pa: number, size: number, attrs: PageAttrs): void {
    const hi = attrs.decrypted ? 0 : this.#encHi;
    let off = 0;
    while (off < size) {
      const v = va + BigInt(off);
      const p = pa + off;
      const left = size - off;
      const vLow = Number(v & 0x3fff_ffffn);
      let step: number;
      if (this.gbPages && vLow % GiB === 0 && p % GiB === 0 && left >= GiB) step = GiB;
      else if (vLow % MiB2 === 0 && p % MiB2 === 0 && left >= MiB2) step = MiB2;
      else step = 4096;
      this.#mapOne(v, p, step, attrs, hi);
      off += step;
    }
  }

  /** Removes the mapping of [va, va+size) at whatever level it is mapped (leaf entries cleared). */
  unmap(va: bigint, size: number): void {
    let off = 0;
    while (off < size) {
      const leaf = this.#findLeaf(va + BigInt(off));
      if (leaf === undefined) {
        off += 4096;
        continue;
      }
      this.#write(leaf.entryPa, 0, 0);
      // Continue after the end of the leaf, which may have started before `va + off`.
      const v = va + BigInt(off);
      const leafEnd = v - (v % BigInt(leaf.size)) + BigInt(leaf.size);
      off = Number(leafEnd - va);
    }
  }

  #findLeaf(v: bigint): { entryPa: number; size: number } | undefined {
    const sv = splitVirt(v);
    if (!sv.ok) return undefined;
    let table = this.root;
    for (let level = 4; level >= 1; level--) {
      const entryPa = table + sv.idx[4 - level]! * 8;
      const { lo, hi } = this.#read(entryPa);
      if ((lo & PTE_P) === 0) return undefined;
      if (level === 1 || (lo & PTE_PS) !== 0) return { entryPa, size: level === 1 ? 4096 : level === 2 ? MiB2 : GiB };
      table = (hi & 0xfffff & ~this.#encHi) * 2 ** 32 + ((lo & 0xffff_f000) >>> 0);
    }
    return undefined;
  }

  #mapOne(v: bigint, pa: number, size: number, attrs: PageAttrs, leafHi: number): void {
    const sv = splitVirt(v);
    if (!sv.ok) throw new RangeError(`Cannot map non-canonical address 0x${v.toString(16)}`);
    const leafLevel = size === GiB ? 3 : size === MiB2 ? 2 : 1;
    let table = this.root;
    for (let level = 4; level > leafLevel; level--) {
      const entryPa = table + sv.idx[4 - level]! * 8;
      const { lo, hi } = this.#read(entryPa);
      if ((lo & PTE_P) !== 0) {
        if ((lo & PTE_PS) !== 0) throw new Error(`Cannot map 0x${v.toString(16)}: a larger page already covers it`);
        table = (hi & 0xfffff & ~this.#encHi) * 2 ** 32 + ((lo & 0xffff_f000) >>> 0);
      } else {
        const next = this.#allocTable();
        this.tablePages++;
        const e = makePte(next, PTE_P | PTE_RW | PTE_A, this.#encHi);
        this.#write(entryPa, e.lo, e.hi);
        table = next;
      }
    }
    let flags = PTE_P | PTE_A | PTE_D;
    if (attrs.writable) flags |= PTE_RW;
    if (attrs.global) flags |= PTE_G;
    if (leafLevel > 1) flags |= PTE_PS;
    const e = makePte(pa, flags, leafHi);
    this.#write(table + sv.idx[4 - leafLevel]! * 8, e.lo, e.hi);
  }

  #read(pa: number): { lo: number; hi: number } {
    this.#mem.read(pa, this.#entry);
    return { lo: this.#dv.getUint32(0, true), hi: this.#dv.getUint32(4, true) };
  }

  #write(pa: number, lo: number, hi: number): void {
    this.#dv.setUint32(0, lo, true);
    this.#dv.setUint32(4, hi, true);
    this.#mem.write(pa, this.#entry);
  }
}
