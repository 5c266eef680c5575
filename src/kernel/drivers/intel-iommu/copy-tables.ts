// copy_translation_tables() / copy_context_table() (ref §3.3): a capture
// kernel that finds translation on copies the old root's context tables
// into pages of its own and hangs them off its new root table. The second-
// level page tables are not copied: copied entries keep pointing into the
// old kernel's memory, which the capture kernel never reuses.
//
// Which format the old tables are in is read from RTADDR. The 4.2-era code
// looked at bit 11 (the withdrawn extended-context format) and compared it
// with whether it used that format itself (it never did); the 2022 code
// looks at bit 10 (scalable mode) and compares it with its own mode. A
// scalable-mode table read by the old code is therefore copied as if it
// were legacy. Each scalable entry is 256 bits, two 128-bit slots, and the
// copy walks 128-bit slots: `ext` doubles the index, as the kernel does.

import { bytesToWords, wordsToBytes } from '../../../platform/vtd/entry-bytes.js';
import { capDomains, RTADDR_SMT, REG_RTADDR } from '../../../platform/vtd/registers.js';
import type { IommuHost } from '../iommu.js';

/** RTADDR bit 11: the ECS-era "extended root table" selector (DMA_RTADDR_RTT, deleted in 2022). */
export const RTADDR_RTT = 1n << 11n;
/** Legacy context entry hi bit 3 (entry bit 67): the 4.2-era "copied" marker. */
export const COPIED_MARKER_HI = 1n << 3n;
/** lo bit 11: the ECS PASID-enable bit the 4.2-era code cleared before marking. */
const ECS_PASIDE_LO = 1n << 11n;

export type CopyResult =
  | { ok: true; ext: boolean; buses: number; entries: number; reservedDids: number[]; copied: Set<number> }
  | { ok: false; reason: string };

export interface CopyOptions {
  /** The kernel's copy code: 'copy' (4.2 to 5.19) or 'copy-sm' (the 2022 fix). */
  era: 'copy' | 'copy-sm';
  /** This kernel runs the unit in scalable mode. */
  scalable: boolean;
  mmio: number;
  cap: bigint;
  /** The new root table (zeroed) the copies hang off. */
  newRoot: number;
  alloc(): number;
}

export function copyTranslationTables(h: IommuHost, o: CopyOptions): CopyResult {
  const rtaddr = h.machine.mmio.read(o.mmio + REG_RTADDR, 8);
  const ext = o.era === 'copy-sm' ? (rtaddr & RTADDR_SMT) !== 0n : (rtaddr & RTADDR_RTT) !== 0n;
  // The 4.2-era code compared with the ECS format, which no kernel ever turned on.
  const newExt = o.era === 'copy-sm' ? o.scalable : false;
  if (ext !== newExt) return { ok: false, reason: `old tables are ${ext ? 'scalable-mode' : 'legacy'}, this kernel runs ${newExt ? 'scalable' : 'legacy'} mode` };
  const oldRoot = Number(rtaddr & 0xffff_ffff_ffff_f000n);
  if (oldRoot === 0) return { ok: false, reason: 'RTADDR is 0' };
  const root = readWords(h, oldRoot, 4096);
  const ndoms = capDomains(o.cap);
  const reserved = new Set<number>();
  const copied = new Set<number>();
  let buses = 0;
  let entries = 0;
  const newRootWords = new Array<bigint>(512).fill(0n);
  for (let bus = 0; bus < 256; bus++) {
    // tbl[2·bus + pos]: the kernel's per-bus slots, lower then upper in ext mode.
    const tbl: (number | undefined)[] = [undefined, undefined];
    let pos = 0;
    let cur: { pa: number; words: bigint[] } | undefined;
    let oldWords: bigint[] | undefined;
    for (let devfn = 0; devfn < 256; devfn++) {
      const idx = (ext ? devfn * 2 : devfn) % 256;
      if (idx === 0) {
        // A new 4 KiB table starts: store the one built so far, then find the old one.
        if (cur !== undefined) {
          h.mem.write(cur.pa, wordsToBytes(cur.words));
          tbl[pos] = cur.pa;
          pos = 1;
          cur = undefined;
        }
        const half = ext && devfn >= 0x80 ? root[bus * 2 + 1]! : root[bus * 2]!;
        if ((half & 1n) === 0n) {
          if (ext && devfn === 0) {
            devfn = 0x7f; // no lower table: go on with the upper one
            continue;
          }
          break;
        }
        oldWords = readWords(h, Number(half & 0xffff_ffff_ffff_f000n), 4096);
        cur = { pa: o.alloc(), words: new Array<bigint>(512).fill(0n) };
      }
      if (cur === undefined || oldWords === undefined) continue;
      let lo = oldWords[idx * 2]!;
      let hi = oldWords[idx * 2 + 1]!;
      if ((lo & 1n) === 0n) continue;
      const did = Number((hi >> 8n) & 0xffffn);
      if (did < ndoms) reserved.add(did);
      copied.add((bus << 8) | devfn);
      if (o.era === 'copy') {
        lo &= ~ECS_PASIDE_LO;
        hi |= COPIED_MARKER_HI;
      }
      cur.words[idx * 2] = lo;
      cur.words[idx * 2 + 1] = hi;
      entries++;
    }
    if (cur !== undefined) {
      h.mem.write(cur.pa, wordsToBytes(cur.words));
      // The slot of the last table follows `pos`, not devfn: an upper-only bus lands in the lower slot (fixed in 2026).
      tbl[pos] = cur.pa;
    }
    if (tbl[0] === undefined && tbl[1] === undefined) continue;
    buses++;
    if (tbl[0] !== undefined) newRootWords[bus * 2] = BigInt(tbl[0]) | 1n;
    if (ext && tbl[1] !== undefined) newRootWords[bus * 2 + 1] = BigInt(tbl[1]) | 1n;
  }
  h.mem.write(o.newRoot, wordsToBytes(newRootWords));
  return { ok: true, ext, buses, entries, reservedDids: [...reserved].sort((a, b) => a - b), copied };
}

function readWords(h: IommuHost, pa: number, bytes: number): bigint[] {
  const b = new Uint8Array(bytes);
  h.mem.read(pa, b);
  return bytesToWords(b);
}
