// Matrix throughput: scenarios per minute on the plain host (8 GiB,
// scenarios/plain-host.yaml) swept over a few axes, at --jobs 1 and --jobs 2,
// and the ratio between them. Uses the built package (npm run bench builds).
// Wall time includes starting the worker threads, as a user's sweep would.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadMatrixFile } from '../dist/scenario/matrix.js';
import { runMatrix } from '../dist/scenario/matrix-run.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const GOAL = 600;
const dir = mkdtempSync(join(tmpdir(), 'kdumpsim-bench-matrix-'));

// 2 x 2 x 12 = 48 cells of the unmodified 8 GiB plain host.
const matrixFile = join(dir, 'bench-matrix.yaml');
writeFileSync(matrixFile, [
  'name: bench-plain-host',
  `base: ${JSON.stringify(join(root, 'scenarios', 'plain-host.yaml'))}`,
  'axes:',
  '  - { name: crash-kernel, path: crashKernel.profile, values: [linux-6.1, linux-6.12] }',
  '  - { name: trigger, path: panic.trigger, values: [sysrq, oops] }',
  '  - { name: seed, path: seed, values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] }',
  '',
].join('\n'));

async function measure(jobs) {
  const plan = loadMatrixFile(matrixFile);
  const t0 = process.hrtime.bigint();
  const result = await runMatrix(plan, { jobs });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return { result, ms, perMinute: (plan.total / ms) * 60_000 };
}

try {
  // --jobs 1 runs in this thread (which starts cold, as a CLI run does); --jobs 2 starts two fresh workers.
  const one = await measure(1);
  const two = await measure(2);
  const same = JSON.stringify(one.result) === JSON.stringify(two.result);
  const bad = one.result.cells.filter((c) => c.expectationMet === false).length;
  const cells = one.result.total;
  console.log(`matrix, plain host 8 GiB, ${cells} cells, --jobs 1: ${one.ms.toFixed(0)} ms = ${one.perMinute.toFixed(0)} scenarios/min`);
  console.log(`matrix, plain host 8 GiB, ${cells} cells, --jobs 2: ${two.ms.toFixed(0)} ms = ${two.perMinute.toFixed(0)} scenarios/min  (goal >= ${GOAL})`);
  console.log(`matrix throughput ratio jobs2/jobs1:   ${(two.perMinute / one.perMinute).toFixed(2)}  (${availableParallelism()} CPUs; results identical: ${same ? 'yes' : 'NO'}${bad ? `; ${bad} cells missed their expect` : ''})`);
  if (!same) process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
