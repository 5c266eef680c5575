// The kernel image in physical memory: text, rodata, data and bss at a load
// address, with the symbols VMCOREINFO publishes pointing at real bytes
// (init_uts_ns holds the release string, init_top_pgt the page-table root,
// mem_section the SPARSEMEM root array pointer, vmcoreinfo_note the note,
// node_states the node masks, contig_page_data node 0 with its zones and the
// buddy allocator's free lists).

import type { PhysAccess } from './phys-access.js';
import { Prng } from '../util/prng.js';
import { kernelTextVirt } from './layout.js';
import { cachedBytes } from './image-cache.js';

const MiB = 2 ** 20;

/** Section layout, offsets from _text. Data symbols sit on their own pages where the kernel page-aligns them. */
export const IMAGE = {
  textSize: 4 * MiB,
  rodata: 4 * MiB,
  rodataSize: 1 * MiB,
  data: 5 * MiB,
  bss: 7 * MiB,
  end: 8 * MiB,
} as const;

/** Symbol offsets from _text. Function addresses are where those functions sit in our text. */
export const SYMBOL_OFFSETS = {
  _text: 0,
  _stext: 0,
  native_safe_halt: 0x0a_1c40,
  crash_nmi_callback: 0x06_3a10,
  sysrq_handle_crash: 0x2f_7e20,
  panic: 0x0f_0b30,
  linux_banner: IMAGE.rodata,
  init_top_pgt: IMAGE.data,
  init_uts_ns: IMAGE.data + 0x3000,
  mem_section: IMAGE.data + 0x4000,
  vmcoreinfo_data: IMAGE.data + 0x5000,
  vmcoreinfo_note: IMAGE.data + 0x6000,
  /** nodemask_t node_states[NR_NODE_STATES]; node_online_map is node_states[N_ONLINE] (one unsigned long each on !NUMA). */
  node_states: IMAGE.data + 0x8000,
  node_online_map: IMAGE.data + 0x8008,
  /** struct pglist_data of the one node (pglist-data.ts), some 10 KiB. */
  contig_page_data: IMAGE.data + 0x9000,
  _end: IMAGE.end,
} as const;
export type KernelSymbol = keyof typeof SYMBOL_OFFSETS;

/** struct new_utsname: six 65-byte strings. */
export const UTS_FIELD_LEN = 65;

export class KernelImage {
  readonly base: number;

  constructor(base: number) {
    this.base = base;
  }

  get size(): number {
    return IMAGE.end;
  }

  pa(sym: KernelSymbol): number {
    return this.base + SYMBOL_OFFSETS[sym];
  }

  va(sym: KernelSymbol): bigint {
    return kernelTextVirt(this.pa(sym));
  }

  /**
   * Writes the image as the boot loader and early boot leave it: seeded text
   * (so two releases differ), the banner in rodata, init_uts_ns, zeroed bss.
   */
  load(mem: PhysAccess, release: string, banner: string, seed: number): void {
    const text = cachedBytes(`text:${seed}:${release}`, () => {
      const b = new Uint8Array(IMAGE.textSize);
      tileRandom(b, new Prng(seed, hashString(release)));
      return b;
    });
    mem.write(this.base, text);
    const rodata = cachedBytes(`rodata:${banner}`, () => {
      const b = new Uint8Array(IMAGE.rodataSize);
      b.set(new TextEncoder().encode(banner + '\n'), 0);
      // The rest of rodata: repetitive tables and strings, compressible like the real thing.
      for (let i = 4096; i < b.length; i++) b[i] = (i * 7 + (i >> 9)) & 0x7f;
      return b;
    });
    mem.write(this.base + IMAGE.rodata, rodata);
    mem.write(this.pa('init_uts_ns'), utsname(release));
  }
}

/** struct uts_namespace with `name` at offset 0 (6.1 layout): sysname, nodename, release, version, machine, domainname. */
export function utsname(release: string): Uint8Array {
  const fields = ['Linux', 'kdumpsim', release, '#1 SMP PREEMPT_DYNAMIC', 'x86_64', '(none)'];
  const out = new Uint8Array(UTS_FIELD_LEN * fields.length);
  const enc = new TextEncoder();
  fields.forEach((f, i) => out.set(enc.encode(f).subarray(0, UTS_FIELD_LEN - 1), i * UTS_FIELD_LEN));
  return out;
}

/**
 * Fills `dst` with 256 KiB of seeded random bytes repeated, each page stamped
 * with its offset so no two pages are equal: machine-code-like content at a
 * fraction of the cost of generating every byte.
 */
export function tileRandom(dst: Uint8Array, rng: Prng): void {
  const block = Math.min(dst.length, 256 * 1024);
  rng.fill(dst.subarray(0, block));
  for (let at = block; at < dst.length; at += block) dst.copyWithin(at, 0, Math.min(block, dst.length - at));
  const dv = new DataView(dst.buffer, dst.byteOffset, dst.length);
  for (let p = 0; p + 8 <= dst.length; p += 4096) dv.setUint32(p, p, true);
}

export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
