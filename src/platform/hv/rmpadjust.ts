// RMPADJUST as far as SNP AP creation needs it: a VMPL0 guest sets or
// clears the VMSA attribute of one of its own validated 4 KiB pages, so the
// CPU will accept (or stop accepting) it as a vCPU's save area. Permission
// masks for lower VMPLs are not modelled. Return codes follow the other RMP
// instructions (src/platform/snp/rmp-instructions.ts).

import type { Machine } from '../machine.js';
import type { Cpu } from '../cpu/cpu.js';
import { rmpLocationOf, rmpCovers, readRmpEntry, writeRmpEntry } from '../snp/rmp.js';
import { snpEnabledOn } from '../snp/snp-msrs.js';
import { RMP_RC_FAIL_INPUT, RMP_RC_FAIL_PERMISSION, RMP_RC_FAIL_SIZEMISMATCH, type RmpInsnResult } from '../snp/rmp-instructions.js';
import { hex } from '../../util/hex.js';

/** RMPADJUST attribute bit for the VMSA page (RCX bit 16). */
export const RMPADJUST_VMSA_PAGE_BIT = 1 << 16;

/** RMPADJUST of the page at system PA `pa` by a guest of `asid`, run on physical CPU `cpu`, source `source` in the trace. */
export function rmpadjustVmsa(machine: Machine, cpu: Cpu, req: { pa: number; asid: number; vmsa: boolean; source: string }): RmpInsnResult {
  const record = (r: RmpInsnResult, detail: string): RmpInsnResult => {
    machine.trace.record(req.source, 'rmpadjust', detail, { pfn: req.pa / 4096, asid: req.asid, vmsa: req.vmsa, rc: r.ok ? 0 : r.fault === 'rmp-fail' ? r.rc : -1 });
    return r;
  };
  if (!snpEnabledOn(cpu) || req.asid < 1) return record({ ok: false, fault: 'invalid-opcode', detail: 'rmpadjust: #UD outside an SNP guest' }, 'rmpadjust: #UD');
  const loc = rmpLocationOf(cpu);
  const pfn = req.pa / 4096;
  const fail = (rc: number, why: string): RmpInsnResult => record({ ok: false, fault: 'rmp-fail', rc, detail: `rmpadjust failed with ${rc}: ${why}` }, `rmpadjust PFN ${hex(pfn)} failed with ${rc}: ${why}`);
  if (loc === undefined || !Number.isInteger(pfn) || !rmpCovers(loc, pfn)) return fail(RMP_RC_FAIL_INPUT, `address ${hex(req.pa)} is not an RMP-covered 4 KiB page`);
  const e = readRmpEntry(machine.mc, loc, pfn);
  if (!e.assigned || e.asid !== req.asid || e.immutable) return fail(RMP_RC_FAIL_PERMISSION, `PFN ${hex(pfn)} is not assigned to ASID ${req.asid}`);
  if (e.pageSize !== 0) return fail(RMP_RC_FAIL_SIZEMISMATCH, `PFN ${hex(pfn)} is a 2 MiB page`);
  if (!e.validated) return fail(RMP_RC_FAIL_INPUT, `PFN ${hex(pfn)} is not validated`);
  writeRmpEntry(machine.mc, loc, pfn, { ...e, vmsa: req.vmsa }, { kind: 'cpu', id: cpu.id, asid: req.asid });
  return record({ ok: true, rc: 0 }, `rmpadjust PFN ${hex(pfn)} (ASID ${req.asid}): VMSA ${req.vmsa ? 'set' : 'cleared'}`);
}
