// A fake root for the doctor's collectors: an SNP host with running SNP
// guests and kdump-tools (reference F2), laid out as the real /proc, /sys,
// /boot, /etc and /var are, plus a fake command runner.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { RunCommand } from '../../src/doctor/host-source.js';

export const RELEASE = '6.11.0-rc3-snp-host';

export const CPUINFO = [0, 1]
  .map((n) =>
    [
      `processor\t: ${n}`,
      'vendor_id\t: AuthenticAMD',
      'cpu family\t: 25',
      'model name\t: AMD EPYC 9654 96-Core Processor',
      'flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx lm constant_tsc sme sev sev_es sev_snp',
      '',
    ].join('\n'),
  )
  .join('\n');

export const CMDLINE = `BOOT_IMAGE=/vmlinuz-${RELEASE} root=UUID=4b87a03b-0e78-42ca-a8ad-997e63bba4e0 ro console=tty0 console=ttyS0,115200n8 crashkernel=512M hugepages=16 amd_iommu_dump=1\n`;

export const IOMEM = [
  '00000000-00000fff : Reserved',
  '00001000-0009ffff : System RAM',
  '00100000-7fffffff : System RAM',
  '  01000000-01ffffff : Kernel code',
  '  60000000-7fffffff : Crash kernel',
  'fd00000000-fdffffffff : Reserved',
  '100000000-47fffffff : System RAM',
  '',
].join('\n');

export const MEMINFO = 'MemTotal:       16316412 kB\nMemFree:        15000000 kB\n';

export const KERNEL_LOG = [
  `Jan 21 06:59:11 snp kernel: Linux version ${RELEASE} (builder@host) (gcc 13) #1 SMP`,
  `Jan 21 06:59:11 snp kernel: Command line: ${CMDLINE.trim()}`,
  'Jan 21 06:59:11 snp kernel: SEV-SNP: RMP table physical range [0x0000000035600000 - 0x0000000075bfffff]',
  'Jan 21 06:59:11 snp kernel: crashkernel reserved: 0x0000000060000000 - 0x0000000080000000 (512 MB)',
  'Jan 21 06:59:11 snp kernel: AMD-Vi: Using global IVHD EFR:0x841f77e022094ace, EFR2:0x0',
  'Jan 21 06:59:11 snp kernel: AMD-Vi: IOMMU SNP support enabled.',
  'Jan 21 06:59:12 snp kernel: ccp 0000:23:00.1: sev enabled',
  'Jan 21 06:59:12 snp kernel: ccp 0000:23:00.1: SEV-SNP API:1.55 build:21',
  'Jan 21 06:59:12 snp kernel: kvm_amd: SEV-SNP enabled (ASIDs 1 - 99)',
  '',
].join('\n');

export const CONSOLE_LOG = [
  'INFO [    0.006403] AMD-Vi: Copied DEV table from previous kernel.',
  'ALERT [    0.115337] AMD-Vi: Completion-Wait loop timed out',
  'INFO [    0.988344] ..TIMER: vector=0x30 apic1=0 pin1=2 apic2=-1 pin2=-1',
  "EMERGENCY [    1.376701] Kernel panic - not syncing: timer doesn't work through Interrupt-remapped IO-APIC",
  '',
].join('\n');

export const KDUMP_TOOLS = [
  '# kdump-tools configuration',
  'USE_KDUMP=1',
  'KDUMP_COREDIR="/var/crash"',
  '#KDUMP_CMDLINE=""',
  'KDUMP_CMDLINE_APPEND="reset_devices systemd.unit=kdump-tools-dump.service nr_cpus=1 irqpoll nousb"',
  '',
].join('\n');

export const KEXEC_CMD = `/sbin/kexec -p --command-line="BOOT_IMAGE=/vmlinuz-${RELEASE} root=UUID=4b87a03b-0e78-42ca-a8ad-997e63bba4e0 ro console=tty0 console=ttyS0,115200n8 amd_iommu_dump=1 reset_devices systemd.unit=kdump-tools-dump.service nr_cpus=1 irqpoll nousb" --initrd=/var/lib/kdump/initrd.img /var/lib/kdump/vmlinuz\n`;

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `kdumpsim-doctor-${prefix}-`));
}

function put(root: string, rel: string, data: string | Buffer): void {
  const p = path.join(root, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, data);
}

/** Writes the fake host under a new temporary directory and returns its path. */
export function makeFakeRoot(): string {
  const root = tempDir('root');
  put(root, 'proc/cpuinfo', CPUINFO);
  put(root, 'proc/cmdline', CMDLINE);
  put(root, 'proc/iomem', IOMEM);
  put(root, 'proc/meminfo', MEMINFO);
  put(root, 'proc/4242/cmdline', '/usr/bin/qemu-system-x86_64\0-machine\0q35,confidential-guest-support=sev0\0-object\0sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1\0');
  put(root, 'proc/4243/cmdline', '/usr/libexec/qemu-kvm\0-object\0{"qom-type":"sev-snp-guest","id":"sev0"}\0');
  put(root, 'proc/4300/cmdline', 'grep\0sev-snp-guest\0');
  put(root, 'proc/4301/cmdline', '/usr/bin/qemu-system-x86_64\0-machine\0q35\0');
  put(root, 'sys/kernel/kexec_loaded', '0\n');
  put(root, 'sys/kernel/kexec_crash_loaded', '1\n');
  put(root, 'sys/kernel/kexec_crash_size', '536870912\n');
  put(root, 'sys/kernel/vmcoreinfo', '0x000000017fe8c000 1024\n');
  put(root, 'sys/module/kvm_amd/parameters/sev', 'Y\n');
  put(root, 'sys/module/kvm_amd/parameters/sev_es', 'Y\n');
  put(root, 'sys/module/kvm_amd/parameters/sev_snp', 'Y\n');
  put(root, 'sys/module/kernel/parameters/crash_kexec_post_notifiers', 'Y\n');
  put(root, 'sys/class/iommu/ivhd0/amd-iommu/cap', '190b0\n');
  put(root, 'sys/class/iommu/ivhd0/amd-iommu/features', '841f77e022094ace:0\n');
  put(root, 'sys/class/iommu/ivhd1/amd-iommu/cap', '190b0\n');
  put(root, 'sys/class/iommu/ivhd1/amd-iommu/features', '25bf732fa2295afe\n');
  put(root, `boot/config-${RELEASE}`, '# Automatically generated file\nCONFIG_CRASH_DUMP=y\nCONFIG_KEXEC_FILE=y\nCONFIG_AMD_MEM_ENCRYPT=y\n# CONFIG_AMD_MEM_ENCRYPT_ACTIVE_BY_DEFAULT is not set\nCONFIG_KVM_AMD=m\nCONFIG_LOCALVERSION=""\n');
  put(root, 'etc/default/kdump-tools', KDUMP_TOOLS);
  put(root, 'var/crash/kexec_cmd', KEXEC_CMD);
  fs.mkdirSync(path.join(root, 'var/lib/kdump'), { recursive: true });
  fs.symlinkSync(`/boot/vmlinuz-${RELEASE}`, path.join(root, 'var/lib/kdump/vmlinuz'));
  return root;
}

/** Stands in for uname, journalctl and dmesg; `journal: false` makes journalctl fail as on a host without one. */
export function fakeRun(opts: { journal?: boolean; dmesgDenied?: boolean } = {}): RunCommand {
  return (file, args) => {
    if (file === 'uname' && args[0] === '-r') return Buffer.from(RELEASE + '\n');
    if (file === 'journalctl') {
      if (opts.journal === false) return Buffer.from('No journal files were found.\n-- No entries --\n');
      return Buffer.from(KERNEL_LOG);
    }
    if (file === 'dmesg') {
      if (opts.dmesgDenied) {
        throw Object.assign(new Error('Command failed: dmesg'), { status: 1, stderr: Buffer.from('dmesg: read kernel buffer failed: Operation not permitted\n') });
      }
      return Buffer.from(KERNEL_LOG.replace(/^Jan 21 \S+ snp kernel: /gm, '[    1.000000] '));
    }
    throw Object.assign(new Error(`spawnSync ${file} ENOENT`), { code: 'ENOENT' });
  };
}
