// The RMP instructions as CPU operations: RMPUPDATE, PSMASH, RMPREAD (host)
// and PVALIDATE (guest). Each works on the executing CPU's RMP (its
// RMP_BASE/RMP_END) and raises #UD unless that CPU has SYSCFG.SNP_EN.
// An executed instruction's status (RAX) is a return code: 0 is success
// (`ok: true`), any other code comes back as `fault: 'rmp-fail'` with `rc`.
//
// Rules modelled (simplifications of the APM, kept deterministic):
// - RMPUPDATE clears Validated and VMSA. FAIL_INPUT: address not aligned to
//   the page size, not covered by the RMP, ASID > 1023 or GPA misaligned.
//   FAIL_PERMISSION: the entry (or, for a 2 MiB update, any of its 512) is
//   immutable. FAIL_OVERLAP: a 4 KiB update inside an assigned 2 MiB page,
//   or a 2 MiB assignment over a region holding assigned 4 KiB entries. On
//   hardware OVERLAP can be transient and Linux retries it in a loop; here it
//   is persistent, so a caller must bound its retries.
// - PSMASH splits an assigned 2 MiB entry into 512 assigned 4 KiB entries
//   (same ASID, consecutive GPAs, Validated kept). FAIL_INPUT: misaligned or
//   not covered; FAIL_INUSE: the entry is not an assigned 2 MiB page;
//   FAIL_PERMISSION: it is immutable.
// - RMPREAD returns the PFN's own entry in `struct rmpentry` form.
// - PVALIDATE (by a guest of `asid`; a host gets #UD) sets or clears
//   Validated on the governing entry. FAIL_INPUT: misaligned, not covered,
//   or not assigned to that ASID; FAIL_SIZEMISMATCH: the requested size
//   differs from the entry's page size. The GPA is not checked.

import type { Machine } from '../machine.js';
import type { Cpu } from '../cpu/cpu.js';
import type { Requester } from '../memory-controller.js';
import { snpEnabledOn } from './snp-msrs.js';
import { hex } from '../../util/hex.js';
import {
  readRmpEntry, writeRmpEntry, rmpCovers, rmpLocationOf, rmpGoverningEntry, RMP_MAX_ASID, PFNS_PER_2M,
  type RmpEntry, type RmpLocation,
} from './rmp.js';

export const RMP_RC_SUCCESS = 0;
export const RMP_RC_FAIL_INPUT = 1;
export const RMP_RC_FAIL_PERMISSION = 2;
export const RMP_RC_FAIL_INUSE = 3;
export const RMP_RC_FAIL_OVERLAP = 4;
export const RMP_RC_FAIL_SIZEMISMATCH = 6;

/** RMPUPDATE's input, `struct rmp_state`. `gpa` is a byte address. */
export interface RmpState {
  readonly gpa: number;
  readonly assigned: boolean;
  readonly pageSize: 0 | 1;
  readonly immutable: boolean;
  readonly asid: number;
}

/** `struct rmpentry` as RMPREAD stores it. */
export interface RmpReadEntry {
  readonly gpa: number;
  readonly assigned: boolean;
  readonly pageSize: 0 | 1;
  /** Some 4 KiB entry of the 2 MiB region holding the PFN is assigned. */
  readonly hpageRegionStatus: boolean;
  readonly immutable: boolean;
  readonly asid: number;
}

export type RmpInsnFault =
  | { ok: false; fault: 'rmp-fail'; rc: number; detail: string }
  /** #UD: the CPU cannot execute the instruction (SNP_EN clear, or PVALIDATE outside a guest). */
  | { ok: false; fault: 'invalid-opcode'; detail: string };

export type RmpInsnResult = { ok: true; rc: 0 } | RmpInsnFault;
export type RmpReadResult = { ok: true; rc: 0; entry: RmpReadEntry } | RmpInsnFault;
/** `changed` is false when Validated already had the requested value (PVALIDATE sets CF). */
export type PvalidateResult = { ok: true; rc: 0; changed: boolean } | RmpInsnFault;

const MiB2 = 2 ** 21;

type Ctx = { loc: RmpLocation } | RmpInsnFault;

/** The instruction's own RMP stores are attributed to the CPU executing it (write observers see them as such). */
function by(cpu: Cpu): Requester {
  return { kind: 'cpu', id: cpu.id };
}

/** What every RMP instruction checks first: SNP enabled, an RMP configured, and the operand address (see addressProblem). */
function context(machine: Machine, cpu: Cpu, insn: string, pa: number, pageSize: 0 | 1): Ctx {
  if (!snpEnabledOn(cpu)) return finish(machine, cpu, insn, { ok: false, fault: 'invalid-opcode', detail: `${insn} on cpu${cpu.id}: #UD, SYSCFG.SNP_EN is clear` });
  const loc = rmpLocationOf(cpu);
  if (loc === undefined) return fail(machine, cpu, insn, RMP_RC_FAIL_INPUT, 'no RMP is configured (RMP_BASE/RMP_END)');
  const bad = addressProblem(loc, pa, pageSize);
  if (bad !== undefined) return fail(machine, cpu, insn, RMP_RC_FAIL_INPUT, bad);
  return { loc };
}

function fail(machine: Machine, cpu: Cpu, insn: string, rc: number, why: string): RmpInsnFault {
  return finish(machine, cpu, insn, { ok: false, fault: 'rmp-fail', rc, detail: `${insn} on cpu${cpu.id} failed with ${rc}: ${why}` });
}

function finish<R extends RmpInsnResult | RmpReadResult | PvalidateResult>(machine: Machine, cpu: Cpu, insn: string, r: R, detail?: string, data?: Record<string, number | string | boolean>): R {
  const rc = r.ok ? 0 : r.fault === 'rmp-fail' ? r.rc : -1;
  machine.trace.record(`cpu${cpu.id}`, insn, r.ok ? (detail ?? `${insn} ok`) : r.detail, { ...data, rc });
  return r;
}

/** Address checks shared by all four: aligned to the page size and covered by the RMP for its whole extent. */
function addressProblem(loc: RmpLocation, pa: number, pageSize: 0 | 1): string | undefined {
  const size = pageSize === 1 ? MiB2 : 4096;
  if (!(Number.isInteger(pa) && pa >= 0 && pa % size === 0)) return `address ${hex(pa)} is not ${pageSize === 1 ? '2 MiB' : '4 KiB'} aligned`;
  const pfn = pa / 4096;
  const n = pageSize === 1 ? PFNS_PER_2M : 1;
  if (!rmpCovers(loc, pfn + n - 1)) return `PFN ${hex(pfn)} is not covered by the RMP (${loc.entries} entries)`;
  return undefined;
}

/** RMPUPDATE: RAX = host PA, RCX = &rmp_state. */
export function rmpupdate(machine: Machine, cpu: Cpu, pa: number, state: RmpState): RmpInsnResult {
  const insn = 'rmpupdate';
  const ctx = context(machine, cpu, insn, pa, state.pageSize);
  if (!('loc' in ctx)) return ctx;
  const { loc } = ctx;
  const size = state.pageSize === 1 ? MiB2 : 4096;
  if (!(Number.isInteger(state.asid) && state.asid >= 0 && state.asid <= RMP_MAX_ASID)) return fail(machine, cpu, insn, RMP_RC_FAIL_INPUT, `ASID ${state.asid} is out of range`);
  if (!(Number.isInteger(state.gpa) && state.gpa >= 0 && state.gpa < 2 ** 52 && state.gpa % size === 0)) return fail(machine, cpu, insn, RMP_RC_FAIL_INPUT, `GPA ${hex(state.gpa)} is not aligned to the page size`);
  const mc = machine.mc;
  const pfn = pa / 4096;
  const cur = readRmpEntry(mc, loc, pfn);
  if (cur.immutable) return fail(machine, cpu, insn, RMP_RC_FAIL_PERMISSION, `PFN ${hex(pfn)} is immutable`);
  if (state.pageSize === 0) {
    const q = pfn - (pfn % PFNS_PER_2M);
    const big = q === pfn ? cur : readRmpEntry(mc, loc, q);
    if (big.assigned && big.pageSize === 1) return fail(machine, cpu, insn, RMP_RC_FAIL_OVERLAP, `PFN ${hex(pfn)} lies in the assigned 2 MiB page at PFN ${hex(q)}`);
  } else {
    for (let i = 1; i < PFNS_PER_2M; i++) {
      const e = readRmpEntry(mc, loc, pfn + i);
      if (e.immutable) return fail(machine, cpu, insn, RMP_RC_FAIL_PERMISSION, `PFN ${hex(pfn + i)} in the 2 MiB region is immutable`);
      if (state.assigned && e.assigned) return fail(machine, cpu, insn, RMP_RC_FAIL_OVERLAP, `PFN ${hex(pfn + i)} in the 2 MiB region is assigned`);
    }
  }
  writeRmpEntry(mc, loc, pfn, {
    assigned: state.assigned, pageSize: state.pageSize, immutable: state.immutable,
    gpa: state.gpa, asid: state.asid, vmsa: false, validated: false, hi: cur.hi,
  }, by(cpu));
  return finish(machine, cpu, insn, { ok: true, rc: 0 },
    `rmpupdate PFN ${hex(pfn)}: ${state.assigned ? `assigned to ASID ${state.asid} at GPA ${hex(state.gpa)}` : 'hypervisor-owned'}${state.pageSize === 1 ? ', 2 MiB' : ''}${state.immutable ? ', immutable' : ''}`,
    { pfn, asid: state.asid, assigned: state.assigned, pageSize: state.pageSize });
}

/** PSMASH: RAX = 2 MiB aligned PA. */
export function psmash(machine: Machine, cpu: Cpu, pa2m: number): RmpInsnResult {
  const insn = 'psmash';
  const ctx = context(machine, cpu, insn, pa2m, 1);
  if (!('loc' in ctx)) return ctx;
  const { loc } = ctx;
  const mc = machine.mc;
  const pfn = pa2m / 4096;
  const big = readRmpEntry(mc, loc, pfn);
  if (!(big.assigned && big.pageSize === 1)) return fail(machine, cpu, insn, RMP_RC_FAIL_INUSE, `PFN ${hex(pfn)} is not an assigned 2 MiB page`);
  if (big.immutable) return fail(machine, cpu, insn, RMP_RC_FAIL_PERMISSION, `PFN ${hex(pfn)} is immutable`);
  for (let i = 0; i < PFNS_PER_2M; i++) {
    const hi = i === 0 ? big.hi : readRmpEntry(mc, loc, pfn + i).hi;
    const e: RmpEntry = { ...big, pageSize: 0, gpa: big.gpa + i * 4096, vmsa: i === 0 && big.vmsa, hi };
    writeRmpEntry(mc, loc, pfn + i, e, by(cpu));
  }
  return finish(machine, cpu, insn, { ok: true, rc: 0 }, `psmash PFN ${hex(pfn)}: 2 MiB page of ASID ${big.asid} split into 512 4 KiB entries`, { pfn, asid: big.asid });
}

/** RMPREAD: RAX = PA, RCX = &struct rmpentry. */
export function rmpread(machine: Machine, cpu: Cpu, pa: number): RmpReadResult {
  const insn = 'rmpread';
  const ctx = context(machine, cpu, insn, pa, 0);
  if (!('loc' in ctx)) return ctx;
  const { loc } = ctx;
  const mc = machine.mc;
  const pfn = pa / 4096;
  const e = readRmpEntry(mc, loc, pfn);
  const q = pfn - (pfn % PFNS_PER_2M);
  let region = false;
  for (let i = 0; i < PFNS_PER_2M && !region; i++) {
    if (rmpCovers(loc, q + i) && readRmpEntry(mc, loc, q + i).assigned) region = true;
  }
  const entry: RmpReadEntry = { gpa: e.gpa, assigned: e.assigned, pageSize: e.pageSize, hpageRegionStatus: region, immutable: e.immutable, asid: e.asid };
  return finish(machine, cpu, insn, { ok: true, rc: 0, entry }, `rmpread PFN ${hex(pfn)}`, { pfn });
}

/** PVALIDATE, executed by a guest of `asid` on the page at system PA `pa`. */
export function pvalidate(machine: Machine, cpu: Cpu, req: { pa: number; asid: number; pageSize: 0 | 1; validate: boolean }): PvalidateResult {
  const insn = 'pvalidate';
  if (!(req.asid >= 1)) return finish(machine, cpu, insn, { ok: false, fault: 'invalid-opcode', detail: `pvalidate on cpu${cpu.id}: #UD, not executed by an SEV-SNP guest` });
  const ctx = context(machine, cpu, insn, req.pa, req.pageSize);
  if (!('loc' in ctx)) return ctx;
  const { loc } = ctx;
  const mc = machine.mc;
  const pfn = req.pa / 4096;
  const { at, entry } = rmpGoverningEntry(mc, loc, pfn);
  if (!entry.assigned || entry.asid !== req.asid || entry.immutable) return fail(machine, cpu, insn, RMP_RC_FAIL_INPUT, `PFN ${hex(pfn)} is not assigned to ASID ${req.asid}`);
  if (entry.pageSize !== req.pageSize) return fail(machine, cpu, insn, RMP_RC_FAIL_SIZEMISMATCH, `PFN ${hex(pfn)} is a ${entry.pageSize === 1 ? '2 MiB' : '4 KiB'} page`);
  const changed = entry.validated !== req.validate;
  if (changed) writeRmpEntry(mc, loc, at, { ...entry, validated: req.validate }, { kind: 'cpu', id: cpu.id, asid: req.asid });
  return finish(machine, cpu, insn, { ok: true, rc: 0, changed },
    `pvalidate PFN ${hex(pfn)} (ASID ${req.asid}): ${req.validate ? 'validated' : 'rescinded'}${changed ? '' : ', unchanged'}`, { pfn, asid: req.asid });
}
