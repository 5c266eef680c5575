import { describe, it, expect, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { PT_LOAD, PT_NOTE } from '../../src/dump/elf.js';
import { ElfVmcoreReader } from '../../src/dump/elf-vmcore-reader.js';
import { writeElfVmcore } from '../../src/dump/elf-vmcore-writer.js';
import { MapPageSource, PAGE_SIZE, type PageSource } from '../../src/dump/page-source.js';
import { openVmcore } from '../../src/dump/vmcore-reader.js';
import { VmcoreFormatError } from '../../src/util/errors.js';
import { KERNEL_MAP, PAGE_OFFSET, buildRawElf, patternPage, sampleMachine, sampleNotes, tempDir } from './vmcore-fixtures.js';

const dir = tempDir('elf');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function writeSample(name: string): { file: string; result: ReturnType<typeof writeElfVmcore>; machine: ReturnType<typeof sampleMachine>; notes: ReturnType<typeof sampleNotes> } {
  const file = path.join(dir, name);
  const machine = sampleMachine();
  const notes = sampleNotes();
  const result = writeElfVmcore(file, { notes: notes.bytes, loads: machine.loads, source: machine.source });
  return { file, result, machine, notes };
}

describe('ELF vmcore writer and reader', () => {
  it('lays the file out like /proc/vmcore', () => {
    const { file, result, machine, notes } = writeSample('layout.vmcore');
    const r = new ElfVmcoreReader(file);
    try {
      expect(r.header.phnum).toBe(machine.loads.length + 1);
      expect(r.header.phoff).toBe(64n);
      const [note, ...loads] = r.programHeaders;
      expect(note).toEqual({ type: PT_NOTE, flags: 0, offset: 4096n, vaddr: 0n, paddr: 0n, filesz: BigInt(notes.bytes.length), memsz: BigInt(notes.bytes.length), align: 0n });
      let expectOffset = 4096 + Math.ceil(notes.bytes.length / PAGE_SIZE) * PAGE_SIZE;
      loads.forEach((p, i) => {
        const spec = machine.loads[i];
        expect(p.type).toBe(PT_LOAD);
        expect(p.offset).toBe(BigInt(expectOffset));
        expect(Number(p.offset) % PAGE_SIZE).toBe(0);
        expect(p).toMatchObject({ flags: 7, align: 0n, paddr: BigInt(spec?.paddr ?? -1), vaddr: spec?.vaddr, filesz: BigInt(spec?.memsz ?? -1), memsz: BigInt(spec?.memsz ?? -1) });
        expectOffset += spec?.memsz ?? 0;
      });
      expect(r.fileSize).toBe(expectOffset);
      expect(result.fileSize).toBe(expectOffset);
      expect(fs.existsSync(file + '.part')).toBe(false);
    } finally {
      r.close();
    }
  });

  it('reads back every page, notes, registers and VMCOREINFO', () => {
    const { file, result, machine, notes } = writeSample('roundtrip.vmcore');
    const r = openVmcore(file);
    try {
      expect(r.format).toBe('elf');
      expect(r.pageSize).toBe(PAGE_SIZE);
      expect(r.notes).toEqual(notes.notes);
      expect(r.prstatus.map((p) => p.pid)).toEqual([100, 101]);
      expect(r.prstatus[1]?.regs.rip).toBe(0xffffffff81000040n);
      expect(r.vmcoreinfo?.osrelease).toBe('6.1.0-kdumpsim');
      expect(r.vmcoreinfo?.symbol('swapper_pg_dir')).toBe(0xffffffff82a0a000n);
      // The kernel-text PT_LOAD aliases RAM, so the ranges are the three RAM ranges.
      expect(r.physRanges()).toEqual([
        { start: 0x100000, end: 0x140000 },
        { start: 0x1000000, end: 0x1020000 },
        { start: 0x40000000, end: 0x40010000 },
      ]);
      const page = new Uint8Array(PAGE_SIZE);
      const zero = new Uint8Array(PAGE_SIZE);
      for (const range of r.physRanges()) {
        for (let pfn = range.start / PAGE_SIZE; pfn < range.end / PAGE_SIZE; pfn++) {
          expect(r.readPage(pfn, page)).toBe('present');
          expect(Buffer.from(page).equals(Buffer.from(machine.frames.get(pfn) ?? zero))).toBe(true);
        }
      }
      expect(r.readPage(0xff, page)).toBe('absent');
      expect(r.readPage(0x140, page)).toBe('absent');
      expect(r.readPage(2 ** 40, page)).toBe('absent');
      // A read spanning two frames, one written and one a hole.
      const bytes = r.readPhys(0x101ff8, 16);
      expect(Array.from(bytes.subarray(0, 8))).toEqual(Array.from(patternPage(0x101).subarray(4088)));
      expect(Array.from(bytes.subarray(8, 16))).toEqual(Array.from(patternPage(0x102).subarray(0, 8)));
      expect(() => r.readPhys(0x13fff0, 32)).toThrow(VmcoreFormatError);
      expect(() => r.readPhys(0x13fff0, 32)).toThrow(`Cannot read physical memory at 0x13fff0 of "${file}": address 0x140000 is not in any PT_LOAD`);
    } finally {
      r.close();
    }
    // Two of the named frames are zero and stay holes; the text alias repeats 3 non-zero frames.
    expect(result.pagesWritten).toBe(5 + 4 + 3 + 1);
  });

  it('leaves holes where nothing was written', () => {
    const file = path.join(dir, 'sparse.vmcore');
    const frames = new Map<number, Uint8Array>();
    for (let i = 0; i < 8; i++) frames.set(0x200 + i * 7919, patternPage(0x200 + i * 7919));
    const result = writeElfVmcore(file, {
      notes: sampleNotes(1).bytes,
      loads: [{ paddr: 0x100000, vaddr: PAGE_OFFSET + 0x100000n, memsz: 256 * 2 ** 20 }],
      source: new MapPageSource(frames),
    });
    const st = fs.statSync(file);
    expect(st.size).toBe(result.fileSize);
    expect(result.pagesWritten).toBe(8);
    expect(result.bytesWritten).toBeLessThan(12 * PAGE_SIZE);
    expect(st.blocks * 512).toBeLessThan(1 * 2 ** 20); // a dense file would be 256 MiB
  });

  it('coalesces consecutive frames and reports progress up to the total', () => {
    const file = path.join(dir, 'progress.vmcore');
    const frames = new Map<number, Uint8Array>();
    for (let pfn = 0x100; pfn < 0x100 + 600; pfn++) frames.set(pfn, patternPage(pfn));
    const seen: number[] = [];
    const result = writeElfVmcore(file, {
      notes: new Uint8Array(0),
      loads: [{ paddr: 0x100000, vaddr: PAGE_OFFSET + 0x100000n, memsz: 0x400000 }],
      source: new MapPageSource(frames),
      onProgress: (done, total) => {
        expect(total).toBe(0x400000);
        seen.push(done);
      },
    });
    expect(result.pagesWritten).toBe(600);
    expect(seen.at(-1)).toBe(0x400000);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    const r = new ElfVmcoreReader(file);
    try {
      const page = new Uint8Array(PAGE_SIZE);
      for (const pfn of [0x100, 0x1ff, 0x200, 0x357, 0x358]) {
        expect(r.readPage(pfn, page)).toBe('present');
        expect(Buffer.from(page).equals(Buffer.from(frames.get(pfn) ?? new Uint8Array(PAGE_SIZE)))).toBe(true);
      }
    } finally {
      r.close();
    }
  });

  it('round-trips data at file offsets beyond 4 GiB', () => {
    const file = path.join(dir, 'big.vmcore');
    const hiPfn = (5 * 2 ** 30 + 64 * 2 ** 20) / PAGE_SIZE - 2;
    const loPfn = 4 * 2 ** 30 / PAGE_SIZE + 3;
    const frames = new Map([[loPfn, patternPage(loPfn)], [hiPfn, patternPage(hiPfn)]]);
    const result = writeElfVmcore(file, {
      notes: sampleNotes(1).bytes,
      loads: [
        { paddr: 0, vaddr: PAGE_OFFSET, memsz: 5 * 2 ** 30 },
        { paddr: 5 * 2 ** 30, vaddr: PAGE_OFFSET + 5n * 2n ** 30n, memsz: 64 * 2 ** 20 },
      ],
      source: new MapPageSource(frames),
    });
    expect(result.fileSize).toBeGreaterThan(2 ** 32);
    expect(fs.statSync(file).blocks * 512).toBeLessThan(2 ** 20);
    const r = openVmcore(file);
    try {
      const page = new Uint8Array(PAGE_SIZE);
      for (const pfn of [loPfn, hiPfn]) {
        expect(r.readPage(pfn, page)).toBe('present');
        expect(Buffer.from(page).equals(Buffer.from(patternPage(pfn)))).toBe(true);
      }
      expect(r.readPage(hiPfn + 1, page)).toBe('present');
      expect(page.every((b) => b === 0)).toBe(true);
      expect(r.readPage(hiPfn + 2, page)).toBe('absent');
      const v = new DataView(r.readPhys(hiPfn * PAGE_SIZE + 0x100, 8).buffer);
      expect(v.getBigUint64(0, true)).toBe(BigInt(hiPfn * PAGE_SIZE + 0x100) ^ 0x5a5a000000000000n);
    } finally {
      r.close();
    }
  });

  it('refuses loads that are not page aligned, and too many phdrs', () => {
    const source = new MapPageSource(new Map());
    const file = path.join(dir, 'bad.vmcore');
    expect(() => writeElfVmcore(file, { notes: new Uint8Array(0), loads: [{ paddr: 0x1800, vaddr: 0n, memsz: 0x1000 }], source })).toThrow(RangeError);
    expect(() => writeElfVmcore(file, { notes: new Uint8Array(0), loads: [{ paddr: 0x1000, vaddr: 0n, memsz: 0x1001 }], source })).toThrow(
      'Cannot lay out PT_LOAD 0: memsz 0x1001 is not a positive multiple of the page size',
    );
    const many = Array.from({ length: 1_200_000 }, (_, i) => ({ paddr: i * PAGE_SIZE, vaddr: 0n, memsz: PAGE_SIZE }));
    expect(() => writeElfVmcore(file, { notes: new Uint8Array(0), loads: many, source })).toThrow(/1200001 program headers exceed 1198372/);
    expect(fs.existsSync(file)).toBe(false);
    expect(fs.existsSync(file + '.part')).toBe(false);
  });

  it('leaves no file behind when the page source fails', () => {
    const file = path.join(dir, 'failing.vmcore');
    const source: PageSource = {
      presentFrames: (s) => [s, s + 1, s + 2],
      readFrame: (pfn, dst) => {
        if (pfn === 0x102) throw new Error('DRAM read failed');
        dst.fill(1);
      },
    };
    expect(() => writeElfVmcore(file, { notes: new Uint8Array(0), loads: [{ paddr: 0x100000, vaddr: 0n, memsz: 0x10000 }], source })).toThrow('DRAM read failed');
    expect(fs.existsSync(file)).toBe(false);
    expect(fs.existsSync(file + '.part')).toBe(false);
  });

  it('rejects a page source that goes backwards or out of range', () => {
    const file = path.join(dir, 'order.vmcore');
    const source: PageSource = { presentFrames: () => [0x101, 0x100], readFrame: (_p, dst) => dst.fill(1) };
    expect(() => writeElfVmcore(file, { notes: new Uint8Array(0), loads: [{ paddr: 0x100000, vaddr: 0n, memsz: 0x10000 }], source })).toThrow(/expected ascending frames/);
    expect(fs.existsSync(file + '.part')).toBe(false);
  });
});

describe('ELF vmcore reader on files the writer would not make', () => {
  it('zero-fills partial pages of unaligned PT_LOADs and reports them present', () => {
    const file = path.join(dir, 'unaligned.vmcore');
    // System RAM 0x1000-0x9fbff, as e820 reports on many PCs.
    const data = new Uint8Array(0x9ec00).fill(0xab);
    buildRawElf(file, sampleNotes(1).bytes, [{ paddr: 0x1000n, vaddr: PAGE_OFFSET + 0x1000n, memsz: 0x9ec00n, data }]);
    const r = openVmcore(file);
    try {
      const page = new Uint8Array(PAGE_SIZE);
      expect(r.readPage(0x9f, page)).toBe('present');
      expect(page.subarray(0, 0xc00).every((b) => b === 0xab)).toBe(true);
      expect(page.subarray(0xc00).every((b) => b === 0)).toBe(true);
      expect(r.readPage(0xa0, page)).toBe('absent');
      expect(r.readPage(0, page)).toBe('absent');
      expect(r.physRanges()).toEqual([{ start: 0x1000, end: 0x9fc00 }]);
    } finally {
      r.close();
    }
  });

  it('reads p_memsz beyond p_filesz as excluded zeros', () => {
    const file = path.join(dir, 'excluded.vmcore');
    buildRawElf(file, sampleNotes(1).bytes, [{ paddr: 0x100000n, vaddr: PAGE_OFFSET + 0x100000n, memsz: 0x4000n, data: new Uint8Array(0x1800).fill(7) }]);
    const r = openVmcore(file);
    try {
      const page = new Uint8Array(PAGE_SIZE);
      expect(r.readPage(0x100, page)).toBe('present');
      expect(r.readPage(0x101, page)).toBe('present'); // half data, half excluded
      expect(page[0x7ff]).toBe(7);
      expect(page[0x800]).toBe(0);
      expect(r.readPage(0x102, page)).toBe('excluded');
      expect(page.every((b) => b === 0)).toBe(true);
      expect(Array.from(r.readPhys(0x1017fe, 4))).toEqual([7, 7, 0, 0]);
    } finally {
      r.close();
    }
  });

  it('uses a kernel-text PT_LOAD only where no RAM PT_LOAD covers the address', () => {
    const file = path.join(dir, 'text.vmcore');
    buildRawElf(file, sampleNotes(1).bytes, [
      { paddr: 0x1000000n, vaddr: KERNEL_MAP + 0x1000000n, memsz: 0x3000n, data: new Uint8Array(0x3000).fill(0x77) },
      { paddr: 0x1000000n, vaddr: PAGE_OFFSET + 0x1000000n, memsz: 0x2000n, data: new Uint8Array(0x2000).fill(0x11) },
    ]);
    const r = openVmcore(file);
    try {
      const page = new Uint8Array(PAGE_SIZE);
      expect(r.readPage(0x1001, page)).toBe('present');
      expect(page[0]).toBe(0x11);
      expect(r.readPage(0x1002, page)).toBe('present');
      expect(page[0]).toBe(0x77);
      expect(r.physRanges()).toEqual([{ start: 0x1000000, end: 0x1003000 }]);
    } finally {
      r.close();
    }
  });

  it('writes 65535 and more program headers with PN_XNUM (section header 0\'s sh_info), and reads them back', () => {
    // A filtered dump (makedumpfile -E -d 31) can split RAM into that many PT_LOADs.
    const file = path.join(dir, 'xnum-written.vmcore');
    const frames = new Map([[0x100 + 2 * 70_000 - 2, patternPage(7)]]);
    const loads = Array.from({ length: 70_000 }, (_, i) => ({ paddr: (0x100 + 2 * i) * PAGE_SIZE, vaddr: PAGE_OFFSET + BigInt((0x100 + 2 * i) * PAGE_SIZE), memsz: PAGE_SIZE }));
    writeElfVmcore(file, { notes: sampleNotes(1).bytes, loads, source: new MapPageSource(frames) });
    const head = fs.readFileSync(file).subarray(0, 64);
    expect(head.readUInt16LE(56)).toBe(0xffff);
    const r = new ElfVmcoreReader(file);
    try {
      expect(r.programHeaders.length).toBe(70_001);
      const page = new Uint8Array(PAGE_SIZE);
      expect(r.readPage(0x100 + 2 * 70_000 - 2, page)).toBe('present');
      expect(Buffer.from(page).equals(Buffer.from(patternPage(7)))).toBe(true);
      expect(r.readPage(0x101, page)).toBe('absent');
    } finally {
      r.close();
    }
  });

  it('finds the program header count in section header 0 under PN_XNUM', () => {
    const file = path.join(dir, 'xnum.vmcore');
    buildRawElf(file, sampleNotes(1).bytes, [{ paddr: 0x100000n, vaddr: PAGE_OFFSET + 0x100000n, memsz: 0x1000n, data: patternPage(0x100) }]);
    const body = fs.readFileSync(file);
    const out = new Uint8Array(body.length + 64);
    out.set(body);
    const v = new DataView(out.buffer);
    v.setUint16(56, 0xffff, true); // e_phnum = PN_XNUM
    v.setBigUint64(40, BigInt(body.length), true); // e_shoff
    v.setUint16(58, 64, true);
    v.setUint16(60, 1, true);
    v.setBigUint64(body.length + 32, 1n, true); // sh_size
    v.setUint32(body.length + 44, 2, true); // sh_info = real phnum
    fs.writeFileSync(file, out);
    const r = new ElfVmcoreReader(file);
    try {
      expect(r.programHeaders.length).toBe(2);
      const page = new Uint8Array(PAGE_SIZE);
      expect(r.readPage(0x100, page)).toBe('present');
      expect(Buffer.from(page).equals(Buffer.from(patternPage(0x100)))).toBe(true);
    } finally {
      r.close();
    }
  });

  it('names both program headers when RAM PT_LOADs overlap', () => {
    const file = path.join(dir, 'overlap.vmcore');
    buildRawElf(file, sampleNotes(1).bytes, [
      { paddr: 0x200000n, vaddr: PAGE_OFFSET + 0x200000n, memsz: 0x2000n, data: new Uint8Array(0x2000) },
      { paddr: 0x100000n, vaddr: PAGE_OFFSET + 0x100000n, memsz: 0x101000n, data: new Uint8Array(0) },
    ]);
    expect(() => openVmcore(file)).toThrow(VmcoreFormatError);
    expect(() => openVmcore(file)).toThrow(
      `Cannot read program header 2 of "${file}": PT_LOAD physical range [0x100000, 0x201000) overlaps program header 1 [0x200000, 0x202000)`,
    );
  });

  it('names the first bytes of a file that is not a vmcore', () => {
    const file = path.join(dir, 'not-a-core');
    // Legacy diskdump: not supported (kdump-compressed "KDUMP   " is, see kdump-compressed.test.ts).
    fs.writeFileSync(file, 'DISKDUMP\x01\x00\x00\x00');
    expect(() => openVmcore(file)).toThrow(`Cannot open vmcore "${file}": unknown format, first bytes are "44 49 53 4b 44 55 4d 50 01 00 00 00" ("DISKDUMP....")`);
    fs.writeFileSync(file, '');
    expect(() => openVmcore(file)).toThrow(VmcoreFormatError);
  });
});

describe('ELF vmcore checked by readelf', () => {
  const readelf = '/usr/bin/readelf';
  const have = fs.existsSync(readelf);
  if (!have && process.env.CI === 'true') {
    it('needs readelf in CI', () => {
      expect.fail(`${readelf} is missing; install binutils`);
    });
  }
  it.runIf(have)('shows the VMCOREINFO and NT_PRSTATUS notes and the program headers', () => {
    const { file } = writeSample('readelf.vmcore');
    const notes = execFileSync(readelf, ['-n', '-W', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(notes).toContain('VMCOREINFO');
    expect(notes).toContain('NT_PRSTATUS');
    expect(notes.match(/NT_PRSTATUS/g)?.length).toBe(2);
    const headers = execFileSync(readelf, ['-h', '-l', '-W', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(headers).toMatch(/Type:\s+CORE/);
    expect(headers).toMatch(/Machine:\s+Advanced Micro Devices X86-64/);
    expect(headers).toMatch(/NOTE\s+0x001000 0x0000000000000000 0x0000000000000000/);
    expect(headers.match(/^\s+LOAD\s/gm)?.length).toBe(4);
  });
});
