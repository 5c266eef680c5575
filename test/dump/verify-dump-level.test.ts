import { describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeKdumpCompressed } from '../../src/dump/kdump-compressed-writer.js';
import { MapPageSource } from '../../src/dump/page-source.js';
import { openVmcore } from '../../src/dump/vmcore-reader.js';
import { parseTruthManifest, type TruthManifest } from '../../src/dump/truth-manifest.js';
import { pageDigest, verifyVmcore } from '../../src/dump/verify.js';
import { patternPage, tempDir } from './vmcore-fixtures.js';

// Frames 0x100-0x10f: 0x100-0x103 data, 0x104 free (zero), 0x105 cache (data), 0x106 zero, 0x107 data.
const DATA = [0x100, 0x101, 0x102, 0x103, 0x105, 0x107];

function manifest(): TruthManifest {
  const pages: Record<string, string> = {};
  for (const p of DATA) pages[String(p)] = pageDigest(patternPage(p));
  return {
    format: 'kdumpsim-truth', version: 1, pageSize: 4096, scenario: 't', seed: 0,
    ranges: [[0x100, 0x110]], pages, alternatives: {}, classes: { free: [[0x104, 0x105]], cache: [[0x105, 0x106]] },
  };
}

/** A kdump file of frames 0x100-0x10f leaving out `drop`, recording `level`. */
function write(dir: string, name: string, drop: number[], level: number): string {
  const file = join(dir, name);
  const excluded = new Uint8Array(0x200 / 8);
  for (const p of drop) excluded[p >>> 3]! |= 1 << (p & 7);
  writeKdumpCompressed(file, {
    source: new MapPageSource(new Map(DATA.map((p) => [p, patternPage(p)]))),
    maxPfn: 0x200, ranges: [{ startPfn: 0x100, endPfn: 0x110 }], notes: new Uint8Array(0), release: '6.1.0', nrCpus: 1,
    compression: 'zlib', excluded, dumpLevel: level,
  });
  return file;
}

describe('verify with dump levels', () => {
  it('a left-out page passes only when the manifest says the level drops it (zero, or its struct-page class)', () => {
    const dir = tempDir('verify-level');
    try {
      const t = manifest();
      const f = write(dir, 'a', [0x104, 0x105, 0x106], 31);
      const check = (level?: number) => {
        const r = openVmcore(f);
        try {
          return verifyVmcore(r, t, level === undefined ? {} : { dumpLevel: level });
        } finally {
          r.close();
        }
      };
      // The level the header records (31): free, cache and zero all allowed.
      const all = check();
      expect(all.dumpLevel).toBe(31);
      expect(all.mismatches).toBe(0);
      expect(all.pagesExcluded).toEqual({ free: 1, cache: 1, zero: 1 });
      // Level 17 (zero + free): the cache page 0x105 had data and its class is kept at 17.
      const l17 = check(17);
      expect(l17.firstMismatches).toEqual([{ pfn: 0x105, problem: 'excluded', expected: pageDigest(patternPage(0x105)), actual: 'excluded', was: 'cache' }]);
      // Level 2: the zero page 0x106 is not allowed out, nor the free one.
      expect(check(2).firstMismatches.map((m) => [m.pfn, m.was])).toEqual([[0x104, 'free'], [0x106, 'zero']]);
      // A data page with no class dropped at any level fails.
      const g = write(dir, 'b', [0x103], 31);
      const r = openVmcore(g);
      expect(verifyVmcore(r, t).firstMismatches).toEqual([{ pfn: 0x103, problem: 'excluded', expected: pageDigest(patternPage(0x103)), actual: 'excluded', was: 'in use' }]);
      r.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('manifests carry classes as [startPfn, endPfn) runs; bad ones are rejected by name', () => {
    const text = JSON.stringify(manifest());
    expect(parseTruthManifest(text, 't.json').classes).toEqual({ free: [[0x104, 0x105]], cache: [[0x105, 0x106]] });
    const bad = (classes: unknown) => () => parseTruthManifest(JSON.stringify({ ...manifest(), classes }), 't.json');
    expect(bad({ stale: [[1, 2]] })).toThrow(/field "classes.stale" is not a page class/);
    expect(bad({ free: [[2, 2]] })).toThrow(/field "classes.free" is not a list of \[startPfn, endPfn\] runs/);
    const old: Partial<TruthManifest> = manifest();
    delete old.classes;
    expect(parseTruthManifest(JSON.stringify(old), 't.json').classes).toBeUndefined();
  });
});
