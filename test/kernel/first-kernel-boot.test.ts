import { describe, expect, it } from 'vitest';
import { Machine } from '../../src/platform/machine.js';
import { FirstKernel } from '../../src/kernel/first-kernel.js';
import { kernelProfile } from '../../src/kernel/profile.js';
import { walk } from '../../src/platform/cpu/paging.js';
import { PAGE_OFFSET } from '../../src/kernel/layout.js';
import { MSR_EFER, EFER_LMA } from '../../src/platform/cpu/msr.js';
import { decodeNotes } from '../../src/dump/elf-note.js';
import { VmcoreInfo } from '../../src/dump/vmcoreinfo.js';
import { VMCOREINFO_NOTE_SIZE } from '../../src/kernel/vmcoreinfo-export.js';
import { runWorkload } from '../../src/kernel/workload.js';
import { STRUCT_PAGE, PG } from '../../src/kernel/mem-map.js';

function boot(opts: { gbPages?: boolean; memory?: number } = {}) {
  const m = new Machine({ memoryBytes: opts.memory ?? 2 ** 31, cpus: 3, seed: 5, nics: [], gbPages: opts.gbPages ?? true });
  const k = new FirstKernel(m, { profile: kernelProfile('linux-6.1'), cmdline: 'root=/dev/vda1 crashkernel=128M', seed: 5, nic: { ringEntries: 16, bufferBytes: 2048, pollIntervalNs: 1e6 } });
  const r = k.boot();
  expect(r.ok).toBe(true);
  return { m, k };
}

function readVirt(m: Machine, cr3: number, va: bigint, n: number): Uint8Array {
  const w = walk(m.mc, cr3, va);
  if (!w.ok) throw new Error(w.detail);
  const b = new Uint8Array(n);
  m.mc.read(w.pa, b);
  return b;
}

describe('first kernel boot leaves what VMCOREINFO describes in memory', () => {
  const { m, k } = boot();
  const noteBytes = new Uint8Array(VMCOREINFO_NOTE_SIZE);
  m.mc.read(k.image.pa('vmcoreinfo_note'), noteBytes);
  const note = decodeNotes(noteBytes, { file: 'memory', offset: 0 })[0]!;
  const vi = VmcoreInfo.parse(new TextDecoder().decode(note.desc));
  const root = Number(vi.symbol('swapper_pg_dir')! - 0xffffffff80000000n);

  it('the note in the image is a VMCOREINFO note with the release', () => {
    expect(note.name).toBe('VMCOREINFO');
    expect(vi.get('OSRELEASE')).toBe('6.1.0-kdumpsim');
    expect(vi.number('pgtable_l5_enabled')).toBe(0n);
  });

  it('init_uts_ns translates through swapper_pg_dir to the release string', () => {
    const uts = readVirt(m, root, vi.symbol('init_uts_ns')! + BigInt(vi.offset('uts_namespace.name')! + 65 * 2), 65);
    expect(new TextDecoder().decode(uts).replace(/\0.*$/s, '')).toBe('6.1.0-kdumpsim');
  });

  it('SPARSEMEM: mem_section leads, section by section, to vmemmap struct pages that describe the workload pages', () => {
    const w = runWorkload(k, { pages: 300, seed: 5 });
    expect(w.pages).toBe(300);
    expect(vi.symbol('mem_map')).toBeUndefined();
    expect(vi.length('mem_section')).toBe(2048);
    expect(vi.size('mem_section')).toBe(16);
    expect(vi.number('SECTION_SIZE_BITS')).toBe(27n);
    expect(vi.number('MAX_PHYSMEM_BITS')).toBe(46n);
    const u64 = (va: bigint): bigint => new DataView(readVirt(m, root, va, 8).buffer).getBigUint64(0, true);
    // The image's mem_section variable holds the root array VMCOREINFO names.
    expect(u64(k.image.va('mem_section'))).toBe(vi.symbol('mem_section'));
    // Some page the workload wrote: its section, then its struct page through vmemmap.
    const pfn = m.dram.presentFrames(0x100000 / 4096, m.dram.size / 4096).find((p) => p * 4096 >= 0x4000000 && (p < k.memMap.base / 4096 || p >= (k.memMap.base + k.memMap.bytes) / 4096))!;
    const nr = pfn >> 15;
    const rootPtr = u64(vi.symbol('mem_section')! + BigInt(Math.floor(nr / 256) * 8));
    const sectionMemMap = u64(rootPtr + BigInt((nr % 256) * 16));
    expect(sectionMemMap & 0xfn).toBe(0xfn); // present, has a mem_map, online, early
    const memMap = sectionMemMap & ~0x1fn;
    expect(memMap).toBe(0xffff_ea00_0000_0000n);
    // A section past the end of RAM is not present.
    expect(u64(vi.symbol('mem_section')! + BigInt(Math.floor((m.dram.size / 2 ** 27 + 256) / 256) * 8))).toBe(0n);
    const sp = readVirt(m, root, memMap + BigInt(pfn * STRUCT_PAGE.size), STRUCT_PAGE.size);
    const dv = new DataView(sp.buffer);
    expect(dv.getInt32(STRUCT_PAGE._refcount, true)).toBe(1);
    const flags = dv.getBigUint64(STRUCT_PAGE.flags, true);
    expect(flags === 0n || (flags & (1n << BigInt(PG.lru))) !== 0n || (flags & (1n << BigInt(PG.slab))) !== 0n).toBe(true);
  });

  it('APs came up through INIT/SIPI, in long mode, idle on the kernel page tables', () => {
    for (const cpu of m.cpus.slice(1)) {
      expect(cpu.state).toBe('halted');
      expect(cpu.cr3).toBe(root);
      expect(cpu.rdmsr(MSR_EFER) & EFER_LMA).toBe(EFER_LMA);
    }
    expect(m.trace.find('sipi')).toHaveLength(2);
    expect(k.log.includes('smp: Brought up 1 node, 3 CPUs')).toBe(true);
  });
});

describe('direct map page sizes follow CPUID', () => {
  it('1 GiB pages where the part has pdpe1gb, 2 MiB where it does not', () => {
    const va = PAGE_OFFSET + 0x1_0000_0000n; // RAM above 4 GiB, 1 GiB aligned
    const a = boot({ gbPages: true, memory: 2 ** 33 });
    const wa = walk(a.m.mc, a.m.bsp.cr3, va);
    const b = boot({ gbPages: false, memory: 2 ** 33 });
    const wb = walk(b.m.mc, b.m.bsp.cr3, va);
    expect(wa.ok && wa.pageSize).toBe(2 ** 30);
    expect(wb.ok && wb.pageSize).toBe(2 ** 21);
    expect(wa.ok && wa.pa).toBe(0x1_0000_0000);
    expect(wb.ok && wb.pa).toBe(0x1_0000_0000);
  });
});
