// kdumpsim vmcore convert against makedumpfile on one multi-GiB ELF vmcore
// of mixed pages (about 35 % zero, 45 % compressible: text and machine code,
// 20 % random), same codec (zlib: makedumpfile -c) and dump level (-d 1:
// zero pages shared), single thread and with 2 threads (makedumpfile
// --num-threads 2). Both sides run as their own process under
// /usr/bin/time, so wall time includes start-up and peak RSS is the
// process's maximum resident set. The ELF is read once untimed first, so
// both read it from the page cache.
//
// BENCH_KDUMP_GIB (default 1) sizes the dump; BENCH_KDUMP_REPEAT (default 1)
// repeats each measurement (median).
import { Buffer } from 'node:buffer';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeNotes, encodePrStatus, writeElfVmcore, zeroRegs } from '../dist/index.js';
import { median } from './measure.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const GIB = Number(process.env['BENCH_KDUMP_GIB'] ?? 1);
const REPEAT = Number(process.env['BENCH_KDUMP_REPEAT'] ?? 1);
const PAGE = 4096;

for (const [cmd, args, pkg] of [['makedumpfile', ['-v'], 'makedumpfile'], ['/usr/bin/time', ['true'], 'time']]) {
  if (spawnSync(cmd, args).error) {
    console.log(`convert vs makedumpfile (threads):     not measured: ${cmd} is not installed (apt-get install ${pkg})`);
    process.exit(0);
  }
}

/** Page contents by class: pools of real text and machine code, and noise. */
function pools() {
  const r = spawnSync('sh', ['-c', `find ${join(root, 'src')} ${join(root, 'docs')} -name '*.ts' -o -name '*.md' | sort | xargs cat`], { maxBuffer: 1 << 28 });
  const text = r.status === 0 ? r.stdout : Buffer.alloc(0);
  let code = Buffer.alloc(0);
  for (const lib of ['/usr/lib/x86_64-linux-gnu/libc.so.6', process.execPath]) {
    try {
      code = readFileSync(lib).subarray(0, 16 << 20);
      break;
    } catch {
      // try the next
    }
  }
  if (text.length < 1 << 20 || code.length < 1 << 20) throw new Error('bench: could not build the text and code pools');
  const noise = Buffer.alloc(64 << 20);
  let x = 0x9e3779b9;
  for (let i = 0; i < noise.length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    noise.writeUInt32LE(x >>> 0, i);
  }
  return { text, code, noise };
}

/** Class of a frame: 0 zero, 1 text, 2 code, 3 random (a cheap hash, in runs of 1 to 16 frames). */
function classOf(pfn) {
  const h = Math.imul((pfn >>> 4) ^ 0x5bd1e995, 0x27d4eb2d) >>> 0;
  const r = h % 100;
  return r < 35 ? 0 : r < 58 ? 1 : r < 80 ? 2 : 3;
}

function makeSource(p, pages) {
  const slice = (pool, pfn) => {
    const off = ((Math.imul(pfn, 2654435761) >>> 0) % ((pool.length - PAGE) / 16 | 0)) * 16;
    return pool.subarray(off, off + PAGE);
  };
  return {
    *presentFrames(a, b) {
      for (let pfn = Math.max(a, 0); pfn < Math.min(b, pages); pfn++) if (classOf(pfn) !== 0) yield pfn;
    },
    readFrame(pfn, dst) {
      const c = classOf(pfn);
      if (c === 0) dst.fill(0, 0, PAGE);
      else dst.set(slice(c === 1 ? p.text : c === 2 ? p.code : p.noise, pfn));
    },
  };
}

/** Runs a command under /usr/bin/time: wall ms and peak RSS KiB. */
function timed(cmd, args, timeoutMs) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', 'MAXRSS %M', cmd, ...args], { encoding: 'utf8', maxBuffer: 1 << 24, ...(timeoutMs === undefined ? {} : { timeout: timeoutMs, killSignal: 'SIGKILL' }) });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  // A run stopped for taking far longer than the others counts as not finishing.
  if (r.signal !== null || r.error?.code === 'ETIMEDOUT') return { ms: Infinity, rssKb: NaN, failed: 'stopped after 3x its single-thread time' };
  if (r.status !== 0) {
    // makedumpfile's threaded mode can abort at exit on some systems (pthread_exit without libgcc_s): report, don't stop the bench.
    if (cmd === 'makedumpfile' && args.includes('--num-threads')) return { ms: Infinity, rssKb: NaN, failed: `exited ${r.status}: ${r.stderr.trim().split('\n').filter((l) => !/^Copying|^Checking|^Command terminated|^MAXRSS/.test(l)).pop() ?? ''}` };
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  }
  const rss = Number(/MAXRSS (\d+)/.exec(r.stderr)?.[1] ?? NaN);
  return { ms, rssKb: rss };
}

function warm(file) {
  const fd = openSync(file, 'r');
  const buf = Buffer.alloc(8 << 20);
  try {
    while (readSync(fd, buf, 0, buf.length, null) > 0);
  } finally {
    closeSync(fd);
  }
}

const dir = mkdtempSync(join(tmpdir(), 'kdumpsim-bench-threads-'));
try {
  const pages = GIB * 2 ** 30 / PAGE;
  const elf = join(dir, 'mixed.vmcore');
  const notes = encodeNotes([{ name: 'CORE', type: 1, desc: encodePrStatus({ pid: 1, regs: zeroRegs() }) }]);
  const textLoad = 16 << 20; // kernel text alias of the first 16 MiB, so phys_base can be derived
  writeElfVmcore(elf, {
    notes,
    loads: [
      { paddr: 0x100_0000, vaddr: 0xffff_ffff_8100_0000n, memsz: textLoad },
      { paddr: 0, vaddr: 0xffff_8880_0000_0000n, memsz: pages * PAGE },
    ],
    source: makeSource(pools(), pages),
  });
  warm(elf);
  const cli = join(root, 'bin', 'kdumpsim.js');
  const runs = {
    ours1: { cmd: process.execPath, args: (out) => [cli, 'vmcore', 'convert', elf, out, '--format', 'kdump', '--compress', 'zlib', '--dump-level', '1'] },
    ours2: { cmd: process.execPath, args: (out) => [cli, 'vmcore', 'convert', elf, out, '--format', 'kdump', '--compress', 'zlib', '--dump-level', '1', '--threads', '2'] },
    mdf1: { cmd: 'makedumpfile', args: (out) => ['-c', '-d', '1', elf, out] },
    mdf2: { cmd: 'makedumpfile', args: (out) => ['-c', '-d', '1', '--num-threads', '2', elf, out] },
  };
  const res = {};
  for (let i = 0; i < REPEAT; i++) {
    for (const [name, r] of Object.entries(runs)) {
      const out = join(dir, `${name}.kdump`);
      rmSync(out, { force: true });
      // makedumpfile's threaded mode can be many times slower than its single thread here: stop it at 3x that.
      const limit = name === 'mdf2' && res['mdf1'] !== undefined ? Math.round(Math.max(30_000, 3 * Math.max(...res['mdf1'].ms))) : undefined;
      const m = timed(r.cmd, r.args(out), limit);
      (res[name] ??= { ms: [], rssKb: [], size: 0 }).ms.push(m.ms);
      if (m.failed !== undefined) res[name].failed = m.failed;
      res[name].rssKb.push(m.rssKb);
      if (Number.isFinite(m.ms)) res[name].size = statSync(out).size;
      rmSync(out, { force: true });
    }
  }
  const t = (n) => median(res[n].ms);
  const rss = (n) => Math.max(...res[n].rssKb) / 1024;
  const mib = (n) => (res[n].size / 2 ** 20).toFixed(0);
  const onDisk = (statSync(elf).blocks * 512) / 2 ** 30;
  console.log(`kdump-compressed (zlib, -d 1) from a ${GIB} GiB mixed ELF vmcore (${onDisk.toFixed(1)} GiB of data; median of ${REPEAT}):`);
  console.log(`  kdumpsim convert, 1 thread:         ${t('ours1').toFixed(0)} ms, peak RSS ${rss('ours1').toFixed(0)} MiB, ${mib('ours1')} MiB out`);
  console.log(`  makedumpfile -c -d 1:               ${t('mdf1').toFixed(0)} ms, peak RSS ${rss('mdf1').toFixed(0)} MiB, ${mib('mdf1')} MiB out`);
  console.log(`  kdumpsim convert --threads 2:       ${t('ours2').toFixed(0)} ms, peak RSS ${rss('ours2').toFixed(0)} MiB`);
  console.log(Number.isFinite(t('mdf2'))
    ? `  makedumpfile ... --num-threads 2:   ${t('mdf2').toFixed(0)} ms, peak RSS ${rss('mdf2').toFixed(0)} MiB`
    : `  makedumpfile ... --num-threads 2:   no time (${res['mdf2'].failed})`);
  const best = Math.min(t('mdf1'), t('mdf2'));
  console.log(`  time ratio kdumpsim/makedumpfile, 1 thread:   ${(t('ours1') / t('mdf1')).toFixed(2)}  (goal <= 1.0)`);
  console.log(`  time ratio kdumpsim/makedumpfile, 2 threads:  ${(t('ours2') / best).toFixed(2)}  (goal <= 0.6; against makedumpfile's faster of 1 and 2 threads)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
