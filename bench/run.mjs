// `npm run bench`: every figure is a ratio against a reference measured in the
// same run on the same machine, so results compare across machines.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeElfVmcore, MapPageSource } from '../dist/index.js';
import { REPEAT, median, timeMs } from './measure.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'kdumpsim-bench-'));

function runChild(scenario, vmcore) {
  const r = spawnSync(process.execPath, [join(root, 'bench', 'run-scenario.mjs'), join(root, 'scenarios', scenario), vmcore], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bench run of ${scenario} failed: ${r.stderr}`);
  rmSync(vmcore, { force: true });
  return JSON.parse(r.stdout);
}

try {
  // 1. Scaling: a full run (boot, workload, panic, capture, vmcore file, oracle) on 8 GiB and 1 TiB hosts.
  const small = [];
  const big = [];
  for (let i = 0; i < REPEAT; i++) {
    small.push(runChild('plain-host.yaml', join(dir, 'small.vmcore')));
    big.push(runChild('plain-host-1tib.yaml', join(dir, 'big.vmcore')));
  }
  const tSmall = median(small.map((x) => x.wallMs));
  const tBig = median(big.map((x) => x.wallMs));
  const rssBig = Math.max(...big.map((x) => x.maxRssKb)) / 1024;
  console.log(`full run, 8 GiB host:                 ${tSmall.toFixed(0)} ms (median of ${REPEAT})`);
  console.log(`full run, 1 TiB host:                 ${tBig.toFixed(0)} ms (median of ${REPEAT})`);
  console.log(`scaling ratio time(1 TiB)/time(8 GiB): ${(tBig / tSmall).toFixed(2)}  (goal <= 3)`);
  console.log(`peak RSS of the 1 TiB run:            ${rssBig.toFixed(0)} MiB  (goal < 1024)`);

  // 2. ELF vmcore write throughput against cp of the same file.
  const pages = 65536; // 256 MiB of dense, non-zero data
  const frames = new Map();
  const slab = new Uint8Array(pages * 4096);
  for (let i = 0; i < slab.length; i += 4) {
    slab[i] = (i * 2654435761) >>> 24;
    slab[i + 1] = 1 + ((i >>> 12) & 0x7f);
  }
  for (let p = 0; p < pages; p++) frames.set(0x100 + p, slab.subarray(p * 4096, (p + 1) * 4096));
  const source = new MapPageSource(frames);
  const spec = { notes: new Uint8Array(0), loads: [{ paddr: 0x100000, vaddr: 0xffff888000100000n, memsz: pages * 4096 }], source };
  const ours = [];
  const cps = [];
  const file = join(dir, 'dense.vmcore');
  for (let i = 0; i < REPEAT; i++) {
    rmSync(file, { force: true });
    ours.push(timeMs(() => writeElfVmcore(file, spec)));
    const copy = join(dir, 'dense.copy');
    rmSync(copy, { force: true });
    cps.push(timeMs(() => {
      const r = spawnSync('cp', ['--reflink=never', '--sparse=never', file, copy]);
      if (r.status !== 0) throw new Error(`cp failed: ${r.stderr}`);
    }));
    rmSync(copy, { force: true });
  }
  const size = statSync(file).size;
  const tOurs = median(ours);
  const tCp = median(cps);
  console.log(`ELF vmcore write, ${(size / 2 ** 20).toFixed(0)} MiB dense:     ${tOurs.toFixed(0)} ms = ${(size / 2 ** 20 / (tOurs / 1000)).toFixed(0)} MiB/s`);
  console.log(`cp of the same file:                  ${tCp.toFixed(0)} ms = ${(size / 2 ** 20 / (tCp / 1000)).toFixed(0)} MiB/s`);
  console.log(`write throughput ratio kdumpsim/cp:   ${(tCp / tOurs).toFixed(2)}  (1.00 = as fast as cp)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

// 3. Matrix throughput (scenarios per minute at --jobs 1 and 2), in its own process.
const matrix = spawnSync(process.execPath, [join(root, 'bench', 'matrix.mjs')], { stdio: 'inherit' });
if (matrix.status !== 0) process.exitCode = 1;
if (spawnSync(process.execPath, [join(root, 'bench', 'sme.mjs')], { stdio: 'inherit' }).status !== 0) process.exitCode = 1;
if (spawnSync(process.execPath, [join(root, 'bench', 'snp.mjs')], { stdio: 'inherit' }).status !== 0) process.exitCode = 1;
if (spawnSync(process.execPath, [join(root, 'bench', 'kdump.mjs')], { stdio: 'inherit' }).status !== 0) process.exitCode = 1;
if (spawnSync(process.execPath, [join(root, 'bench', 'kdump-threads.mjs')], { stdio: 'inherit' }).status !== 0) process.exitCode = 1;
if (spawnSync(process.execPath, [join(root, 'bench', 'vtd.mjs')], { stdio: 'inherit' }).status !== 0) process.exitCode = 1;
