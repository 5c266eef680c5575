// x86-64 4-level paging: the walk a CPU's MMU does, over page tables that are
// bytes in simulated memory. Faults are values; the kernel model decides what
// they mean. 64-bit entries are handled as lo/hi 32-bit halves.

import type { MemoryController } from '../memory-controller.js';

/** Page-table entry bits (low word). */
export const PTE_P = 1 << 0;
export const PTE_RW = 1 << 1;
export const PTE_US = 1 << 2;
export const PTE_PWT = 1 << 3;
export const PTE_PCD = 1 << 4;
export const PTE_A = 1 << 5;
export const PTE_D = 1 << 6;
export const PTE_PS = 1 << 7;
export const PTE_G = 1 << 8;
/** NX is bit 63: bit 31 of the high word. */
export const PTE_HI_NX = 0x8000_0000;

/** #PF error code bits. */
export const PF_PRESENT = 1 << 0;
export const PF_WRITE = 1 << 1;
export const PF_USER = 1 << 2;
export const PF_RSVD = 1 << 3;
export const PF_INSTR = 1 << 4;
/** The RMP bit of the #PF error code (AMD SEV-SNP). */
export const PF_RMP = 2 ** 31;

export type WalkFaultKind = 'not-present' | 'write-protect' | 'non-canonical' | 'reserved-bit';

export type WalkResult =
  | { ok: true; pa: number; pageSize: number; writable: boolean; nx: boolean; encrypted: boolean; level: number }
  | { ok: false; fault: WalkFaultKind; level: number; errorCode: number; detail: string };

export interface WalkOptions {
  write?: boolean;
  /**
   * Bits of the high word that are not address bits but attributes (the SME
   * C-bit lives here on AMD parts). They are stripped from table addresses
   * and reported as `encrypted`.
   */
  encMaskHi?: number;
  /**
   * The key slot the MMU uses for a table whose pointer (CR3 or the entry
   * above) carries the C-bit; each level decides for itself, as on hardware.
   */
  encKeyId?: number;
}

/** The MMU's memory-encryption view of a CPU: its C-bit and key, when SYSCFG enables them. */
export function mmuEncryption(cpu: { rdmsr(msr: number): bigint; cpuid(leaf: number): readonly number[] }, keyId: number): WalkOptions {
  if ((cpu.rdmsr(0xc001_0010) & (1n << 23n)) === 0n) return {};
  const cbit = (cpu.cpuid(0x8000_001f)[1] ?? 0) & 0x3f;
  if (cbit < 32) return {};
  return { encMaskHi: (1 << (cbit - 32)) >>> 0, encKeyId: keyId };
}

const LEVEL_NAMES = ['', 'PTE', 'PMD', 'PUD', 'PGD'];
/** Scratch for one table entry: walks are synchronous and never nest, so one buffer serves them all. */
const ENTRY = new Uint8Array(8);
const ENTRY_VIEW = new DataView(ENTRY.buffer);

/** Splits a canonical 48-bit virtual address into its four 9-bit indices and the page offset. */
export function splitVirt(vaddr: bigint): { ok: true; idx: [number, number, number, number]; low: number } | { ok: false } {
  const top = vaddr >> 47n;
  if (top !== 0n && top !== 0x1ffffn) return { ok: false };
  const v48 = Number(vaddr & 0xffff_ffff_ffffn);
  const pml4 = Math.floor(v48 / 2 ** 39) & 511;
  const pdpt = Math.floor(v48 / 2 ** 30) & 511;
  const pd = Math.floor(v48 / 2 ** 21) & 511;
  const pt = Math.floor(v48 / 2 ** 12) & 511;
  return { ok: true, idx: [pml4, pdpt, pd, pt], low: v48 % 2 ** 30 };
}

/**
 * Translates `vaddr` through the tables rooted at physical `cr3`.
 * Table reads go through the memory controller with `tableKeyId` (plaintext
 * unless the caller says the tables are encrypted).
 */
export function walk(mc: MemoryController, cr3: number, vaddr: bigint, opts: WalkOptions = {}, tableKeyId = 0): WalkResult {
  const sv = splitVirt(vaddr);
  if (!sv.ok) return { ok: false, fault: 'non-canonical', level: 4, errorCode: 0, detail: `non-canonical address 0x${vaddr.toString(16)}` };
  const encMaskHi = opts.encMaskHi ?? 0;
  const encKeyId = opts.encKeyId ?? tableKeyId;
  const buf = ENTRY;
  const dv = ENTRY_VIEW;
  const cr3Hi = Math.floor(cr3 / 2 ** 32);
  let tableEnc = encMaskHi !== 0 ? (cr3Hi & encMaskHi) !== 0 : tableKeyId !== 0;
  let table = (cr3Hi & ~encMaskHi & 0x000f_ffff) * 2 ** 32 + ((cr3 % 2 ** 32) - (cr3 % 4096));
  let writable = true;
  let nx = false;
  for (let level = 4; level >= 1; level--) {
    const idx = sv.idx[4 - level]!;
    if (table + idx * 8 + 8 > mc.dram.size) {
      // Nothing answers there: the read returns all ones, whose reserved bits fault.
      return { ok: false, fault: 'reserved-bit', level, errorCode: PF_PRESENT | PF_RSVD | (opts.write ? PF_WRITE : 0), detail: `${LEVEL_NAMES[level]} table at 0x${table.toString(16)} is outside DRAM` };
    }
    mc.read(table + idx * 8, buf, { keyId: tableEnc ? encKeyId : 0 });
    const lo = dv.getUint32(0, true);
    const hi = dv.getUint32(4, true);
    if ((lo & PTE_P) === 0) {
      return {
        ok: false, fault: 'not-present', level,
        errorCode: opts.write ? PF_WRITE : 0,
        detail: `${LEVEL_NAMES[level]} entry ${idx} at 0x${(table + idx * 8).toString(16)} not present`,
      };
    }
    writable &&= (lo & PTE_RW) !== 0;
    nx ||= (hi & PTE_HI_NX) !== 0;
    const addrHi = hi & 0x000f_ffff & ~encMaskHi;
    const encrypted = (hi & encMaskHi) !== 0;
    const leaf = level === 1 || ((lo & PTE_PS) !== 0 && (level === 2 || level === 3));
    if (leaf) {
      const pageSize = level === 1 ? 4096 : level === 2 ? 2 ** 21 : 2 ** 30;
      const base = addrHi * 2 ** 32 + ((lo & 0xffff_f000) >>> 0);
      const frameBase = base - (base % pageSize);
      const offset = Number(vaddr & BigInt(pageSize - 1));
      if (opts.write && !writable) {
        return { ok: false, fault: 'write-protect', level, errorCode: PF_PRESENT | PF_WRITE, detail: `write to read-only page 0x${vaddr.toString(16)}` };
      }
      return { ok: true, pa: frameBase + offset, pageSize, writable, nx, encrypted, level };
    }
    table = addrHi * 2 ** 32 + ((lo & 0xffff_f000) >>> 0);
    if (encMaskHi !== 0) tableEnc = encrypted;
  }
  throw new Error('unreachable: page walk ended without a leaf');
}

/** Encodes a page-table entry from a physical address and low/high attribute bits. */
export function makePte(pa: number, loFlags: number, hiFlags = 0): { lo: number; hi: number } {
  const hi = Math.floor(pa / 2 ** 32);
  const lo = (pa % 2 ** 32) >>> 0;
  return { lo: ((lo & 0xffff_f000) | loFlags) >>> 0, hi: (hi | hiFlags) >>> 0 };
}
