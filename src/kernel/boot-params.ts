// struct boot_params, the "zero page" a kernel is entered with: the fields
// kexec fills for the crash kernel (e820 table, command line pointer).
// Offsets are those of arch/x86/include/uapi/asm/bootparam.h.

import type { E820Entry, E820Type } from '../platform/e820.js';
import { E820_TYPE_CODE } from '../platform/e820.js';

export const BP_EXT_CMD_LINE_PTR = 0x0c8;
export const BP_E820_ENTRIES = 0x1e8;
export const BP_HEADER = 0x202;
export const BP_CMD_LINE_PTR = 0x228;
export const BP_CMDLINE_SIZE = 0x238;
export const BP_E820_TABLE = 0x2d0;
export const E820_MAX_ENTRIES_ZEROPAGE = 128;
export const BOOT_E820_ENTRY_SIZE = 20;
/** "HdrS" */
export const SETUP_HEADER_MAGIC = 0x53726448;
export const BOOT_PARAMS_SIZE = 4096;

const TYPE_BY_CODE = new Map<number, E820Type>(Object.entries(E820_TYPE_CODE).map(([k, v]) => [v, k as E820Type]));

/** Encodes boot_params with the command line placed at `cmdlinePa` (the caller writes the bytes there). */
export function encodeBootParams(e820: readonly E820Entry[], cmdlinePa: number, cmdlineLength: number): Uint8Array {
  if (e820.length > E820_MAX_ENTRIES_ZEROPAGE) throw new RangeError(`Cannot build boot_params: ${e820.length} e820 entries exceed ${E820_MAX_ENTRIES_ZEROPAGE}`);
  const b = new Uint8Array(BOOT_PARAMS_SIZE);
  const dv = new DataView(b.buffer);
  dv.setUint32(BP_HEADER, SETUP_HEADER_MAGIC, true);
  dv.setUint32(BP_CMD_LINE_PTR, cmdlinePa % 2 ** 32, true);
  dv.setUint32(BP_EXT_CMD_LINE_PTR, Math.floor(cmdlinePa / 2 ** 32), true);
  dv.setUint32(BP_CMDLINE_SIZE, cmdlineLength, true);
  b[BP_E820_ENTRIES] = e820.length;
  e820.forEach((e, i) => {
    const o = BP_E820_TABLE + i * BOOT_E820_ENTRY_SIZE;
    dv.setBigUint64(o, BigInt(e.addr), true);
    dv.setBigUint64(o + 8, BigInt(e.size), true);
    dv.setUint32(o + 16, E820_TYPE_CODE[e.type], true);
  });
  return b;
}

export type DecodedBootParams =
  | { ok: true; e820: E820Entry[]; cmdlinePa: number; cmdlineLength: number }
  | { ok: false; reason: string };

export function decodeBootParams(b: Uint8Array): DecodedBootParams {
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  if (dv.getUint32(BP_HEADER, true) !== SETUP_HEADER_MAGIC) return { ok: false, reason: 'boot_params header magic "HdrS" missing' };
  const n = b[BP_E820_ENTRIES]!;
  if (n > E820_MAX_ENTRIES_ZEROPAGE) return { ok: false, reason: `e820_entries ${n} is too large` };
  const e820: E820Entry[] = [];
  for (let i = 0; i < n; i++) {
    const o = BP_E820_TABLE + i * BOOT_E820_ENTRY_SIZE;
    const type = TYPE_BY_CODE.get(dv.getUint32(o + 16, true)) ?? 'reserved';
    e820.push({ addr: Number(dv.getBigUint64(o, true)), size: Number(dv.getBigUint64(o + 8, true)), type });
  }
  const cmdlinePa = dv.getUint32(BP_CMD_LINE_PTR, true) + dv.getUint32(BP_EXT_CMD_LINE_PTR, true) * 2 ** 32;
  return { ok: true, e820, cmdlinePa, cmdlineLength: dv.getUint32(BP_CMDLINE_SIZE, true) };
}
