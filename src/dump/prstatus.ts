// NT_PRSTATUS descriptor for x86_64 (struct elf_prstatus, 336 bytes). A kdump
// note fills only pr_pid and pr_reg; everything else stays zero.

import { VmcoreFormatError } from '../util/errors.js';
import { hex } from '../util/hex.js';

/** The 27 registers of pr_reg, in user_regs_struct order. */
export const X86_PRSTATUS_REGS = [
  'r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8',
  'rax', 'rcx', 'rdx', 'rsi', 'rdi', 'orig_rax', 'rip', 'cs', 'eflags', 'rsp',
  'ss', 'fs_base', 'gs_base', 'ds', 'es', 'fs', 'gs',
] as const;

export type RegName = (typeof X86_PRSTATUS_REGS)[number];

export const PRSTATUS_SIZE = 336;
/** Readers need the descriptor only up to the end of pr_reg (libkdumpfile rejects less). */
export const PRSTATUS_MIN_SIZE = 328;

const PR_PID_OFFSET = 32;
const PR_REG_OFFSET = 112;

export interface PrStatus {
  pid: number;
  regs: Record<RegName, bigint>;
}

/** All registers zero, for building a PrStatus field by field. */
export function zeroRegs(): Record<RegName, bigint> {
  const regs = {} as Record<RegName, bigint>;
  for (const r of X86_PRSTATUS_REGS) regs[r] = 0n;
  return regs;
}

const U64_MAX = (1n << 64n) - 1n;

export function encodePrStatus(p: PrStatus): Uint8Array {
  if (!Number.isInteger(p.pid) || p.pid < -(2 ** 31) || p.pid >= 2 ** 31) {
    throw new RangeError(`Cannot encode NT_PRSTATUS: pid ${p.pid} does not fit pid_t`);
  }
  const buf = new Uint8Array(PRSTATUS_SIZE);
  const v = new DataView(buf.buffer);
  v.setInt32(PR_PID_OFFSET, p.pid, true);
  X86_PRSTATUS_REGS.forEach((name, i) => {
    const x = p.regs[name];
    if (typeof x !== 'bigint' || x < 0n || x > U64_MAX) {
      throw new RangeError(`Cannot encode NT_PRSTATUS: register ${name} ${String(x)} does not fit 64 bits`);
    }
    v.setBigUint64(PR_REG_OFFSET + 8 * i, x, true);
  });
  return buf;
}

/** `where.offset` is the descriptor's file offset, for the error message. */
export function decodePrStatus(desc: Uint8Array, where: { file: string; offset: number }): PrStatus {
  if (desc.length < PRSTATUS_MIN_SIZE) {
    throw new VmcoreFormatError(
      `Cannot read NT_PRSTATUS note at offset ${hex(where.offset)} of "${where.file}": descriptor is ${desc.length} bytes, x86_64 needs at least ${PRSTATUS_MIN_SIZE}`,
      { file: where.file, offset: where.offset, field: 'n_descsz' },
    );
  }
  const v = new DataView(desc.buffer, desc.byteOffset, desc.length);
  const regs = zeroRegs();
  X86_PRSTATUS_REGS.forEach((name, i) => {
    regs[name] = v.getBigUint64(PR_REG_OFFSET + 8 * i, true);
  });
  return { pid: v.getInt32(PR_PID_OFFSET, true), regs };
}
