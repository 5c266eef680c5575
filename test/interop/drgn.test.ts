// drgn (python3-drgn 0.0.22, no debug info) as an independent reader of the
// ELF vmcore: py/check_drgn.py reports counts as JSON; the assertions live here.

import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAGE_OFFSET, makeDump, manifestCounts, probePythonModules, removeDump, requireTool, runPythonJson, type DrgnReport, type InteropDump, expectPhysicalReadsMatch } from './tools.js';

const haveDrgn = requireTool('drgn (python module drgn)', 'python3-drgn', () => probePythonModules('drgn'));

const ZERO_STRIDE = 16;
const VIRT_SAMPLE = 512;

describe.skipIf(!haveDrgn)('drgn reads the ELF vmcore', () => {
  let dump: InteropDump | undefined;
  let rep: DrgnReport;
  beforeAll(() => {
    dump = makeDump('drgn');
    rep = runPythonJson<DrgnReport>('check_drgn.py', [
      dump.vmcore, dump.truthPath, '--max-pfn', String(dump.maxPfn),
      '--zero-stride', String(ZERO_STRIDE), '--virt-sample', String(VIRT_SAMPLE),
      '--no-vaddr-copy', path.join(dump.dir, 'vmcore.novaddr'),
    ]);
  });
  afterAll(() => removeDump(dump));

  it('recognises a Linux kernel core (VMCOREINFO has OSRELEASE, PAGESIZE, swapper_pg_dir)', () => {
    expect(rep.flags).toContain('IS_LINUX_KERNEL');
    expect(rep.isLinuxKernel).toBe(true);
    expect(rep.arch).toBe('X86_64');
  });

  it('physical reads of every non-zero manifest page, and of a sample of zero pages, match the manifest', () => {
    expectPhysicalReadsMatch(rep.phys, dump!.truth, dump!.result.oracle.pagesChangedAfterPanic, ZERO_STRIDE);
    // The crash region is not in the dump.
    expect(rep.physGap?.error).toBe('FaultError');
  });

  it('kernel-virtual direct-map reads work (served from the PT_LOADs\' p_vaddr)', () => {
    // Observed with drgn 0.0.22: prog.read(0xffff888000000000 + pa, 16) succeeds and equals the
    // physical read. drgn maps each PT_LOAD at its p_vaddr, and ours carry PAGE_OFFSET + p_paddr,
    // so these reads do not need the page tables.
    expect(rep.virt16).toMatchObject({ ok: true, equal: true });
    expect(BigInt(rep.virt16.va)).toBeGreaterThanOrEqual(PAGE_OFFSET);
    expect(rep.virt.problems).toEqual([]);
    expect(rep.virt.nonZeroEqual).toBe(Math.min(VIRT_SAMPLE, manifestCounts(dump!.truth).nonZero));
  });

  it('addresses no p_vaddr covers are translated through our page tables', () => {
    // PAGE_OFFSET + (first pfn of the crash region): mapped by the first kernel's page tables, so
    // drgn walks them and fails only at the physical read, naming the physical address.
    const gapPa = BigInt(dump!.truth.ranges[0]![1]) * 4096n;
    expect(rep.virtGap?.error).toBe('FaultError');
    expect(rep.virtGap?.message).toMatch(/could not find memory segment/);
    expect(BigInt(rep.virtGap!.address!)).toBe(gapPa);
    // Past the end of RAM the walk itself fails.
    expect(rep.beyondRam?.error).toBe('FaultError');
    expect(rep.beyondRam?.message).toMatch(/address is not mapped/);
  });

  it('with the direct-map p_vaddr cleared, drgn still reads every sampled page through swapper_pg_dir', () => {
    const nv = rep.noVaddr!;
    expect(nv.cleared).toBe(dump!.truth.ranges.length);
    expect(nv.isLinuxKernel).toBe(true);
    expect(nv.virt.problems).toEqual([]);
    expect(nv.virt.nonZeroEqual).toBe(rep.virt.nonZeroChecked);
  });
});
