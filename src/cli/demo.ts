// `kdumpsim demo`: the story the project can tell today, on one machine: an
// SNP host whose capture kernel dies on the IOMMU the panic could not
// release — and why, from the hardware trace — then the same crash with
// each fix, ending in a dump that is written and verified page by page.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadScenarioFile } from '../scenario/load.js';
import { runScenario } from '../scenario/run.js';
import type { RunResult } from '../scenario/result.js';
import type { Scenario } from '../scenario/schema.js';
import type { Machine } from '../platform/machine.js';
import type { TraceEvent } from '../platform/trace.js';
import { verdictLabel } from '../report/text.js';
import { builtinScenario } from './scenario-path.js';
import { vmcoreVerify } from './vmcore-commands.js';
import { progressBar } from './progress.js';

const hex = (n: number): string => `0x${n.toString(16)}`;

export function runDemo(write: (s: string) => void, color: boolean): number {
  const b = (s: string): string => (color ? `\u001b[1m${s}\u001b[0m` : s);
  const s = loadScenarioFile(builtinScenario('demo-snp-host.yaml'));
  const dir = mkdtempSync(join(tmpdir(), 'kdumpsim-demo-'));
  try {
    const snp = s.machine.cpu.snp!;
    write(b('kdumpsim demo: kdump on an SEV-SNP host') + '\n');
    write(`${s.machine.memory} of RAM, ${s.machine.cpus} CPUs, an AMD IOMMU, SEV firmware ${snp.firmware}, ${snp.guests} SNP guests, ` +
      `a NIC receiving by DMA; first kernel ${s.firstKernel.profile}, capture kernel ${s.crashKernel.profile}\n\n`);

    write(b('1. The host panics while its SNP guests run') + '\n');
    const locked = watched(s);
    const r = locked.r;
    pick(r.logs.firstKernel, /SEV-SNP firmware shutdown failed/, 'first kernel  ', write);
    why(r.chain.find((c) => c.includes('SNP_SHUTDOWN_EX failed')), write);
    pick(r.logs.crashKernel, /Copied DEV table/, 'capture kernel', write);
    const after = locked.after;
    const ignored = after.filter((e) => e.kind === 'iommu-reg-write-ignored');
    const regs = [...new Set(ignored.map((e) => String(e.data?.['reg'])))];
    write(`   why: the IOMMU still enforces SNP, so it ignored all ${ignored.length} writes to its base registers (${regs.join(', ')})\n`);
    const ring = after.find((e) => e.kind === 'iommu-cmd')?.data?.['ringBase'];
    const stores = [...new Set(after.filter((e) => e.kind === 'iommu-completion-store').map((e) => Number(e.data?.['pa'])))];
    if (ring !== undefined) {
      write(`   why: it kept fetching the previous kernel's stale commands from its old ring at ${hex(Number(ring))} and storing completions to the old semaphore at ${stores.map(hex).join(', ')}\n`);
    }
    const timeouts = r.logs.crashKernel.filter((l) => l.endsWith('Completion-Wait loop timed out'));
    if (timeouts[0] !== undefined) write(`   capture kernel ${timeouts[0]}  (x${timeouts.length}: the new semaphore never changes)\n`);
    const remap = after.find((e) => e.kind === 'iommu-intr-remap');
    const delivered = after.filter((e) => e.kind === 'irq-delivered');
    if (remap !== undefined) {
      const cpus = [...new Set(delivered.map((e) => Number(e.data?.['cpu'])))];
      write(`   why: the timer's interrupt went through the old IRQ table (${remap.detail.replace(/^interrupt from /, '')}) to CPU ${cpus.join(', ')}, halted since the NMI shoot-down; ` +
        `CPU ${s.panic.cpu} counted ${locked.m.interrupts.lapic(s.panic.cpu).count(0x30)} ticks\n`);
    }
    pick(r.logs.crashKernel, /Kernel panic/, 'capture kernel', write);
    write(`   verdict: ${verdictLabel(r, color)}: no dump\n`);

    write('\n' + b('2. Fix: no SNP guest running at the crash') + '\n');
    const ok = runScenario({ ...s, machine: { ...s.machine, cpu: { ...s.machine.cpu, snp: { ...snp, guests: 0 } } } });
    why(ok.chain.find((c) => c.includes('SNP_SHUTDOWN_EX with IOMMU_SNP_SHUTDOWN succeeded')), write);
    write(`   verdict: ${verdictLabel(ok, color)}: ${ok.oracle.pagesCorrect} of ${ok.oracle.pagesExpected} pages correct\n`);

    write('\n' + b('3. Fix: a 6.18 capture kernel that reuses the old IOMMU buffers instead of reprogramming them') + '\n');
    const vmcore = join(dir, 'vmcore');
    const truth = join(dir, 'truth.json');
    const bar = progressBar('  saving vmcore');
    const reuse = runScenario({ ...s, crashKernel: { ...s.crashKernel, profile: 'linux-6.18' } }, { vmcorePath: vmcore, truthPath: truth, onProgress: (d, t) => bar.update(d, t) });
    bar.done();
    pick(reuse.logs.crashKernel, /Reused DEV table|Re-using command buffer/, 'capture kernel', write);
    why(reuse.chain.find((c) => c.includes('crash-kernel: timer check')), write);
    write(`   verdict: ${verdictLabel(reuse, color)}: ${reuse.oracle.pagesCorrect} of ${reuse.oracle.pagesExpected} pages correct, ` +
      `${reuse.oracle.pagesChangedAfterPanic} legitimately changed after the panic (the NIC's DMA, the IOMMU's own buffers)\n`);
    const v = vmcoreVerify(vmcore, truth, false);
    write(`   re-reading the ${reuse.vmcore?.size ?? 0}-byte ELF vmcore: ${v.text}`);

    write('\nNext: kdumpsim run scenarios/snp-host-kdump-locked-iommu.yaml --html report.html,\n' +
      '      kdumpsim matrix scenarios/matrix-snp-host-kdump.yaml, and docs/snp-host.md\n');
    return r.verdict === 'crash-kernel-panic' && ok.verdict === 'dump-complete' && reuse.verdict === 'dump-complete' && v.ok ? 0 : 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs a scenario keeping its machine, and the trace from the capture kernel's start on. */
function watched(s: Scenario): { r: RunResult; m: Machine; after: TraceEvent[] } {
  let m: Machine | undefined;
  const r = runScenario(s, { onMachine: (mm) => { m = mm; } });
  const ev = m!.trace.events;
  const start = ev.findIndex((e) => e.source === 'crash-kernel' && e.kind === 'step' && e.detail.startsWith('capture kernel'));
  return { r, m: m!, after: start < 0 ? [] : ev.slice(start) };
}

function pick(lines: readonly string[], re: RegExp, who: string, write: (s: string) => void): void {
  for (const l of lines) if (re.test(l)) write(`   ${who} ${l}\n`);
}

function why(chainLine: string | undefined, write: (s: string) => void): void {
  if (chainLine !== undefined) write(`   ${chainLine}\n`);
}
