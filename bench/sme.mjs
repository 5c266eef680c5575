// SME costs (uses the built package: `npm run build` first; `npm run bench` builds).
//
// 1. Run time of the same 64 GiB scenario with SME on (memoryEncryption
//    enabled, mem_encrypt=on in both kernels) and off, a child process per run.
// 2. The memory controller's cipher (AddressTweakedCipher, AES-128-CTR whose
//    counter is the physical address) on 4 KiB blocks at many physical
//    addresses, against node:crypto aes-128-ctr on one 64 MiB buffer. The
//    cipher makes keystream 64 KiB (16 frames) at a time and keeps recent
//    chunks (KEYSTREAM_CACHE_CHUNKS in src/platform/memory-cipher.ts: 256 MiB
//    when this was written), oldest dropped first. "encrypt" is the first pass
//    of a fresh cipher; "warm re-encrypt" a second pass over the same
//    addresses, which is cheaper only while the pattern's chunks fit the cache.
import { spawnSync } from 'node:child_process';
import { Buffer } from 'node:buffer';
import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AddressTweakedCipher } from '../dist/platform/memory-cipher.js';
import { REPEAT, median, timeMs } from './measure.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const PAGE = 4096;
const MB = 1e6;
const DATA_BYTES = 64 * 2 ** 20;
const BLOCKS = DATA_BYTES / PAGE;

const mbps = (bytes, ms) => bytes / MB / (ms / 1000);

/** A deterministic shuffle (xorshift32), so every run measures the same addresses. */
function shuffled(xs, seed) {
  let x = seed >>> 0 || 1;
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    const j = x % (i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

// 1. SME on / SME off, 64 GiB host. Measured first, while this process is small: a child's
// maxRSS starts from the parent's at fork.
const dir = mkdtempSync(join(tmpdir(), 'kdumpsim-bench-sme-'));
try {
  const base = JSON.stringify(join(root, 'scenarios', 'plain-host.yaml'));
  const off = join(dir, 'sme-off-64g.yaml');
  const on = join(dir, 'sme-on-64g.yaml');
  writeFileSync(off, [
    `extends: ${base}`,
    'name: bench-sme-off-64g',
    'machine:',
    '  memory: 64G',
    'firstKernel:',
    '  cmdline: root=/dev/vda1 ro console=ttyS0 crashkernel=512M',
    '',
  ].join('\n'));
  writeFileSync(on, [
    `extends: ${base}`,
    'name: bench-sme-on-64g',
    'machine:',
    '  memory: 64G',
    '  cpu: { memoryEncryption: enabled, cbit: 47 }',
    'firstKernel:',
    '  cmdline: root=/dev/vda1 ro console=ttyS0 mem_encrypt=on crashkernel=512M',
    'crashKernel:',
    '  cmdline: root=/dev/vda1 console=ttyS0 mem_encrypt=on irqpoll nr_cpus=1 reset_devices',
    '',
  ].join('\n'));

  const runChild = (scenario) => {
    const vmcore = join(dir, 'vmcore');
    const r = spawnSync(process.execPath, [join(root, 'bench', 'run-scenario.mjs'), scenario, vmcore], { encoding: 'utf8' });
    rmSync(vmcore, { force: true });
    if (r.status !== 0) throw new Error(`bench run of ${scenario} failed: ${r.stderr}`);
    const j = JSON.parse(r.stdout);
    if (j.verdict !== 'dump-complete') throw new Error(`${scenario}: verdict ${j.verdict}, expected dump-complete`);
    return j;
  };
  const offRuns = [];
  const onRuns = [];
  for (let i = 0; i < REPEAT; i++) {
    offRuns.push(runChild(off));
    onRuns.push(runChild(on));
  }
  const tOff = median(offRuns.map((x) => x.wallMs));
  const tOn = median(onRuns.map((x) => x.wallMs));
  const rss = (runs) => Math.max(...runs.map((x) => x.maxRssKb)) / 1024;
  console.log(`full run, 64 GiB host, SME off:       ${tOff.toFixed(0)} ms (median of ${REPEAT}), peak RSS ${rss(offRuns).toFixed(0)} MiB`);
  console.log(`full run, 64 GiB host, SME on:        ${tOn.toFixed(0)} ms (median of ${REPEAT}), peak RSS ${rss(onRuns).toFixed(0)} MiB`);
  console.log(`SME on / SME off run-time ratio: ${(tOn / tOff).toFixed(2)} (goal <= 1.5)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

// 64 MiB of page-sized blocks with distinct content, encrypted in place.
const blocks = [];
{
  const slab = randomBytes(DATA_BYTES);
  for (let i = 0; i < BLOCKS; i++) blocks.push(new Uint8Array(slab.buffer, slab.byteOffset + i * PAGE, PAGE));
}

/** Address patterns: 16384 distinct 4 KiB frames each, spread over more than 64 MiB of physical addresses. */
const patterns = [
  // Every other frame of 128 MiB, in address order (as a dump or a boot-time pass walks memory):
  // 2048 keystream chunks, each serving 8 blocks.
  { name: 'every 2nd frame of 128 MiB, ascending', addrs: Array.from({ length: BLOCKS }, (_, i) => i * 2 * PAGE) },
  // Frames drawn at random from 1 GiB, in random order (scattered kernel data): about 10^4
  // chunks, nearly one per block, more than the cache holds.
  { name: 'random frames of 1 GiB, random order ', addrs: shuffled(Array.from({ length: BLOCKS * 16 }, (_, i) => i * PAGE), 0x5e3).slice(0, BLOCKS) },
];

/** One pass over the blocks (in place; the cost does not depend on their content). */
function pass(cipher, addrs, op) {
  return timeMs(() => {
    for (let i = 0; i < addrs.length; i++) cipher[op](addrs[i], blocks[i]);
  });
}

// 2. The memory controller's cipher.
console.log(`memory-controller cipher, ${BLOCKS} blocks of 4 KiB (${DATA_BYTES / 2 ** 20} MiB), median of ${REPEAT} (1 MB = 10^6 bytes):`);

// Reference: node:crypto aes-128-ctr over one 64 MiB buffer (keystream XOR data, as the cipher does).
const refBuf = randomBytes(DATA_BYTES);
const refKey = randomBytes(16);
const refIv = Buffer.alloc(16);
pass(new AddressTweakedCipher('bench', 1, 'host'), patterns[0].addrs.slice(0, 1024), 'encrypt'); // JIT warm-up
const tRef = median(Array.from({ length: REPEAT }, () => timeMs(() => createCipheriv('aes-128-ctr', refKey, refIv).update(refBuf))));
const ref = mbps(DATA_BYTES, tRef);

for (const p of patterns) {
  const enc = [];
  const warm = [];
  const dec = [];
  for (let r = 0; r < REPEAT; r++) {
    const c = new AddressTweakedCipher('bench', 1, 'host'); // empty keystream cache
    enc.push(pass(c, p.addrs, 'encrypt'));
    warm.push(pass(c, p.addrs, 'encrypt'));
    dec.push(pass(c, p.addrs, 'decrypt'));
  }
  const e = mbps(DATA_BYTES, median(enc));
  const w = mbps(DATA_BYTES, median(warm));
  const d = mbps(DATA_BYTES, median(dec));
  console.log(`  ${p.name}: encrypt ${e.toFixed(0)} MB/s, warm re-encrypt ${w.toFixed(0)} MB/s, decrypt ${d.toFixed(0)} MB/s`);
  console.log(`  ${' '.repeat(p.name.length)}  ratio to node:crypto: encrypt ${(e / ref).toFixed(2)}, warm ${(w / ref).toFixed(2)}`);
}
console.log(`  node:crypto aes-128-ctr, one 64 MiB buffer: ${ref.toFixed(0)} MB/s (the reference of the ratios)`);
// For context: the same 64 MiB through one cipher in 64 KiB updates (no 64 MiB output to allocate).
const tStream = median(Array.from({ length: REPEAT }, () => timeMs(() => {
  const c = createCipheriv('aes-128-ctr', refKey, refIv);
  for (let o = 0; o < DATA_BYTES; o += 65536) c.update(refBuf.subarray(o, o + 65536));
})));
console.log(`  node:crypto aes-128-ctr, same 64 MiB in 64 KiB updates: ${mbps(DATA_BYTES, tStream).toFixed(0)} MB/s`);

