// libkdumpfile (python3-libkdumpfile 0.5.1) on an SME vmcore: the first and
// the capture kernel both ran with mem_encrypt=on, so the dumped kernel's page
// tables carry the C-bit (bit 47) in every entry and VMCOREINFO says
// NUMBER(sme_mask)=140737488355328. py/check_sme_kdumpfile.py reports counts
// as JSON; the assertions live here.
//
// To make libkdumpfile translate kernel-virtual addresses through our page
// tables rather than through the program headers, it reads a sparse copy of
// the vmcore whose RAM PT_LOADs have p_vaddr 0 (the kernel-text PT_LOAD is
// kept), as drgn.test.ts does.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAGE_OFFSET, manifestCounts, probePythonModules, requireTool, runPythonJson, type PageCounts } from './tools.js';
import { makeSmeDump, type SmeDump } from './sme-dump.js';

const SME_MASK = 1n << 47n;
const KV_SAMPLE = 512;


/** The VMCOREINFO note's text, read straight from the file's PT_NOTE (independently of the simulator's reader). */
function vmcoreinfoText(file: string): string {
  const fd = fs.openSync(file, 'r');
  try {
    const eh = Buffer.alloc(64);
    fs.readSync(fd, eh, 0, 64, 0);
    const phoff = Number(eh.readBigUInt64LE(32));
    const phentsize = eh.readUInt16LE(54);
    const phnum = eh.readUInt16LE(56);
    const ph = Buffer.alloc(phentsize * phnum);
    fs.readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) {
      if (ph.readUInt32LE(i * phentsize) !== 4) continue; // PT_NOTE
      const notes = Buffer.alloc(Number(ph.readBigUInt64LE(i * phentsize + 32)));
      fs.readSync(fd, notes, 0, notes.length, Number(ph.readBigUInt64LE(i * phentsize + 8)));
      const align4 = (n: number): number => (n + 3) & ~3;
      for (let at = 0; at + 12 <= notes.length;) {
        const namesz = notes.readUInt32LE(at);
        const descsz = notes.readUInt32LE(at + 4);
        const name = notes.toString('latin1', at + 12, at + 12 + namesz).replace(/\0+$/, '');
        const desc = at + 12 + align4(namesz);
        if (name === 'VMCOREINFO') return notes.toString('latin1', desc, desc + descsz);
        at = desc + align4(descsz);
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  throw new Error(`${file}: no VMCOREINFO note`);
}

interface KvRun extends PageCounts {
  pgtPteMask: number;
  forced?: boolean;
  directMap?: { start: string; end: string; offset: string } | null;
  replaced?: string;
  smeMaskLine?: string;
}

interface SmeKdumpfileReport {
  format: string;
  smeMaskLine: string;
  smeMaskRaw: string | null;
  phys: PageCounts;
  physEnd: string;
  copy: { cleared: number; kept: string[] };
  default: KvRun;
  pgtForced: KvRun;
  pgtNoMask: KvRun;
  noSmeMaskLine: KvRun;
  pgtRoot: string;
  pml4DirectMapEntry: string;
  ownWalk: {
    sampled: number;
    strippedOk: number;
    keptFailed: number;
    entriesRead: number;
    entriesWithMask: number;
    keptStops: { stoppedAt: string; tableAddress: string; error: string }[];
    keptStopsInFile: number;
    problems: unknown[];
  };
}

const haveKdumpfile = requireTool('libkdumpfile (python module kdumpfile)', 'python3-libkdumpfile', () => probePythonModules('kdumpfile', 'addrxlat'));

describe.skipIf(!haveKdumpfile)('libkdumpfile reads an SME vmcore (C-bit 47 in the page tables)', () => {
  let dump: SmeDump | undefined;
  let rep: SmeKdumpfileReport;
  beforeAll(() => {
    dump = makeSmeDump('sme-libkdumpfile');
    rep = runPythonJson<SmeKdumpfileReport>('check_sme_kdumpfile.py', [
      dump.vmcore, dump.truthPath, '--novaddr-copy', path.join(dump.dir, 'vmcore.novaddr'), '--kv-sample', String(KV_SAMPLE),
    ]);
  });
  afterAll(() => {
    if (dump) fs.rmSync(dump.dir, { recursive: true, force: true });
  });

  it('the run is an SME on/on kdump whose every page the oracle found correct', () => {
    const r = dump!.result;
    expect(r.chain.some((c) => c.includes('SME active: sme_me_mask 0x800000000000'))).toBe(true);
    expect(r.chain.some((c) => c.includes('old memory mapped encrypted (ioremap_encrypted'))).toBe(true);
    expect(r.oracle.pagesCiphertext).toBe(0);
    expect(r.oracle.pagesCorrect).toBe(r.oracle.pagesExpected);
  });

  it('(a) VMCOREINFO in the file has NUMBER(sme_mask)=140737488355328, and libkdumpfile reads it', () => {
    const lines = vmcoreinfoText(dump!.vmcore).split('\n');
    expect(lines).toContain(`NUMBER(sme_mask)=${SME_MASK}`);
    expect(rep.format).toBe('elf');
    expect(rep.smeMaskLine).toBe(String(SME_MASK));
    expect(rep.smeMaskRaw).toBe(String(SME_MASK));
    // libaddrxlat took it as the pte_mask of its page-table method.
    expect(BigInt(rep.default.pgtPteMask)).toBe(SME_MASK);
  });

  it('(b) the copy has p_vaddr 0 in every RAM PT_LOAD and keeps the kernel-text one', () => {
    expect(rep.copy.cleared).toBe(dump!.truth.ranges.length);
    expect(rep.copy.kept).toEqual(['0xffffffff81000000']);
  });

  it('(b) our page tables carry the C-bit in every entry; a walk that keeps it leaves the file, one that strips sme_mask lands on the page', () => {
    const w = rep.ownWalk;
    expect(w.problems).toEqual([]);
    expect(w.sampled).toBe(Math.min(KV_SAMPLE, manifestCounts(dump!.truth).nonZero));
    expect(w.entriesRead).toBeGreaterThanOrEqual(3 * w.sampled);
    expect(w.entriesWithMask).toBe(w.entriesRead);
    // PML4[273] (the direct map) points to its PDPT with bit 47 set.
    const pml4e = BigInt(rep.pml4DirectMapEntry);
    expect(pml4e & SME_MASK).toBe(SME_MASK);
    // Stripping sme_mask: every sampled PAGE_OFFSET + pa walks to pa.
    expect(w.strippedOk).toBe(w.sampled);
    // Keeping it: every walk stops reading the PDPT at pa | 1 << 47, beyond every PT_LOAD.
    expect(w.keptFailed).toBe(w.sampled);
    expect(w.keptStopsInFile).toBe(0);
    expect(w.keptStops).toHaveLength(1);
    const stop = w.keptStops[0]!;
    expect(stop.stoppedAt).toBe('pdpt');
    expect(stop.error).toMatch(/^NoDataException/);
    expect(BigInt(stop.tableAddress)).toBe(pml4e & 0x000f_ffff_ffff_f000n);
    expect(BigInt(stop.tableAddress)).toBeGreaterThan(BigInt(rep.physEnd));
  });

  it('(b) KDUMP_KVADDR reads at PAGE_OFFSET + pa, with no p_vaddr to serve them, equal the manifest', () => {
    const sampled = Math.min(KV_SAMPLE, manifestCounts(dump!.truth).nonZero);
    const expectAllEqual = (r: KvRun): void => {
      expect(r.problems).toEqual([]);
      expect(r.nonZeroChecked).toBe(sampled);
      expect(r.nonZeroEqual).toBe(sampled);
      expect(r.missing + r.differ).toBe(0);
    };
    // As libkdumpfile sets itself up: libaddrxlat finds the direct map by walking swapper_pg_dir
    // (stripping sme_mask), then translates it linearly.
    expectAllEqual(rep.default);
    expect(BigInt(rep.default.directMap!.start)).toBe(PAGE_OFFSET);
    expect(BigInt(rep.default.directMap!.offset)).toBe((1n << 64n) - PAGE_OFFSET);
    // With the direct map switched to the page-table method, every read walks our C-bit tables.
    expect(rep.pgtForced.forced).toBe(true);
    expect(BigInt(rep.pgtForced.pgtPteMask)).toBe(SME_MASK);
    expectAllEqual(rep.pgtForced);
  });

  it('(b) the C-bit matters to libkdumpfile: without the mask, or without the VMCOREINFO line, every read fails at the PDPT with bit 47 set', () => {
    const pdpt = (BigInt(rep.pml4DirectMapEntry) & 0x000f_ffff_ffff_f000n).toString(16);
    const failsAtPdpt = (r: KvRun, n: number): void => {
      expect(r.nonZeroEqual).toBe(0);
      expect(r.missing).toBe(n);
      expect(r.problems.length).toBeGreaterThan(0);
      for (const p of r.problems as { error: string }[]) {
        expect(p.error).toBe(`AddressTranslationException: No way to translate: Cannot read 64-bit PTE at MACHPHYSADDR:0x${pdpt}: Page not found`);
      }
    };
    // pte_mask of the page-table method set to 0 by hand.
    expect(rep.pgtNoMask.forced).toBe(true);
    expect(rep.pgtNoMask.pgtPteMask).toBe(0);
    failsAtPdpt(rep.pgtNoMask, rep.pgtForced.nonZeroChecked - 1);
    // NUMBER(sme_mask)'s digits overwritten with zeros: libaddrxlat then finds no direct map at all.
    expect(rep.noSmeMaskLine.replaced).toBe(String(SME_MASK));
    expect(rep.noSmeMaskLine.smeMaskLine).toBe('000000000000000');
    expect(rep.noSmeMaskLine.pgtPteMask).toBe(0);
    expect(rep.noSmeMaskLine.directMap).toBeNull();
    failsAtPdpt(rep.noSmeMaskLine, rep.pgtForced.nonZeroChecked);
  });

  it('(c) every page of the manifest, read by machine-physical address, is the plaintext the first kernel saw', () => {
    const { nonZero, total } = manifestCounts(dump!.truth);
    expect(nonZero).toBeGreaterThan(1000);
    expect(rep.phys.problems).toEqual([]);
    expect(rep.phys.nonZeroChecked).toBe(nonZero);
    expect(rep.phys.nonZeroEqual).toBe(nonZero);
    expect(rep.phys.zeroChecked).toBe(total - nonZero);
    expect(rep.phys.zeroEqual).toBe(total - nonZero);
    expect(rep.phys.differ + rep.phys.missing).toBe(0);
    expect(rep.phys.changedAfterPanic).toBe(dump!.result.oracle.pagesChangedAfterPanic);
  });
});
