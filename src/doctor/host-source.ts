// Where the doctor reads a host from: the live filesystem (read-only), or a
// bundle of the same files in a directory or a tar. All three answer the same
// questions with the same results, so the parsers never know which it was.

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../util/errors.js';
import { TarArchive, type TarEntry } from './ustar.js';

/** Kernel logs can be long; everything else (sysfs values, configs, cpuinfo) is small. */
export const LOG_CAP = 16 * 2 ** 20;
export const FILE_CAP = 4 * 2 ** 20;
export const COMMAND_TIMEOUT_MS = 10_000;

/** Command outputs a source can give, named as in the bundle's commands/ folder. */
export type CommandName = 'uname-r' | 'kernel-log' | 'snp-guests' | 'console-log';
export const COMMAND_NAMES: readonly CommandName[] = ['uname-r', 'kernel-log', 'snp-guests', 'console-log'];

/** How each command is named in SourceStatus and evidence when the source does not say more. */
export const COMMAND_LABELS: Readonly<Record<CommandName, string>> = {
  'uname-r': 'uname -r',
  'kernel-log': 'journalctl -k -b',
  'snp-guests': '/proc/*/cmdline (sev-snp-guest)',
  'console-log': 'console log',
};

export type ReadResult =
  | {
      ok: true;
      text: string;
      /** What was actually read when it differs from the label ("dmesg", a console log's path). */
      from?: string;
      /** Something odd but not fatal, e.g. "truncated at 4194304 bytes". */
      note?: string;
    }
  | { ok: false; status: 'missing' | 'unreadable' | 'empty'; reason: string; from?: string };

export interface HostSource {
  /** A host file by its host path ("/proc/cmdline"). */
  read(hostPath: string): ReadResult;
  /** Entry names of a host directory, sorted; [] when absent or unreadable. */
  list(hostDir: string): string[];
  /** A symlink's target as stored, or undefined. */
  readLink(hostPath: string): string | undefined;
  command(name: CommandName): ReadResult;
}

/** The bundle path of a host path: the host path without its leading slash. */
export function bundlePath(hostPath: string): string {
  const norm = path.posix.normalize('/' + hostPath);
  return norm.replace(/^\/+/, '');
}

/** A command output's path inside a bundle. */
export function commandPath(name: CommandName): string {
  return `commands/${name}`;
}

/** Suffix of the text file that stands for a symlink in a bundle. */
export const SYMLINK_SUFFIX = '.symlink';

function errnoReason(e: unknown): { status: 'missing' | 'unreadable'; reason: string } {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return { status: 'missing', reason: 'no such file' };
  if (code === 'EACCES' || code === 'EPERM') return { status: 'unreadable', reason: `permission denied (${code})` };
  return { status: 'unreadable', reason: `read failed: ${code ?? String(e)}` };
}

function finish(buf: Buffer, truncated: boolean, cap: number, emptyIsOk = false): ReadResult {
  const text = buf.toString('utf8');
  if (!emptyIsOk && text.trim() === '') return { ok: false, status: 'empty', reason: 'empty' };
  return truncated ? { ok: true, text, note: `truncated at ${cap} bytes` } : { ok: true, text };
}

/**
 * Reads at most `cap` bytes of a regular file, in chunks, whatever size it
 * claims (procfs and sysfs files claim 0 or 4096). Opened read-only and
 * non-blocking, so a FIFO planted at a path cannot hang the doctor.
 */
export function readCapped(fsPath: string, cap: number, emptyIsOk = false): ReadResult {
  let fd: number;
  try {
    fd = fs.openSync(fsPath, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    return { ok: false, ...errnoReason(e) };
  }
  try {
    const st = fs.fstatSync(fd);
    if (st.isDirectory()) return { ok: false, status: 'unreadable', reason: 'is a directory' };
    if (!st.isFile()) return { ok: false, status: 'unreadable', reason: 'not a regular file' };
    const chunks: Buffer[] = [];
    let total = 0;
    let truncated = false;
    for (;;) {
      const want = Math.min(64 * 1024, cap + 1 - total);
      const chunk = Buffer.alloc(want);
      const n = fs.readSync(fd, chunk, 0, want, null);
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      total += n;
      if (total > cap) {
        truncated = true;
        break;
      }
    }
    const all = Buffer.concat(chunks);
    return finish(truncated ? all.subarray(0, cap) : all, truncated, cap, emptyIsOk);
  } catch (e) {
    return { ok: false, ...errnoReason(e) };
  } finally {
    fs.closeSync(fd);
  }
}

/** Runs a program and returns its stdout; throws as execFileSync does. Injectable for tests. */
export type RunCommand = (file: string, args: readonly string[]) => Buffer;

const runReal: RunCommand = (file, args) =>
  execFileSync(file, args, {
    timeout: COMMAND_TIMEOUT_MS,
    maxBuffer: LOG_CAP,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Untranslated messages and no pager, so the parsers see the wordings they expect.
    env: { ...process.env, LC_ALL: 'C', LANG: 'C', SYSTEMD_PAGER: 'cat', PAGER: 'cat' },
  });

interface ExecError {
  code?: string;
  status?: number | null;
  signal?: string | null;
  stdout?: Buffer;
  stderr?: Buffer;
}

function runCommand(run: RunCommand, file: string, args: readonly string[], cap: number): ReadResult {
  try {
    return finish(run(file, args), false, cap);
  } catch (e) {
    const err = e as ExecError;
    if (err.code === 'ENOBUFS' && Buffer.isBuffer(err.stdout)) return finish(err.stdout.subarray(0, cap), true, cap);
    if (err.code === 'ENOENT') return { ok: false, status: 'missing', reason: `${file}: not installed` };
    if (err.code === 'ETIMEDOUT' || err.signal === 'SIGTERM') {
      return { ok: false, status: 'unreadable', reason: `${file}: timed out after ${COMMAND_TIMEOUT_MS / 1000} s` };
    }
    const stderr = Buffer.isBuffer(err.stderr) ? err.stderr.toString('utf8').trim().split('\n')[0] ?? '' : '';
    const why = stderr !== '' ? stderr : `exit status ${err.status ?? '?'}`;
    return { ok: false, status: 'unreadable', reason: `${file}: ${permissionHint(why)}` };
  }
}

function permissionHint(why: string): string {
  return /permission denied|not permitted/i.test(why) ? `permission denied (dmesg_restrict?): ${why}` : why;
}

/** journalctl prints these (exit 0) when it has no journal or may not read it. */
function journalHasEntries(text: string): boolean {
  return text.split('\n').some((l) => l.trim() !== '' && !/^(-- |Hint:|No journal files)/.test(l.trim()));
}

export interface LiveHostOptions {
  /** A serial console capture of an earlier capture-kernel boot. */
  consoleLog?: string;
  /** Runs uname/journalctl/dmesg; tests inject a fake. */
  run?: RunCommand;
}

/**
 * The machine we run on, read-only. `root` lets tests point it at a fake
 * tree; commands still run through `options.run`.
 */
export function liveHost(root = '/', options: LiveHostOptions = {}): HostSource {
  const run = options.run ?? runReal;
  const at = (hostPath: string): string => path.join(root, bundlePath(hostPath));
  const snpGuests = (): ReadResult => {
    let pids: string[];
    try {
      pids = fs.readdirSync(at('/proc')).filter((p) => /^\d+$/.test(p));
    } catch (e) {
      const r = errnoReason(e);
      return { ok: false, status: r.status, reason: `cannot list /proc: ${r.reason}` };
    }
    const lines: string[] = [];
    for (const pid of pids.sort((a, b) => Number(a) - Number(b))) {
      const r = readCapped(at(`/proc/${pid}/cmdline`), FILE_CAP);
      if (!r.ok || !r.text.includes('sev-snp-guest')) continue; // processes come and go
      lines.push(r.text.replace(/\0+$/, '').replace(/\0/g, ' '));
    }
    return { ok: true, text: lines.map((l) => l + '\n').join('') };
  };
  return {
    read: (hostPath) => readCapped(at(hostPath), FILE_CAP),
    list(hostDir) {
      try {
        return fs.readdirSync(at(hostDir)).sort();
      } catch {
        return [];
      }
    },
    readLink(hostPath) {
      try {
        return fs.readlinkSync(at(hostPath));
      } catch {
        return undefined;
      }
    },
    command(name) {
      switch (name) {
        case 'uname-r':
          return runCommand(run, 'uname', ['-r'], FILE_CAP);
        case 'kernel-log': {
          const j = runCommand(run, 'journalctl', ['-k', '-b', '--no-pager'], LOG_CAP);
          if (j.ok && journalHasEntries(j.text)) return j;
          const jWhy = j.ok ? 'journalctl: no entries for this boot' : j.reason;
          const d = runCommand(run, 'dmesg', [], LOG_CAP);
          if (d.ok) return { ...d, from: 'dmesg', note: [jWhy, d.note].filter(Boolean).join('; ') };
          return { ok: false, status: d.status === 'missing' && !j.ok && j.status === 'missing' ? 'missing' : 'unreadable', reason: `${jWhy}; ${d.reason}` };
        }
        case 'snp-guests':
          return snpGuests();
        case 'console-log': {
          if (options.consoleLog === undefined) return { ok: false, status: 'missing', reason: 'no console log given' };
          return { ...readCapped(options.consoleLog, LOG_CAP), from: options.consoleLog };
        }
      }
    },
  };
}

/** What a bundle needs from its container (a directory or a tar). */
interface BundleStore {
  read(rel: string, cap: number, emptyIsOk: boolean): ReadResult;
  list(rel: string): string[];
  /** A real symlink inside the container, if it holds one at `rel`. */
  link(rel: string): string | undefined;
}

interface Manifest {
  'kdumpsim-bundle': number;
}

function checkManifest(where: string, r: ReadResult): void {
  if (!r.ok) throw new InputError(`Cannot read bundle "${where}": not a kdumpsim bundle (MANIFEST.json: ${r.reason})`);
  let m: unknown;
  try {
    m = JSON.parse(r.text);
  } catch (e) {
    throw new InputError(`Cannot read bundle "${where}": MANIFEST.json is not JSON: ${(e as Error).message}`);
  }
  const version = typeof m === 'object' && m !== null ? (m as Partial<Manifest>)['kdumpsim-bundle'] : undefined;
  if (version !== 1) throw new InputError(`Cannot read bundle "${where}": MANIFEST.json "kdumpsim-bundle" is ${JSON.stringify(version)}, expected 1`);
}

function fromStore(store: BundleStore): HostSource {
  return {
    read: (hostPath) => store.read(bundlePath(hostPath), FILE_CAP, false),
    list(hostDir) {
      const names = store.list(bundlePath(hostDir)).map((n) => (n.endsWith(SYMLINK_SUFFIX) ? n.slice(0, -SYMLINK_SUFFIX.length) : n));
      return [...new Set(names)].sort();
    },
    readLink(hostPath) {
      const rel = bundlePath(hostPath);
      const r = store.read(rel + SYMLINK_SUFFIX, FILE_CAP, false);
      if (r.ok) return r.text.trim();
      return store.link(rel);
    },
    command(name) {
      const cap = name === 'kernel-log' || name === 'console-log' ? LOG_CAP : FILE_CAP;
      // An empty snp-guests file is an answer (no guests), not a missing one.
      const from = commandPath(name);
      const r = store.read(from, cap, name === 'snp-guests');
      if (!r.ok && r.status === 'missing') {
        return { ok: false, status: 'missing', reason: name === 'console-log' ? 'the bundle has no console log' : 'not in the bundle', from };
      }
      // Evidence then names the bundle file a reader can open.
      return { ...r, from };
    },
  };
}

/** A bundle collected into a directory. */
export function bundleDir(dir: string): HostSource {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (e) {
    throw new InputError(`Cannot read bundle "${dir}": ${errnoReason(e).reason}`);
  }
  if (!st.isDirectory()) throw new InputError(`Cannot read bundle "${dir}": not a directory`);
  const at = (rel: string): string => path.join(dir, bundlePath(rel));
  checkManifest(dir, readCapped(at('MANIFEST.json'), FILE_CAP));
  return fromStore({
    read: (rel, cap, emptyIsOk) => {
      const r = readCapped(at(rel), cap, emptyIsOk);
      return r.ok || r.status !== 'missing' ? r : { ok: false, status: 'missing', reason: 'not in the bundle' };
    },
    list(rel) {
      try {
        return fs.readdirSync(at(rel));
      } catch {
        return [];
      }
    },
    link(rel) {
      try {
        return fs.readlinkSync(at(rel));
      } catch {
        return undefined;
      }
    },
  });
}

/**
 * A bundle in a tar file (optionally gzip-compressed). A tar made by hand
 * from a bundle directory may put everything under one top folder.
 */
export function bundleTar(file: string): HostSource {
  const tar = TarArchive.open(file);
  const manifests = [...tar.entries.keys()].filter((n) => n === 'MANIFEST.json' || /^[^/]+\/MANIFEST\.json$/.test(n));
  const top = manifests.includes('MANIFEST.json') ? '' : manifests.length === 1 ? manifests[0]!.slice(0, -'MANIFEST.json'.length) : '';
  const entry = (rel: string): TarEntry | undefined => tar.entries.get(top + rel);
  const store: BundleStore = {
    read(rel, cap, emptyIsOk) {
      const e = entry(rel);
      if (e === undefined) return { ok: false, status: 'missing', reason: 'not in the bundle' };
      if (e.type !== 'file') return { ok: false, status: 'unreadable', reason: `is a ${e.type} in the tar` };
      try {
        const { data, truncated } = tar.read(e, cap);
        return finish(data, truncated, cap, emptyIsOk);
      } catch (err) {
        // The tar changed or vanished after it was indexed.
        return { ok: false, ...errnoReason(err) };
      }
    },
    list(rel) {
      const prefix = top + (rel === '' ? '' : rel + '/');
      const out = new Set<string>();
      for (const name of tar.entries.keys()) {
        if (name.startsWith(prefix) && name.length > prefix.length) out.add(name.slice(prefix.length).split('/')[0]!);
      }
      return [...out];
    },
    link(rel) {
      const e = entry(rel);
      return e?.type === 'symlink' ? e.linkname : undefined;
    },
  };
  checkManifest(file, store.read('MANIFEST.json', FILE_CAP, false));
  return fromStore(store);
}

/** Picks the bundle reader for a path: a directory, or a .tar / .tar.gz / .tgz file. */
export function openBundle(p: string): HostSource {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch (e) {
    throw new InputError(`Cannot read bundle "${p}": ${errnoReason(e).reason}`);
  }
  return st.isDirectory() ? bundleDir(p) : bundleTar(p);
}
