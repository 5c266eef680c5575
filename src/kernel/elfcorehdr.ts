// The ELF core header the first kernel prepares for its crash kernel
// (crash_prepare_elf64_headers): one PT_NOTE per possible CPU pointing at its
// crash_notes, one for VMCOREINFO, a PT_LOAD for the kernel text, then a
// PT_LOAD per System RAM range minus the first MiB and the crash region.
// p_offset holds a physical address here; /proc/vmcore rewrites it.

import { encodeElfHeader, encodeProgramHeader, EHDR_SIZE, PHDR_SIZE, PT_LOAD, PT_NOTE, PF_R, PF_W, PF_X, type ProgramHeader } from '../dump/elf.js';
import type { Range } from './memblock.js';
import { PAGE_OFFSET } from './layout.js';

export interface ElfcorehdrInput {
  crashNotes: readonly number[];
  crashNoteBytes: number;
  vmcoreinfoNotePa: number;
  vmcoreinfoNoteSize: number;
  kernelText: { pa: number; va: bigint; size: number };
  /** System RAM ranges (page aligned). */
  ram: readonly Range[];
  /** Ranges the dump must leave out: the first MiB, the crash regions. */
  exclude: readonly Range[];
}

/** RAM minus exclusions, ascending. */
export function subtractRanges(ram: readonly Range[], exclude: readonly Range[]): Range[] {
  let out: Range[] = ram.map((r) => ({ ...r }));
  for (const x of exclude) {
    const next: Range[] = [];
    for (const r of out) {
      if (x.end <= r.start || x.start >= r.end) {
        next.push(r);
        continue;
      }
      if (r.start < x.start) next.push({ start: r.start, end: x.start });
      if (x.end < r.end) next.push({ start: x.end, end: r.end });
    }
    out = next;
  }
  return out.filter((r) => r.end > r.start).sort((a, b) => a.start - b.start);
}

export function buildElfcorehdr(inp: ElfcorehdrInput): { bytes: Uint8Array; loads: Range[] } {
  const phdrs: ProgramHeader[] = [];
  for (const pa of inp.crashNotes) {
    phdrs.push(note(pa, inp.crashNoteBytes));
  }
  phdrs.push(note(inp.vmcoreinfoNotePa, inp.vmcoreinfoNoteSize));
  const rwx = PF_R | PF_W | PF_X;
  phdrs.push({
    type: PT_LOAD, flags: rwx, offset: BigInt(inp.kernelText.pa), vaddr: inp.kernelText.va, paddr: BigInt(inp.kernelText.pa),
    filesz: BigInt(inp.kernelText.size), memsz: BigInt(inp.kernelText.size), align: 0n,
  });
  const loads = subtractRanges(inp.ram, inp.exclude);
  for (const r of loads) {
    const size = BigInt(r.end - r.start);
    phdrs.push({ type: PT_LOAD, flags: rwx, offset: BigInt(r.start), vaddr: PAGE_OFFSET + BigInt(r.start), paddr: BigInt(r.start), filesz: size, memsz: size, align: 0n });
  }
  const size = EHDR_SIZE + phdrs.length * PHDR_SIZE;
  const bytes = new Uint8Array(Math.ceil(size / 4096) * 4096);
  bytes.set(encodeElfHeader({ phnum: phdrs.length }), 0);
  const dv = new DataView(bytes.buffer);
  phdrs.forEach((p, i) => encodeProgramHeader(p, dv, EHDR_SIZE + i * PHDR_SIZE));
  return { bytes, loads };
}

function note(pa: number, size: number): ProgramHeader {
  return { type: PT_NOTE, flags: 0, offset: BigInt(pa), vaddr: 0n, paddr: BigInt(pa), filesz: BigInt(size), memsz: BigInt(size), align: 0n };
}
