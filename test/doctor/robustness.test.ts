// Whatever a host (or a hand-edited bundle) holds — truncated files, empty
// files, random bytes — the parsers and readHostFacts never throw, every
// fact is known or unknown with a reason, and the output stays bounded. A
// corrupted tar is either read or refused with a TarFormatError/InputError.

import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { HOST_FILES } from '../../src/doctor/bundle.js';
import type { Fact, HostFacts } from '../../src/doctor/host-facts.js';
import { bundleTar, type CommandName, type HostSource, type ReadResult } from '../../src/doctor/host-source.js';
import { parseCpuinfo } from '../../src/doctor/parse/cpuinfo.js';
import { EVIDENCE_TEXT_MAX } from '../../src/doctor/parse/fact.js';
import { parseIomem } from '../../src/doctor/parse/iomem.js';
import { parseAmdFeatures, parseIntelEcap } from '../../src/doctor/parse/iommu-sysfs.js';
import { parseCaptureSetup, parseKexecCmd, parseShellVars } from '../../src/doctor/parse/kdump-config.js';
import { parseKernelConfig } from '../../src/doctor/parse/kernel-config.js';
import { parseKernelLog } from '../../src/doctor/parse/kernel-log.js';
import { parseMemTotal } from '../../src/doctor/parse/meminfo.js';
import { parseSysfsBool, parseSysfsHex, parseSysfsInt, parseVmcoreinfoSysfs } from '../../src/doctor/parse/sysfs-value.js';
import { readHostFacts } from '../../src/doctor/read-host-facts.js';
import { buildTar, TarFormatError } from '../../src/doctor/ustar.js';
import { InputError } from '../../src/util/errors.js';
import { CMDLINE, CONSOLE_LOG, CPUINFO, IOMEM, KDUMP_TOOLS, KERNEL_LOG, KEXEC_CMD, MEMINFO, RELEASE, tempDir } from './fake-host.js';

const REAL: Record<string, string> = {
  '/proc/cpuinfo': CPUINFO,
  '/proc/cmdline': CMDLINE,
  '/proc/iomem': IOMEM,
  '/proc/meminfo': MEMINFO,
  '/sys/kernel/kexec_crash_loaded': '1\n',
  '/sys/kernel/kexec_crash_size': '536870912\n',
  '/sys/kernel/vmcoreinfo': '0x000000017fe8c000 1024\n',
  '/sys/module/kvm_amd/parameters/sev_snp': 'Y\n',
  '/sys/class/iommu/ivhd0/amd-iommu/features': '841f77e022094ace:0\n',
  '/sys/class/iommu/dmar0/intel-iommu/ecap': 'f0050c40f0da1e\n',
  [`/boot/config-${RELEASE}`]: 'CONFIG_CRASH_DUMP=y\n# CONFIG_KEXEC is not set\n',
  '/etc/default/kdump-tools': KDUMP_TOOLS,
  '/etc/sysconfig/kdump': 'KDUMP_CPUS=4\nKDUMP_SAVEDIR="/var/crash"\n',
  '/var/crash/kexec_cmd': KEXEC_CMD,
};
const COMMANDS: Record<CommandName, string> = { 'uname-r': RELEASE + '\n', 'kernel-log': KERNEL_LOG, 'snp-guests': '/usr/bin/qemu-system-x86_64 -object sev-snp-guest,id=s\n', 'console-log': CONSOLE_LOG };

/** A real file, a random prefix of one, empty, or random bytes (decoded as the source would). */
function content(real: string): fc.Arbitrary<string | undefined> {
  return fc.oneof(
    fc.constant(real),
    fc.nat({ max: real.length }).map((n) => real.slice(0, n)),
    fc.constant(''),
    fc.constant(undefined),
    fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b).toString('utf8')),
    fc.string({ maxLength: 300 }),
    fc.tuple(fc.nat({ max: real.length }), fc.string({ maxLength: 40 })).map(([n, junk]) => real.slice(0, n) + junk + real.slice(n)),
  );
}

function asRead(text: string | undefined): ReadResult {
  if (text === undefined) return { ok: false, status: 'missing', reason: 'no such file' };
  if (text.trim() === '') return { ok: false, status: 'empty', reason: 'empty' };
  return { ok: true, text };
}

function memorySource(files: Record<string, string | undefined>, commands: Record<string, string | undefined>): HostSource {
  return {
    read: (p) => asRead(files[p]),
    list(dir) {
      const names = new Set<string>();
      for (const p of Object.keys(files)) if (files[p] !== undefined && p.startsWith(dir + '/')) names.add(p.slice(dir.length + 1).split('/')[0]!);
      return [...names].sort();
    },
    readLink: (p) => (p === '/var/lib/kdump/vmlinuz' ? files['link'] : undefined),
    command: (name) => (name === 'snp-guests' && commands[name] === '' ? { ok: true, text: '' } : asRead(commands[name])),
  };
}

function checkFact(name: string, f: Fact<unknown>): void {
  expect(typeof f.known, name).toBe('boolean');
  if (!f.known) expect(f.reason.length, name).toBeGreaterThan(0);
  expect(f.evidence.length, name).toBeLessThanOrEqual(200);
  for (const e of f.evidence) expect((e.text ?? '').length, name).toBeLessThanOrEqual(EVIDENCE_TEXT_MAX + 1);
}

function allFacts(h: HostFacts): [string, Fact<unknown>][] {
  return [
    ['kernelRelease', h.kernelRelease],
    ['cmdline', h.cmdline],
    ['cpuVendor', h.cpuVendor],
    ['cpuCount', h.cpuCount],
    ['cpuFlags', h.cpuFlags],
    ['memoryBytes', h.memoryBytes],
    ['crashKernelRanges', h.crashKernelRanges],
    ['kexecCrashLoaded', h.kexecCrashLoaded],
    ['kexecCrashSize', h.kexecCrashSize],
    ['kvmAmd.sev', h.kvmAmd.sev],
    ['kvmAmd.sevEs', h.kvmAmd.sevEs],
    ['kvmAmd.sevSnp', h.kvmAmd.sevSnp],
    ['crashKexecPostNotifiers', h.crashKexecPostNotifiers],
    ['iommus', h.iommus],
    ['kernelConfig', h.kernelConfig],
    ['capture', h.capture],
    ['snpGuests', h.snpGuests],
  ];
}

const dir = tempDir('fuzz');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('parsers on truncated, empty and garbage input', () => {
  it('every parser returns a fact or a bounded list and never throws', () => {
    const anyText = fc.oneof(content(CPUINFO), content(IOMEM), content(KERNEL_LOG), content(KDUMP_TOOLS), content(KEXEC_CMD), content(CONSOLE_LOG)).map((t) => t ?? '');
    fc.assert(
      fc.property(anyText, (text) => {
        const lines = text.split('\n').length;
        const cpu = parseCpuinfo(text);
        checkFact('vendor', cpu.vendor);
        checkFact('count', cpu.count);
        checkFact('flags', cpu.flags);
        checkFact('memtotal', parseMemTotal(text));
        const io = parseIomem(text);
        checkFact('ram', io.systemRam);
        checkFact('crash', io.crashKernel);
        checkFact('bool', parseSysfsBool(text, '/x'));
        checkFact('int', parseSysfsInt(text, '/x'));
        checkFact('hex', parseSysfsHex(text, '/x'));
        checkFact('vmcoreinfo', parseVmcoreinfoSysfs(text));
        checkFact('config', parseKernelConfig(text, '/boot/config-x'));
        parseAmdFeatures(text);
        parseIntelEcap(text);
        parseKexecCmd(text);
        expect(parseShellVars(text).size).toBeLessThanOrEqual(lines);
        const hits = parseKernelLog(text, 'log');
        expect(hits.length).toBeLessThanOrEqual(lines);
        for (const h of hits) expect((h.evidence.text ?? '').length).toBeLessThanOrEqual(EVIDENCE_TEXT_MAX + 1);
        checkFact('capture', parseCaptureSetup({ kdumpTools: text, kexecCmd: text, procCmdline: text }));
        checkFact('capture-suse', parseCaptureSetup({ sysconfigKdump: text + '\nKDUMP_CPUS=1', procCmdline: text }));
      }),
      { numRuns: 300 },
    );
  });

  it('one 4 MiB line of garbage is cut in the evidence', () => {
    const huge = 'flags\t\t: ' + 'x'.repeat(4 * 2 ** 20);
    const f = parseCpuinfo(`processor\t: 0\n${huge}\n`).flags;
    expect(f.evidence[0]!.text!.length).toBe(EVIDENCE_TEXT_MAX + 1);
  });
});

describe('readHostFacts on a host of truncated and garbage files', () => {
  it('never throws; every fact is known or has a reason; every source has a status', () => {
    const fileArbs = Object.fromEntries(Object.entries(REAL).map(([p, t]) => [p, content(t)]));
    const cmdArbs = Object.fromEntries(Object.entries(COMMANDS).map(([n, t]) => [n, content(t)]));
    fc.assert(
      fc.property(fc.record(fileArbs), fc.record(cmdArbs), fc.option(fc.string({ maxLength: 60 })), (files, commands, link) => {
        const h = readHostFacts(memorySource({ ...files, link: link ?? undefined }, commands), 'fuzz');
        for (const [name, f] of allFacts(h)) checkFact(name, f);
        expect(h.origin).toBe('fuzz');
        for (const s of h.sources) {
          expect(['read', 'missing', 'unreadable', 'empty', 'unparsed']).toContain(s.status);
          if (s.status !== 'read') expect(s.reason, s.path).toBeTruthy();
        }
        // Every required host file of the bundle list is accounted for.
        for (const e of HOST_FILES.filter((x) => !x.optional && !x.path.includes('*'))) {
          expect(h.sources.some((s) => s.path === e.path), e.path).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('an all-empty host gives unknowns with reasons, not guesses', () => {
    const h = readHostFacts(memorySource({}, {}), 'empty');
    expect(h.cpuFlags).toEqual({ known: false, reason: '/proc/cpuinfo: missing (no such file)', evidence: [] });
    expect(h.memoryBytes.known).toBe(false);
    expect(h.capture).toMatchObject({ known: false, reason: expect.stringContaining('no kdump tool configuration') });
    expect(h.iommus).toMatchObject({ known: true, value: [] });
    expect(h.log).toEqual([]);
  });

  it('"unparsed" is the status of a file that is there but does not parse', () => {
    const h = readHostFacts(memorySource({ '/proc/cpuinfo': 'processor\t: 0\nvendor_id\t: AuthenticAMD\n', '/sys/kernel/kexec_crash_size': 'lots\n' }, {}), 'x');
    expect(h.sources.find((s) => s.path === '/proc/cpuinfo')).toEqual({ path: '/proc/cpuinfo', status: 'unparsed', reason: "/proc/cpuinfo: no 'flags' line", optional: false });
    expect(h.sources.find((s) => s.path === '/sys/kernel/kexec_crash_size')).toMatchObject({ status: 'unparsed', optional: false });
  });
});

describe('a corrupted tar is read or refused, never anything else', () => {
  const good = buildTar(
    Object.entries(REAL).map(([p, t]) => ({ name: p.slice(1), data: Buffer.from(t) })).concat([{ name: 'MANIFEST.json', data: Buffer.from('{"kdumpsim-bundle":1}') }]),
    1_700_000_000,
  );

  it('random byte flips and truncations', () => {
    let n = 0;
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat({ max: good.length - 1 }), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), fc.nat({ max: good.length }), (flips, cut) => {
        const bad = Buffer.from(good.subarray(0, Math.max(cut, 1)));
        for (const [at, v] of flips) if (at < bad.length) bad[at] = v;
        const p = path.join(dir, `fuzz-${n++}.tar`);
        fs.writeFileSync(p, bad);
        try {
          const src = bundleTar(p);
          for (const f of allFacts(readHostFacts(src, p))) checkFact(f[0], f[1]);
        } catch (e) {
          expect(e).toBeInstanceOf(InputError);
          if (e instanceof TarFormatError) expect(e.message).toContain(`offset ${e.offset}`);
        } finally {
          fs.rmSync(p);
        }
      }),
      { numRuns: 200 },
    );
  });
});
