// Seed 000: an SNP host's capture kernel cannot program an IOMMU that still
// enforces SNP. Each step of the failure is asserted from the hardware trace,
// then each fix is shown to remove the step that broke.
import { describe, expect, it } from 'vitest';
import { loadScenarioFile } from '../../src/scenario/load.js';
import { runScenario } from '../../src/scenario/run.js';
import type { Machine } from '../../src/platform/machine.js';
import type { TraceEvent } from '../../src/platform/trace.js';
import type { Scenario } from '../../src/scenario/schema.js';
import { readRmpEntry } from '../../src/platform/snp/rmp.js';
import { translate } from '../../src/kernel/virtual-access.js';
import { directMapVirt } from '../../src/kernel/layout.js';

function run(file: string, tweak: (s: Scenario) => void = () => {}) {
  const s = loadScenarioFile(`scenarios/${file}`);
  s.workload.pages = 1000;
  tweak(s);
  let m: Machine | undefined;
  const r = runScenario(s, { onMachine: (mm) => { m = mm; } });
  const ev = m!.trace.events;
  const start = ev.findIndex((e) => e.source === 'crash-kernel' && e.kind === 'step' && e.detail.startsWith('capture kernel'));
  return { r, m: m!, before: ev.slice(0, start), after: ev.slice(start) };
}

const of = (evs: readonly TraceEvent[], kind: string): TraceEvent[] => evs.filter((e) => e.kind === kind);
const num = (e: TraceEvent, k: string): number => Number(e.data?.[k]);

describe('SNP host kdump with the IOMMU still locked (snp-host-kdump-locked-iommu)', () => {
  const { r, m, before, after } = run('snp-host-kdump-locked-iommu.yaml');
  const oldRing = num(of(before, 'iommu-cmd').at(-1)!, 'ringBase');
  const oldCwb = Number(of(before, 'iommu-completion-store').at(-1)!.data!['pa']);

  it('meets its expectation: crash-kernel-panic with the kernel\'s messages', () => {
    expect(r.expectation).toEqual({ met: true, differences: [] });
    expect(r.verdict).toBe('crash-kernel-panic');
  });

  it('the chain names the hardware\'s side: ignored writes, stale ring, the lost store, the misrouted timer', () => {
    const why = r.chain.filter((c) => / iommu0: | ioapic0: /.test(c));
    expect(why).toHaveLength(4);
    expect(why[0]).toMatch(/iommu0: 10 writes to base registers ignored under SNP enforcement \(DevTabBase, CmdBufBase, EventLogBase, CompletionStoreBase, CompletionStoreLimit\)/);
    expect(why[1]).toMatch(new RegExp(`commands fetched from the old ring at 0x${oldRing.toString(16)}, none from the capture kernel's ring`));
    expect(why[2]).toMatch(new RegExp(`completion stores went to 0x${oldCwb.toString(16)}, none to the semaphore`));
    expect(why[3]).toMatch(/timer interrupts remapped through the old kernel's IRQ table to CPU 0 \(halted\), none to CPU 1/);
  });

  it('the panic notifier\'s SNP_SHUTDOWN_EX was refused, so the IOMMU was never released', () => {
    const panicAt = before.findIndex((e) => e.kind === 'step' && e.detail.startsWith('panic on CPU'));
    const cmds = of(before.slice(panicAt), 'psp-command').map((e) => e.detail.split(' (')[0]);
    // Legacy SHUTDOWN first, then SNP_SHUTDOWN_EX, one DF_FLUSH and the retry.
    expect(cmds).toEqual(['SHUTDOWN -> SUCCESS', 'SNP_SHUTDOWN_EX -> DFFLUSH_REQUIRED', 'SNP_DF_FLUSH -> SUCCESS', 'SNP_SHUTDOWN_EX -> DFFLUSH_REQUIRED']);
    expect(of(m.trace.events, 'iommu-snp-shutdown')).toHaveLength(0);
    // Each stopping CPU flushed its caches in the NMI handler (kdump_sev_callback).
    expect(of(before.slice(panicAt), 'wbinvd').filter((e) => e.detail.includes('kdump_sev_callback'))).toHaveLength(3);
  });

  it('the capture kernel\'s writes to every locked base register were ignored', () => {
    const ignored = of(after, 'iommu-reg-write-ignored').map((e) => String(e.data!['reg']));
    for (const reg of ['DevTabBase', 'CmdBufBase', 'EventLogBase', 'CompletionStoreBase', 'CompletionStoreLimit']) expect(ignored).toContain(reg);
  });

  it('the IOMMU kept fetching from the old ring and storing to the old semaphore; the new one never changed', () => {
    const cmds = of(after, 'iommu-cmd');
    expect(cmds.length).toBeGreaterThan(0);
    for (const c of cmds) expect(num(c, 'ringBase')).toBe(oldRing);
    const stores = of(after, 'iommu-completion-store');
    for (const s of stores) expect(Number(s.data!['pa'])).toBe(oldCwb);
    const newCwb = /CWB 0x([0-9a-f]+)/.exec(r.chain.find((c) => c.includes('AMD IOMMU up (copied)'))!)![1]!;
    const word = new Uint8Array(8);
    m.mc.read(parseInt(newCwb, 16), word);
    expect(word.every((b) => b === 0)).toBe(true);
    const timeouts = r.logs.crashKernel.filter((l) => l.endsWith('AMD-Vi: Completion-Wait loop timed out')).length;
    expect(timeouts).toBeGreaterThanOrEqual(2);
  });

  it('the timer interrupt was remapped through the old IRTE to a halted CPU, never to the capture kernel\'s', () => {
    const remaps = of(after, 'iommu-intr-remap');
    expect(remaps.length).toBeGreaterThan(0);
    for (const e of remaps) expect(e.detail).toMatch(/devid 0xa0 index 2 -> vector 0x30 destination 0x0$/);
    const delivered = of(after, 'irq-delivered');
    expect(delivered.length).toBe(remaps.length);
    for (const e of delivered) expect(num(e, 'cpu')).toBe(0);
    expect(m.cpus[0]!.state).toBe('halted');
    expect(m.interrupts.lapic(1).count(0x30)).toBe(0);
  });

  it('seed experiments on the old CWB: the direct map has no page for it, memremap reads it, a memset is an RMP #PF', () => {
    const cpu = m.cpus[1]!; // the capture kernel's CPU, its page tables still loaded
    const w = translate(m.mc, cpu, directMapVirt(oldCwb));
    expect(w.ok).toBe(false);
    if (!w.ok) expect(w.fault).toBe('not-present');
    const word = new Uint8Array(8);
    m.mc.read(oldCwb, word); // memremap: a physical read
    expect(new DataView(word.buffer).getBigUint64(0, true)).toBeGreaterThan(0n);
    expect(readRmpEntry(m.mc, m.rmp!, oldCwb / 4096)).toMatchObject({ assigned: true, immutable: true, asid: 0 });
    const memset = m.mc.write(oldCwb, new Uint8Array(4096), { kind: 'cpu', id: 1 });
    expect(memset.ok).toBe(false);
    if (!memset.ok) expect(memset.fault).toBe('rmp-violation');
  });
});

describe('the fixes', () => {
  it('shutdown succeeds (no guests): the IOMMU is released, the new ring and semaphore are used, and the dump completes', () => {
    const { r, after } = run('snp-host-kdump-shutdown-ok.yaml');
    expect(r.expectation).toEqual({ met: true, differences: [] });
    expect(of(after, 'iommu-reg-write-ignored')).toHaveLength(0);
    const newCwb = parseInt(/CWB 0x([0-9a-f]+)/.exec(r.chain.find((c) => c.includes('AMD IOMMU up (copied)'))!)![1]!, 16);
    expect(of(after, 'iommu-completion-store').map((e) => Number(e.data!['pa']))).toContain(newCwb);
    expect(r.logs.crashKernel.some((l) => l.includes('Completion-Wait loop timed out'))).toBe(false);
  });

  it('6.18 reuse: no base register written, commands go to the ring the IOMMU reads, and the dump completes', () => {
    const { r, m, before, after } = run('snp-host-kdump-reuse.yaml');
    expect(r.expectation).toEqual({ met: true, differences: [] });
    expect(of(after, 'iommu-reg-write-ignored')).toHaveLength(0);
    const oldRing = num(of(before, 'iommu-cmd').at(-1)!, 'ringBase');
    for (const c of of(after, 'iommu-cmd')) expect(num(c, 'ringBase')).toBe(oldRing);
    expect(r.logs.crashKernel.some((l) => l.includes('Completion-Wait loop timed out'))).toBe(false);
    expect(m.interrupts.lapic(1).count(0x30)).toBeGreaterThan(4);
    expect(r.oracle.pagesWrong).toBe(0);
  });

  it('firmware older than 1.53: shutdown succeeds but the IOMMU pages stay firmware-owned, and the next kernel hits an RMP #PF', () => {
    const { r, m } = run('snp-kexec-reboot.yaml', (s) => {
      s.machine.cpu.snp!.firmware = '1.52';
      delete s.expect;
    });
    expect(r.chain).toContainEqual(expect.stringContaining('SNP_SHUTDOWN_EX with IOMMU_SNP_SHUTDOWN succeeded'));
    expect(r.chain).toContainEqual(expect.stringContaining('IOMMU pages stay firmware-owned'));
    expect(r.verdict).toBe('first-kernel-failed');
    expect(r.logs.firstKernel).toContainEqual(expect.stringContaining('#PF: error_code(0x80000003) - RMP violation'));
    expect(of(m.trace.events, 'psp-iommu-snp-shutdown').map((e) => e.data!['reclaim'])).toEqual([false]);
    // With 1.55 the same reboot works: the firmware reclaimed the pages itself.
    expect(run('snp-kexec-reboot.yaml').r.verdict).toBe('dump-complete');
  });
});

describe('an AMD host without SNP, a NIC DMAing through the panic', () => {
  it('the copied device table keeps the NIC in its old domain: no IO_PAGE_FAULT, no stray write', () => {
    const { r, m, after } = run('amd-host-kdump-dma.yaml');
    expect(r.expectation).toEqual({ met: true, differences: [] });
    expect(of(after, 'iommu-io-page-fault')).toHaveLength(0);
    expect(r.oracle.pagesChangedAfterPanic).toBeGreaterThan(0);
    expect(r.oracle.pagesWrong).toBe(0);
    // The NIC kept receiving after the capture kernel took the IOMMU over, through the old page table.
    const takeover = m.trace.events.find((e) => e.kind === 'step' && e.detail.startsWith('AMD IOMMU up (copied)'))!.t;
    expect(m.trace.events.some((e) => e.kind === 'iommu-dte-fetch' && e.t > takeover)).toBe(true);
    expect(m.nics[0]!.dmaFaults).toBe(0);
  });

  it('a capture kernel without the copy blocks the NIC: IO_PAGE_FAULTs in its log', () => {
    const { r, after } = run('amd-host-kdump-no-copy.yaml');
    expect(r.expectation).toEqual({ met: true, differences: [] });
    expect(of(after, 'iommu-io-page-fault').length).toBeGreaterThan(10);
    expect(r.logs.crashKernel.filter((l) => l.includes('Event logged [IO_PAGE_FAULT device=00:03.0'))).toHaveLength(10);
    expect(r.logs.crashKernel).toContainEqual(expect.stringMatching(/iommu_print_event: \d+ callbacks suppressed/));
  });
});

describe('SNP faults from the catalogue', () => {
  it('a PSP command failing with a given code: SNP_SHUTDOWN_EX refused with no guest running leaves the IOMMU locked', () => {
    const { r, m } = run('snp-host-kdump-shutdown-ok.yaml', (s) => {
      s.faults = [{ kind: 'psp-command-fails', command: 'SNP_SHUTDOWN_EX', status: 'HWSEV_RET_UNSAFE', phase: 'before-panic' }];
      delete s.expect;
    });
    expect(r.verdict).toBe('crash-kernel-panic');
    const failed = of(m.trace.events, 'psp-command').filter((e) => e.detail.startsWith('SNP_SHUTDOWN_EX'));
    expect(failed.map((e) => e.data!['status'])).toEqual([0x14]);
    expect(failed[0]!.data!['injected']).toBe(true);
    expect(r.logs.firstKernel).toContainEqual(expect.stringContaining('SEV-SNP firmware shutdown failed'));
  });

  it('SNP_INIT_EX failing at boot (INVALID_CONFIG): SNP never armed, the IOMMU never locked, so even live-guest kdump works', () => {
    const { r, m, before } = run('snp-host-kdump-locked-iommu.yaml', (s) => {
      s.faults = [{ kind: 'psp-command-fails', command: 'SNP_INIT_EX', status: 'INVALID_CONFIG', phase: 'boot' }];
      delete s.expect;
    });
    const init = of(m.trace.events, 'psp-command').filter((e) => e.detail.startsWith('SNP_INIT_EX'));
    expect(init.map((e) => e.data!['status'])).toEqual([0x3]);
    expect(r.logs.firstKernel).toContainEqual(expect.stringContaining('SEV-SNP: failed to INIT rc -5, error 0x3'));
    expect(of(before, 'iommu-snp-enforce')).toHaveLength(0);
    expect(r.verdict).toBe('dump-complete');
  });

  it('a torn base-register write: the low half of the capture kernel\'s DevTabBase is lost, the IOMMU keeps the old table', () => {
    const { r, after } = run('snp-host-kdump-shutdown-ok.yaml', (s) => {
      s.faults = [{ kind: 'iommu-torn-write', register: 'DevTabBase', half: 'low', phase: 'crash-kernel-init' }];
      delete s.expect;
    });
    expect(of(after, 'iommu-reg-write-lost')).toHaveLength(1);
    expect(of(after, 'iommu-reg-write-ignored')).toHaveLength(0);
    // The old table's IO-APIC entry still names the old IRQ table: the tick goes to the halted CPU 0.
    for (const e of of(after, 'irq-delivered')) expect(num(e, 'cpu')).toBe(0);
    expect(r.verdict).toBe('crash-kernel-panic');
  });
});

describe('the 2024 patch that decommissioned guests during the crash (never merged)', () => {
  const decommissionAt = (m: Machine): number => m.trace.events.findIndex((e) => e.kind === 'psp-command' && e.detail.startsWith('SNP_DECOMMISSION'));

  it('v1: the other CPUs flushed before the decommission, so SNP_DF_FLUSH returns WBINVD_REQUIRED (14) and the IOMMU stays locked', () => {
    const { r, m } = run('snp-host-kdump-decommission-v1.yaml');
    expect(r.expectation).toEqual({ met: true, differences: [] });
    const at = decommissionAt(m);
    expect(at).toBeGreaterThan(0);
    const flushesAfter = of(m.trace.events.slice(at), 'wbinvd').map((e) => e.source);
    expect(flushesAfter).toEqual(['cpu1']);
    const df = of(m.trace.events.slice(at), 'psp-command').find((e) => e.detail.startsWith('SNP_DF_FLUSH'))!;
    expect(df.data!['status']).toBe(0x0e);
    expect(of(m.trace.events, 'iommu-snp-shutdown')).toHaveLength(0);
  });

  it('v2: every CPU flushes after the decommission, DF_FLUSH and SNP_SHUTDOWN_EX succeed, the IOMMU is released', () => {
    const { r, m } = run('snp-host-kdump-decommission-v2.yaml');
    expect(r.expectation).toEqual({ met: true, differences: [] });
    const at = decommissionAt(m);
    const flushesAfter = new Set(of(m.trace.events.slice(at), 'wbinvd').map((e) => e.source));
    expect([...flushesAfter].sort()).toEqual(['cpu0', 'cpu1', 'cpu2', 'cpu3']);
    expect(of(m.trace.events, 'iommu-snp-shutdown')).toHaveLength(1);
  });
});

describe('sev=nosnp keeps host SNP off (6.13 on), so the IOMMU is never locked', () => {
  it('6.18 honours it: no RMP init, no SNP_INIT, the 6.12 capture kernel programs its IOMMU and saves the dump', () => {
    const { r, before, after } = run('snp-host-kdump-locked-iommu.yaml', (s) => {
      s.firstKernel.profile = 'linux-6.18';
      s.firstKernel.cmdline += ' sev=nosnp';
    });
    expect(r.chain.some((c) => c.includes('SEV-SNP off: sev=nosnp on the command line'))).toBe(true);
    expect(r.logs.firstKernel.some((l) => l.includes('SEV-SNP: RMP table physical range'))).toBe(false);
    expect(of(before, 'psp-command').length).toBe(0);
    expect(of(before, 'iommu-snp-enforce').length).toBe(0);
    expect(of(after, 'iommu-reg-write-ignored').length).toBe(0);
    expect(r.verdict).toBe('dump-complete');
  });

  it('6.12 does not know the parameter: SNP comes up and the capture kernel still dies on the locked IOMMU', () => {
    const { r } = run('snp-host-kdump-locked-iommu.yaml', (s) => { s.firstKernel.cmdline += ' sev=nosnp'; });
    expect(r.logs.firstKernel.some((l) => l.includes('SEV-SNP: RMP table physical range'))).toBe(true);
    expect(r.verdict).toBe('crash-kernel-panic');
  });
});
