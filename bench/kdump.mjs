// kdump-compressed writing against makedumpfile (uses the built package:
// `npm run bench` builds first). One ELF vmcore from scenarios/demo-host.yaml
// (2 GiB host), then, REPEAT times each: our `vmcore convert --format kdump`
// path (convertVmcore) and `makedumpfile -c -d 1` (zlib, zero pages left
// out) on the same input. Both read the same file and compress every
// non-zero page with zlib, so the ratio compares like with like.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { convertVmcore, loadScenarioFile, openVmcore, runScenario } from '../dist/index.js';
import { REPEAT, median, timeMs } from './measure.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));

if (spawnSync('makedumpfile', ['-v']).error) {
  console.log('kdump-compressed vs makedumpfile:     not measured: makedumpfile is not installed (apt-get install makedumpfile)');
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), 'kdumpsim-bench-kdump-'));
try {
  const elf = join(dir, 'demo.vmcore');
  const r = runScenario(loadScenarioFile(join(root, 'scenarios', 'demo-host.yaml')), { vmcorePath: elf });
  if (r.verdict !== 'dump-complete') throw new Error(`demo-host ended ${r.verdict}`);
  // Read the fresh 2 GiB file once untimed, so neither side pays for
  // bringing its (zero-filled, sparse) pages into the page cache.
  const warm = openVmcore(elf);
  try {
    convertVmcore(warm, join(dir, 'warm.kdump'), 'kdump', undefined, 'zlib');
  } finally {
    warm.close();
  }
  rmSync(join(dir, 'warm.kdump'), { force: true });
  const ours = [];
  const theirs = [];
  let oursSize = 0;
  let theirSize = 0;
  for (let i = 0; i < REPEAT; i++) {
    const a = join(dir, 'ours.kdump');
    rmSync(a, { force: true });
    ours.push(timeMs(() => {
      const reader = openVmcore(elf);
      try {
        convertVmcore(reader, a, 'kdump', undefined, 'zlib');
      } finally {
        reader.close();
      }
    }));
    oursSize = statSync(a).size;
    const b = join(dir, 'theirs.kdump');
    rmSync(b, { force: true });
    theirs.push(timeMs(() => {
      const m = spawnSync('makedumpfile', ['-c', '-d', '1', elf, b], { encoding: 'utf8' });
      if (m.status !== 0) throw new Error(`makedumpfile failed (${m.status}): ${m.stderr}`);
    }));
    theirSize = statSync(b).size;
  }
  const tOurs = median(ours);
  const tTheirs = median(theirs);
  const mib = (n) => (n / 2 ** 20).toFixed(1);
  console.log(`kdump-compressed (zlib) from a 2 GiB host's ELF vmcore (median of ${REPEAT}):`);
  console.log(`  kdumpsim vmcore convert:            ${tOurs.toFixed(0)} ms, ${mib(oursSize)} MiB`);
  console.log(`  makedumpfile -c -d 1:               ${tTheirs.toFixed(0)} ms, ${mib(theirSize)} MiB`);
  console.log(`  time ratio kdumpsim/makedumpfile:   ${(tOurs / tTheirs).toFixed(2)}  (1.00 = as fast as makedumpfile)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
