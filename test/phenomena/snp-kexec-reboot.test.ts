// Seed 001: "Check if SEV-SNP is already enabled, this can happen if we are
// coming from kexec boot" — the second kernel must keep the RMP, not clear it;
// and "kexec'ing into a kernel with SNP already enabled should probably fail
// explicitly if the new kernel is booted with incompatible params".
import { describe, expect, it } from 'vitest';
import { loadScenarioFile } from '../../src/scenario/load.js';
import { runScenario } from '../../src/scenario/run.js';
import type { Machine } from '../../src/platform/machine.js';
import type { TraceEvent } from '../../src/platform/trace.js';
import { MSR_AMD64_SYSCFG, SYSCFG_SNP_EN } from '../../src/platform/cpu/msr.js';
import { readRmpEntry, rmpEntryAddress, decodeRmpEntry, type RmpEntry } from '../../src/platform/snp/rmp.js';
import { PF_RMP } from '../../src/platform/cpu/paging.js';
import { writeVirt } from '../../src/kernel/virtual-access.js';
import { PAGE_OFFSET } from '../../src/kernel/layout.js';
import type { Scenario } from '../../src/scenario/schema.js';

interface Guest { asid: number; memory: number; pages: number; launched: number; vmsas: number[] }

function guestsOf(events: readonly TraceEvent[]): Guest[] {
  return events.filter((e) => e.kind === 'snp-guest').map((e) => ({
    asid: Number(e.data!['asid']), memory: Number(e.data!['memory']), pages: Number(e.data!['pages']),
    launched: Number(e.data!['launchedPages']), vmsas: String(e.data!['vmsas']).split(',').map(Number),
  }));
}

/** Every guest PFN (memory and VMSAs) with its RMP entry, read raw from memory at the formula's address. */
function entries(m: Machine, guests: readonly Guest[]): Map<number, RmpEntry> {
  const loc = m.rmp!;
  const out = new Map<number, RmpEntry>();
  const raw = new Uint8Array(16);
  const dv = new DataView(raw.buffer);
  for (const g of guests) {
    const pfns = [...Array.from({ length: g.pages }, (_, i) => g.memory / 4096 + i), ...g.vmsas.map((v) => v / 4096)];
    for (const pfn of pfns) {
      m.mc.read(loc.base + 0x4000 + 16 * pfn, raw);
      out.set(pfn, decodeRmpEntry(dv.getBigUint64(0, true), dv.getBigUint64(8, true)));
    }
  }
  return out;
}

function run(file: string, tweak: (s: Scenario) => void = () => {}) {
  const s = loadScenarioFile(`scenarios/${file}`);
  s.workload.pages = 1000;
  tweak(s);
  let m: Machine | undefined;
  let atJump: Map<number, RmpEntry> | undefined;
  const r = runScenario(s, {
    onMachine: (mm) => {
      m = mm;
      mm.trace.subscribe((e) => {
        if (e.kind === 'step' && e.detail.startsWith('kexec -e: jumping')) atJump = entries(mm, guestsOf(mm.trace.events));
      });
    },
  });
  return { r, m: m!, guests: guestsOf(m!.trace.events), atJump: atJump! };
}

describe('kexec into a second SNP kernel with SNP guests still holding memory', () => {
  const { r, m, guests, atJump } = run('snp-kexec-reboot.yaml');

  it('meets its expectation: shutdown refused, jump, skip path, then a complete dump', () => {
    expect(r.expectation).toEqual({ met: true, differences: [] });
  });

  it('the guests were launched with validated image pages and VMSA pages in the RMP', () => {
    expect(guests).toHaveLength(2);
    for (const g of guests) {
      const first = readRmpEntry(m.mc, m.rmp!, g.memory / 4096);
      expect(first).toMatchObject({ assigned: true, asid: g.asid, gpa: 0, validated: true, vmsa: false, immutable: false });
      const beyond = readRmpEntry(m.mc, m.rmp!, g.memory / 4096 + g.launched);
      expect(beyond).toMatchObject({ assigned: true, asid: g.asid, gpa: g.launched * 4096, validated: false });
      expect(g.vmsas).toHaveLength(2);
      for (const v of g.vmsas) {
        expect(readRmpEntry(m.mc, m.rmp!, v / 4096)).toMatchObject({ assigned: true, asid: g.asid, vmsa: true, validated: true, immutable: true });
        expect(rmpEntryAddress(m.rmp!.base, v / 4096)).toBe(m.rmp!.base + 0x4000 + 16 * (v / 4096));
      }
    }
  });

  it('SNP_SHUTDOWN_EX was refused with DFFLUSH_REQUIRED, DF_FLUSH then the retry too, before the jump', () => {
    const cmds = m.trace.find('psp-command').map((e) => e.detail.split(' (')[0]);
    const i = cmds.indexOf('SNP_SHUTDOWN_EX -> DFFLUSH_REQUIRED');
    expect(i).toBeGreaterThan(0);
    expect(cmds.slice(i, i + 3)).toEqual(['SNP_SHUTDOWN_EX -> DFFLUSH_REQUIRED', 'SNP_DF_FLUSH -> SUCCESS', 'SNP_SHUTDOWN_EX -> DFFLUSH_REQUIRED']);
    expect(r.logs.firstKernel).toContainEqual(expect.stringContaining('ccp 0000:23:00.1: SEV-SNP firmware shutdown failed'));
  });

  it('the second kernel took the skip path: every guest entry is what it was at the jump', () => {
    const steps = r.chain.filter((c) => c.includes('RMP cleared') || c.includes('RMP kept'));
    expect(steps.map((c) => c.includes('RMP cleared'))).toEqual([true, false]);
    const now = entries(m, guests);
    expect(now.size).toBe(2 * (512 + 2));
    expect(now).toEqual(atJump);
  });

  it('SNP_EN stayed set on every CPU, and the new kernel cannot write a guest page', () => {
    for (const c of m.cpus) expect(c.rdmsr(MSR_AMD64_SYSCFG) & SYSCFG_SNP_EN).toBe(SYSCFG_SNP_EN);
    const g = guests[0]!;
    const w = writeVirt(m.mc, m.bsp, PAGE_OFFSET + BigInt(g.memory + 4096), new Uint8Array(8).fill(1));
    expect(w.ok).toBe(false);
    if (!w.ok) expect((w.fault.errorCode & PF_RMP) >>> 0).toBe(PF_RMP);
  });

  it('the new kernel\'s SNP_INIT_EX is refused: the firmware was never shut down', () => {
    const after = m.trace.events.findIndex((e) => e.kind === 'step' && e.detail.startsWith('kexec -e: jumping'));
    const cmds = m.trace.events.slice(after).filter((e) => e.kind === 'psp-command').map((e) => e.detail.split(' (')[0]);
    expect(cmds[0]).toBe('SNP_INIT_EX -> INVALID_PLATFORM_STATE');
  });
});

describe('kexec into a kernel whose parameters rule SNP out while SNP_EN is set', () => {
  const { r, m, guests, atJump } = run('snp-kexec-incompatible.yaml');

  it('meets its expectation, and says why in the kernel\'s words', () => {
    expect(r.expectation).toEqual({ met: true, differences: [] });
  });

  it('the refusal comes before the RMP decision, which neither clears nor uses the table', () => {
    const refuse = r.chain.findIndex((c) => c.includes('iommu=pt: the IOMMU driver refuses SNP'));
    const off = r.chain.findIndex((c) => c.includes('SNP_EN is still set from the previous kernel'));
    expect(refuse).toBeGreaterThan(0);
    expect(off).toBeGreaterThan(refuse);
    expect(r.chain.filter((c) => c.includes('RMP cleared'))).toHaveLength(1);
    expect(r.chain.some((c) => c.includes('RMP kept'))).toBe(false);
    expect(entries(m, guests)).toEqual(atJump);
  });

  it('the new kernel issues no SNP command to the firmware', () => {
    const after = m.trace.events.findIndex((e) => e.kind === 'step' && e.detail.startsWith('kexec -e: jumping'));
    expect(m.trace.events.slice(after).filter((e) => e.kind === 'psp-command')).toHaveLength(0);
  });
});

describe('the kexec\'d kernel writes into memory a guest still holds', () => {
  // Guests holding most of the machine: the second kernel's workload soon lands on one of their pages.
  const { r, m } = run('snp-kexec-reboot.yaml', (s) => {
    s.machine.memory = '4G';
    s.machine.cpu.snp!.guestPages = 196_608;
    s.workload.pages = 8000;
    delete s.expect;
  });

  it('the store faults with the RMP bit, the kernel oopses and panics, and kdump still saves a complete dump', () => {
    const log = r.logs.firstKernel;
    const i = log.findIndex((l) => l.includes('BUG: unable to handle page fault for address: ffff888'));
    expect(i).toBeGreaterThan(0);
    expect(log[i + 1]).toContain('#PF: supervisor write access in kernel mode');
    expect(log[i + 2]).toContain('#PF: error_code(0x80000003) - RMP violation');
    expect(log[i + 3]).toMatch(/SEV-SNP: PFN 0x[0-9a-f]+, RMP entry: \[0x[0-9a-f]{16} - 0x[0-9a-f]{16}\]/);
    expect(log.slice(i)).toContainEqual(expect.stringContaining('Kernel panic - not syncing: Fatal exception'));
    expect(r.chain).toContainEqual(expect.stringMatching(/CPU 0: kernel write to 0xffff888[0-9a-f]+ faulted \(error code 0x80000003\): RMP violation at PFN/));
    expect(m.trace.dropped).toBeGreaterThan(0); // the launch's RMPUPDATEs filled the trace; the chain survived it
    expect(r.verdict).toBe('dump-complete');
  });
});
