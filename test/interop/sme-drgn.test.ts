// drgn (python3-drgn 0.0.22, no debug info) on an SME vmcore: what its page
// walker does with the C-bit. py/check_sme_drgn.py reports what drgn did as
// JSON; the assertions live here.
//
// Finding (drgn 0.0.22, observed on kdumpsim SME vmcores, C-bit 47): drgn does
// not strip the SME mask. It ignores NUMBER(sme_mask) in VMCOREINFO, and its
// x86-64 page walker takes each next-level table address as the entry AND
// 0xffffffffff000 (bits 12-51), which keeps the C-bit. It reads swapper_pg_dir
// correctly (found physically through phys_base), but the direct map's PML4
// entry (0x80003ffdf023 here) sends it to the PDPT at 0x80003ffdf000, the
// real table at 0x3ffdf000 with bit 47 set, beyond every PT_LOAD. So every
// kernel-virtual read that needs the walk fails with FaultError "could not find
// memory segment: 0x80003ffdf000" (0x80003ffdf000 + 8 * PDPT index), a fault
// at the table's address rather than at the page's. Reads that drgn can serve
// from a PT_LOAD's p_vaddr are unaffected: with the direct-map p_vaddr that
// our vmcore (like the real /proc/vmcore) carries, direct-map reads are correct,
// kernel-text reads are served by the kernel-text PT_LOAD, and physical reads
// (the plaintext the capture kernel decrypted) are always correct. Addresses
// that no p_vaddr covers, such as vmalloc, vmemmap and modules, or the direct
// map once p_vaddr is zeroed, cannot be read from an SME dump with drgn 0.0.22,
// whereas libkdumpfile 0.5.1 (its pte_mask), makedumpfile (since d222b01, 2019)
// and crash (since 763e221, 2022) strip sme_mask. Later drgn releases were not checked.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kernelProfile } from '../../src/kernel/profile.js';
import { PAGE_OFFSET, manifestCounts, probePythonModules, requireTool, runPythonJson, type DrgnFault, type PageCounts, expectPhysicalReadsMatch } from './tools.js';
import { makeSmeDump, type SmeDump } from './sme-dump.js';

const SME_MASK = 1n << 47n;
const ADDR_FIELD = 0x000f_ffff_ffff_f000n;
const ZERO_STRIDE = 16;
const VIRT_SAMPLE = 512;
const MAX_PFN = (1 << 30) / 4096;
const RELEASE = kernelProfile('linux-6.1').release;


type Read = DrgnFault & { va: string };
interface VirtCounts extends PageCounts {
  faults: DrgnFault[];
}
interface UtsRead extends Partial<DrgnFault> {
  va: string;
  release?: string;
}

interface SmeDrgnReport {
  flags: string;
  isLinuxKernel: boolean;
  phys: PageCounts;
  smeMask: string;
  pml4DirectMapEntry: string;
  pdptStrippedEntry0: string | DrgnFault;
  physEnd: string;
  withVaddr: { virt: VirtCounts; initUts: UtsRead; gap: Read & { pfn: number }; beyondRam: Read };
  copy: { cleared: number; kept: string[] };
  noVaddr: { isLinuxKernel: boolean; virt: VirtCounts; initUts: UtsRead; physFirst: boolean };
}

const haveDrgn = requireTool('drgn (python module drgn)', 'python3-drgn', () => probePythonModules('drgn'));

describe.skipIf(!haveDrgn)('drgn 0.0.22 on an SME vmcore (C-bit 47 in the page tables)', () => {
  let dump: SmeDump | undefined;
  let rep: SmeDrgnReport;
  /** Where drgn's walk goes after PML4[273]: the entry's address field, C-bit included. */
  let pdptWithCbit: bigint;
  beforeAll(() => {
    dump = makeSmeDump('sme-drgn');
    rep = runPythonJson<SmeDrgnReport>('check_sme_drgn.py', [
      dump.vmcore, dump.truthPath, '--max-pfn', String(MAX_PFN), '--novaddr-copy', path.join(dump.dir, 'vmcore.novaddr'),
      '--zero-stride', String(ZERO_STRIDE), '--virt-sample', String(VIRT_SAMPLE),
    ]);
    pdptWithCbit = BigInt(rep.pml4DirectMapEntry) & ADDR_FIELD;
  });
  afterAll(() => {
    if (dump) fs.rmSync(dump.dir, { recursive: true, force: true });
  });

  it('the dump is an SME one: NUMBER(sme_mask) is bit 47 and the direct map\'s PML4 entry carries it', () => {
    expect(rep.isLinuxKernel).toBe(true);
    expect(rep.flags).toContain('IS_LINUX_KERNEL');
    expect(BigInt(rep.smeMask)).toBe(SME_MASK);
    expect(pdptWithCbit & SME_MASK).toBe(SME_MASK);
    expect(pdptWithCbit).toBeGreaterThan(BigInt(rep.physEnd));
    // The PDPT itself is in the dump at its address without the C-bit, and its entries carry the C-bit too.
    expect(typeof rep.pdptStrippedEntry0).toBe('string');
    expect(BigInt(rep.pdptStrippedEntry0 as string) & (SME_MASK | 1n)).toBe(SME_MASK | 1n);
  });

  it('physical reads of every non-zero manifest page, and of a sample of zero pages, are the plaintext', () => {
    expectPhysicalReadsMatch(rep.phys, dump!.truth, dump!.result.oracle.pagesChangedAfterPanic, ZERO_STRIDE);
  });

  it('reads served from p_vaddr are correct: direct map (PT_LOADs as written) and kernel text', () => {
    const v = rep.withVaddr;
    expect(v.virt.problems).toEqual([]);
    expect(v.virt.faults).toEqual([]);
    expect(v.virt.nonZeroEqual).toBe(Math.min(VIRT_SAMPLE, manifestCounts(dump!.truth).nonZero));
    expect(v.initUts).toMatchObject({ error: null, release: RELEASE });
  });

  it('drgn keeps the C-bit: a direct-map address no p_vaddr covers faults at the PDPT address with bit 47 set', () => {
    // First page of the crash region: drgn walks swapper_pg_dir, reads PML4[273] and then
    // looks for the PDPT at (entry & 0xffffffffff000), C-bit included. Without SME the fault
    // names the page's own physical address (drgn.test.ts); here it names the table's.
    const gapPa = BigInt(rep.withVaddr.gap.pfn) * 4096n;
    expect(BigInt(rep.withVaddr.gap.va)).toBe(PAGE_OFFSET + gapPa);
    expect(rep.withVaddr.gap).toMatchObject({ error: 'FaultError', message: `could not find memory segment: 0x${pdptWithCbit.toString(16)}` });
    expect(BigInt(rep.withVaddr.gap.address!)).toBe(pdptWithCbit);
    // Past the end of DRAM (PDPT index 1): without SME "address is not mapped"; here the read of
    // PDPT[1] at the C-bit address fails first.
    expect(rep.withVaddr.beyondRam).toMatchObject({ error: 'FaultError' });
    expect(BigInt(rep.withVaddr.beyondRam.address!)).toBe(pdptWithCbit + 8n);
  });

  it('with the direct-map p_vaddr cleared, every sampled direct-map read fails the same way; kernel text still reads', () => {
    const nv = rep.noVaddr;
    expect(rep.copy.cleared).toBe(dump!.truth.ranges.length);
    expect(rep.copy.kept).toEqual(['0xffffffff81000000']);
    expect(nv.isLinuxKernel).toBe(true);
    const sampled = Math.min(VIRT_SAMPLE, manifestCounts(dump!.truth).nonZero);
    expect(nv.virt.nonZeroChecked).toBe(sampled);
    expect(nv.virt.nonZeroEqual).toBe(0);
    expect(nv.virt.missing).toBe(sampled);
    // One distinct fault for all of them: the PDPT (index 0 covers the whole 1 GiB) at its C-bit address.
    expect(nv.virt.faults).toEqual([{ error: 'FaultError', message: `could not find memory segment: 0x${pdptWithCbit.toString(16)}`, address: `0x${pdptWithCbit.toString(16)}` }]);
    // Kernel text is still served by the kept PT_LOAD, and physical reads are unaffected.
    expect(nv.initUts).toMatchObject({ error: null, release: RELEASE });
    expect(nv.physFirst).toBe(true);
  });
});
