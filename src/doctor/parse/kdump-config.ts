// Which kdump tooling a host runs and what it will load: the capture kernel's
// release and command line, built the way each tool builds it (reference
// §1.10, §2.1, §2.2, §2.4). The config files are shell fragments that the
// tools source, so they are read with shell quoting rules (no execution).

import type { CaptureSetup, Evidence, Fact } from '../host-facts.js';
import { evidence, known, splitLines, unknown } from './fact.js';

export const KDUMP_TOOLS_CONFIG = '/etc/default/kdump-tools';
export const KDUMP_CONF = '/etc/kdump.conf';
export const SYSCONFIG_KDUMP = '/etc/sysconfig/kdump';
export const KEXEC_CMD = '/var/crash/kexec_cmd';
export const KERNEL_VERSION_FILE = '/var/lib/kdump/kernel-version';
export const KDUMP_VMLINUZ = '/var/lib/kdump/vmlinuz';

/** kdump-utils always removes these (kdumpctl prepare_cmdline and the sysconfig default). */
export const KDUMP_UTILS_REMOVE = ['crashkernel', 'hugepages', 'hugepagesz', 'slub_debug', 'quiet', 'log_buf_len', 'swiotlb', 'hugetlb_cma', 'ignition.firstboot', 'cma'];
/** kdump-utils' x86_64 KDUMP_COMMANDLINE_APPEND, then the entries common to all architectures. */
export const KDUMP_UTILS_APPEND_X86_64 =
  'irqpoll nr_cpus=1 reset_devices cgroup_disable=memory mce=off numa=off udev.children-max=2 panic=10 acpi_no_memhotplug transparent_hugepage=never nokaslr hest_disable cma=0 pcie_ports=compat' +
  ' novmcoredd hugetlb_cma=0 kfence.sample_interval=0 initramfs_options=size=90%';
/** kdump-config strips these key=value words from /proc/cmdline. */
export const KDUMP_TOOLS_REMOVE = ['crashkernel', 'hugepages', 'hugepagesz', 'abm'];
export const KDUMP_TOOLS_APPEND_AMD64 = 'reset_devices systemd.unit=kdump-tools-dump.service nr_cpus=1 irqpoll usbcore.nousb';
/** openSUSE init/load.sh adds these before KDUMP_COMMANDLINE_APPEND; nr_cpus comes from KDUMP_CPUS. */
export const OPENSUSE_APPEND = 'sysrq=yes reset_devices acpi_no_memhotplug cgroup_disable=memory nokaslr irqpoll';
export const OPENSUSE_DEFAULT_CPUS = '32';

export interface ShellVar {
  value: string;
  line: number;
  text: string;
  /** The value holds a command substitution or backquote that was left unevaluated. */
  dynamic: boolean;
}

/**
 * `NAME=value` assignments of a shell fragment, in the order a shell would
 * see them (a later one wins). Handles 'single', "double" (with \" \\ \$
 * escapes and line continuations), unquoted values, `export`, comments and
 * $NAME / ${NAME} / ${NAME:-default} references to earlier assignments.
 */
export function parseShellVars(text: string): Map<string, ShellVar> {
  const vars = new Map<string, ShellVar>();
  const lines = splitLines(text);
  for (let i = 0; i < lines.length; i++) {
    const first = i;
    const head = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=/.exec(lines[i]!);
    if (!head) continue;
    let src = lines[i]!.slice(head[0].length);
    let value = '';
    let dynamic = false;
    let pos = 0;
    let ok = true;
    const expand = (s: string): string =>
      s.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, braced: string | undefined, def: string | undefined, bare: string | undefined) => {
        const v = vars.get((braced ?? bare)!)?.value ?? '';
        return v === '' && def !== undefined ? def : v;
      });
    scan: while (pos < src.length) {
      const c = src[pos]!;
      if (c === "'") {
        const end = src.indexOf("'", pos + 1);
        if (end < 0) {
          ok = false;
          break;
        }
        value += src.slice(pos + 1, end);
        pos = end + 1;
      } else if (c === '"') {
        let seg = '';
        pos++;
        for (;;) {
          if (pos >= src.length) {
            // A double-quoted value may span lines.
            if (i + 1 >= lines.length) {
              ok = false;
              break scan;
            }
            i++;
            seg += '\n';
            src = lines[i]!;
            pos = 0;
            continue;
          }
          const d = src[pos]!;
          if (d === '"') break;
          if (d === '\\' && pos + 1 < src.length && '"\\$`'.includes(src[pos + 1]!)) {
            seg += src[pos + 1];
            pos += 2;
            continue;
          }
          if (d === '\\' && pos + 1 === src.length && i + 1 < lines.length) {
            i++;
            src = lines[i]!;
            pos = 0;
            continue;
          }
          if (d === '`' || (d === '$' && src[pos + 1] === '(')) dynamic = true;
          seg += d;
          pos++;
        }
        value += expand(seg);
        pos++;
      } else if (c === ' ' || c === '\t' || c === ';' || c === '#') {
        break;
      } else if (c === '\\') {
        if (pos + 1 < src.length) value += src[pos + 1];
        else if (i + 1 < lines.length) {
          i++;
          src = lines[i]!;
          pos = 0;
          continue;
        }
        pos += 2;
      } else {
        let end = pos;
        while (end < src.length && !" \t;#'\"\\".includes(src[end]!)) end++;
        const seg = src.slice(pos, end);
        if (seg.includes('$(') || seg.includes('`')) dynamic = true;
        value += expand(seg);
        pos = end;
      }
    }
    if (!ok) continue; // an unterminated quote: the shell would fail too
    vars.set(head[1]!, { value, line: first + 1, text: lines[first]!, dynamic });
  }
  return vars;
}

/** Kernel command-line words; a double-quoted part keeps its spaces ("dyndbg=\"file x +p\""). */
export function cmdlineWords(s: string): string[] {
  return s.match(/(?:"[^"]*"?|[^\s"])+/g) ?? [];
}

function wordKey(w: string): string {
  return w.replace(/"/g, '').split('=')[0]!;
}

/** Drops `key` and `key=...` words for every key. */
export function removeParams(words: string[], keys: readonly string[]): string[] {
  const drop = new Set(keys);
  return words.filter((w) => !drop.has(wordKey(w)));
}

/** Drops only `key=...` words (kdump-config's sed matches "key=[^ ]*"). */
function removeValued(words: string[], keys: readonly string[]): string[] {
  const drop = new Set(keys);
  return words.filter((w) => !(w.includes('=') && drop.has(wordKey(w))));
}

/** Shell words of a recorded kexec command (kdump-tools' kexec_cmd). */
function shellWords(s: string): string[] {
  const out: string[] = [];
  const re = /(?:'[^']*'|"(?:\\.|[^"\\])*"|\\.|[^\s'"\\])+/g;
  for (const m of s.match(re) ?? []) {
    out.push(m.replace(/'([^']*)'|"((?:\\.|[^"\\])*)"|\\(.)/g, (_x, sq: string | undefined, dq: string | undefined, esc: string | undefined) => sq ?? (dq !== undefined ? dq.replace(/\\(.)/g, '$1') : esc!)));
  }
  return out;
}

export interface KexecCommand {
  cmdline?: string;
  kernel?: string;
  line: number;
  text: string;
}

/** The `kexec -p` line of kdump-tools' kexec_cmd: its --command-line and the kernel file. */
export function parseKexecCmd(text: string): KexecCommand | undefined {
  const lines = splitLines(text);
  for (let i = 0; i < lines.length; i++) {
    const words = shellWords(lines[i]!.trim());
    if (words.length === 0 || !/(^|\/)kexec$/.test(words[0]!)) continue;
    const out: KexecCommand = { line: i + 1, text: lines[i]! };
    const positional: string[] = [];
    for (let k = 1; k < words.length; k++) {
      const w = words[k]!;
      const eq = /^(--command-line|--append)=(.*)$/s.exec(w);
      if (eq) out.cmdline = eq[2]!;
      else if ((w === '--command-line' || w === '--append') && k + 1 < words.length) out.cmdline = words[++k]!;
      else if (['--initrd', '--ramdisk', '--dtb', '-t', '--type'].includes(w)) k++;
      else if (!w.startsWith('-')) positional.push(w);
    }
    const kernel = positional[positional.length - 1];
    if (kernel !== undefined) out.kernel = kernel;
    return out;
  }
  return undefined;
}

/** "vmlinuz-6.8.0-45-generic" -> "6.8.0-45-generic". */
export function releaseFromKernelFile(p: string): string | undefined {
  const base = p.split('/').pop() ?? '';
  const m = /^(?:vmlinuz|vmlinux|bzImage|kernel|Image)-(.+?)(?:\.efi)?$/.exec(base);
  return m ? m[1] : undefined;
}

/** What parseCaptureSetup needs; each text is the file's content when it was read. */
export interface CaptureInputs {
  kdumpTools?: string;
  kdumpConf?: string;
  sysconfigKdump?: string;
  kexecCmd?: string;
  kernelVersionFile?: string;
  /** Target of the /var/lib/kdump/vmlinuz symlink. */
  vmlinuzLink?: string;
  procCmdline?: string;
  /** uname -r of the running kernel. */
  runningRelease?: string;
}

function varEvidence(file: string, v: ShellVar | undefined, into: Evidence[]): string | undefined {
  if (v === undefined) return undefined;
  into.push(evidence(file, v.line, v.text));
  return v.value;
}

export function parseCaptureSetup(inp: CaptureInputs): Fact<CaptureSetup> {
  const ev: Evidence[] = [];
  let tool: CaptureSetup['tool'];
  let config: string;
  let vars: Map<string, ShellVar>;
  if (inp.kdumpTools !== undefined) {
    tool = 'kdump-tools';
    config = KDUMP_TOOLS_CONFIG;
    vars = parseShellVars(inp.kdumpTools);
  } else if (inp.kdumpConf !== undefined) {
    tool = 'kdump-utils';
    config = inp.sysconfigKdump !== undefined ? SYSCONFIG_KDUMP : KDUMP_CONF;
    vars = parseShellVars(inp.sysconfigKdump ?? '');
  } else if (inp.sysconfigKdump !== undefined) {
    vars = parseShellVars(inp.sysconfigKdump);
    const suse = ['KDUMP_SAVEDIR', 'KDUMP_DUMPLEVEL', 'KDUMP_CPUS'].find((k) => vars.has(k));
    if (suse === undefined) {
      return unknown(`${SYSCONFIG_KDUMP}: present without ${KDUMP_CONF} and without openSUSE keys (KDUMP_SAVEDIR, KDUMP_DUMPLEVEL, KDUMP_CPUS): cannot tell which kdump tool reads it`, [evidence(SYSCONFIG_KDUMP)]);
    }
    tool = 'opensuse-kdump';
    config = SYSCONFIG_KDUMP;
    varEvidence(SYSCONFIG_KDUMP, vars.get(suse), ev);
  } else {
    return unknown(`no kdump tool configuration (${KDUMP_TOOLS_CONFIG}, ${KDUMP_CONF}, ${SYSCONFIG_KDUMP} all missing)`);
  }
  if (ev.length === 0) ev.push(evidence(config));
  const get = (name: string): string | undefined => {
    const v = vars.get(name);
    return v !== undefined && v.value.trim() !== '' ? varEvidence(config, v, ev) : undefined;
  };
  /** The value even when set to "" (an empty setting can mean "nothing", not "the default"). */
  const getSet = (name: string): string | undefined => varEvidence(config, vars.get(name), ev);
  const dynamic = (name: string): boolean => vars.get(name)?.dynamic === true;

  const setup: CaptureSetup = { tool, config };
  const release = captureRelease(tool, inp, get, ev);
  if (release !== undefined) setup.kernelRelease = release;
  const cmdline = captureCmdline(tool, inp, { get, getSet, dynamic }, ev);
  if (cmdline !== undefined) setup.cmdline = cmdline;
  return known(setup, ev);
}

function captureRelease(tool: CaptureSetup['tool'], inp: CaptureInputs, get: (n: string) => string | undefined, ev: Evidence[]): string | undefined {
  if (tool !== 'kdump-tools') {
    const kver = get('KDUMP_KERNELVER')?.trim();
    // openSUSE's "kdump" means "the newest -kdump kernel", not a release.
    if (kver !== undefined && kver !== 'kdump') return kver;
    const fileVer = inp.kernelVersionFile?.trim().split('\n')[0]?.trim();
    if (fileVer) {
      ev.push(evidence(KERNEL_VERSION_FILE, 1, fileVer));
      return fileVer;
    }
  } else {
    const kernel = get('KDUMP_KERNEL')?.trim();
    const fromName = kernel === undefined ? undefined : releaseFromKernelFile(kernel);
    if (fromName !== undefined) return fromName;
    if ((kernel === undefined || kernel === KDUMP_VMLINUZ) && inp.vmlinuzLink !== undefined) {
      const r = releaseFromKernelFile(inp.vmlinuzLink);
      if (r !== undefined) {
        ev.push(evidence(KDUMP_VMLINUZ, undefined, `-> ${inp.vmlinuzLink}`));
        return r;
      }
    }
    const cmd = inp.kexecCmd === undefined ? undefined : parseKexecCmd(inp.kexecCmd);
    if (cmd?.kernel !== undefined) {
      const r = releaseFromKernelFile(cmd.kernel);
      if (r !== undefined) {
        ev.push(evidence(KEXEC_CMD, cmd.line, cmd.text));
        return r;
      }
    }
  }
  const running = inp.runningRelease?.trim();
  return running ? running : undefined;
}

function captureCmdline(
  tool: CaptureSetup['tool'],
  inp: CaptureInputs,
  vars: { get: (n: string) => string | undefined; getSet: (n: string) => string | undefined; dynamic: (n: string) => boolean },
  ev: Evidence[],
): string | undefined {
  const { get, getSet, dynamic } = vars;
  const proc = inp.procCmdline?.trim();
  const join = (words: string[]): string => words.join(' ');
  switch (tool) {
    case 'kdump-utils': {
      if (dynamic('KDUMP_COMMANDLINE') || dynamic('KDUMP_COMMANDLINE_REMOVE') || dynamic('KDUMP_COMMANDLINE_APPEND')) return undefined;
      const base = get('KDUMP_COMMANDLINE') ?? proc;
      if (base === undefined) return undefined;
      const remove = [...KDUMP_UTILS_REMOVE, ...cmdlineWords(get('KDUMP_COMMANDLINE_REMOVE') ?? '')];
      // kdumpctl appends what the sysconfig says; the x86_64 list is what the shipped file says.
      const append = getSet('KDUMP_COMMANDLINE_APPEND') ?? KDUMP_UTILS_APPEND_X86_64;
      return join([...removeParams(cmdlineWords(base), remove), ...cmdlineWords(append)]);
    }
    case 'kdump-tools': {
      const cmd = inp.kexecCmd === undefined ? undefined : parseKexecCmd(inp.kexecCmd);
      if (cmd?.cmdline !== undefined) {
        // What was actually loaded beats what the config would build now.
        ev.push(evidence(KEXEC_CMD, cmd.line, cmd.text));
        return join(cmdlineWords(cmd.cmdline));
      }
      if (dynamic('KDUMP_CMDLINE') || dynamic('KDUMP_CMDLINE_APPEND')) return undefined;
      const base = get('KDUMP_CMDLINE') ?? proc;
      if (base === undefined) return undefined;
      const append = get('KDUMP_CMDLINE_APPEND') ?? KDUMP_TOOLS_APPEND_AMD64;
      return join([...removeValued(cmdlineWords(base), KDUMP_TOOLS_REMOVE), ...cmdlineWords(append)]);
    }
    case 'opensuse-kdump': {
      if (dynamic('KDUMP_COMMANDLINE') || dynamic('KDUMP_COMMANDLINE_APPEND') || dynamic('KDUMP_CPUS')) return undefined;
      const base = get('KDUMP_COMMANDLINE') ?? proc;
      if (base === undefined) return undefined;
      const cpus = get('KDUMP_CPUS')?.trim() || OPENSUSE_DEFAULT_CPUS;
      return join([
        ...removeParams(cmdlineWords(base), ['crashkernel']),
        ...cmdlineWords(OPENSUSE_APPEND),
        `nr_cpus=${cpus}`,
        ...cmdlineWords(get('KDUMP_COMMANDLINE_APPEND') ?? ''),
      ]);
    }
  }
}
