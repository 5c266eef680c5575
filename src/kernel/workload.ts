// A workload for the first kernel: allocates runs of pages scattered over
// free memory and fills them with what a busy machine holds: zero pages,
// text-like and table-like data, incompressible data, sparse structures.
// Each run's struct pages say what it is (anonymous, page cache, slab).

import { Prng } from '../util/prng.js';
import type { FirstKernel } from './first-kernel.js';
import { directMapVirt } from './layout.js';
import type { PageUse } from './mem-map.js';
import { writeVirt } from './virtual-access.js';
import { faultOfAccess, pageFaultOops } from './oops.js';

export interface WorkloadConfig {
  /** Pages to allocate and fill. */
  pages: number;
  seed: number;
}

export interface WorkloadResult {
  pages: number;
  runs: number;
  zeroPages: number;
  /** The write that oopsed the kernel (an RMP violation, say); the workload stopped there. */
  oops?: { cpu: number; va: bigint };
}

const USES: readonly PageUse[] = ['anon', 'anon', 'cache', 'cache-private', 'slab'];
const WORDS = ['kdump ', 'vmcore ', 'kexec ', 'purgatory ', 'elfcorehdr ', 'crashkernel ', 'panic ', 'iommu ', 'sme ', 'rmp ']
  .map((w) => new TextEncoder().encode(w));
const HEX = new TextEncoder().encode('0123456789abcdef');

export function runWorkload(k: FirstKernel, cfg: WorkloadConfig): WorkloadResult {
  const m = k.machine;
  const rng = new Prng(cfg.seed, 0x574b4c44);
  const page = new Uint8Array(4096);
  let done = 0;
  let runs = 0;
  let zeroPages = 0;
  let attempts = 0;
  while (done < cfg.pages && attempts < cfg.pages * 4 + 100) {
    attempts++;
    const free = k.memblock.freeRanges;
    const total = free.reduce((n, r) => n + (r.end - r.start), 0);
    if (total < 4096) break;
    let at = Math.floor(rng.below(total) / 4096) * 4096;
    const range = free.find((r) => {
      if (at < r.end - r.start) return true;
      at -= r.end - r.start;
      return false;
    });
    if (range === undefined) break;
    const start = range.start + at;
    const want = Math.min(16 + rng.below(241), cfg.pages - done);
    const len = Math.min(want, Math.floor((range.end - start) / 4096));
    if (len <= 0 || !k.memblock.reserve(start, len * 4096)) continue;
    const use = USES[rng.below(USES.length)]!;
    for (let i = 0; i < len; i++) {
      const pa = start + i * 4096;
      const kind = rng.below(100);
      if (kind < 25) {
        zeroPages++;
        continue; // a zero page: allocated, never written (memory starts zeroed)
      }
      fillPage(page, kind, rng, pa);
      const w = writeVirt(m.mc, m.bsp, directMapVirt(pa), page);
      if (!w.ok) {
        pageFaultOops(k, m.bsp.id, faultOfAccess(w));
        k.memMap.describe(k.mem, start / 4096, i, use);
        return { pages: done + i, runs, zeroPages, oops: { cpu: m.bsp.id, va: w.va } };
      }
    }
    k.memMap.describe(k.mem, start / 4096, len, use);
    done += len;
    runs++;
    m.clock.advance(50_000 * len);
  }
  k.step(`workload filled ${done} pages in ${runs} runs (${zeroPages} left zero)`);
  return { pages: done, runs, zeroPages };
}

/** Text-like page bodies, built once: copying one and stamping it is far cheaper than composing text per page. */
let textTemplates: Uint8Array[] | undefined;

function templates(): Uint8Array[] {
  if (textTemplates !== undefined) return textTemplates;
  const rng = new Prng(0x7e47, 1);
  textTemplates = [];
  for (let t = 0; t < 32; t++) {
    const page = new Uint8Array(4096);
    let o = 0;
    while (o < page.length) {
      const w = WORDS[rng.below(WORDS.length)]!;
      const n = Math.min(w.length, page.length - o);
      page.set(w.subarray(0, n), o);
      o += n;
      for (let i = 0; i < 12 && o < page.length; i++, o++) page[o] = HEX[rng.below(16)]!;
      if (o < page.length) page[o++] = 0x0a;
    }
    textTemplates.push(page);
  }
  return textTemplates;
}

function fillPage(page: Uint8Array, kind: number, rng: Prng, pa: number): void {
  if (kind < 55) {
    // text-like: words and addresses, very compressible; stamped with the page's address so no two pages are equal
    page.set(templates()[rng.below(32)]!);
    for (let at = 0; at < 4096; at += 512) {
      let v = pa + at;
      for (let i = 11; i >= 0; i--, v = Math.floor(v / 16)) page[at + i] = HEX[v % 16]!;
    }
  } else if (kind < 80) {
    rng.fill(page); // incompressible
  } else {
    // sparse structures: mostly zero, a few pointers and counters
    page.fill(0);
    const dv = new DataView(page.buffer, page.byteOffset, page.length);
    for (let i = 0; i < 16; i++) {
      const o = rng.below(512) * 8;
      dv.setUint32(o, rng.nextU32(), true);
      dv.setUint32(o + 4, 0xffff8880, true);
    }
  }
}
