// The AMD v1 (host) I/O page table: 4 KiB tables of 512 64-bit entries,
// `levels` deep (the DTE's Mode). An entry's NextLevel (bits 11:9) names the
// level of the table it points to; 0 marks a leaf, whose page covers what
// the current level spans (4 KiB at level 1, 2 MiB at 2, 1 GiB at 3).
// Permissions are the AND of IR/IW along the walk.

export const PTE_PRESENT = 1n << 0n;
export const PTE_IR = 1n << 61n;
export const PTE_IW = 1n << 62n;
const PTE_ADDR_MASK = 0x000f_ffff_ffff_f000n;

export interface IoPteFields {
  readonly present: boolean;
  /** Level of the table this entry points to; 0 for a leaf page. */
  readonly nextLevel: number;
  /** Table or page address (bits 51:12, may carry the C-bit). */
  readonly address: number;
  readonly ir: boolean;
  readonly iw: boolean;
}

export function encodeIoPte(f: IoPteFields): bigint {
  return (f.present ? PTE_PRESENT : 0n) | (BigInt(f.nextLevel & 7) << 9n) | (BigInt(f.address) & PTE_ADDR_MASK)
    | (f.ir ? PTE_IR : 0n) | (f.iw ? PTE_IW : 0n);
}

export function decodeIoPte(pte: bigint): IoPteFields {
  return {
    present: (pte & PTE_PRESENT) !== 0n,
    nextLevel: Number((pte >> 9n) & 7n),
    address: Number(pte & PTE_ADDR_MASK),
    ir: (pte & PTE_IR) !== 0n,
    iw: (pte & PTE_IW) !== 0n,
  };
}

/** Convenience builders: a directory entry pointing at a table of `level`, and a leaf mapping. */
export function ioPde(tableAddress: number, level: number): bigint {
  return encodeIoPte({ present: true, nextLevel: level, address: tableAddress, ir: true, iw: true });
}
export function ioLeaf(pageAddress: number, perm: { ir: boolean; iw: boolean } = { ir: true, iw: true }): bigint {
  return encodeIoPte({ present: true, nextLevel: 0, address: pageAddress, ...perm });
}

/** Bits of IOVA a level resolves start at 12 + 9 * (level - 1). */
export function levelShift(level: number): number {
  return 12 + 9 * (level - 1);
}

/** The index into a level's table for `iova`. */
export function ioPteIndex(iova: number, level: number): number {
  return Math.floor(iova / 2 ** levelShift(level)) % 512;
}

export type IoWalkResult =
  | { ok: true; /** Address of the 4 KiB page holding `iova` (may carry the C-bit). */ page: number; ir: boolean; iw: boolean; leafLevel: number }
  | { ok: false; fault: 'not-present' | 'reserved' | 'hardware-error'; level: number; detail: string };

/**
 * Walks the table rooted at `root` (a level-`levels` table) for the 4 KiB
 * page holding `iova`, reading entries through `readQword` (undefined: no
 * memory there). Permissions are not checked here; the result carries them.
 */
export function walkIoPageTable(
  readQword: (addr: number) => bigint | undefined, root: number, levels: number, iova: number, dteIr: boolean, dteIw: boolean,
): IoWalkResult {
  if (levels < 1 || levels > 6) return { ok: false, fault: 'reserved', level: levels, detail: `page-table mode ${levels} is reserved` };
  if (levels < 6 && iova >= 2 ** levelShift(levels + 1)) {
    return { ok: false, fault: 'not-present', level: levels, detail: `IOVA 0x${iova.toString(16)} is beyond a ${levels}-level table` };
  }
  let table = root;
  let level = levels;
  let ir = dteIr;
  let iw = dteIw;
  for (;;) {
    const at = table + 8 * ioPteIndex(iova, level);
    const raw = readQword(at);
    if (raw === undefined) return { ok: false, fault: 'hardware-error', level, detail: `level-${level} entry at 0x${at.toString(16)} is outside memory` };
    const pte = decodeIoPte(raw);
    if (!pte.present) return { ok: false, fault: 'not-present', level, detail: `level-${level} entry at 0x${at.toString(16)} is not present` };
    ir &&= pte.ir;
    iw &&= pte.iw;
    if (pte.nextLevel === 0) {
      const span = 2 ** levelShift(level);
      const offset = iova % span;
      const pageOffset = offset - (offset % 4096);
      return { ok: true, page: pte.address - (pte.address % span) + pageOffset, ir, iw, leafLevel: level };
    }
    if (pte.nextLevel >= level) {
      return { ok: false, fault: 'reserved', level, detail: `level-${level} entry at 0x${at.toString(16)} names next level ${pte.nextLevel}` };
    }
    // Skipped levels must see zero IOVA bits, or the address has no mapping.
    for (let skipped = pte.nextLevel + 1; skipped < level; skipped++) {
      if (ioPteIndex(iova, skipped) !== 0) {
        return { ok: false, fault: 'not-present', level: skipped, detail: `IOVA 0x${iova.toString(16)} has bits set for skipped level ${skipped}` };
      }
    }
    table = pte.address;
    level = pte.nextLevel;
  }
}
