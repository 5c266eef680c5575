// Reads every fact the doctor uses from a HostSource. Each source tried is
// listed with how it fared; a file that is present but does not parse gives
// an unknown fact with the reason, never a guess and never an exception.

import { hostFileEntry, statusOf } from './bundle.js';
import type { Evidence, Fact, HostFacts, IommuUnit, LogHit, SourceStatus } from './host-facts.js';
import { COMMAND_LABELS, type CommandName, type HostSource, type ReadResult } from './host-source.js';
import { parseCpuinfo } from './parse/cpuinfo.js';
import { evidence, known, splitLines, unknown } from './parse/fact.js';
import { parseIomem } from './parse/iomem.js';
import { amdUnit, intelUnit, parseAmdFeatures, parseIntelEcap, unitKind } from './parse/iommu-sysfs.js';
import {
  KDUMP_CONF,
  KDUMP_TOOLS_CONFIG,
  KDUMP_VMLINUZ,
  KERNEL_VERSION_FILE,
  KEXEC_CMD,
  SYSCONFIG_KDUMP,
  parseCaptureSetup,
  type CaptureInputs,
} from './parse/kdump-config.js';
import { parseKernelConfig } from './parse/kernel-config.js';
import { parseKernelLog } from './parse/kernel-log.js';
import { parseMemTotal } from './parse/meminfo.js';
import { parseSysfsBool, parseSysfsInt, parseVmcoreinfoSysfs } from './parse/sysfs-value.js';

const IOMMU_CLASS = '/sys/class/iommu';

/** Reads one source, records it, and turns a failed read into the reason facts carry. */
class Reader {
  readonly sources: SourceStatus[] = [];
  readonly #source: HostSource;

  constructor(source: HostSource) {
    this.#source = source;
  }

  file(p: string, optional = hostFileEntry(p)?.optional ?? true): { r: ReadResult; status: SourceStatus } {
    const r = this.#source.read(p);
    const status = statusOf(p, r, optional);
    this.sources.push(status);
    return { r, status };
  }

  command(name: CommandName, optional: boolean): { r: ReadResult; label: string; status: SourceStatus } {
    const r = this.#source.command(name);
    const label = r.from ?? COMMAND_LABELS[name];
    const status = statusOf(label, r, optional);
    this.sources.push(status);
    return { r, label, status };
  }

  list(dir: string): string[] {
    return this.#source.list(dir);
  }

  link(p: string): string | undefined {
    const target = this.#source.readLink(p);
    const optional = hostFileEntry(p)?.optional ?? true;
    this.sources.push(target === undefined ? { path: p, status: 'missing', reason: 'no symlink', optional } : { path: p, status: 'read', optional });
    return target;
  }
}

function why(p: string, r: ReadResult): string {
  return r.ok ? `${p}: read` : `${p}: ${r.status === 'missing' ? 'missing' : r.status === 'empty' ? 'empty' : 'unreadable'} (${r.reason})`;
}

/** Marks a read source as unparsed when a fact built from it is unknown. */
function unparsedIf<T>(status: SourceStatus, ...facts: Fact<T>[]): void {
  if (status.status !== 'read') return;
  const bad = facts.find((f) => !f.known);
  if (bad && !bad.known) {
    status.status = 'unparsed';
    status.reason = bad.reason;
  }
}

function fromFile<T>(rd: Reader, p: string, parse: (text: string, file: string) => Fact<T>): Fact<T> {
  const { r, status } = rd.file(p);
  if (!r.ok) return unknown(why(p, r), [evidence(p)]);
  const f = parse(r.text, p);
  unparsedIf(status, f);
  return f;
}

/** The file's text, '' for an empty file, undefined when absent or unreadable (tool configs). */
function textOrEmpty(r: ReadResult): string | undefined {
  if (r.ok) return r.text;
  return r.status === 'empty' ? '' : undefined;
}

export function readHostFacts(source: HostSource, origin: string): HostFacts {
  const rd = new Reader(source);

  // uname -r first: the kernel config's path depends on it.
  const uname = rd.command('uname-r', false);
  let kernelRelease: Fact<string>;
  if (!uname.r.ok) kernelRelease = unknown(why(uname.label, uname.r));
  else {
    const line = splitLines(uname.r.text).find((l) => l.trim() !== '')?.trim() ?? '';
    const ev = [evidence(uname.label, 1, line)];
    kernelRelease = /^[A-Za-z0-9][A-Za-z0-9._+~-]{0,127}$/.test(line) ? known(line, ev) : unknown(`${uname.label}: "${line.slice(0, 40)}" is not a kernel release`, ev);
    unparsedIf(uname.status, kernelRelease);
  }

  const cmdline = fromFile<string>(rd, '/proc/cmdline', (text, file) => {
    const t = text.replace(/\0/g, ' ').trim();
    return t.includes('\n') ? unknown<string>(`${file}: more than one line`, [evidence(file, 1, t.split('\n')[0])]) : known(t, [evidence(file, 1, t)]);
  });

  // cpuinfo gives three facts; the file is "unparsed" if any of them could not be read from it.
  const cpu = rd.file('/proc/cpuinfo');
  let cpuVendor: HostFacts['cpuVendor'];
  let cpuCount: HostFacts['cpuCount'];
  let cpuFlags: HostFacts['cpuFlags'];
  if (!cpu.r.ok) {
    const reason = why('/proc/cpuinfo', cpu.r);
    cpuVendor = unknown(reason);
    cpuCount = unknown(reason);
    cpuFlags = unknown(reason);
  } else {
    const c = parseCpuinfo(cpu.r.text, '/proc/cpuinfo');
    cpuVendor = c.vendor;
    cpuCount = c.count;
    cpuFlags = c.flags;
    unparsedIf<unknown>(cpu.status, c.vendor, c.count, c.flags);
  }

  // RAM: the System RAM ranges of iomem are what the kernel sizes crashkernel= by; MemTotal is the fallback.
  const iomem = rd.file('/proc/iomem');
  const io = iomem.r.ok ? parseIomem(iomem.r.text, '/proc/iomem') : undefined;
  if (io) unparsedIf<unknown>(iomem.status, io.systemRam, io.crashKernel);
  const memTotal = fromFile(rd, '/proc/meminfo', parseMemTotal);
  const meminfoStatus = rd.sources[rd.sources.length - 1]!;
  let memoryBytes: Fact<number>;
  if (io?.systemRam.known) {
    memoryBytes = io.systemRam;
    meminfoStatus.optional = true;
  } else if (memTotal.known) {
    memoryBytes = memTotal;
    iomem.status.optional = true;
  } else {
    const ioWhy = io ? (io.systemRam.known ? '' : io.systemRam.reason) : why('/proc/iomem', iomem.r);
    memoryBytes = unknown(`${ioWhy}; ${memTotal.known ? '' : memTotal.reason}`, [...(io?.systemRam.evidence ?? []), ...memTotal.evidence]);
  }
  const crashKernelRanges: HostFacts['crashKernelRanges'] = io ? io.crashKernel : unknown(why('/proc/iomem', iomem.r), [evidence('/proc/iomem')]);

  const kexecCrashLoaded = fromFile(rd, '/sys/kernel/kexec_crash_loaded', parseSysfsBool);
  const kexecCrashSize = fromFile(rd, '/sys/kernel/kexec_crash_size', (t, f) => parseSysfsInt(t, f));
  fromFile(rd, '/sys/kernel/kexec_loaded', parseSysfsBool);
  fromFile(rd, '/sys/kernel/vmcoreinfo', parseVmcoreinfoSysfs);

  const kvmAmd: HostFacts['kvmAmd'] = {
    sev: fromFile(rd, '/sys/module/kvm_amd/parameters/sev', parseSysfsBool),
    sevEs: fromFile(rd, '/sys/module/kvm_amd/parameters/sev_es', parseSysfsBool),
    sevSnp: fromFile(rd, '/sys/module/kvm_amd/parameters/sev_snp', parseSysfsBool),
  };
  const crashKexecPostNotifiers = fromFile(rd, '/sys/module/kernel/parameters/crash_kexec_post_notifiers', parseSysfsBool);

  const iommus = readIommus(rd);

  let kernelConfig: HostFacts['kernelConfig'];
  if (!kernelRelease.known) {
    kernelConfig = unknown('/boot/config-<release>: kernel release unknown');
    rd.sources.push({ path: '/boot/config-<release>', status: 'missing', reason: 'kernel release unknown', optional: true });
  } else {
    kernelConfig = fromFile(rd, `/boot/config-${kernelRelease.value}`, (t, f) => parseKernelConfig(t, f));
  }

  const capture = readCapture(rd, cmdline, kernelRelease);

  const log = readLog(rd, 'kernel-log', false);
  const captureLog = readLog(rd, 'console-log', true);
  const snpGuests = readSnpGuests(rd);

  return {
    origin,
    sources: rd.sources,
    kernelRelease,
    cmdline,
    cpuVendor,
    cpuCount,
    cpuFlags,
    memoryBytes,
    crashKernelRanges,
    kexecCrashLoaded,
    kexecCrashSize,
    kvmAmd,
    crashKexecPostNotifiers,
    iommus,
    kernelConfig,
    log,
    captureLog,
    capture,
    snpGuests,
  };
}

function readIommus(rd: Reader): Fact<IommuUnit[]> {
  const names = rd.list(IOMMU_CLASS);
  if (names.length === 0) return known([], [evidence(IOMMU_CLASS, undefined, 'no IOMMU units')]);
  const units: IommuUnit[] = [];
  const ev: Evidence[] = [];
  for (const name of names) {
    const dir = `${IOMMU_CLASS}/${name}`;
    const kind = unitKind(name, rd.list(dir));
    if (kind === 'amd') {
      rd.file(`${dir}/amd-iommu/cap`);
      const f = rd.file(`${dir}/amd-iommu/features`);
      const parsed = f.r.ok ? parseAmdFeatures(f.r.text) : undefined;
      if (f.r.ok && parsed === undefined) Object.assign(f.status, { status: 'unparsed', reason: `${dir}/amd-iommu/features: expected "%llx" or "%llx:%llx"` });
      if (f.r.ok) ev.push(evidence(`${dir}/amd-iommu/features`, 1, f.r.text));
      units.push(amdUnit(name, parsed?.efr));
    } else if (kind === 'intel') {
      rd.file(`${dir}/intel-iommu/version`);
      rd.file(`${dir}/intel-iommu/cap`);
      const f = rd.file(`${dir}/intel-iommu/ecap`);
      const ecap = f.r.ok ? parseIntelEcap(f.r.text) : undefined;
      if (f.r.ok && ecap === undefined) Object.assign(f.status, { status: 'unparsed', reason: `${dir}/intel-iommu/ecap: expected "%llx"` });
      if (f.r.ok) ev.push(evidence(`${dir}/intel-iommu/ecap`, 1, f.r.text));
      units.push(intelUnit(name, ecap));
    }
  }
  if (ev.length === 0) ev.push(evidence(IOMMU_CLASS, undefined, names.join(' ')));
  return known(units, ev);
}

function readCapture(rd: Reader, cmdline: Fact<string>, release: Fact<string>): HostFacts['capture'] {
  const inp: CaptureInputs = {};
  const set = (key: 'kdumpTools' | 'kdumpConf' | 'sysconfigKdump' | 'kexecCmd' | 'kernelVersionFile', p: string): void => {
    const t = textOrEmpty(rd.file(p).r);
    if (t !== undefined) inp[key] = t;
  };
  set('kdumpTools', KDUMP_TOOLS_CONFIG);
  set('kdumpConf', KDUMP_CONF);
  set('sysconfigKdump', SYSCONFIG_KDUMP);
  set('kexecCmd', KEXEC_CMD);
  set('kernelVersionFile', KERNEL_VERSION_FILE);
  const link = rd.link(KDUMP_VMLINUZ);
  if (link !== undefined) inp.vmlinuzLink = link;
  if (cmdline.known) inp.procCmdline = cmdline.value;
  if (release.known) inp.runningRelease = release.value;
  return parseCaptureSetup(inp);
}

function readLog(rd: Reader, name: 'kernel-log' | 'console-log', optional: boolean): LogHit[] {
  const { r, label } = rd.command(name, optional);
  return r.ok ? parseKernelLog(r.text, label) : [];
}

/** Lines of commands/snp-guests whose program is QEMU (a grep for the string would list itself). */
function readSnpGuests(rd: Reader): Fact<number> {
  const { r, label } = rd.command('snp-guests', true);
  if (!r.ok) return unknown(why(label, r));
  const lines = splitLines(r.text);
  const ev: Evidence[] = [];
  let n = 0;
  for (let i = 0; i < lines.length; i++) {
    const argv0 = lines[i]!.trim().split(/\s+/)[0] ?? '';
    if (!/qemu/i.test(argv0.split('/').pop() ?? '') || !lines[i]!.includes('sev-snp-guest')) continue;
    n++;
    if (ev.length < 64) ev.push(evidence(label, i + 1, lines[i]));
  }
  if (ev.length === 0) ev.push(evidence(label, undefined, 'no QEMU process with an sev-snp-guest object'));
  return known(n, ev);
}
