// `kdumpsim demo`: the story the project can tell today, on one machine: an
// SNP host whose capture kernel dies on the IOMMU the panic could not
// release — and why, from the hardware trace — then the same crash with
// each fix, ending in a dump that is written and verified page by page;
// then the doctor on a real SNP host's files that show the same failure.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadScenarioFile } from '../scenario/load.js';
import { runScenario } from '../scenario/run.js';
import { verdictLabel } from '../report/text.js';
import { builtinScenario } from './scenario-path.js';
import { vmcoreVerify } from './vmcore-commands.js';
import { progressBar } from './progress.js';
import { builtinFile } from './scenario-path.js';
import { openBundle } from '../doctor/host-source.js';
import { readHostFacts } from '../doctor/read-host-facts.js';
import { diagnose } from '../doctor/diagnose.js';
import { evidenceRef } from '../report/doctor-text.js';

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
    const r = runScenario(s);
    pick(r.logs.firstKernel, /SEV-SNP firmware shutdown failed/, 'first kernel  ', write);
    why(r.chain.find((c) => c.includes('SNP_SHUTDOWN_EX failed')), write);
    pick(r.logs.crashKernel, /Copied DEV table/, 'capture kernel', write);
    // Why, from the hardware trace: the IOMMU's and the interrupts' side of the chain.
    for (const c of r.chain) if (/ iommu0: | ioapic0: /.test(c)) write(`   why: ${c.replace(/^\[\s*[\d.]+\] /, '')}\n`);
    const timeouts = r.logs.crashKernel.filter((l) => l.endsWith('Completion-Wait loop timed out'));
    if (timeouts[0] !== undefined) write(`   capture kernel ${timeouts[0]}  (x${timeouts.length}: the semaphore it polls never changes)\n`);
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

    write('\n' + b('4. A real host: kdumpsim doctor on the files of an SNP host that hit this (a 2024 report)') + '\n');
    const bundle = builtinFile('test/fixtures/doctor/F2-snp-host-live-guests');
    const d = diagnose(readHostFacts(openBundle(bundle), 'an SNP host'), { maxFixRuns: 4 });
    write(`   ${d.headline}\n`);
    for (const e of d.reproduced.slice(-2)) write(`   on its console and in the model's run, ${evidenceRef(e)}: ${e.text ?? ''}\n`);
    for (const l of d.model.lines.filter((x) => x.field === 'machine.cpu.snp.guests' || x.field === 'crashKernel.profile')) {
      write(`   read: ${l.field} = ${l.value} [${l.evidence.slice(0, 1).map(evidenceRef).join('')}]\n`);
    }
    const fix = d.fixes[0];
    if (fix !== undefined) write(`   fix, confirmed by a re-run: ${fix.fixes.map((x) => x.title).join(' and ')}\n     ${fix.fixes.flatMap((x) => x.lines).join('\n     ')}\n`);

    write('\nNext: kdumpsim run scenarios/snp-host-kdump-locked-iommu.yaml --html report.html,\n' +
      '      kdumpsim matrix scenarios/matrix-snp-host-kdump.yaml, docs/snp-host.md,\n' +
      '      and sudo kdumpsim doctor on your own host (docs/doctor.md)\n');
    return r.verdict === 'crash-kernel-panic' && ok.verdict === 'dump-complete' && reuse.verdict === 'dump-complete' && v.ok &&
      d.readiness === 'not-ready' && fix !== undefined ? 0 : 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function pick(lines: readonly string[], re: RegExp, who: string, write: (s: string) => void): void {
  for (const l of lines) if (re.test(l)) write(`   ${who} ${l}\n`);
}

function why(chainLine: string | undefined, write: (s: string) => void): void {
  if (chainLine !== undefined) write(`   ${chainLine}\n`);
}
