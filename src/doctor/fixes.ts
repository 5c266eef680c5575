// Changes an operator can make, each as an edit of the host's scenario and
// the exact line to change on the host, in the syntax of its kdump tool.
// Whether a change helps is never decided here: the diagnosis re-runs the
// scenario with it.

import type { ScenarioInput } from '../scenario/schema.js';
import { KERNEL_PROFILES } from '../kernel/profile.js';
import { Cmdline } from '../kernel/cmdline.js';
import type { HostModel } from './host-scenario.js';
import { UPGRADE_PATH, upgradeRank } from './kernel-release.js';
import { parseSize } from '../util/units.js';

export interface Fix {
  id: string;
  /** What changes, in a few words. */
  title: string;
  /** Relative effort: 1 a config line and a service restart, 2 a boot parameter and a reboot, 3 another capture kernel, 4 a new running kernel or firmware, 5 giving a feature up. */
  cost: number;
  /** The exact lines to change or commands to run on the host. */
  lines: string[];
  /** A drawback the operator must accept. */
  drawback?: string;
  apply: (s: ScenarioInput) => void;
}

const words = (cmdline: string | undefined): string[] => (cmdline ?? '').split(/\s+/).filter((w) => w.length > 0);

function firstCmdlineLines(m: HostModel, add: string[], remove: string[]): string[] {
  const tool = m.setup.tool;
  const desc = add.length === 1 && remove.length === 1
    ? `replace ${remove[0]} with ${add[0]}`
    : [...add.map((a) => `add ${a}`), ...remove.map((r) => `remove ${r}`)].join(' and ');
  if (tool === 'kdump-utils') {
    // Removal first, as its own command: the word removed and the one added may share a key.
    return [
      ...(remove.length > 0 ? [`grubby --update-kernel=ALL --remove-args="${remove.join(' ')}"`] : []),
      ...(add.length > 0 ? [`grubby --update-kernel=ALL --args="${add.join(' ')}"`] : []),
      'reboot',
    ];
  }
  if (tool === 'kdump-tools' && add.some((a) => a.startsWith('crashkernel=')) && remove.length === 0) {
    return [
      `/etc/default/grub.d/kdump-tools.cfg: GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT ${add.join(' ')}"`,
      'update-grub && reboot',
    ];
  }
  if (tool === 'opensuse-kdump') {
    return [`/etc/default/grub: ${desc} in GRUB_CMDLINE_LINUX_DEFAULT`, 'grub2-mkconfig -o /boot/grub2/grub.cfg && reboot'];
  }
  return [`/etc/default/grub: ${desc} in GRUB_CMDLINE_LINUX`, 'update-grub (or grub2-mkconfig -o /boot/grub2/grub.cfg) && reboot'];
}

function captureCmdlineLines(m: HostModel, add: string, remove?: string): string {
  const change = remove === undefined ? `add ${add} to` : `replace ${remove} with ${add} in`;
  switch (m.setup.tool) {
    case 'kdump-tools': return `/etc/default/kdump-tools: ${change} KDUMP_CMDLINE_APPEND, then: kdump-config reload`;
    case 'kdump-utils': return `/etc/sysconfig/kdump: ${change} KDUMP_COMMANDLINE_APPEND, then: kdumpctl restart`;
    case 'opensuse-kdump': return `/etc/sysconfig/kdump: ${change} KDUMP_COMMANDLINE_APPEND, then: systemctl restart kdump`;
    default: return `the capture kernel's command line (kexec -p --command-line=...): ${change} it`;
  }
}

function captureKernelLines(m: HostModel, version: string): string[] {
  const ver = version.split(' ')[0]!;
  switch (m.setup.tool) {
    case 'kdump-tools': return [`install a ${version} kernel; /etc/default/kdump-tools: KDUMP_KERNEL=/boot/vmlinuz-${ver}.0 and KDUMP_INITRD=/boot/initrd.img-${ver}.0 (your build's exact names), then: kdump-config reload`];
    case 'kdump-utils': return [`install a ${version} kernel; /etc/sysconfig/kdump: KDUMP_KERNELVER="<its uname -r>", then: kdumpctl restart`];
    case 'opensuse-kdump': return [`install a ${version} kernel; /etc/sysconfig/kdump: KDUMP_KERNELVER="<its uname -r>", then: systemctl restart kdump`];
    default: return [`load a ${version} kernel as the capture kernel (kexec -p /boot/vmlinuz-<version> ...)`];
  }
}

const CRASHKERNEL_STEPS_MIB = [192, 256, 320, 384, 512, 768, 1024, 2048];

/** The changes worth trying on this host, given the model and what the run showed. */
export function candidateFixes(m: HostModel, current: ScenarioInput): Fix[] {
  const out: Fix[] = [];
  const s = current;
  const fk = s.firstKernel ?? {};
  const ck = s.crashKernel ?? {};
  const tool = m.setup.tool;

  if (ck.loaded === false) {
    out.push({
      id: 'load-capture-kernel', title: 'load the capture kernel (start the kdump service)', cost: 1,
      lines: [
        ...(!m.setup.kexecInKernel ? ['boot a kernel built with CONFIG_KEXEC_FILE and CONFIG_CRASH_DUMP (distribution kernels are)'] : []),
        tool === 'kdump-tools' ? '/etc/default/kdump-tools: USE_KDUMP=1, then: kdump-config load' : tool === undefined ? 'install and enable kdump-tools (Debian, Ubuntu) or kdump-utils (Fedora, RHEL)' : 'systemctl enable --now kdump',
      ],
      apply: (x) => { x.crashKernel!.loaded = true; },
    });
  }

  // A larger reservation, in the distribution's own syntax; one entry per size so the search finds the smallest that works.
  const memMiB = (parseSize(s.machine?.memory ?? 0) ?? 0) / 2 ** 20;
  const current_ = (m.setup.reservedBytes ?? 0) / 2 ** 20;
  for (const size of CRASHKERNEL_STEPS_MIB) {
    if (size <= current_ || size > memMiB / 2) continue;
    out.push({
      id: `crashkernel=${size}M`, title: `reserve ${size} MiB for the capture kernel (crashkernel=${size}M)`, cost: 2 + size / 100_000,
      lines: firstCmdlineLines(m, [`crashkernel=${size}M`], []),
      apply: (x) => {
        x.firstKernel!.cmdline = [...words(x.firstKernel!.cmdline).filter((w) => !w.startsWith('crashkernel=')), `crashkernel=${size}M`].join(' ');
        delete x.firstKernel!.crashkernel;
      },
    });
  }

  // mem_encrypt on the capture kernel must match the first kernel's SME state.
  const firstSme = m.setup.smeActive;
  const ckMe = new Cmdline(ck.cmdline ?? '').get('mem_encrypt');
  if (firstSme && ckMe !== 'on') {
    out.push({
      id: 'capture-mem-encrypt-on', title: 'boot the capture kernel with mem_encrypt=on, as the first kernel runs', cost: 1,
      lines: [captureCmdlineLines(m, 'mem_encrypt=on', ckMe === undefined ? undefined : `mem_encrypt=${ckMe === true ? '' : ckMe}`)],
      apply: (x) => { x.crashKernel!.cmdline = [...words(x.crashKernel!.cmdline).filter((w) => !w.startsWith('mem_encrypt=')), 'mem_encrypt=on'].join(' '); },
    });
  }
  if (!firstSme && ckMe === 'on') {
    out.push({
      id: 'capture-mem-encrypt-off', title: 'boot the capture kernel without mem_encrypt=on, as the first kernel runs', cost: 1,
      lines: [captureCmdlineLines(m, 'mem_encrypt=off', 'mem_encrypt=on')],
      apply: (x) => { x.crashKernel!.cmdline = words(x.crashKernel!.cmdline).filter((w) => !w.startsWith('mem_encrypt=')).join(' '); },
    });
  }

  // Another capture kernel: each later release on the path, oldest first.
  const ckRank = upgradeRank(String(ck.profile));
  for (const u of UPGRADE_PATH) {
    if (upgradeRank(u.profile) <= ckRank) continue;
    out.push({
      id: `capture-kernel-${u.profile}`, title: `a ${u.version} capture kernel`, cost: 3 + upgradeRank(u.profile) / 100,
      lines: captureKernelLines(m, u.version),
      apply: (x) => { x.crashKernel!.profile = u.profile; },
    });
  }

  // Another running kernel (the capture kernel follows it unless one is pinned).
  const fkRank = upgradeRank(String(fk.profile));
  for (const u of UPGRADE_PATH) {
    if (upgradeRank(u.profile) <= fkRank) continue;
    const follows = !m.setup.captureKernelPinned;
    out.push({
      id: `first-kernel-${u.profile}`, title: `run a ${u.version} kernel${follows ? ' (the capture kernel follows it)' : ''}`, cost: 4 + upgradeRank(u.profile) / 100,
      lines: [`install a ${u.version} kernel and boot it${follows ? '; the kdump service loads the running kernel as the capture kernel' : ''}`],
      apply: (x) => {
        x.firstKernel!.profile = u.profile;
        if (follows && upgradeRank(String(x.crashKernel!.profile)) < upgradeRank(u.profile)) x.crashKernel!.profile = u.profile;
      },
    });
  }

  // The kdump tools build the capture kernel's command line from /proc/cmdline unless told otherwise:
  // a boot parameter changed on the first kernel changes the capture kernel's too.
  const inherits = words(fk.cmdline).find((w) => !w.startsWith('crashkernel=')) === words(ck.cmdline)[0];
  const snp = s.machine?.cpu?.snp;
  if (snp !== undefined) {
    const fw = snp.firmware === undefined ? undefined : Number(snp.firmware);
    if (fw === undefined || fw < 1.55) {
      out.push({
        id: 'sev-firmware-1.55', title: 'SEV firmware 1.55', cost: 4,
        lines: ['update the SEV firmware to 1.55 or later: a BIOS update, or the amd_sev_fam<family>h_model<model>h.sbin the ccp driver loads from /lib/firmware/amd at boot'],
        apply: (x) => { x.machine!.cpu!.snp!.firmware = '1.55'; },
      });
    }
    if (KERNEL_PROFILES[String(fk.profile)]?.mechanisms.sevNoSnpParam === true && !new Cmdline(fk.cmdline ?? '').options('sev').includes('nosnp')) {
      out.push({
        id: 'sev-nosnp', title: 'host SNP off with sev=nosnp', cost: 2.5,
        lines: firstCmdlineLines(m, ['sev=nosnp'], []),
        drawback: 'no SEV-SNP guests on this host',
        apply: (x) => {
          x.firstKernel!.cmdline = [...words(x.firstKernel!.cmdline), 'sev=nosnp'].join(' ');
          if (inherits) x.crashKernel!.cmdline = [...words(x.crashKernel!.cmdline), 'sev=nosnp'].join(' ');
        },
      });
    }
    out.push({
      id: 'bios-snp-off', title: 'SNP off in the BIOS', cost: 5,
      lines: ['BIOS setup: disable SEV-SNP support (often "SNP" or "SEV-SNP Support" under the CPU or memory encryption options)'],
      drawback: 'no SEV-SNP guests on this host',
      apply: (x) => { delete x.machine!.cpu!.snp; },
    });
    if (snp.guests === undefined || snp.guests > 0) {
      out.push({
        id: 'no-snp-guests', title: 'no SNP guests running', cost: 5.5,
        lines: ['run no SEV-SNP guests on this host (a workaround: it only helps for crashes while none run)'],
        drawback: 'no SEV-SNP guests on this host',
        apply: (x) => { x.machine!.cpu!.snp!.guests = 0; },
      });
    }
  }

  const smWord = words(fk.cmdline).filter((w) => w.startsWith('intel_iommu=')).at(-1);
  if (s.machine?.iommu?.kind === 'intel' && smWord !== undefined && new Cmdline(fk.cmdline ?? '').options('intel_iommu').includes('sm_on')) {
    const rest = smWord.slice('intel_iommu='.length).split(',').filter((o) => o !== 'sm_on');
    out.push({
      id: 'intel-iommu-sm-off', title: 'leave VT-d scalable mode off in the first kernel', cost: 2,
      lines: firstCmdlineLines(m, rest.length > 0 ? [`intel_iommu=${rest.join(',')}`] : [], [smWord]),
      apply: (x) => {
        const smOff = (cmdline: string | undefined): string => words(cmdline).map((w) => {
          if (!w.startsWith('intel_iommu=')) return w;
          const opts = w.slice('intel_iommu='.length).split(',').filter((o) => o !== 'sm_on');
          return opts.length === 0 ? '' : `intel_iommu=${opts.join(',')}`;
        }).filter((w) => w.length > 0).join(' ');
        x.firstKernel!.cmdline = smOff(x.firstKernel!.cmdline);
        if (inherits) x.crashKernel!.cmdline = smOff(x.crashKernel!.cmdline);
      },
    });
  }
  return out;
}

