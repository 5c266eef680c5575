// The run as a story a person reads on a terminal: the kernels' key lines,
// the causal chain, the verdict and the page accounting.

import type { RunResult } from '../scenario/result.js';

export interface TextOptions {
  /** Use ANSI colour (only on a terminal that wants it). */
  color: boolean;
  /** Print every log line rather than the key ones. */
  fullLogs?: boolean;
}

const KEY_LINE = /Linux version|Command line|crashkernel|Reserving|Brought up|Link is Up|Kernel panic|sysrq|Out of memory|vmcore|Kdump|Warning|Memory:|reboot|PT_NOTE/;

function paint(on: boolean, code: string, s: string): string {
  return on ? `\u001b[${code}m${s}\u001b[0m` : s;
}

export function verdictLabel(r: RunResult, color: boolean): string {
  const good = r.verdict === 'dump-complete';
  return paint(color, good ? '1;32' : '1;31', r.verdict);
}

export function renderRunText(r: RunResult, opts: TextOptions): string {
  const c = opts.color;
  const out: string[] = [];
  const h = (s: string): void => {
    out.push('', paint(c, '1', s));
  };
  out.push(`${paint(c, '1', 'Scenario')} ${r.scenario} (seed ${r.seed})`);
  h('First kernel');
  for (const l of r.logs.firstKernel) if (opts.fullLogs || KEY_LINE.test(l)) out.push('  ' + l);
  if (r.logs.crashKernel.length > 0) {
    h('Capture kernel');
    for (const l of r.logs.crashKernel) if (opts.fullLogs || KEY_LINE.test(l)) out.push('  ' + l);
  }
  h('What happened');
  for (const s of r.chain) out.push('  ' + s);
  h('Verdict');
  out.push(`  ${verdictLabel(r, c)}`);
  const o = r.oracle;
  out.push(`  pages expected ${o.pagesExpected}, captured ${o.pagesCaptured}, correct ${o.pagesCorrect}, ` +
    `missing ${o.pagesMissing}, wrong ${o.pagesWrong}, ciphertext ${o.pagesCiphertext}, changed by DMA after the panic ${o.pagesChangedAfterPanic}`);
  for (const e of o.errors.slice(0, 10)) out.push(`  page ${e.pa}: ${e.cause}`);
  if (o.errors.length > 10) out.push(`  ... and ${o.errors.length - 10} more listed in --json output`);
  if (r.vmcore) {
    out.push(r.vmcore.format === 'kdump'
      ? `  vmcore: ${r.vmcore.path} (kdump-compressed, ${r.vmcore.size} bytes)`
      : `  vmcore: ${r.vmcore.path} (ELF, ${r.vmcore.size} bytes, ${r.vmcore.bytesWritten} written; the rest are holes)`);
  }
  if (r.expectation) {
    out.push(r.expectation.met ? `  expectation met` : paint(c, '1;31', `  expectation not met:`));
    for (const d of r.expectation.differences) out.push(`    - ${d}`);
  }
  return out.join('\n') + '\n';
}
