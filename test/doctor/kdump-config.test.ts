// Which kdump tool a host runs and the capture command line it builds:
// kdump-utils (kdumpctl), Debian kdump-tools and openSUSE kdump, each as the
// tool itself builds it (reference §1.10, §2.1, §2.2, §2.4).

import { describe, expect, it } from 'vitest';
import {
  KDUMP_TOOLS_APPEND_AMD64,
  KDUMP_UTILS_APPEND_X86_64,
  parseCaptureSetup,
  parseKexecCmd,
  parseShellVars,
  releaseFromKernelFile,
} from '../../src/doctor/parse/kdump-config.js';
import { KEXEC_CMD, RELEASE } from './fake-host.js';

const PROC = 'BOOT_IMAGE=/vmlinuz-6.9.0 root=UUID=abc ro quiet crashkernel=2G-64G:256M,64G-:512M hugepages=16 hugepagesz=1G swiotlb=65536 abm=1 mem_encrypt=on';

describe('shell-style config files', () => {
  it('quotes, comments, export, continuations and references', () => {
    const v = parseShellVars(
      [
        '# comment',
        'A=plain # trailing comment',
        'B="double \\"quoted\\" $A"',
        "C='single $A'",
        'export D="x"',
        'E="multi',
        'line"',
        'F=${A:-dflt}/${NOPE:-dflt}',
        'G=$(uname -r)',
        '  H=""',
        'I="unterminated',
      ].join('\n'),
    );
    expect(v.get('A')).toMatchObject({ value: 'plain', line: 2 });
    expect(v.get('B')!.value).toBe('double "quoted" plain');
    expect(v.get('C')!.value).toBe('single $A');
    expect(v.get('D')!.value).toBe('x');
    expect(v.get('E')).toMatchObject({ value: 'multi\nline', line: 6 });
    expect(v.get('F')!.value).toBe('plain/dflt');
    expect(v.get('G')!.dynamic).toBe(true);
    expect(v.get('H')!.value).toBe('');
    expect(v.has('I')).toBe(false);
  });
});

describe('kdump-utils (/etc/kdump.conf + /etc/sysconfig/kdump)', () => {
  it('default: /proc/cmdline minus crashkernel and the removed params, plus the x86_64 append list', () => {
    const f = parseCaptureSetup({ kdumpConf: 'path /var/crash\ncore_collector makedumpfile -l --message-level 7 -d 31\n', sysconfigKdump: 'KDUMP_KERNELVER=""\nKDUMP_COMMANDLINE=""\n', procCmdline: PROC, runningRelease: '6.9.0' });
    expect(f).toMatchObject({ known: true, value: { tool: 'kdump-utils', config: '/etc/sysconfig/kdump', kernelRelease: '6.9.0' } });
    expect(f.known && f.value.cmdline).toBe(`BOOT_IMAGE=/vmlinuz-6.9.0 root=UUID=abc ro abm=1 mem_encrypt=on ${KDUMP_UTILS_APPEND_X86_64}`);
  });

  it('KDUMP_COMMANDLINE, _REMOVE, _APPEND and KDUMP_KERNELVER', () => {
    const sysconfig = ['KDUMP_KERNELVER="6.12.0-55.el10.x86_64"', 'KDUMP_COMMANDLINE="root=/dev/sda1 ro quiet rd.lvm.lv=x mem_encrypt=on"', 'KDUMP_COMMANDLINE_REMOVE="rd.lvm.lv"', 'KDUMP_COMMANDLINE_APPEND="irqpoll nr_cpus=1 reset_devices"'].join('\n');
    const f = parseCaptureSetup({ kdumpConf: '', sysconfigKdump: sysconfig, procCmdline: PROC, runningRelease: '6.9.0' });
    expect(f).toMatchObject({ known: true, value: { tool: 'kdump-utils', kernelRelease: '6.12.0-55.el10.x86_64', cmdline: 'root=/dev/sda1 ro mem_encrypt=on irqpoll nr_cpus=1 reset_devices' } });
    expect(f.evidence.map((e) => e.line)).toEqual(expect.arrayContaining([1, 2, 3, 4]));
  });

  it('a command substitution in the settings means the command line cannot be worked out', () => {
    const f = parseCaptureSetup({ kdumpConf: '', sysconfigKdump: 'KDUMP_COMMANDLINE="$(cat /proc/cmdline) foo"\n', procCmdline: PROC });
    expect(f.known && f.value.cmdline).toBeUndefined();
  });
});

describe('Debian kdump-tools (/etc/default/kdump-tools)', () => {
  it('the recorded kexec command wins: its --command-line and kernel', () => {
    const f = parseCaptureSetup({ kdumpTools: 'USE_KDUMP=1\n', kexecCmd: KEXEC_CMD, vmlinuzLink: `/boot/vmlinuz-${RELEASE}`, procCmdline: PROC, runningRelease: '6.9.0' });
    expect(f).toMatchObject({ known: true, value: { tool: 'kdump-tools', config: '/etc/default/kdump-tools', kernelRelease: RELEASE } });
    expect(f.known && f.value.cmdline).toMatch(/ amd_iommu_dump=1 reset_devices systemd.unit=kdump-tools-dump.service nr_cpus=1 irqpoll nousb$/);
    expect(f.evidence).toContainEqual(expect.objectContaining({ file: '/var/crash/kexec_cmd', line: 1 }));
  });

  it('without kexec_cmd: /proc/cmdline minus crashkernel|hugepages|hugepagesz|abm, plus the default append', () => {
    const f = parseCaptureSetup({ kdumpTools: 'USE_KDUMP=1\n', procCmdline: PROC, runningRelease: '6.9.0' });
    expect(f.known && f.value.cmdline).toBe(`BOOT_IMAGE=/vmlinuz-6.9.0 root=UUID=abc ro quiet swiotlb=65536 mem_encrypt=on ${KDUMP_TOOLS_APPEND_AMD64}`);
    expect(f.known && f.value.kernelRelease).toBe('6.9.0');
  });

  it('KDUMP_CMDLINE and KDUMP_CMDLINE_APPEND; the release from KDUMP_KERNEL or the vmlinuz symlink', () => {
    const f = parseCaptureSetup({ kdumpTools: 'KDUMP_KERNEL=/boot/vmlinuz-6.8.0-45-generic\nKDUMP_CMDLINE="root=/dev/vda1 ro"\nKDUMP_CMDLINE_APPEND="nr_cpus=1 irqpoll"\n', procCmdline: PROC });
    expect(f).toMatchObject({ value: { kernelRelease: '6.8.0-45-generic', cmdline: 'root=/dev/vda1 ro nr_cpus=1 irqpoll' } });
    const g = parseCaptureSetup({ kdumpTools: '', vmlinuzLink: '/boot/vmlinuz-6.8.0-31-generic', procCmdline: PROC });
    expect(g).toMatchObject({ value: { kernelRelease: '6.8.0-31-generic' } });
  });
});

describe('openSUSE kdump (/etc/sysconfig/kdump with its own keys, no /etc/kdump.conf)', () => {
  it('adds sysrq=yes ... nr_cpus=${KDUMP_CPUS:-32} and KDUMP_COMMANDLINE_APPEND; release from kernel-version', () => {
    const sysconfig = 'KDUMP_CPUS=""\nKDUMP_SAVEDIR="/var/crash"\nKDUMP_DUMPLEVEL=31\nKDUMP_COMMANDLINE_APPEND="console=ttyS0"\nKDUMP_KERNELVER=""\n';
    const f = parseCaptureSetup({ sysconfigKdump: sysconfig, kernelVersionFile: '6.4.0-150600.23-default\n', procCmdline: PROC, runningRelease: '6.9.0' });
    expect(f).toMatchObject({ known: true, value: { tool: 'opensuse-kdump', config: '/etc/sysconfig/kdump', kernelRelease: '6.4.0-150600.23-default' } });
    expect(f.known && f.value.cmdline).toBe(
      'BOOT_IMAGE=/vmlinuz-6.9.0 root=UUID=abc ro quiet hugepages=16 hugepagesz=1G swiotlb=65536 abm=1 mem_encrypt=on sysrq=yes reset_devices acpi_no_memhotplug cgroup_disable=memory nokaslr irqpoll nr_cpus=32 console=ttyS0',
    );
    const g = parseCaptureSetup({ sysconfigKdump: 'KDUMP_CPUS=4\nKDUMP_COMMANDLINE="root=/dev/sda2"\n' });
    expect(g.known && g.value.cmdline).toBe('root=/dev/sda2 sysrq=yes reset_devices acpi_no_memhotplug cgroup_disable=memory nokaslr irqpoll nr_cpus=4');
  });
});

describe('no or ambiguous tooling', () => {
  it('nothing installed', () => {
    expect(parseCaptureSetup({ procCmdline: PROC })).toMatchObject({ known: false, reason: expect.stringContaining('no kdump tool configuration') });
  });
  it('/etc/sysconfig/kdump alone without openSUSE keys', () => {
    expect(parseCaptureSetup({ sysconfigKdump: 'KDUMP_COMMANDLINE=""\n' })).toMatchObject({ known: false, reason: expect.stringContaining('cannot tell which kdump tool') });
  });
});

describe('kexec_cmd and kernel file names', () => {
  it('parses the F9 hand-made command', () => {
    const c = parseKexecCmd('kexec -p /boot/vmlinuz-4.19.0-rc6+ --initrd=/boot/initrd-4.19.0-rc6+ --command-line="ro nr_cpus=1 irqpoll maxcpus=1 reset_devices vga=normal mem_encrypt=on"\n');
    expect(c).toMatchObject({ kernel: '/boot/vmlinuz-4.19.0-rc6+', cmdline: 'ro nr_cpus=1 irqpoll maxcpus=1 reset_devices vga=normal mem_encrypt=on', line: 1 });
    expect(releaseFromKernelFile(c!.kernel!)).toBe('4.19.0-rc6+');
    expect(releaseFromKernelFile('/var/lib/kdump/vmlinuz')).toBeUndefined();
  });
});
