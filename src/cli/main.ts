// The kdumpsim command line. Exit codes: 0 success (or the expected
// verdict), 1 a run or check that did not come out as expected, 2 bad usage
// or input.

import { out, useColor, writeFileAtomic } from './output.js';
import { renderRunHtml } from '../report/html.js';
import { Command, CommanderError } from '@commander-js/extra-typings';
import { InputError, isInputError, UsageError } from '../util/errors.js';
import { loadScenarioFile } from '../scenario/load.js';
import { runScenario } from '../scenario/run.js';
import { renderRunText } from '../report/text.js';
import { runDemo } from './demo.js';
import { openInput, parseDumpLevel, vmcoreInfo, vmcoreRead, vmcoreVerify } from './vmcore-commands.js';
import { convertVmcore } from '../dump/convert.js';
import { CODECS, isCodec, requireCodec, type Codec } from '../dump/codecs.js';
import { isFlattenedSignature, unflattenFile } from '../dump/flattened.js';
import { MAX_THREADS } from '../dump/compress-pool.js';
import { closeSync, openSync, readSync, rmSync } from 'node:fs';
import { progressBar } from './progress.js';
import { scenarioJsonSchema } from '../scenario/schema.js';
import { replayInput } from '../scenario/replay.js';
import { readText } from '../scenario/load.js';
import { registerMatrixCommands } from './matrix-command.js';
import { registerDoctorCommand } from './doctor-command.js';



function isFlattenedFile(file: string): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return false; // openInput reports the problem
  }
  try {
    const head = new Uint8Array(16);
    const n = readSync(fd, head, 0, 16, 0);
    return isFlattenedSignature(head.subarray(0, n));
  } finally {
    closeSync(fd);
  }
}

function parseFormat(v: string): 'elf' | 'kdump' {
  if (v !== 'elf' && v !== 'kdump') throw new UsageError(`Cannot use --format "${v}": expected elf or kdump`);
  return v;
}

function parseCompress(v: string): Codec {
  if (!isCodec(v)) throw new UsageError(`Cannot use --compress "${v}": expected ${CODECS.join(', ')}`);
  requireCodec(v); // a missing codec package is reported now, naming the package
  return v;
}

function compressOnlyForKdump(format: 'elf' | 'kdump' | undefined, compress: Codec | undefined): void {
  if (compress !== undefined && format !== 'kdump') throw new UsageError(`Cannot use --compress ${compress}: it applies to --format kdump only`);
}

function parseThreads(v: string): number {
  if (!/^\d{1,2}$/.test(v) || Number(v) < 1 || Number(v) > MAX_THREADS) throw new UsageError(`Cannot use --threads "${v}": expected an integer from 1 to ${MAX_THREADS}`);
  return Number(v);
}

function parseSeed(v: string): number {
  if (!/^\d+$/.test(v)) throw new UsageError(`Cannot use --seed "${v}": expected a non-negative integer`);
  return Number(v);
}

function parseJsonFile(file: string): unknown {
  const text = readText(file, 'result');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InputError(`Cannot parse "${file}" as JSON: ${(e as Error).message}`);
  }
}

export function buildProgram(): Command {
  const program = new Command('kdumpsim')
    .description('Simulate Linux kexec/kdump on x86 machines with memory encryption and IOMMUs, and inspect real vmcores.')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  program.command('demo')
    .description('run the built-in story: a kdump that saves a verified vmcore, then the same crash with a corrupted capture kernel')
    .action(() => {
      process.exitCode = runDemo(out, useColor());
    });

  program.command('run')
    .description('run a scenario: boot, panic, capture, and check every page against ground truth')
    .argument('[scenario]', 'scenario YAML file (see scenarios/ and schema/scenario.schema.json)')
    .option('--json', 'print the RunResult as JSON on stdout')
    .option('--vmcore <path>', 'save the capture kernel\'s vmcore here')
    .option('--format <format>', 'vmcore format: elf (as /proc/vmcore) or kdump (kdump-compressed, as makedumpfile -c -d 1)', parseFormat)
    .option('--compress <codec>', 'with --format kdump: page codec zlib (default, -c), lzo (-l), snappy (-p), zstd (-z) or none', parseCompress)
    .option('--dump-level <n>', 'makedumpfile\'s -d (0-31, default 1); 2 cache, 4 cache with private, 8 user data, 16 free pages; with --format elf the PT_LOADs are split as makedumpfile -E -d N splits them', parseDumpLevel)
    .option('--truth <path>', 'write the ground-truth manifest here, for `kdumpsim vmcore verify`')
    .option('--seed <n>', 'override the scenario\'s seed', parseSeed)
    .option('--replay <result.json>', 're-run what a saved run (run --json) or matrix cell (matrix --json, with --cell) did')
    .option('--cell <id>', 'with --replay of a matrix result: the cell to re-run, e.g. "crashkernel=64M,dma=fast"')
    .option('--html <path>', 'write a self-contained HTML report of the run (timeline, chain, logs, memory map)')
    .option('--full-logs', 'print every kernel log line, not only the key ones')
    .addHelpText('after', '\nExit status: 0 when the verdict matches the scenario\'s expect (or it has none; with --replay, when it\n' +
      'reproduces the recorded verdict), 1 when not, 2 on bad input.\n\nExamples:\n' +
      '  kdumpsim run scenarios/plain-host.yaml --vmcore /tmp/vmcore --truth /tmp/truth.json\n' +
      '  kdumpsim run scenarios/plain-host.yaml --json > result.json && kdumpsim run --replay result.json')
    .action((file, o) => {
      if ((file === undefined) === (o.replay === undefined)) throw new UsageError('Cannot run: give either a scenario file or --replay RESULT.json');
      if (o.cell !== undefined && o.replay === undefined) throw new UsageError('Cannot run: --cell goes with --replay');
      compressOnlyForKdump(o.format, o.compress);
      if (o.dumpLevel !== undefined && o.vmcore === undefined) throw new UsageError(`Cannot use --dump-level ${o.dumpLevel} without --vmcore: the level filters the file the capture kernel writes`);
      const replay = o.replay === undefined ? undefined : replayInput(parseJsonFile(o.replay), o.replay, o.cell);
      const s = replay?.scenario ?? loadScenarioFile(file!);
      const seed = o.seed ?? replay?.seed;
      const bar = o.json ? undefined : progressBar('saving vmcore');
      const r = runScenario(s, {
        ...(seed === undefined ? {} : { seed }),
        ...(o.vmcore === undefined ? {} : { vmcorePath: o.vmcore }),
        ...(o.format === undefined ? {} : { vmcoreFormat: o.format }),
        ...(o.compress === undefined ? {} : { vmcoreCompression: o.compress }),
        ...(o.dumpLevel === undefined ? {} : { dumpLevel: o.dumpLevel }),
        ...(o.truth === undefined ? {} : { truthPath: o.truth }),
        ...(bar === undefined ? {} : { onProgress: (d: number, t: number) => bar.update(d, t) }),
      });
      bar?.done();
      if (o.html !== undefined) writeFileAtomic(o.html, renderRunHtml(r));
      out(o.json ? JSON.stringify(r, null, 2) + '\n' : renderRunText(r, { color: useColor(), fullLogs: o.fullLogs === true }));
      let ok = r.expectation === null || r.expectation.met;
      if (replay !== undefined && replay.recordedVerdict !== undefined) {
        const same = replay.recordedVerdict === r.verdict;
        process.stderr.write(same
          ? `replay of ${replay.label}: reproduced the recorded verdict ${r.verdict}\n`
          : `replay of ${replay.label}: recorded verdict ${replay.recordedVerdict}, this run gave ${r.verdict}\n`);
        ok = same;
      }
      process.exitCode = ok ? 0 : 1;
    });

  const vm = program.command('vmcore').description('inspect and check vmcore files (real ones too)');
  vm.command('info')
    .description('show the format, memory ranges, notes, CPUs and VMCOREINFO of a vmcore (several files: the parts of a makedumpfile --split dump)')
    .argument('<files...>')
    .option('--json', 'machine-readable output')
    .action((files, o) => out(vmcoreInfo(files, o.json === true)));
  vm.command('read')
    .description('read physical memory from a vmcore: raw bytes on stdout, or a hex dump')
    .argument('<file>')
    .requiredOption('--phys <addr>', 'physical address (0x... or decimal)')
    .requiredOption('--size <n>', 'bytes to read (accepts K/M suffixes)')
    .option('--hex', 'print a hex dump instead of raw bytes')
    .action((file, o) => out(vmcoreRead(file, o.phys, o.size, o.hex === true)));
  vm.command('convert')
    .description('convert a vmcore (ELF, kdump-compressed, or makedumpfile\'s flattened stream) to ELF or kdump-compressed (zlib, lzo, snappy, zstd or none)')
    .argument('<files...>', 'input file (several: the parts of a makedumpfile --split dump), then the output file')
    .usage('[options] <in...> <out>')
    .requiredOption('--format <format>', 'output format: elf or kdump', parseFormat)
    .option('--compress <codec>', 'with --format kdump: page codec zlib (default), lzo, snappy, zstd or none', parseCompress)
    .option('--dump-level <n>', 'makedumpfile\'s -d (0-31); 1 zero pages, 2 cache, 4 cache with private, 8 user data, 16 free pages, from the dump\'s struct pages; with --format elf, PT_LOADs are split as makedumpfile -E -d N splits them', parseDumpLevel)
    .option('--threads <n>', 'with --format kdump: worker threads compressing pages (default 1); the output is the same whatever the count', parseThreads)
    .addHelpText('after', '\nPages are read in bulk and written sparse (ELF) or compressed with zero pages shared (kdump);\nthe output appears only when complete.\n\nExample:\n  kdumpsim vmcore convert vmcore vmcore.kdump --format kdump --compress lzo')
    .action((files, o) => {
      if (files.length < 2) throw new UsageError('Cannot convert: give the input file(s) and then the output file');
      const output = files[files.length - 1]!;
      const inputs = files.slice(0, -1);
      const input = inputs[0]!;
      compressOnlyForKdump(o.format, o.compress);
      if (o.threads !== undefined && o.format !== 'kdump') throw new UsageError(`Cannot use --threads ${o.threads}: it applies to --format kdump only`);
      // A flattened stream is rearranged into a regular file first (what makedumpfile -R does).
      let regular = input;
      if (inputs.length === 1 && isFlattenedFile(input)) {
        regular = `${output}.unflattened.tmp`;
        unflattenFile(input, regular);
      }
      const r = openInput(inputs.length === 1 ? regular : inputs);
      const bar = progressBar('converting');
      try {
        const res = convertVmcore(r, output, o.format, (d, t) => bar.update(d, t), o.compress, o.dumpLevel, o.threads);
        bar.done();
        const left = Object.entries(res.excluded ?? {}).map(([k, n]) => `${n} ${k}`).join(', ');
        const elfLeft = res.pagesLeftOut === undefined ? '' : ` (${res.pagesLeftOut} pages left out past p_filesz${left ? `; the level's filter: ${left}` : ''})`;
        out(`${output}: ${res.format === 'kdump' ? 'kdump-compressed' : 'ELF'}, ${res.pages} pages, ${res.fileSize} bytes${res.format === 'elf' ? elfLeft : left ? ` (left out: ${left})` : ''}\n`);
      } finally {
        bar.done();
        r.close();
        if (regular !== input) rmSync(regular, { force: true });
      }
    });
  vm.command('verify')
    .description('check every page a truth manifest lists; exit 0 only when all are present and equal, or left out as the dump level allows (several files: the parts of a split dump)')
    .argument('<files...>')
    .requiredOption('--truth <manifest>', 'manifest written by `kdumpsim run --truth`')
    .option('--dump-level <n>', 'the -d level the file was filtered at (default: what a kdump header records, else 0); a page it leaves out passes only if the manifest says that level drops it', parseDumpLevel)
    .option('--json', 'machine-readable output')
    .action((files, o) => {
      const r = vmcoreVerify(files, o.truth, o.json === true, o.dumpLevel);
      out(r.text);
      process.exitCode = r.ok ? 0 : 1;
    });

  registerMatrixCommands(program);
  registerDoctorCommand(program);
  program.command('schema')
    .description('print the JSON Schema of scenario files')
    .action(() => out(JSON.stringify(scenarioJsonSchema(), null, 2) + '\n'));
  return program;
}

export function main(argv: string[]): void {
  const program = buildProgram();
  try {
    program.parse(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version exit 0; everything else commander rejects is bad usage.
      process.exitCode = e.exitCode === 0 ? 0 : 2;
      return;
    }
    if (isInputError(e)) {
      process.stderr.write(`kdumpsim: ${e.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw e;
  }
}
