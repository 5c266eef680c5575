// Seed 001: "Check if SEV-SNP is already enabled, this can happen if we are
// coming from kexec boot" — the second kernel must keep the RMP, not clear it;
// a kexec with guests still running leaves their entries (and the IOMMU's
// pages) assigned;
// and "kexec'ing into a kernel with SNP already enabled should probably fail
// explicitly if the new kernel is booted with incompatible params".
import { describe, expect, it } from 'vitest';
import { loadScenarioFile } from '../../src/scenario/load.js';
import { runScenario } from '../../src/scenario/run.js';
import type { Machine } from '../../src/platform/machine.js';
import type { TraceEvent } from '../../src/platform/trace.js';
import { MSR_AMD64_SYSCFG, SYSCFG_SNP_EN } from '../../src/platform/cpu/msr.js';
import { readRmpEntry, rmpEntryAddress, decodeRmpEntry, type RmpEntry } from '../../src/platform/snp/rmp.js';
import { rmpupdate } from '../../src/platform/snp/rmp-instructions.js';
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

describe('kexec into a second SNP kernel after the VMs were stopped', () => {
  const { r, m, guests } = run('snp-kexec-reboot.yaml');
  const jump = m.trace.events.findIndex((e) => e.kind === 'step' && e.detail.startsWith('kexec -e: jumping'));
  const firstGuests = guests.slice(0, 2);

  it('meets its expectation: VMs stopped, firmware shut down, skip path, then a complete dump', () => {
    expect(r.expectation).toEqual({ met: true, differences: [] });
  });

  it('the first kernel launched its guests with validated image pages and VMSA pages in the RMP', () => {
    const launches = m.trace.events.slice(0, jump).filter((e) => e.kind === 'rmpupdate' || e.kind === 'psp-command');
    expect(launches.some((e) => e.detail.startsWith('SNP_LAUNCH_UPDATE -> SUCCESS'))).toBe(true);
    expect(firstGuests).toHaveLength(2);
    for (const g of firstGuests) expect(g.vmsas).toHaveLength(2);
  });

  it('stopping the VMs decommissioned the contexts and returned every guest page before SNP_SHUTDOWN_EX', () => {
    const cmds = m.trace.events.slice(0, jump).filter((e) => e.kind === 'psp-command').map((e) => e.detail.split(' (')[0]);
    const d = cmds.indexOf('SNP_DECOMMISSION -> SUCCESS');
    expect(d).toBeGreaterThan(0);
    expect(cmds.slice(d)).toContain('SNP_PAGE_RECLAIM -> SUCCESS');
    expect(cmds.slice(d)).toContain('SNP_SHUTDOWN_EX -> SUCCESS');
    // All the first kernel's guest pages are hypervisor pages again, unless the second kernel's guests took them.
    const second = new Set(guests.slice(2).flatMap((g) => [...Array.from({ length: g.pages }, (_, i) => g.memory / 4096 + i), ...g.vmsas.map((v) => v / 4096)]));
    for (const [pfn, e] of entries(m, firstGuests)) if (!second.has(pfn)) expect(e.assigned).toBe(false);
  });

  it('the second kernel took the skip path: the RMP was cleared once, and an entry left in it survives', () => {
    const steps = r.chain.filter((c) => c.includes('RMP cleared') || c.includes('RMP kept'));
    expect(steps.map((c) => c.includes('RMP cleared'))).toEqual([true, false]);
    // The firmware's own pages (the PSP's MiB at the top) are still firmware-owned: nothing cleared the table.
    const psp = m.e820.filter((e) => e.type === 'reserved').reduce((a, e) => Math.max(a, e.addr), 0) / 4096;
    expect(readRmpEntry(m.mc, m.rmp!, psp)).toMatchObject({ assigned: true, immutable: true, asid: 0 });
    for (const c of m.cpus) expect(c.rdmsr(MSR_AMD64_SYSCFG) & SYSCFG_SNP_EN).toBe(SYSCFG_SNP_EN);
  });

  it('the new kernel initialised the firmware again and launched its own guests', () => {
    const cmds = m.trace.events.slice(jump).filter((e) => e.kind === 'psp-command').map((e) => e.detail.split(' (')[0]);
    expect(cmds[0]).toBe('SNP_INIT_EX -> SUCCESS');
    expect(guests.length).toBe(4);
    const g = guests[2]!;
    expect(readRmpEntry(m.mc, m.rmp!, g.vmsas[0]! / 4096)).toMatchObject({ assigned: true, asid: g.asid, vmsa: true, validated: true });
  });
});

describe('kexec -e with the SNP guests still running', () => {
  const { r, m, guests, atJump } = run('snp-kexec-live-guests.yaml');

  it('meets its expectation: the new kernel oopses on an RMP violation', () => {
    expect(r.expectation).toEqual({ met: true, differences: [] });
  });

  it('SNP_SHUTDOWN_EX was refused with DFFLUSH_REQUIRED, DF_FLUSH then the retry too, before the jump', () => {
    const cmds = m.trace.find('psp-command').map((e) => e.detail.split(' (')[0]);
    const i = cmds.indexOf('SNP_SHUTDOWN_EX -> DFFLUSH_REQUIRED');
    expect(i).toBeGreaterThan(0);
    expect(cmds.slice(i, i + 3)).toEqual(['SNP_SHUTDOWN_EX -> DFFLUSH_REQUIRED', 'SNP_DF_FLUSH -> SUCCESS', 'SNP_SHUTDOWN_EX -> DFFLUSH_REQUIRED']);
  });

  it('the guests\' RMP entries, read at the formula\'s address, are what they were at the jump', () => {
    const now = entries(m, guests);
    expect(now.size).toBe(2 * (512 + 2));
    expect(now).toEqual(atJump);
    const v = guests[0]!.vmsas[0]! / 4096;
    expect(rmpEntryAddress(m.rmp!.base, v)).toBe(m.rmp!.base + 0x4000 + 16 * v);
    expect(now.get(v)).toMatchObject({ assigned: true, vmsa: true, immutable: true, asid: guests[0]!.asid });
  });

  it('the store that faulted was the new kernel zeroing its event log where the old one, still firmware-owned, is', () => {
    const evt = m.trace.events.find((e) => e.kind === 'iommu-attach');
    expect(evt).toBeDefined();
    const fault = r.chain.find((c) => c.includes('faulted (error code 0x80000003)'))!;
    expect(fault).toContain('RMP entry firmware-owned');
    const w = writeVirt(m.mc, m.bsp, PAGE_OFFSET + BigInt(guests[0]!.memory + 4096), new Uint8Array(8).fill(1));
    expect(w.ok).toBe(false);
    if (!w.ok) expect((w.fault.errorCode & PF_RMP) >>> 0).toBe(PF_RMP);
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
  // A guest nobody stopped: 2 GiB above 4 GiB still assigned to ASID 9 when the new kernel starts its workload.
  const s = loadScenarioFile('scenarios/snp-kexec-reboot.yaml');
  s.workload.pages = 8000;
  delete s.expect;
  let m: Machine | undefined;
  const r = runScenario(s, {
    onMachine: (mm) => {
      m = mm;
      let done = false;
      mm.trace.subscribe((e) => {
        if (done || e.kind !== 'step' || !e.detail.startsWith('first kernel 6.18.0-kdumpsim booted')) return;
        done = true;
        for (let pa = 2 ** 32 + 2 ** 26; pa < 2 ** 32 + 2 ** 31; pa += 4096) {
          rmpupdate(mm, mm.bsp, pa, { gpa: pa - 2 ** 32, assigned: true, pageSize: 0, immutable: false, asid: 9 });
        }
      });
    },
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
    expect(m!.trace.dropped).toBeGreaterThan(0); // the RMPUPDATEs filled the trace; the chain survived it
    expect(r.verdict).toBe('dump-complete');
  });
});
