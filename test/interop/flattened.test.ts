// makedumpfile's flattened format both ways: `makedumpfile -R` rearranges our
// flattened stream into exactly our regular file, and our unflattenFile
// rearranges `makedumpfile -F` output into a file openVmcore reads with the
// pages the truth manifest lists.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flattenFile, isFlattenedSignature, unflattenFile } from '../../src/dump/flattened.js';
import { writeKdumpCompressed } from '../../src/dump/kdump-compressed-writer.js';
import { MapPageSource, PAGE_SIZE } from '../../src/dump/page-source.js';
import { pageDigest } from '../../src/dump/verify.js';
import { openVmcore, type PageStatus } from '../../src/dump/vmcore-reader.js';
import { ZERO_PAGE_HASH } from '../../src/dump/truth-manifest.js';
import { patternPage, sampleNotes } from '../dump/vmcore-fixtures.js';
import { makeDump, probeCommand, removeDump, requireTool, type InteropDump } from './tools.js';

const haveMakedumpfile = requireTool('makedumpfile', 'makedumpfile', () => probeCommand('makedumpfile', ['-v']));

/** Runs makedumpfile with stdin/stdout redirected to files, as a shell would. */
function runRedirected(args: string[], stdinPath: string | undefined, stdoutPath: string | undefined): { status: number | null; stderr: string; stdout: string } {
  const inFd = stdinPath === undefined ? 'ignore' : fs.openSync(stdinPath, 'r');
  const outFd = stdoutPath === undefined ? 'pipe' : fs.openSync(stdoutPath, 'w');
  try {
    const r = spawnSync('makedumpfile', args, { stdio: [inFd, outFd, 'pipe'], encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20 });
    return { status: r.status, stderr: `${r.error?.message ?? ''}${r.stderr ?? ''}`, stdout: r.stdout ?? '' };
  } finally {
    if (typeof inFd === 'number') fs.closeSync(inFd);
    if (typeof outFd === 'number') fs.closeSync(outFd);
  }
}

describe.skipIf(!haveMakedumpfile)('makedumpfile and the flattened format', () => {
  let dump: InteropDump | undefined;
  beforeAll(() => {
    dump = makeDump('flattened');
  }, 120_000);
  afterAll(() => removeDump(dump));

  it('makedumpfile -R rearranges our flattened kdump file into our regular file, byte for byte', () => {
    const d = dump!;
    const frames = new Map<number, Uint8Array>();
    for (let pfn = 0x10; pfn < 0x100; pfn += 2) frames.set(pfn, patternPage(pfn));
    for (let pfn = 0x200; pfn < 0x300; pfn++) frames.set(pfn, new Uint8Array(randomBytes(PAGE_SIZE)));
    const regular = path.join(d.dir, 'ours.kdump');
    writeKdumpCompressed(regular, {
      source: new MapPageSource(frames), maxPfn: 0x400, ranges: [{ startPfn: 0x10, endPfn: 0x100 }, { startPfn: 0x200, endPfn: 0x300 }],
      notes: sampleNotes(2).bytes, release: '6.1.0', nrCpus: 2, compression: 'zlib',
    });
    const flat = path.join(d.dir, 'ours.flat');
    expect(flattenFile(regular, flat).records).toBeGreaterThan(1);
    const out = path.join(d.dir, 'ours.rearranged');
    const r = runRedirected(['-R', out], flat, undefined);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(Buffer.compare(fs.readFileSync(out), fs.readFileSync(regular))).toBe(0);
  });

  it('our unflattenFile rearranges makedumpfile -F -c -d 1 output into a dump with the manifest pages', () => {
    const d = dump!;
    const flat = path.join(d.dir, 'mdf.flat');
    const r = runRedirected(['-F', '-c', '-d', '1', d.vmcore], undefined, flat);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const head = new Uint8Array(16);
    const fd = fs.openSync(flat, 'r');
    fs.readSync(fd, head, 0, 16, 0);
    fs.closeSync(fd);
    expect(isFlattenedSignature(head)).toBe(true);

    const regular = path.join(d.dir, 'mdf.kdump');
    const res = unflattenFile(flat, regular);
    expect(res.records).toBeGreaterThan(1);
    const reader = openVmcore(regular);
    try {
      expect(reader.format).not.toBe('elf');
      expect(reader.vmcoreinfo?.osrelease).toBe(d.release);
      // -d 1 may drop zero pages (excluded); every other manifest page must be there, equal.
      const CHUNK = 256;
      const buf = new Uint8Array(CHUNK * PAGE_SIZE);
      const status: PageStatus[] = [];
      let nonZeroEqual = 0;
      let zeroOk = 0;
      const bad: string[] = [];
      for (const [start, end] of d.truth.ranges) {
        for (let base = start; base < end; base += CHUNK) {
          const n = Math.min(CHUNK, end - base);
          reader.readPages(base, n, buf, status);
          for (let i = 0; i < n; i++) {
            const pfn = base + i;
            const want = d.truth.pages[pfn] ?? ZERO_PAGE_HASH;
            const st = status[i]!;
            const got = st === 'present' ? pageDigest(buf.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE)) : st;
            const okAlt = d.truth.alternatives[pfn]?.includes(got) ?? false;
            if (want === ZERO_PAGE_HASH && (got === ZERO_PAGE_HASH || st === 'excluded' || okAlt)) zeroOk++;
            else if (got === want || okAlt) nonZeroEqual++;
            else if (bad.length < 10) bad.push(`pfn ${pfn}: ${got} != ${want}`);
          }
        }
      }
      expect(bad).toEqual([]);
      expect(nonZeroEqual).toBe(Object.keys(d.truth.pages).length);
      expect(zeroOk + nonZeroEqual).toBe(d.truth.ranges.reduce((s, [a, b]) => s + (b - a), 0));
    } finally {
      reader.close();
    }
  }, 120_000);
});
