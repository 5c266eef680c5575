// `kdumpsim demo`: the story the project can tell today, on one machine.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadScenarioFile } from '../scenario/load.js';
import { runScenario } from '../scenario/run.js';
import type { RunResult } from '../scenario/result.js';
import { verdictLabel } from '../report/text.js';
import { builtinScenario } from './scenario-path.js';
import { vmcoreVerify } from './vmcore-commands.js';
import { progressBar } from './progress.js';

const PICK = /Reserving|crashkernel reserved|Kernel panic|Command line: elfcorehdr|Memory:|reboot/;

export function runDemo(write: (s: string) => void, color: boolean): number {
  const b = (s: string): string => (color ? `\u001b[1m${s}\u001b[0m` : s);
  const scenarioFile = builtinScenario('demo-host.yaml');
  const s = loadScenarioFile(scenarioFile);
  const dir = mkdtempSync(join(tmpdir(), 'kdumpsim-demo-'));
  try {
    write(b('kdumpsim demo: kdump on a simulated x86 host') + '\n');
    write(`${s.machine.memory} of RAM, ${s.machine.cpus} CPUs, a NIC receiving by DMA, first kernel ${s.firstKernel.profile}, capture kernel ${s.crashKernel.profile}\n\n`);

    write(b('1. A crash with kdump armed') + '\n');
    const vmcore = join(dir, 'vmcore');
    const truth = join(dir, 'truth.json');
    const bar = progressBar('  saving vmcore');
    const r = runScenario(s, { vmcorePath: vmcore, truthPath: truth, onProgress: (d, t) => bar.update(d, t) });
    bar.done();
    story(r, write);
    write(`   verdict: ${verdictLabel(r, color)}: ${r.oracle.pagesCorrect} of ${r.oracle.pagesExpected} pages correct, ` +
      `${r.oracle.pagesChangedAfterPanic} of them legitimately changed by the NIC's DMA after the panic\n`);
    const v = vmcoreVerify(vmcore, truth, false);
    write(`   re-reading the ${r.vmcore?.size ?? 0}-byte ELF vmcore (sparse, ${r.vmcore?.bytesWritten ?? 0} bytes of data): ${v.text}`);

    write('\n' + b('2. The same crash after a stray DMA write hit the loaded capture kernel') + '\n');
    const bad = runScenario({ ...s, faults: [{ kind: 'stray-dma', target: 'kernel', offset: '1M', length: 64, phase: 'before-panic', device: 'stray-dma' }] });
    story(bad, write);
    write(`   verdict: ${verdictLabel(bad, color)}: purgatory refuses to jump into a kernel whose bytes changed\n`);

    write('\n' + b('3. An AMD host with SME: the first kernel\'s memory is ciphertext in DRAM') + '\n');
    const smeFile = loadScenarioFile(builtinScenario('sme-kdump-on-on.yaml'));
    const smeOn = { ...smeFile, machine: { ...smeFile.machine, memory: s.machine.memory }, workload: s.workload };
    const on = runScenario(smeOn);
    write(`   mem_encrypt=on in both kernels: ${verdictLabel(on, color)}: ${on.oracle.pagesCorrect} of ${on.oracle.pagesExpected} pages correct\n`);
    for (const c of on.chain) if (/mapped encrypted/.test(c)) write(`   ${c}\n`);
    const off = runScenario({ ...smeOn, crashKernel: { ...smeOn.crashKernel, cmdline: smeOn.crashKernel.cmdline.replace('mem_encrypt=on', 'mem_encrypt=off') } });
    write(`   mem_encrypt=off in the capture kernel: ${verdictLabel(off, color)}: ${off.oracle.pagesCiphertext} pages captured as ciphertext\n`);
    for (const c of off.chain) if (/mapped unencrypted/.test(c)) write(`   ${c}\n`);

    write('\nNext: kdumpsim run scenarios/plain-host.yaml --vmcore vmcore --truth truth.json --html report.html,\n' +
      '      kdumpsim vmcore verify vmcore --truth truth.json, and kdumpsim matrix scenarios/matrix-sme-kdump.yaml\n');
    return r.verdict === 'dump-complete' && v.ok && bad.verdict === 'crash-kernel-hang' && on.verdict === 'dump-complete' && off.verdict === 'dump-partial' ? 0 : 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function story(r: RunResult, write: (s: string) => void): void {
  for (const l of r.logs.firstKernel) if (PICK.test(l)) write(`   first kernel   ${l}\n`);
  for (const c of r.chain) {
    if (/purgatory|NMI shoot-down|\/proc\/vmcore|kdump service|stray DMA|never came up|kexec_file_load/.test(c)) write(`   ${c}\n`);
  }
  for (const l of r.logs.crashKernel) if (PICK.test(l)) write(`   capture kernel ${l}\n`);
}
