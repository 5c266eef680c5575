// Shared fixtures for the vmcore writer/reader tests: a small machine image
// with recognisable page contents, and a way to hand-build ELF files the
// writer would refuse to produce.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EHDR_SIZE, PHDR_SIZE, encodeElfHeader, encodeProgramHeader, type ProgramHeader } from '../../src/dump/elf.js';
import { NT_PRSTATUS, encodeNotes, type ElfNote } from '../../src/dump/elf-note.js';
import type { ElfLoadSpec } from '../../src/dump/elf-vmcore-writer.js';
import { MapPageSource, PAGE_SIZE } from '../../src/dump/page-source.js';
import { encodePrStatus, zeroRegs } from '../../src/dump/prstatus.js';
import { VmcoreInfo } from '../../src/dump/vmcoreinfo.js';

export const PAGE_OFFSET = 0xffff888000000000n;
export const KERNEL_MAP = 0xffffffff80000000n;

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `kdumpsim-${prefix}-`));
}

/** Page contents that identify the frame: each 8-byte word is its physical address ^ a tag. */
export function patternPage(pfn: number, tag = 0x5a5a000000000000n): Uint8Array {
  const b = new Uint8Array(PAGE_SIZE);
  const v = new DataView(b.buffer);
  for (let i = 0; i < PAGE_SIZE; i += 8) v.setBigUint64(i, BigInt(pfn * PAGE_SIZE + i) ^ tag, true);
  return b;
}

export function sampleInfo(): VmcoreInfo {
  return new VmcoreInfo()
    .set('OSRELEASE', '6.1.0-kdumpsim')
    .set('PAGESIZE', String(PAGE_SIZE))
    .setSymbol('swapper_pg_dir', 0xffffffff82a0a000n)
    .setNumber('phys_base', 0)
    .setNumber('pgtable_l5_enabled', 0)
    .set('CRASHTIME', '1700000000');
}

export function sampleNotes(cpus = 2): { notes: ElfNote[]; bytes: Uint8Array } {
  const notes: ElfNote[] = [];
  for (let cpu = 0; cpu < cpus; cpu++) {
    const regs = zeroRegs();
    regs.rip = 0xffffffff81000000n + BigInt(cpu * 0x40);
    regs.rsp = 0xffffc90000004000n + BigInt(cpu * 0x1000);
    regs.cs = 0x10n;
    notes.push({ name: 'CORE', type: NT_PRSTATUS, desc: encodePrStatus({ pid: 100 + cpu, regs }) });
  }
  notes.push(sampleInfo().toNote());
  return { notes, bytes: encodeNotes(notes) };
}

/**
 * Three RAM ranges and a kernel-text PT_LOAD aliasing part of the second, as
 * a real /proc/vmcore has. Frames: a mix of non-zero pages and pages the
 * source names but that are all zero.
 */
export function sampleMachine(): { loads: ElfLoadSpec[]; frames: Map<number, Uint8Array>; source: MapPageSource } {
  const loads: ElfLoadSpec[] = [
    { paddr: 0x100000, vaddr: PAGE_OFFSET + 0x100000n, memsz: 0x40000 },
    { paddr: 0x1000000, vaddr: PAGE_OFFSET + 0x1000000n, memsz: 0x20000 },
    { paddr: 0x1000000, vaddr: KERNEL_MAP + 0x1000000n, memsz: 0x8000 },
    { paddr: 0x40000000, vaddr: PAGE_OFFSET + 0x40000000n, memsz: 0x10000 },
  ];
  const frames = new Map<number, Uint8Array>();
  for (const pfn of [0x100, 0x101, 0x102, 0x110, 0x13f]) frames.set(pfn, patternPage(pfn));
  for (const pfn of [0x103, 0x120]) frames.set(pfn, new Uint8Array(PAGE_SIZE)); // named but zero
  for (const pfn of [0x1000, 0x1001, 0x1005, 0x101f]) frames.set(pfn, patternPage(pfn));
  frames.set(0x1002, new Uint8Array(PAGE_SIZE));
  frames.set(0x4000f, patternPage(0x4000f));
  return { loads, frames, source: new MapPageSource(frames) };
}

export interface RawLoad {
  paddr: bigint;
  vaddr: bigint;
  memsz: bigint;
  data: Uint8Array; // p_filesz = data.length
}

/** Hand-builds an ELF vmcore: PT_NOTE then PT_LOADs, data packed after the headers (makedumpfile -E style). */
export function buildRawElf(file: string, notes: Uint8Array, loads: readonly RawLoad[]): ProgramHeader[] {
  const phnum = loads.length + 1;
  let off = EHDR_SIZE + PHDR_SIZE * phnum;
  const head = new Uint8Array(off);
  head.set(encodeElfHeader({ phnum }), 0);
  const v = new DataView(head.buffer);
  const phdrs: ProgramHeader[] = [];
  const noteSize = BigInt(notes.length);
  phdrs.push({ type: 4, flags: 0, offset: BigInt(off), vaddr: 0n, paddr: 0n, filesz: noteSize, memsz: noteSize, align: 0n });
  off += notes.length;
  const chunks: { off: number; data: Uint8Array }[] = [{ off: head.length, data: notes }];
  for (const l of loads) {
    phdrs.push({ type: 1, flags: 7, offset: BigInt(off), vaddr: l.vaddr, paddr: l.paddr, filesz: BigInt(l.data.length), memsz: l.memsz, align: 0n });
    chunks.push({ off, data: l.data });
    off += l.data.length;
  }
  phdrs.forEach((p, i) => encodeProgramHeader(p, v, EHDR_SIZE + PHDR_SIZE * i));
  const out = new Uint8Array(off);
  out.set(head, 0);
  for (const c of chunks) out.set(c.data, c.off);
  fs.writeFileSync(file, out);
  return phdrs;
}

/** Deterministic noise (xorshift), so runs compare byte for byte. */
export function noisePage(seed: number): Uint8Array {
  const p = new Uint8Array(PAGE_SIZE);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < PAGE_SIZE; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    p[i] = x & 0xff;
  }
  return p;
}
