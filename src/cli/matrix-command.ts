// `kdumpsim matrix`: run a sweep (or a shard of it) and print the support
// table, JSON or JUnit; `kdumpsim matrix merge`: join shard results.
// Exit codes: 0 when every cell with an `expect` met it, 1 when one did not,
// 2 on bad input.

import { readFileSync } from 'node:fs';
import { out, useColor, writeFileAtomic } from './output.js';
import type { Command } from '@commander-js/extra-typings';
import { isInputError, InputError, UsageError } from '../util/errors.js';
import { asMatrixResult, loadMatrixFile, matrixPassed, mergeMatrixResults, parseShard, type ShardSpec } from '../scenario/matrix.js';
import { runMatrix } from '../scenario/matrix-run.js';
import type { MatrixResult } from '../scenario/matrix-result.js';
import { renderMatrixText } from '../report/matrix-text.js';
import { renderMatrixJunit } from '../report/junit.js';
import { renderMatrixHtml } from '../report/html.js';
import { matrixProgress } from './matrix-progress.js';



function parseShardOption(v: string): ShardSpec {
  try {
    return parseShard(v);
  } catch (e) {
    throw new UsageError(`Cannot use --shard: ${(e as Error).message}`);
  }
}

function parseJobs(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`Cannot use --jobs "${v}": expected a positive integer`);
  return Number(v);
}


interface OutputOptions {
  json?: true;
  junit?: string;
  html?: string;
}

async function emit(m: MatrixResult, o: OutputOptions): Promise<void> {
  if (o.junit !== undefined) writeFileAtomic(o.junit, renderMatrixJunit(m), 'JUnit report');
  if (o.html !== undefined) writeFileAtomic(o.html, renderMatrixHtml(m), 'HTML report');
  out(o.json ? JSON.stringify(m, null, 2) + '\n' : renderMatrixText(m, { color: useColor(), ...(process.stdout.isTTY ? { width: process.stdout.columns } : {}) }));
  process.exitCode = matrixPassed(m) ? 0 : 1;
}

/** Runs an async action so bad input still exits 2 (commander's parse() does not await). */
function guarded<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      if (!isInputError(e)) throw e;
      process.stderr.write(`kdumpsim: ${e.message}\n`);
      process.exitCode = 2;
    }
  };
}

function readResult(file: string): MatrixResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new InputError(`Cannot read matrix result "${file}": ${(e as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new InputError(`Cannot read matrix result "${file}": not JSON (${(e as Error).message})`);
  }
  return asMatrixResult(data, file);
}

export function registerMatrixCommands(program: Command): void {
  const matrix = program.command('matrix')
    .description('run a sweep: a base scenario times every combination of axis values; prints a support table')
    .argument('<matrix>', 'matrix YAML file (see docs/matrix.md and scenarios/matrix-plain.yaml)')
    .option('--json', 'print the MatrixResult as JSON on stdout')
    .option('--junit <path>', 'write JUnit XML (one testcase per cell) here')
    .option('--html <path>', 'write a self-contained HTML report with a heat map here')
    .option('--shard <I/N>', 'run only cells whose index % N == I-1 (1-based I), for spreading a sweep over machines', parseShardOption)
    .option('--jobs <n>', 'run cells on this many worker threads', parseJobs, 1)
    .option('--quiet', 'no per-cell lines on stderr when it is not a terminal')
    .addHelpText('after', [
      '',
      'Exit status: 0 when every cell with an expect met it, 1 when one did not, 2 on bad input.',
      '',
      'Examples:',
      '  kdumpsim matrix scenarios/matrix-plain.yaml --jobs 2',
      '  kdumpsim matrix scenarios/matrix-plain.yaml --shard 2/3 --json > shard-2.json',
      '  kdumpsim matrix merge shard-*.json --junit matrix.xml',
    ].join('\n'))
    .action(guarded(async (file, o) => {
      const plan = loadMatrixFile(file);
      const total = o.shard === undefined ? plan.total : plan.cells.filter((c) => c.index % o.shard!.count === o.shard!.index - 1).length;
      const progress = matrixProgress(total, { lines: o.quiet !== true });
      let m: MatrixResult;
      try {
        m = await runMatrix(plan, {
          jobs: o.jobs,
          ...(o.shard === undefined ? {} : { shard: o.shard }),
          onCell: (cell, done) => progress.cell(cell, done),
        });
      } finally {
        progress.done();
      }
      await emit(m, { ...(o.json ? { json: true } : {}), ...(o.junit === undefined ? {} : { junit: o.junit }), ...(o.html === undefined ? {} : { html: o.html }) });
    }));

  matrix.command('merge')
    .description('join the JSON results of a sweep\'s shards into the result the unsharded run gives')
    .argument('<results...>', 'JSON files written by `kdumpsim matrix ... --shard I/N --json`')
    .option('--json', 'print the merged MatrixResult as JSON on stdout')
    .option('--junit <path>', 'write JUnit XML here')
    .option('--html <path>', 'write the HTML report here')
    .action(guarded(async (files, _o, cmd) => {
      // `matrix` has the same options and commander gives them to it wherever they stand: take both.
      const o = cmd.optsWithGlobals() as { json?: true; junit?: string; html?: string };
      const m = mergeMatrixResults(files.map(readResult), files);
      await emit(m, { ...(o.json ? { json: true } : {}), ...(o.junit === undefined ? {} : { junit: o.junit }), ...(o.html === undefined ? {} : { html: o.html }) });
    }));
}
