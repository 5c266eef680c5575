// The small host-file parsers, each on the exact formats the kernel prints
// (reference §1.1–§1.6, §1.9) and on what goes wrong with them on real hosts.

import { describe, expect, it } from 'vitest';
import { parseCpuinfo } from '../../src/doctor/parse/cpuinfo.js';
import { parseIomem } from '../../src/doctor/parse/iomem.js';
import { amdUnit, intelUnit, parseAmdFeatures, parseIntelEcap, unitKind } from '../../src/doctor/parse/iommu-sysfs.js';
import { parseKernelConfig } from '../../src/doctor/parse/kernel-config.js';
import { parseMemTotal } from '../../src/doctor/parse/meminfo.js';
import { parseHex64, parseSysfsBool, parseSysfsHex, parseSysfsInt, parseVmcoreinfoSysfs } from '../../src/doctor/parse/sysfs-value.js';
import { CPUINFO, IOMEM } from './fake-host.js';

describe('/proc/cpuinfo', () => {
  it('vendor, count and the first CPU flags', () => {
    const c = parseCpuinfo(CPUINFO);
    expect(c.vendor).toMatchObject({ known: true, value: 'amd', evidence: [{ file: '/proc/cpuinfo', line: 2, text: 'vendor_id\t: AuthenticAMD' }] });
    expect(c.count).toMatchObject({ known: true, value: 2 });
    expect(c.flags.known && c.flags.value).toEqual(expect.arrayContaining(['sme', 'sev', 'sev_es', 'sev_snp']));
    expect(c.flags.evidence[0]!.line).toBe(5);
  });

  it('Intel and other vendors', () => {
    expect(parseCpuinfo('processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vmx\n').vendor).toMatchObject({ value: 'intel' });
    expect(parseCpuinfo('processor\t: 0\nvendor_id\t: HygonGenuine\nflags\t\t: fpu\n').vendor).toMatchObject({ value: 'other' });
  });

  it("a cpuinfo without a flags line is unknown with the reason, not an empty flag list", () => {
    const c = parseCpuinfo('processor\t: 0\nvendor_id\t: AuthenticAMD\n');
    expect(c.flags).toEqual({ known: false, reason: "/proc/cpuinfo: no 'flags' line", evidence: [] });
    expect(parseCpuinfo('garbage').count).toMatchObject({ known: false, reason: "/proc/cpuinfo: no 'processor' line" });
  });
});

describe('/proc/meminfo', () => {
  it('MemTotal in bytes', () => {
    expect(parseMemTotal('MemTotal:       16316412 kB\n')).toMatchObject({ known: true, value: 16316412 * 1024, evidence: [{ line: 1 }] });
  });
  it('a mangled MemTotal line is unknown', () => {
    expect(parseMemTotal('MemTotal: lots\n')).toMatchObject({ known: false, reason: `/proc/meminfo: 'MemTotal' line is not "<n> kB"` });
    expect(parseMemTotal('MemFree: 1 kB\n')).toMatchObject({ known: false, reason: "/proc/meminfo: no 'MemTotal' line" });
  });
});

describe('/proc/iomem', () => {
  it('System RAM total from top-level ranges and the Crash kernel range under it', () => {
    const io = parseIomem(IOMEM);
    expect(io.systemRam).toMatchObject({ known: true, value: 0x9f000 + 0x7ff00000 + 0x380000000 });
    expect(io.crashKernel).toMatchObject({ known: true, value: [{ start: 0x60000000n, end: 0x7fffffffn }], evidence: [{ line: 5, text: '60000000-7fffffff : Crash kernel' }] });
  });

  it('main and low Crash kernel areas', () => {
    const io = parseIomem('00100000-bfffffff : System RAM\n  6f000000-7effffff : Crash kernel\n100000000-43fffffff : System RAM\n  42f000000-43effffff : Crash kernel\n');
    expect(io.crashKernel.known && io.crashKernel.value).toEqual([
      { start: 0x6f000000n, end: 0x7effffffn },
      { start: 0x42f000000n, end: 0x43effffffn },
    ]);
  });

  it('no Crash kernel line is a known empty list', () => {
    expect(parseIomem('00100000-bfffffff : System RAM\n').crashKernel).toMatchObject({ known: true, value: [] });
  });

  it('all-zero addresses (not root) are unknown with that reason', () => {
    const io = parseIomem('00000000-00000000 : Reserved\n00000000-00000000 : System RAM\n  00000000-00000000 : Crash kernel\n');
    expect(io.systemRam).toMatchObject({ known: false, reason: '/proc/iomem: all addresses read as zero (not read as root)' });
    expect(io.crashKernel).toMatchObject({ known: false, reason: '/proc/iomem: all addresses read as zero (not read as root)' });
  });
});

describe('sysfs values', () => {
  it.each([
    ['Y\n', true],
    ['N\n', false],
    ['1\n', true],
    ['0\n', false],
  ])('bool %j', (text, value) => {
    expect(parseSysfsBool(text, '/sys/module/kvm_amd/parameters/sev')).toMatchObject({ known: true, value });
  });

  it('a bool that is not Y/N/1/0 is unknown', () => {
    expect(parseSysfsBool('maybe\n', '/sys/x')).toMatchObject({ known: false, reason: '/sys/x: expected Y, N, 1 or 0, read "maybe"' });
  });

  it('"%d" and "%zd" integers', () => {
    expect(parseSysfsInt('536870912\n', '/sys/kernel/kexec_crash_size')).toMatchObject({ known: true, value: 536870912 });
    expect(parseSysfsInt('0\n', '/sys/kernel/kexec_crash_size')).toMatchObject({ known: true, value: 0 });
    expect(parseSysfsInt('-1\n', '/sys/x').known).toBe(false);
    expect(parseSysfsInt('-1\n', '/sys/x', true)).toMatchObject({ known: true, value: -1 });
    expect(parseSysfsInt('99999999999999999999\n', '/sys/x').known).toBe(false);
  });

  it('hex registers as BigInt', () => {
    expect(parseHex64('841f77e022094ace')).toBe(0x841f77e022094acen);
    expect(parseHex64('0xffffffffffffffff')).toBe(0xffffffffffffffffn);
    expect(parseHex64('1ffffffffffffffff')).toBeUndefined();
    expect(parseSysfsHex('f0050c40f0da1e\n', '/sys/x')).toMatchObject({ known: true, value: 0xf0050c40f0da1en });
  });

  it('vmcoreinfo "%pa %x"', () => {
    expect(parseVmcoreinfoSysfs('0x000000017fe8c000 1024\n')).toMatchObject({ known: true, value: { address: 0x17fe8c000n, size: 0x1024 } });
  });
});

describe('/sys/class/iommu', () => {
  it('AMD features: "%llx" (older) and "%llx:%llx" (EFR:EFR2); SNPSup is EFR bit 63', () => {
    expect(parseAmdFeatures('25bf732fa2295afe\n')).toEqual({ efr: 0x25bf732fa2295afen });
    expect(parseAmdFeatures('841f77e022094ace:0\n')).toEqual({ efr: 0x841f77e022094acen, efr2: 0n });
    expect(parseAmdFeatures('x:y')).toBeUndefined();
    expect(amdUnit('ivhd0', 0x841f77e022094acen)).toEqual({ name: 'ivhd0', kind: 'amd', efr: 0x841f77e022094acen, snpSup: true });
    expect(amdUnit('ivhd0', 0x25bf732fa2295afen).snpSup).toBe(false);
  });

  it('Intel ecap; SMTS is bit 43', () => {
    const ecap = parseIntelEcap('19e2ff0505e\n')!;
    expect(intelUnit('dmar0', ecap).scalableModeSupported).toBe(false);
    expect(intelUnit('dmar0', (1n << 43n) | 0xf0050c40f0da1en).scalableModeSupported).toBe(true);
  });

  it('unit kind from the sysfs group, else the name', () => {
    expect(unitKind('ivhd0', ['amd-iommu', 'power'])).toBe('amd');
    expect(unitKind('dmar3', [])).toBe('intel');
    expect(unitKind('virtio-iommu', [])).toBeUndefined();
  });
});

describe('/boot/config-<release>', () => {
  it('y, m, strings and "is not set" as n', () => {
    const f = parseKernelConfig('CONFIG_CRASH_DUMP=y\nCONFIG_KVM_AMD=m\n# CONFIG_AMD_MEM_ENCRYPT_ACTIVE_BY_DEFAULT is not set\nCONFIG_X=1\n', '/boot/config-6.9.0', [
      'CONFIG_CRASH_DUMP',
      'CONFIG_KVM_AMD',
      'CONFIG_AMD_MEM_ENCRYPT_ACTIVE_BY_DEFAULT',
      'CONFIG_CMDLINE',
    ]);
    expect(f).toMatchObject({ known: true, value: { CONFIG_CRASH_DUMP: 'y', CONFIG_KVM_AMD: 'm', CONFIG_AMD_MEM_ENCRYPT_ACTIVE_BY_DEFAULT: 'n' } });
    expect(f.evidence.map((e) => e.line)).toEqual([1, 2, 3]);
    expect(parseKernelConfig('CONFIG_CMDLINE="a \\"b\\""\n', 'f', ['CONFIG_CMDLINE'])).toMatchObject({ value: { CONFIG_CMDLINE: 'a "b"' } });
  });

  it('a file with no CONFIG_ lines is unknown', () => {
    expect(parseKernelConfig('hello\n', '/boot/config-x')).toMatchObject({ known: false, reason: '/boot/config-x: no CONFIG_ lines' });
  });
});
