// Our kdump-compressed writer checked by real tools: libkdumpfile must open
// the file and read every page by machine physical address as the truth
// manifest says, and makedumpfile 1.7.2 must accept it as input (it needs
// VMCOREINFO inside, which we copy from the simulator's ELF vmcore).

import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KdumpCompressedReader } from '../../src/dump/kdump-compressed-reader.js';
import type { KdumpCompressedWriteResult } from '../../src/dump/kdump-compressed-writer.js';
import { convertVmcore } from '../../src/dump/convert.js';
import { openVmcore } from '../../src/dump/vmcore-reader.js';
import {
  makeDump, manifestCounts, probeCommand, probePythonModules, removeDump, requireTool, run, runPythonJson,
  type InteropDump, type KdumpfileReport,
} from './tools.js';

const haveKdumpfile = requireTool('libkdumpfile (python module kdumpfile)', 'python3-libkdumpfile', () => probePythonModules('kdumpfile', 'addrxlat'));
const haveMakedumpfile = requireTool('makedumpfile', 'makedumpfile', () => probeCommand('makedumpfile', ['-v']));

let dump: InteropDump | undefined;
let ours = '';
let stats: KdumpCompressedWriteResult | undefined;

function readBack(file: string): KdumpfileReport {
  return runPythonJson<KdumpfileReport>('check_kdumpfile.py', [file, dump!.truthPath, '--max-pfn', String(dump!.maxPfn), '--kv-sample', '64']);
}

function expectAllPages(rep: KdumpfileReport): void {
  const { nonZero, total } = manifestCounts(dump!.truth);
  expect(rep.format).toBe('diskdump');
  expect(rep.arch).toBe('x86_64');
  expect(rep.phys.problems).toEqual([]);
  expect(rep.phys.nonZeroChecked).toBe(nonZero);
  expect(rep.phys.nonZeroEqual).toBe(nonZero);
  expect(rep.phys.zeroEqual).toBe(total - nonZero);
  expect(rep.phys.differ + rep.phys.missing).toBe(0);
  expect(rep.outside.present).toEqual([]);
}

describe.skipIf(!haveKdumpfile && !haveMakedumpfile)('our kdump-compressed file', () => {
  beforeAll(() => {
    dump = makeDump('kdump-compressed');
    const elf = openVmcore(dump.vmcore);
    try {
      ours = path.join(dump.dir, 'ours.kdump');
      stats = convertVmcore(elf, ours, 'kdump', undefined, 'zlib').kdump;
    } finally {
      elf.close();
    }
  }, 120_000);
  afterAll(() => removeDump(dump));

  it('our own reader reads it back like the ELF vmcore', () => {
    const k = new KdumpCompressedReader(ours);
    const elf = openVmcore(dump!.vmcore);
    try {
      expect(k.vmcoreinfo?.osrelease).toBe(dump!.release);
      expect(k.prstatus).toHaveLength(dump!.cpus);
      expect(k.physRanges()).toEqual(elf.physRanges());
      expect(stats!.compressedPages).toBeGreaterThan(0);
      const a = new Uint8Array(k.pageSize);
      const b = new Uint8Array(k.pageSize);
      for (const pfnStr of Object.keys(dump!.truth.pages).slice(0, 2000)) {
        const pfn = Number(pfnStr);
        expect(k.readPage(pfn, a)).toBe(elf.readPage(pfn, b));
        expect(Buffer.from(a).equals(b)).toBe(true);
      }
    } finally {
      k.close();
      elf.close();
    }
  });

  it.skipIf(!haveKdumpfile)('libkdumpfile opens it and reads every page by machine physical address', () => {
    const rep = readBack(ours);
    expectAllPages(rep);
    expect(rep.utsRelease).toBe(dump!.release);
    expect(rep.vmcoreinfoOsrelease).toBe(dump!.release);
  }, 120_000);

  it.skipIf(!haveMakedumpfile)('makedumpfile -c -d 1 accepts it as input', () => {
    const out = path.join(dump!.dir, 'refiltered.kdump');
    const r = run('makedumpfile', ['-c', '-d', '1', ours, out], 120_000);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/makedumpfile Completed\./);
    if (haveKdumpfile) expectAllPages(readBack(out));
  }, 120_000);
});
