// GNU readelf on a vmcore the simulator wrote: the structure real tools rely
// on. readelf only checks syntax (VMCOREINFO is "Unknown note type"), so the
// layout facts are checked here against the truth manifest.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAGE_OFFSET, START_KERNEL_MAP, makeDump, probeCommand, removeDump, requireTool, run, type InteropDump } from './tools.js';

const haveReadelf = requireTool('readelf', 'binutils', () => probeCommand('readelf', ['--version']));

interface Phdr {
  type: string;
  offset: bigint;
  vaddr: bigint;
  paddr: bigint;
  filesz: bigint;
  memsz: bigint;
  flags: string;
}

/** `readelf -lW` program header lines: Type Offset VirtAddr PhysAddr FileSiz MemSiz [Flg] Align. */
function parsePhdrs(text: string): Phdr[] {
  const out: Phdr[] = [];
  const re = /^\s+([A-Z_]+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+([RWE ]*?)\s*(0x[0-9a-f]+|\d+)$/;
  for (const line of text.split('\n')) {
    const m = re.exec(line);
    if (!m) continue;
    out.push({
      type: m[1]!,
      offset: BigInt(m[2]!),
      vaddr: BigInt(m[3]!),
      paddr: BigInt(m[4]!),
      filesz: BigInt(m[5]!),
      memsz: BigInt(m[6]!),
      flags: m[7]!.replace(/\s/g, ''),
    });
  }
  return out;
}

/** Merges [start, end) pfn ranges that touch. */
function mergeRanges(rs: [number, number][]): [number, number][] {
  const s = [...rs].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const r of s) {
    const last = out[out.length - 1];
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else out.push([r[0], r[1]]);
  }
  return out;
}

describe.skipIf(!haveReadelf)('readelf accepts the ELF vmcore', () => {
  let dump: InteropDump | undefined;
  beforeAll(() => {
    dump = makeDump('readelf');
  });
  afterAll(() => removeDump(dump));

  it('reads the ELF header as an x86-64 core with program headers at offset 64', () => {
    const r = run('readelf', ['-hW', dump!.vmcore]);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/Class:\s+ELF64/);
    expect(r.stdout).toMatch(/Type:\s+CORE \(Core file\)/);
    expect(r.stdout).toMatch(/Machine:\s+Advanced Micro Devices X86-64/);
    // makedumpfile ignores e_phoff and reads the phdrs right after the ELF header.
    expect(r.stdout).toMatch(/Start of program headers:\s+64 \(bytes into file\)/);
  });

  it('readelf -n lists one NT_PRSTATUS per CPU and the VMCOREINFO note', () => {
    const d = dump!;
    const r = run('readelf', ['-nW', d.vmcore]);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe(''); // readelf warns about malformed notes on stderr
    const lines = r.stdout.split('\n');
    const prstatus = lines.filter((l) => /^\s+CORE\s+0x[0-9a-f]+\s+NT_PRSTATUS \(prstatus structure\)/.test(l));
    expect(prstatus).toHaveLength(d.cpus);
    // sizeof(struct elf_prstatus) on x86_64 is 336 (0x150).
    for (const l of prstatus) expect(l).toMatch(/\s0x00000150\s/);
    const vmci = lines.filter((l) => /^\s+VMCOREINFO\s+0x[0-9a-f]+\s+Unknown note type: \(0x00000000\)/.test(l));
    expect(vmci).toHaveLength(1);

    // The description is dumped in hex: decode it and check the text the tools parse.
    const hex = /description data:((?:\s[0-9a-f]{2})+)/.exec(r.stdout)?.[1];
    expect(hex).toBeDefined();
    const text = Buffer.from(hex!.trim().split(/\s+/).map((h) => parseInt(h, 16))).toString('latin1');
    expect(text.endsWith('\n')).toBe(true);
    expect(text).toContain(`OSRELEASE=${d.release}\n`);
    expect(text).toContain('PAGESIZE=4096\n');
    expect(text).toMatch(/^SYMBOL\(swapper_pg_dir\)=[0-9a-f]+$/m);
    expect(text).toMatch(/^CRASHTIME=\d+$/m);
  });

  it('readelf -l shows PT_NOTE first, then PT_LOADs laid out as /proc/vmcore', () => {
    const d = dump!;
    const r = run('readelf', ['-lW', d.vmcore]);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/Elf file type is CORE/);
    const n = /There are (\d+) program headers, starting at offset 64/.exec(r.stdout);
    expect(n).not.toBeNull();
    const phdrs = parsePhdrs(r.stdout);
    expect(phdrs).toHaveLength(Number(n![1]));
    expect(phdrs[0]!.type).toBe('NOTE');
    const loads = phdrs.slice(1);
    expect(loads.length).toBeGreaterThanOrEqual(2);
    for (const p of loads) {
      expect(p.type).toBe('LOAD');
      expect(p.filesz).toBe(p.memsz);
      expect(p.offset % 4096n).toBe(0n);
      expect(p.paddr % 4096n).toBe(0n);
      expect(p.flags).toBe('RWE');
    }
    // Data follows the notes, in phdr order, without overlap.
    for (let i = 1; i < phdrs.length; i++) {
      const prev = phdrs[i - 1]!;
      expect(phdrs[i]!.offset).toBeGreaterThanOrEqual(prev.offset + prev.filesz);
    }

    // One kernel-text PT_LOAD at __START_KERNEL_map + paddr; the others are the direct map.
    const text = loads.filter((p) => p.vaddr >= START_KERNEL_MAP);
    const ram = loads.filter((p) => p.vaddr < START_KERNEL_MAP);
    expect(text).toHaveLength(1);
    expect(text[0]!.vaddr).toBe(START_KERNEL_MAP + text[0]!.paddr);
    for (const p of ram) expect(p.vaddr).toBe(PAGE_OFFSET + p.paddr);

    // The RAM PT_LOADs cover exactly the manifest's ranges (RAM minus the first MiB and the crash region).
    const covered = mergeRanges(ram.map((p) => [Number(p.paddr / 4096n), Number((p.paddr + p.memsz) / 4096n)]));
    expect(covered).toEqual(mergeRanges(d.truth.ranges));
    // The kernel text lies inside RAM the dump also covers.
    const t0 = Number(text[0]!.paddr / 4096n);
    const t1 = t0 + Number(text[0]!.memsz / 4096n);
    expect(covered.some(([a, b]) => a <= t0 && t1 <= b)).toBe(true);
  });
});
