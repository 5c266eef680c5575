// Second-level ("DMA") page tables (ref §2.4): 4 KiB tables of 512 64-bit
// entries. Bit 0 Read, bit 1 Write (an entry with neither is not present),
// bits 6:2 reserved, bit 7 PS (a 2 MiB or 1 GiB leaf), bit 11 SNP, the
// address in 51:12; bits 62:52 and 63 are ignored. A walk starts at level
// AW + 2 and takes IOVA bits [12 + 9(L-1) + 8 : 12 + 9(L-1)] at level L.

import { bit, flag } from './entry-bytes.js';

export const SL_READ = 1n << 0n;
export const SL_WRITE = 1n << 1n;
export const SL_PS = 1n << 7n;
export const SL_SNP = 1n << 11n;
export const SL_RESERVED = 0x7cn;
const SL_ADDR_MASK = 0x000f_ffff_ffff_f000n;

export interface SlPteFields {
  readonly read: boolean;
  readonly write: boolean;
  readonly superpage: boolean;
  readonly snoop: boolean;
  /** Table or page address (bits 51:12; may carry the C-bit). */
  readonly address: number;
}

export function encodeSlPte(f: SlPteFields): bigint {
  return flag(f.read, 0) | flag(f.write, 1) | flag(f.superpage, 7) | flag(f.snoop, 11) | (BigInt(f.address) & SL_ADDR_MASK);
}

export function decodeSlPte(w: bigint): SlPteFields {
  return { read: bit(w, 0), write: bit(w, 1), superpage: bit(w, 7), snoop: bit(w, 11), address: Number(w & SL_ADDR_MASK) };
}

/** A non-leaf entry: read and write allowed below it (Linux sets both on directories). */
export function slTableEntry(table: number): bigint {
  return encodeSlPte({ read: true, write: true, superpage: false, snoop: false, address: table });
}

/** A leaf mapping `page` (4 KiB, or a superpage when `superpage`). */
export function slLeaf(page: number, perm: { read: boolean; write: boolean } = { read: true, write: true }, superpage = false): bigint {
  return encodeSlPte({ ...perm, superpage, snoop: false, address: page });
}

/** Levels of a walk for context/PASID AW. */
export function levelsForAw(aw: number): number {
  return aw + 2;
}

/** IOVA bits a table of AW covers: 30 + 9·AW. */
export function widthForAw(aw: number): number {
  return 30 + 9 * aw;
}

export function levelShift(level: number): number {
  return 12 + 9 * (level - 1);
}

/** The index into a level-`level` table for `iova`. */
export function slIndex(iova: number, level: number): number {
  return Math.floor(iova / 2 ** levelShift(level)) % 512;
}

export type SlWalkResult =
  | { readonly ok: true; /** The 4 KiB page holding the IOVA (may carry the C-bit). */ readonly page: number; readonly read: boolean; readonly write: boolean; readonly leafLevel: number }
  | { readonly ok: false; readonly fault: 'access' | 'permission' | 'reserved'; readonly level: number; readonly entryAddr: number; readonly detail: string };

/**
 * Walks from `root` (a level-`levels` table) to the page holding `iova`.
 * `write` is the access checked at every level, as hardware refuses the
 * request at the first entry that lacks the permission. `sps` is CAP.SPS:
 * bit 0 allows 2 MiB leaves, bit 1 1 GiB leaves; PS elsewhere is reserved.
 */
export function walkSecondLevel(
  readQword: (addr: number) => bigint | undefined, root: number, levels: number, iova: number, write: boolean, sps: number,
): SlWalkResult {
  let table = root;
  let read = true;
  let writable = true;
  for (let level = levels; level >= 1; level--) {
    const at = table + 8 * slIndex(iova, level);
    const raw = readQword(at);
    if (raw === undefined) return { ok: false, fault: 'access', level, entryAddr: at, detail: `level-${level} entry at 0x${at.toString(16)} is outside memory` };
    const pte = decodeSlPte(raw);
    if (!(write ? pte.write : pte.read)) {
      const what = !pte.read && !pte.write ? 'not present' : `without ${write ? 'write' : 'read'} permission`;
      return { ok: false, fault: 'permission', level, entryAddr: at, detail: `level-${level} entry at 0x${at.toString(16)} is ${what}` };
    }
    const superpageAllowed = (level === 2 && (sps & 1) !== 0) || (level === 3 && (sps & 2) !== 0);
    if ((raw & SL_RESERVED) !== 0n || (level > 1 && pte.superpage && !superpageAllowed)) {
      return { ok: false, fault: 'reserved', level, entryAddr: at, detail: `level-${level} entry at 0x${at.toString(16)} has reserved bits set (0x${raw.toString(16)})` };
    }
    read &&= pte.read;
    writable &&= pte.write;
    if (level === 1 || pte.superpage) {
      const span = 2 ** levelShift(level);
      const within = iova % span;
      return { ok: true, page: pte.address - (pte.address % span) + (within - (within % 4096)), read, write: writable, leafLevel: level };
    }
    table = pte.address;
  }
  throw new Error('unreachable: a walk ends at level 1');
}
