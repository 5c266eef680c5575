// SNP host scaling: a full run of a 2 TiB SNP host (an RMP of 8 GiB of
// entries, sparse) against a 64 GiB one, each in its own process, median of 3.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REPEAT, median } from './measure.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'kdumpsim-bench-snp-'));

function scenario(memory) {
  const file = join(dir, `snp-${memory}.yaml`);
  writeFileSync(file, [
    `name: snp-${memory}`,
    `extends: ${JSON.stringify(join(root, 'scenarios', 'snp-host-boot.yaml'))}`,
    'machine:',
    `  memory: ${memory}`,
    'firstKernel:',
    '  crashkernel: 512M',
    'expect: null',
    '',
  ].join('\n'));
  return file;
}

function run(file) {
  const r = spawnSync(process.execPath, [join(root, 'bench', 'run-scenario.mjs'), file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bench run of ${file} failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}


try {
  const small = scenario('64G');
  const big = scenario('2T');
  const a = [];
  const b = [];
  for (let i = 0; i < REPEAT; i++) {
    a.push(run(small));
    b.push(run(big));
  }
  const ta = median(a.map((x) => x.wallMs));
  const tb = median(b.map((x) => x.wallMs));
  console.log(`full run, 64 GiB SNP host:            ${ta.toFixed(0)} ms (median of ${REPEAT}), verdict ${a[0].verdict}`);
  console.log(`full run, 2 TiB SNP host:             ${tb.toFixed(0)} ms (median of ${REPEAT}), verdict ${b[0].verdict}, peak RSS ${(Math.max(...b.map((x) => x.maxRssKb)) / 1024).toFixed(0)} MiB`);
  console.log(`SNP scaling ratio time(2 TiB)/time(64 GiB): ${(tb / ta).toFixed(2)}  (goal <= 3)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
