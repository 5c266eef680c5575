// `kdumpsim doctor`: will kdump work on this real host, and which change
// makes it work. Reads the host (or a bundle of its files) without writing
// anything on it, models it, runs it, and re-runs it with candidate changes.
// Exit codes: 0 ready, 1 not ready, 2 could not tell (or bad input).

import type { Command } from '@commander-js/extra-typings';
import { out, useColor, writeFileAtomic } from './output.js';
import { UsageError } from '../util/errors.js';
import { collectBundle } from '../doctor/bundle.js';
import { liveHost, openBundle } from '../doctor/host-source.js';
import { readHostFacts } from '../doctor/read-host-facts.js';
import { diagnose, doctorExitCode } from '../doctor/diagnose.js';
import { renderDoctorText } from '../report/doctor-text.js';
import { renderDoctorHtml } from '../report/doctor-html.js';

const HELP = `
Without BUNDLE it reads the machine it runs on (read-only: it writes nothing on
the host). With BUNDLE (a directory or a .tar/.tar.gz that \`--collect\` wrote,
possibly on another host) it diagnoses that host.

What it reads: /proc/cpuinfo, /proc/cmdline, /proc/iomem, /proc/meminfo, the
kernel log, /sys/kernel/kexec_crash_{loaded,size}, kvm_amd's parameters,
/sys/class/iommu, /boot/config-*, and the kdump tool's configuration
(kdump-tools, kdump-utils or openSUSE kdump) to learn the capture kernel and
its command line. Run it as root for /proc/iomem addresses and the kernel log.

How it answers: the facts become a scenario of this host (kernel profiles from
the kernel versions, SEV firmware, RMP, IOMMU kind and mode, crashkernel
reservation, SNP guests), which runs through the same models as \`kdumpsim
run\`. A fact it cannot read is run with each value it could have. Then it
re-runs the scenario with candidate changes (a larger crashkernel=,
mem_encrypt=on for the capture kernel, a newer capture kernel, SEV firmware,
sev=nosnp, ...) and lists those that give a complete dump, cheapest first,
with the exact line to change.

Exit codes: 0 ready, 1 not ready, 2 could not tell (or bad input).

Examples:
  kdumpsim doctor                         diagnose this machine
  kdumpsim doctor --collect host.tar.gz   save this machine's facts for later
  kdumpsim doctor host.tar.gz --html report.html
  kdumpsim doctor --console serial.log    this machine, with a console capture of a failed kdump
  kdumpsim doctor --collect b/ --console serial.log   the same, saved as a bundle
`;

export function registerDoctorCommand(program: Command): void {
  program.command('doctor')
    .description('tell whether kdump on a real host (this one, or a bundle of its files) would give a complete dump, and which change would')
    .argument('[bundle]', 'a bundle directory or .tar/.tar.gz written by --collect (default: this machine)')
    .option('--collect <path>', 'write this machine\'s facts into a bundle (a directory, or a .tar/.tar.gz file) and stop')
    .option('--console <file>', 'a serial console capture of an earlier capture-kernel boot: read with this machine, or added to the bundle with --collect')
    .option('--json', 'print the diagnosis as JSON')
    .option('--html <file>', 'also write an HTML report')
    .option('--verbose', 'list every source and each run\'s chain')
    .addHelpText('after', HELP)
    .action((bundle, o) => {
      if (o.collect !== undefined) {
        if (bundle !== undefined) throw new UsageError('Cannot use --collect with a bundle argument: --collect reads this machine');
        const sources = collectBundle(o.collect, o.console === undefined ? {} : { consoleLog: o.console });
        const read = sources.filter((x) => x.status === 'read').length;
        out(`kdumpsim doctor: wrote ${o.collect}: ${read} of ${sources.length} sources read\n`);
        for (const x of sources) if (x.status !== 'read' && !(x.optional && x.status === 'missing')) out(`  ${x.path}: ${x.status}${x.reason ? ` (${x.reason})` : ''}\n`);
        return;
      }
      if (o.console !== undefined && bundle !== undefined) throw new UsageError('Cannot use --console with a bundle: a bundle carries its console log (add it with --collect --console)');
      const source = bundle === undefined ? liveHost('/', o.console === undefined ? {} : { consoleLog: o.console }) : openBundle(bundle);
      const facts = readHostFacts(source, bundle ?? 'this machine');
      const progress = process.stderr.isTTY && o.json !== true;
      const d = diagnose(facts, progress ? { onRun: (what, n) => process.stderr.write(`\rrun ${n}: ${what}`.padEnd(79).slice(0, 79)) } : {});
      if (progress) process.stderr.write('\r'.padEnd(80) + '\r');
      if (o.html !== undefined) writeFileAtomic(o.html, renderDoctorHtml(d), 'HTML report');
      out(o.json === true ? doctorJson(d) : renderDoctorText(d, { color: useColor(), verbose: o.verbose === true }));
      process.exitCode = doctorExitCode(d);
    });
}

/** JSON with 64-bit register values as hex strings. */
export function doctorJson(d: unknown): string {
  return JSON.stringify(d, (_k, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v), 2) + '\n';
}
