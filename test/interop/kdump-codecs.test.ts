// The kdump-compressed page codecs against real tools. makedumpfile 1.7.2
// (Debian) writes zlib and LZO only: its -l output must read through OUR
// reader exactly as the truth manifest says, and our LZO file must be
// accepted by makedumpfile as input. Debian's libkdumpfile is linked with
// lzo2, snappy and zstd, so it checks our lzo, snappy and zstd files page by
// page against the manifest.

import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codecAvailable, type Codec } from '../../src/dump/codecs.js';
import { KdumpCompressedReader } from '../../src/dump/kdump-compressed-reader.js';
import type { KdumpCompressedWriteResult } from '../../src/dump/kdump-compressed-writer.js';
import { convertVmcore } from '../../src/dump/convert.js';
import { verifyVmcore } from '../../src/dump/verify.js';
import { openVmcore } from '../../src/dump/vmcore-reader.js';
import {
  makeDump, manifestCounts, probeCommand, probePythonModules, removeDump, requireTool, run, runPythonJson,
  type InteropDump, type KdumpfileReport,
} from './tools.js';

const haveKdumpfile = requireTool('libkdumpfile (python module kdumpfile)', 'python3-libkdumpfile', () => probePythonModules('kdumpfile', 'addrxlat'));
const haveMakedumpfile = requireTool('makedumpfile', 'makedumpfile', () => probeCommand('makedumpfile', ['-v']));

let dump: InteropDump | undefined;
const ours = new Map<Codec, { file: string; stats: KdumpCompressedWriteResult }>();

function readBack(file: string): KdumpfileReport {
  return runPythonJson<KdumpfileReport>('check_kdumpfile.py', [file, dump!.truthPath, '--max-pfn', String(dump!.maxPfn), '--kv-sample', '64']);
}

function expectAllPages(rep: KdumpfileReport): void {
  const { nonZero, total } = manifestCounts(dump!.truth);
  expect(rep.format).toBe('diskdump');
  expect(rep.phys.problems).toEqual([]);
  expect(rep.phys.nonZeroEqual).toBe(nonZero);
  expect(rep.phys.zeroEqual).toBe(total - nonZero);
  expect(rep.phys.differ + rep.phys.missing).toBe(0);
  expect(rep.outside.present).toEqual([]);
}

/** Our reader, every page of the manifest. */
function expectOurReaderMatches(file: string, compression: string): void {
  const r = new KdumpCompressedReader(file);
  try {
    expect(r.compression).toBe(compression);
    const rep = verifyVmcore(r, dump!.truth);
    expect(rep.firstMismatches).toEqual([]);
    expect(rep.mismatches).toBe(0);
    expect(rep.pagesEqual).toBe(manifestCounts(dump!.truth).total);
  } finally {
    r.close();
  }
}

const CODECS = (['lzo', 'snappy', 'zstd'] as const).filter((c) => codecAvailable(c));

describe.skipIf(!haveKdumpfile && !haveMakedumpfile)('kdump-compressed codecs with real tools', () => {
  beforeAll(() => {
    dump = makeDump('kdump-codecs');
    const elf = openVmcore(dump.vmcore);
    try {
      for (const compression of CODECS) {
        const file = path.join(dump.dir, `ours.${compression}`);
        ours.set(compression, { file, stats: convertVmcore(elf, file, 'kdump', undefined, compression).kdump! });
      }
    } finally {
      elf.close();
    }
  }, 180_000);
  afterAll(() => removeDump(dump));

  it.skipIf(!haveMakedumpfile || !CODECS.includes('lzo'))('makedumpfile -l -d 1 writes LZO pages that our reader decodes equal to the manifest', () => {
    const out = path.join(dump!.dir, 'mdf.lzo');
    const r = run('makedumpfile', ['-l', '-d', '1', dump!.vmcore, out], 120_000);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expectOurReaderMatches(out, 'lzo');
  }, 120_000);

  for (const codec of CODECS) {
    it(`our ${codec} file reads back through our reader`, () => {
      const o = ours.get(codec)!;
      expect(o.stats.compressedPages).toBeGreaterThan(0);
      expectOurReaderMatches(o.file, codec);
    }, 120_000);

    it.skipIf(!haveKdumpfile)(`libkdumpfile reads our ${codec} file page for page as the manifest says`, () => {
      const rep = readBack(ours.get(codec)!.file);
      expectAllPages(rep);
      expect(rep.vmcoreinfoOsrelease).toBe(dump!.release);
    }, 120_000);
  }

  it.skipIf(!haveMakedumpfile || !CODECS.includes('lzo'))('makedumpfile -c -d 1 accepts our LZO file as input', () => {
    const out = path.join(dump!.dir, 'refiltered-from-lzo.kdump');
    const r = run('makedumpfile', ['-c', '-d', '1', ours.get('lzo')!.file, out], 120_000);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/makedumpfile Completed\./);
    expectOurReaderMatches(out, 'zlib');
    if (haveKdumpfile) expectAllPages(readBack(out));
  }, 120_000);
});
