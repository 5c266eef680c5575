// The doctor's bundle: the host files and command outputs it reads, copied
// so a host can be diagnosed elsewhere. Layout: each file under its host path
// without the leading slash ("proc/cmdline"); a symlink as "<path>.symlink"
// holding its target; command outputs under "commands/"; MANIFEST.json on top.

import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { InputError } from '../util/errors.js';
import type { SourceStatus } from './host-facts.js';
import {
  COMMAND_LABELS,
  bundlePath,
  commandPath,
  liveHost,
  SYMLINK_SUFFIX,
  type CommandName,
  type HostSource,
  type ReadResult,
  type RunCommand,
} from './host-source.js';
import { buildTar } from './ustar.js';

export { bundlePath, commandPath, SYMLINK_SUFFIX } from './host-source.js';

export const MANIFEST = 'MANIFEST.json';
export const BUNDLE_VERSION = 1;

export interface HostFileEntry {
  /** Host path. "*" stands for every entry of that directory; "<release>" for `uname -r`. */
  path: string;
  /** Optional sources do not make the doctor's answer "could not tell" when absent. */
  optional: boolean;
  /** Required only when this other path gave nothing (RAM size: /proc/iomem or /proc/meminfo). */
  alternative?: string;
  /** Stored as "<path>.symlink" holding the link target, never the file it points at. */
  symlink?: boolean;
}

/** The minimal bundle of reference §1.11: everything the doctor reads. */
export const HOST_FILES: readonly HostFileEntry[] = [
  { path: '/proc/cpuinfo', optional: false },
  { path: '/proc/cmdline', optional: false },
  { path: '/proc/iomem', optional: false, alternative: '/proc/meminfo' },
  { path: '/proc/meminfo', optional: false, alternative: '/proc/iomem' },
  { path: '/sys/kernel/kexec_loaded', optional: true },
  { path: '/sys/kernel/kexec_crash_loaded', optional: false },
  { path: '/sys/kernel/kexec_crash_size', optional: false },
  { path: '/sys/kernel/vmcoreinfo', optional: true },
  { path: '/sys/module/kvm_amd/parameters/sev', optional: true },
  { path: '/sys/module/kvm_amd/parameters/sev_es', optional: true },
  { path: '/sys/module/kvm_amd/parameters/sev_snp', optional: true },
  { path: '/sys/module/kernel/parameters/crash_kexec_post_notifiers', optional: true },
  { path: '/sys/class/iommu/*/amd-iommu/cap', optional: true },
  { path: '/sys/class/iommu/*/amd-iommu/features', optional: true },
  { path: '/sys/class/iommu/*/intel-iommu/version', optional: true },
  { path: '/sys/class/iommu/*/intel-iommu/cap', optional: true },
  { path: '/sys/class/iommu/*/intel-iommu/ecap', optional: true },
  { path: '/boot/config-<release>', optional: true },
  { path: '/etc/sysconfig/kdump', optional: true },
  { path: '/etc/kdump.conf', optional: true },
  { path: '/etc/default/kdump-tools', optional: true },
  { path: '/var/crash/kexec_cmd', optional: true },
  { path: '/var/lib/kdump/kernel-version', optional: true },
  { path: '/var/lib/kdump/vmlinuz', optional: true, symlink: true },
];

/** Command outputs, in the order they are collected (uname first: /boot/config-<release> needs it). */
export const BUNDLE_COMMANDS: readonly { name: CommandName; optional: boolean }[] = [
  { name: 'uname-r', optional: false },
  { name: 'kernel-log', optional: false },
  { name: 'snp-guests', optional: true },
  { name: 'console-log', optional: true },
];

export function hostFileEntry(hostPath: string): HostFileEntry | undefined {
  return HOST_FILES.find((e) => e.path === hostPath || globMatches(e.path, hostPath));
}

function globMatches(pattern: string, p: string): boolean {
  const a = pattern.split('/');
  const b = p.split('/');
  return a.length === b.length && a.every((s, i) => s === b[i] || s === '*' || (s.includes('<release>') && b[i]!.startsWith(s.split('<release>')[0]!)));
}

/**
 * Concrete paths of an entry on a source: "*" expands to the directory's
 * entries, kept only where the next folder exists (an AMD unit has no
 * intel-iommu/ group), and "<release>" to the running kernel's release.
 */
export function expandEntry(source: HostSource, entry: HostFileEntry, release: string | undefined): string[] {
  if (entry.path.includes('<release>')) return release === undefined ? [] : [entry.path.replace('<release>', release)];
  if (!entry.path.includes('*')) return [entry.path];
  const segs = entry.path.split('/').slice(1);
  let prefixes = [''];
  let globbed = false;
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i]!;
    const next: string[] = [];
    for (const p of prefixes) {
      if (seg === '*') next.push(...source.list(p).map((name) => `${p}/${name}`));
      // After a "*", a folder must exist to be worth a path; the leaf is kept so its absence is reported.
      else if (!globbed || i === segs.length - 1 || source.list(p).includes(seg)) next.push(`${p}/${seg}`);
    }
    if (seg === '*') globbed = true;
    prefixes = next;
  }
  return prefixes;
}

export function statusOf(p: string, r: ReadResult, optional: boolean): SourceStatus {
  const s: SourceStatus = r.ok ? { path: p, status: 'read', optional } : { path: p, status: r.status, reason: r.reason, optional };
  if (r.ok && r.note) s.reason = r.note;
  return s;
}

export interface CollectOptions {
  /** A serial console capture of an earlier capture-kernel boot, copied to commands/console-log. */
  consoleLog?: string;
  /** Read a fake tree instead of "/" (tests). */
  root?: string;
  /** Run commands through this instead of the real programs (tests). */
  run?: RunCommand;
  /** The collection time written to the manifest (tests); defaults to now. */
  now?: Date;
}

/** What collectBundle gathered, before it is written anywhere. */
export function gatherBundle(source: HostSource, consoleLogGiven: boolean): { files: { name: string; data: Buffer }[]; sources: SourceStatus[] } {
  const files: { name: string; data: Buffer }[] = [];
  const sources: SourceStatus[] = [];
  const text = (s: string): Buffer => Buffer.from(s, 'utf8');
  let release: string | undefined;
  for (const c of BUNDLE_COMMANDS) {
    if (c.name === 'console-log' && !consoleLogGiven) continue;
    const r = source.command(c.name);
    sources.push(statusOf(r.from ?? COMMAND_LABELS[c.name], r, c.optional));
    if (!r.ok) continue;
    files.push({ name: commandPath(c.name), data: text(r.text) });
    if (c.name === 'uname-r') release = r.text.trim().split('\n')[0]?.trim() || undefined;
  }
  for (const entry of HOST_FILES) {
    const paths = expandEntry(source, entry, release);
    if (paths.length === 0 && entry.path.includes('<release>')) {
      sources.push({ path: entry.path, status: 'missing', reason: 'kernel release unknown (uname -r failed)', optional: entry.optional });
    }
    for (const p of paths) {
      if (entry.symlink) {
        const target = source.readLink(p);
        if (target === undefined) {
          sources.push({ path: p, status: 'missing', reason: 'no symlink', optional: entry.optional });
        } else {
          files.push({ name: bundlePath(p) + SYMLINK_SUFFIX, data: text(target + '\n') });
          sources.push({ path: p, status: 'read', optional: entry.optional });
        }
        continue;
      }
      const r = source.read(p);
      sources.push(statusOf(p, r, entry.optional));
      if (r.ok) files.push({ name: bundlePath(p), data: text(r.text) });
    }
  }
  return { files, sources };
}

function isTarPath(p: string): 'tar' | 'tar.gz' | undefined {
  if (p.endsWith('.tar')) return 'tar';
  if (p.endsWith('.tar.gz') || p.endsWith('.tgz')) return 'tar.gz';
  return undefined;
}

/**
 * Copies what the live host lets us read into `outPath`: a directory, or a
 * tar when it ends in .tar / .tar.gz. Written under a temporary name beside
 * it and renamed into place, so a half-written bundle never exists under the
 * real name; an existing path is never overwritten.
 */
export function collectBundle(outPath: string, opts: CollectOptions = {}): SourceStatus[] {
  const refuse = (why: string): never => {
    throw new InputError(`Cannot write bundle "${outPath}": ${why}`);
  };
  if (fs.existsSync(outPath) || isSymlink(outPath)) refuse('it already exists');
  const parent = path.dirname(path.resolve(outPath));
  if (!fs.existsSync(parent) || !fs.statSync(parent).isDirectory()) refuse(`no directory "${parent}"`);
  if (opts.consoleLog !== undefined && !fs.existsSync(opts.consoleLog)) {
    throw new InputError(`Cannot read console log "${opts.consoleLog}": no such file`);
  }

  const live = liveHost(opts.root ?? '/', { ...(opts.consoleLog !== undefined ? { consoleLog: opts.consoleLog } : {}), ...(opts.run ? { run: opts.run } : {}) });
  const { files, sources } = gatherBundle(live, opts.consoleLog !== undefined);
  const now = opts.now ?? new Date();
  const manifest = { 'kdumpsim-bundle': BUNDLE_VERSION, collected: now.toISOString(), sources };
  files.unshift({ name: MANIFEST, data: Buffer.from(JSON.stringify(manifest, null, 2) + '\n', 'utf8') });

  const tmp = path.join(parent, `.${path.basename(outPath)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const kind = isTarPath(outPath);
  try {
    if (kind) {
      let data = buildTar(files, Math.floor(now.getTime() / 1000));
      if (kind === 'tar.gz') data = zlib.gzipSync(data);
      fs.writeFileSync(tmp, data, { flag: 'wx', mode: 0o600 });
      // link() fails if the name was taken meanwhile; rename() would replace it.
      fs.linkSync(tmp, outPath);
      fs.unlinkSync(tmp);
    } else {
      fs.mkdirSync(tmp, { mode: 0o700 });
      for (const f of files) {
        const dest = path.join(tmp, f.name);
        fs.mkdirSync(path.dirname(dest), { recursive: true });
        fs.writeFileSync(dest, f.data, { flag: 'wx', mode: 0o600 });
      }
      if (fs.existsSync(outPath)) refuse('it already exists');
      fs.renameSync(tmp, outPath);
    }
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (e instanceof InputError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTEMPTY') refuse('it already exists');
    throw new InputError(`Cannot write bundle "${outPath}": ${code ?? (e as Error).message}`);
  }
  return sources;
}

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
