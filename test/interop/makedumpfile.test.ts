// makedumpfile 1.7.2 as a consumer of the ELF vmcore: it must accept it,
// walk our page tables to init_uts_ns (check_release), read our mem_map, and
// write a kdump-compressed file whose every page libkdumpfile reads back as
// the truth manifest says.
//
// makedumpfile prints "The kernel version is not supported." for any
// OSRELEASE above 6.0.1 (its LATEST_VERSION) and still exits 0.

import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PT_LOAD } from '../../src/dump/elf.js';
import { ElfVmcoreReader } from '../../src/dump/elf-vmcore-reader.js';
import {
  PAGE_OFFSET, START_KERNEL_MAP, makeDump, manifestCounts, probeCommand, probePythonModules, removeDump, requireTool, run, runPythonJson,
  type DrgnReport, type InteropDump, type KdumpfileReport,
} from './tools.js';

const haveMakedumpfile = requireTool('makedumpfile', 'makedumpfile', () => probeCommand('makedumpfile', ['-v']));
const haveKdumpfile = requireTool('libkdumpfile (python module kdumpfile), to read makedumpfile output', 'python3-libkdumpfile',
  () => probePythonModules('kdumpfile', 'addrxlat'));
const haveDrgn = requireTool('drgn (python module drgn)', 'python3-drgn', () => probePythonModules('drgn'));

function makedumpfile(dump: InteropDump, args: string[], out: string): ReturnType<typeof run> {
  return run('makedumpfile', [...args, dump.vmcore, out]);
}

function readBack(dump: InteropDump, file: string, extra: string[] = []): KdumpfileReport {
  return runPythonJson<KdumpfileReport>('check_kdumpfile.py', [file, dump.truthPath, '--max-pfn', String(dump.maxPfn), '--kv-sample', '256', ...extra]);
}

/** Page frames of the kernel image: the PT_LOAD mapped at __START_KERNEL_map. */
function kernelImagePfns(vmcore: string): [number, number] {
  const r = new ElfVmcoreReader(vmcore);
  try {
    const text = r.programHeaders.filter((p) => p.type === PT_LOAD && p.vaddr >= START_KERNEL_MAP);
    if (text.length !== 1) throw new Error(`expected one kernel-text PT_LOAD, found ${text.length}`);
    const start = Number(text[0]!.paddr / 4096n);
    return [start, start + Number(text[0]!.memsz / 4096n)];
  } finally {
    r.close();
  }
}

describe.skipIf(!haveMakedumpfile || !haveKdumpfile)('makedumpfile converts the ELF vmcore', () => {
  let dump: InteropDump | undefined;
  beforeAll(() => {
    dump = makeDump('makedumpfile');
  });
  afterAll(() => removeDump(dump));

  /** What must hold for a -d 1 output (only zero pages may be dropped, and kdump keeps those as a shared zero page). */
  function expectComplete(rep: KdumpfileReport): void {
    const d = dump!;
    const { nonZero, total } = manifestCounts(d.truth);
    expect(rep.format).toBe('diskdump');
    // makedumpfile copies utsname from init_uts_ns, found by walking our page tables.
    expect(rep.arch).toBe('x86_64');
    expect(rep.utsRelease).toBe(d.release);
    expect(rep.vmcoreinfoOsrelease).toBe(d.release);
    expect(rep.phys.problems).toEqual([]);
    expect(rep.phys.nonZeroEqual).toBe(nonZero);
    expect(rep.phys.zeroEqual).toBe(total - nonZero);
    expect(rep.phys.differ + rep.phys.missing).toBe(0);
    expect(rep.phys.changedAfterPanic).toBe(d.result.oracle.pagesChangedAfterPanic);
    // Nothing outside the manifest's ranges made it in.
    expect(rep.outside.present).toEqual([]);
    expect(rep.outside.absent).toBe(rep.outside.checked);
    expect(rep.outside.quirkSkipped).toEqual([]);
    // The page tables survive, so kernel-virtual reads still work on the output.
    expect(rep.kv.problems).toEqual([]);
    expect(rep.kv.readEqual).toBe(rep.kv.sampled);
    expect(rep.kv.initUtsRelease).toBe(d.release);
  }

  it('-c -d 1 (zlib) exits 0 and every page reads back as the manifest says', () => {
    const out = path.join(dump!.dir, 'dump.zlib');
    const r = makedumpfile(dump!, ['-c', '-d', '1'], out);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/makedumpfile Completed\./);
    expectComplete(readBack(dump!, out));
  });

  it('-l -d 1 (lzo) exits 0 and every page reads back as the manifest says', () => {
    // Debian's 1.7.2 is built with lzo (snappy and zstd are disabled).
    const out = path.join(dump!.dir, 'dump.lzo');
    const r = makedumpfile(dump!, ['-l', '-d', '1'], out);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/makedumpfile Completed\./);
    expectComplete(readBack(dump!, out));
  });

  it('-c -d 31 filters by our mem_map: user and cache pages go, the kernel image stays, nothing kept is altered', () => {
    const d = dump!;
    const out = path.join(d.dir, 'dump.d31');
    const r = makedumpfile(d, ['-c', '-d', '31'], out);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const [k0, k1] = kernelImagePfns(d.vmcore);
    const rep = readBack(d, out, ['--region', `${k0}:${k1}`]);
    const { nonZero } = manifestCounts(d.truth);
    // Whatever is kept is exact.
    expect(rep.phys.differ).toBe(0);
    // The workload's anonymous and page-cache pages were recognised from their struct pages and
    // dropped (reported missing, NoDataException "Excluded page"), but not everything was.
    expect(rep.phys.missing).toBeGreaterThan(0);
    expect(rep.phys.nonZeroEqual).toBeGreaterThan(0);
    expect(rep.phys.nonZeroEqual).toBeLessThan(nonZero);
    // Every non-zero page of the kernel image (its struct pages say "kernel") is kept and exact.
    const img = rep.regions[0]!;
    expect(img.nonZeroChecked).toBeGreaterThan(1024); // text is seeded random bytes
    expect(img.nonZeroMissing).toBe(0);
    expect(img.nonZeroEqual).toBe(img.nonZeroChecked);
    // And the page tables stay: init_uts_ns is still readable through its kernel-text address,
    // and direct-map reads still translate.
    expect(rep.kv.initUtsRelease).toBe(d.release);
    expect(rep.kv.beyondRam?.error).toBe('AddressTranslationException');
  });

  it.skipIf(!haveDrgn)('drgn opens the -c -d 1 output as a Linux kernel dump (VMCOREINFO and utsname.machine carried over)', () => {
    const d = dump!;
    const out = path.join(d.dir, 'dump.drgn');
    const r = makedumpfile(d, ['-c', '-d', '1'], out);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const rep = runPythonJson<DrgnReport>('check_drgn.py', [out, d.truthPath, '--max-pfn', String(d.maxPfn), '--zero-stride', '64', '--virt-sample', '256']);
    expect(rep.isLinuxKernel).toBe(true);
    expect(rep.phys.problems).toEqual([]);
    expect(rep.phys.nonZeroEqual).toBe(manifestCounts(d.truth).nonZero);
    expect(rep.phys.zeroEqual).toBe(rep.phys.zeroChecked);
    // A kdump file has no p_vaddr: drgn translates PAGE_OFFSET + pa through our page tables.
    expect(BigInt(rep.virt16.va)).toBeGreaterThanOrEqual(PAGE_OFFSET);
    expect(rep.virt16).toMatchObject({ ok: true, equal: true });
    expect(rep.virt.problems).toEqual([]);
    expect(rep.virt.nonZeroEqual).toBe(rep.virt.nonZeroChecked);
  });
});
