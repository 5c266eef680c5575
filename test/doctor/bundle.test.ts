// Bundles: what collectBundle copies from a (fake) live host reads back, from
// a directory, a .tar and a .tar.gz, to the same facts as reading the host
// directly; a bundle never overwrites anything; a malformed tar is an
// InputError naming the file, the offset and the field.

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { collectBundle, HOST_FILES, MANIFEST } from '../../src/doctor/bundle.js';
import type { HostFacts } from '../../src/doctor/host-facts.js';
import { bundleDir, bundleTar, liveHost, openBundle, readCapped } from '../../src/doctor/host-source.js';
import { readHostFacts } from '../../src/doctor/read-host-facts.js';
import { buildTar, TarFormatError } from '../../src/doctor/ustar.js';
import { InputError } from '../../src/util/errors.js';
import { CONSOLE_LOG, fakeRun, makeFakeRoot, RELEASE, tempDir } from './fake-host.js';

const root = makeFakeRoot();
const out = tempDir('out');
const consoleLog = path.join(out, 'serial.log');
fs.writeFileSync(consoleLog, CONSOLE_LOG);
afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(out, { recursive: true, force: true });
});

const now = new Date('2026-01-21T06:59:11Z');

/** Facts without what legitimately differs between sources: origin, and a command output's label (a bundle names its commands/ file). */
function comparable(f: HostFacts): unknown {
  const rest: Partial<HostFacts> = { ...f };
  delete rest.origin;
  delete rest.sources;
  return JSON.parse(JSON.stringify(rest, (_k, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v)).replace(/"commands\/[a-z-]+"|"journalctl -k -b"|"uname -r"|"\/proc\/\*\/cmdline \(sev-snp-guest\)"|"[^"]*serial\.log"/g, '"COMMAND"'));
}

describe('reading the fake SNP host directly', () => {
  const facts = readHostFacts(liveHost(root, { run: fakeRun(), consoleLog }), 'fake root');

  it('fills every fact from the files', () => {
    expect(facts.kernelRelease).toMatchObject({ known: true, value: RELEASE });
    expect(facts.cpuVendor).toMatchObject({ known: true, value: 'amd' });
    expect(facts.cpuCount).toMatchObject({ known: true, value: 2 });
    expect(facts.memoryBytes).toMatchObject({ known: true, value: 0xa0000 - 0x1000 + 0x7ff00000 + 0x380000000, evidence: [{ file: '/proc/iomem', line: 2 }, { line: 3 }, { line: 7 }] });
    expect(facts.crashKernelRanges).toMatchObject({ known: true, value: [{ start: 0x60000000n, end: 0x7fffffffn }] });
    expect(facts.kexecCrashLoaded).toMatchObject({ known: true, value: true });
    expect(facts.kexecCrashSize).toMatchObject({ known: true, value: 512 * 2 ** 20 });
    expect(facts.kvmAmd.sevSnp).toMatchObject({ known: true, value: true, evidence: [{ file: '/sys/module/kvm_amd/parameters/sev_snp', line: 1, text: 'Y' }] });
    expect(facts.crashKexecPostNotifiers).toMatchObject({ known: true, value: true });
    expect(facts.iommus).toMatchObject({
      known: true,
      value: [
        { name: 'ivhd0', kind: 'amd', efr: 0x841f77e022094acen, snpSup: true },
        { name: 'ivhd1', kind: 'amd', efr: 0x25bf732fa2295afen, snpSup: false },
      ],
    });
    expect(facts.kernelConfig).toMatchObject({ known: true, value: { CONFIG_CRASH_DUMP: 'y', CONFIG_AMD_MEM_ENCRYPT_ACTIVE_BY_DEFAULT: 'n', CONFIG_KVM_AMD: 'm' } });
    expect(facts.capture).toMatchObject({ known: true, value: { tool: 'kdump-tools', kernelRelease: RELEASE } });
    expect(facts.snpGuests).toMatchObject({ known: true, value: 2 });
    expect(facts.log.map((h) => h.kind)).toEqual(['linux-version', 'command-line', 'rmp-table', 'crashkernel-reserved', 'amd-vi-efr', 'iommu-snp-enabled', 'psp-sev-enabled', 'sev-api', 'kvm-sev']);
    expect(facts.captureLog.map((h) => h.kind)).toEqual(['amd-vi-kdump', 'completion-wait-timeout', 'timer-check', 'panic']);
  });

  it('lists every source with its status and whether it is optional', () => {
    const byPath = new Map(facts.sources.map((s) => [s.path, s]));
    expect(byPath.get('/proc/cpuinfo')).toEqual({ path: '/proc/cpuinfo', status: 'read', optional: false });
    expect(byPath.get('/proc/meminfo')).toMatchObject({ status: 'read', optional: true }); // iomem gave the RAM size
    expect(byPath.get('/etc/kdump.conf')).toMatchObject({ status: 'missing', optional: true });
    expect(byPath.get('/var/lib/kdump/vmlinuz')).toMatchObject({ status: 'read', optional: true });
    expect(byPath.get('journalctl -k -b')).toMatchObject({ status: 'read', optional: false });
    expect(byPath.get(consoleLog)).toMatchObject({ status: 'read', optional: true });
    for (const s of facts.sources) if (s.status !== 'read') expect(s.reason, s.path).toBeTruthy();
  });

  it('falls back to dmesg when the journal has nothing, and says why the log is missing when dmesg is denied', () => {
    const viaDmesg = readHostFacts(liveHost(root, { run: fakeRun({ journal: false }) }), 'fake');
    expect(viaDmesg.sources.find((s) => s.path === 'dmesg')).toMatchObject({ status: 'read', reason: 'journalctl: no entries for this boot' });
    expect(viaDmesg.log.length).toBe(facts.log.length);
    const denied = readHostFacts(liveHost(root, { run: fakeRun({ journal: false, dmesgDenied: true }) }), 'fake');
    expect(denied.log).toEqual([]);
    expect(denied.sources.find((s) => s.path === 'journalctl -k -b')).toMatchObject({
      status: 'unreadable',
      optional: false,
      reason: 'journalctl: no entries for this boot; dmesg: permission denied (dmesg_restrict?): dmesg: read kernel buffer failed: Operation not permitted',
    });
  });
});

describe('live reads', () => {
  it('stop at the cap and say so, whatever size the file claims', () => {
    expect(readCapped(path.join(root, 'proc/cpuinfo'), 10)).toEqual({ ok: true, text: 'processor\t', note: 'truncated at 10 bytes' });
    expect(readCapped(path.join(root, 'proc'), 10)).toMatchObject({ ok: false, status: 'unreadable', reason: 'is a directory' });
    expect(readCapped(path.join(root, 'nope'), 10)).toMatchObject({ ok: false, status: 'missing' });
  });

  it('a command that is not installed is missing, with its name', () => {
    const host = liveHost(root, { run: fakeRun() });
    expect(host.command('console-log')).toMatchObject({ ok: false, status: 'missing', reason: 'no console log given' });
    const none = liveHost(root, {
      run: (file) => {
        throw Object.assign(new Error(`spawnSync ${file} ENOENT`), { code: 'ENOENT' });
      },
    });
    expect(none.command('uname-r')).toEqual({ ok: false, status: 'missing', reason: 'uname: not installed' });
    expect(none.command('kernel-log')).toEqual({ ok: false, status: 'missing', reason: 'journalctl: not installed; dmesg: not installed' });
  });
});

describe('bundles round trip', () => {
  const direct = readHostFacts(liveHost(root, { run: fakeRun(), consoleLog }), 'fake root');

  it.each(['bundle-dir', 'bundle.tar', 'bundle.tar.gz'])('%s gives the same facts as the host itself', (name) => {
    const dest = path.join(out, name);
    const sources = collectBundle(dest, { root, run: fakeRun(), consoleLog, now });
    expect(sources.find((s) => s.path === '/proc/cpuinfo')).toMatchObject({ status: 'read' });
    const fromBundle = readHostFacts(openBundle(dest), dest);
    expect(comparable(fromBundle)).toEqual(comparable(direct));
    expect(fromBundle.origin).toBe(dest);
  });

  it('has the documented layout and manifest', () => {
    const dir = path.join(out, 'bundle-dir');
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST), 'utf8'));
    expect(manifest).toMatchObject({ 'kdumpsim-bundle': 1, collected: '2026-01-21T06:59:11.000Z' });
    expect(manifest.sources.length).toBeGreaterThan(HOST_FILES.length);
    expect(fs.readFileSync(path.join(dir, 'proc/cmdline'), 'utf8')).toContain('crashkernel=512M');
    expect(fs.readFileSync(path.join(dir, 'var/lib/kdump/vmlinuz.symlink'), 'utf8')).toBe(`/boot/vmlinuz-${RELEASE}\n`);
    expect(fs.readFileSync(path.join(dir, 'commands/uname-r'), 'utf8')).toBe(`${RELEASE}\n`);
    expect(fs.readFileSync(path.join(dir, 'commands/snp-guests'), 'utf8').split('\n')).toEqual([
      '/usr/bin/qemu-system-x86_64 -machine q35,confidential-guest-support=sev0 -object sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1',
      '/usr/libexec/qemu-kvm -object {"qom-type":"sev-snp-guest","id":"sev0"}',
      'grep sev-snp-guest',
      '',
    ]);
    expect(fs.existsSync(path.join(dir, 'commands/console-log'))).toBe(true);
    expect(fs.existsSync(path.join(dir, `boot/config-${RELEASE}`))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'sys/class/iommu/ivhd0/amd-iommu/features'))).toBe(true);
    // Nothing left behind beside it.
    expect(fs.readdirSync(out).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  it('an empty snp-guests file means no guests, not an unknown', () => {
    const dir = path.join(out, 'no-guests');
    fs.cpSync(path.join(out, 'bundle-dir'), dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'commands/snp-guests'), '');
    expect(readHostFacts(bundleDir(dir), dir).snpGuests).toMatchObject({ known: true, value: 0 });
  });

  it('the tar is one that GNU tar lists', () => {
    let listing: string;
    try {
      listing = execFileSync('tar', ['-tzf', path.join(out, 'bundle.tar.gz')], { encoding: 'utf8' });
    } catch {
      return; // no tar on this machine
    }
    expect(listing.split('\n')).toEqual(expect.arrayContaining(['MANIFEST.json', 'proc/cmdline', 'commands/kernel-log', 'var/lib/kdump/vmlinuz.symlink']));
  });

  it('a tar made by hand from a bundle folder (one top folder) reads too', () => {
    const dir = path.join(out, 'bundle-dir');
    const hand = path.join(out, 'hand.tar');
    try {
      execFileSync('tar', ['-cf', hand, '-C', out, 'bundle-dir']);
    } catch {
      return;
    }
    expect(comparable(readHostFacts(bundleTar(hand), hand))).toEqual(comparable(readHostFacts(bundleDir(dir), dir)));
  });

  it('refuses to overwrite an existing path, file or folder', () => {
    for (const name of ['bundle-dir', 'bundle.tar', 'bundle.tar.gz']) {
      const dest = path.join(out, name);
      const before = fs.statSync(dest).mtimeMs;
      expect(() => collectBundle(dest, { root, run: fakeRun(), now })).toThrow(InputError);
      expect(() => collectBundle(dest, { root, run: fakeRun(), now })).toThrow(/already exists/);
      expect(fs.statSync(dest).mtimeMs).toBe(before);
    }
  });

  it('a missing bundle path or one without a manifest is an InputError', () => {
    expect(() => openBundle(path.join(out, 'nope'))).toThrow(InputError);
    expect(() => bundleDir(root)).toThrow(/not a kdumpsim bundle/);
  });
});

describe('malformed tars', () => {
  const good = buildTar([{ name: 'MANIFEST.json', data: Buffer.from('{"kdumpsim-bundle":1}') }, { name: 'proc/cmdline', data: Buffer.from('ro\n') }], 0);
  /** Offset of the header for proc/cmdline: MANIFEST header + 1 data block, then the "proc" dir header. */
  const cmdlineHeader = 512 * 3;

  function write(name: string, data: Buffer): string {
    const p = path.join(out, name);
    fs.writeFileSync(p, data);
    return p;
  }

  function errorOf(p: string): TarFormatError {
    try {
      bundleTar(p);
    } catch (e) {
      if (e instanceof TarFormatError) return e;
      throw e;
    }
    throw new Error('no error');
  }

  it('reads the good one', () => {
    expect(bundleTar(write('good.tar', good)).read('/proc/cmdline')).toEqual({ ok: true, text: 'ro\n' });
  });

  it('a bad checksum names the offset and field', () => {
    const bad = Buffer.from(good);
    bad[cmdlineHeader + 10] = 0x41;
    const e = errorOf(write('bad-sum.tar', bad));
    expect(e).toBeInstanceOf(InputError);
    expect(e).toMatchObject({ offset: cmdlineHeader, field: 'chksum' });
    expect(e.message).toMatch(/bad-sum\.tar.*offset 1536, field chksum/);
  });

  it('a size past the end of the file', () => {
    const truncated = good.subarray(0, cmdlineHeader + 512 + 1);
    const bad = Buffer.from(truncated);
    bad.write('00000077777\0', cmdlineHeader + 124, 'latin1');
    fixChecksum(bad, cmdlineHeader);
    expect(errorOf(write('bad-size.tar', bad))).toMatchObject({ offset: cmdlineHeader, field: 'size' });
  });

  it('a non-octal number field', () => {
    const bad = Buffer.from(good);
    bad.write('0000x644', cmdlineHeader + 100, 'latin1');
    fixChecksum(bad, cmdlineHeader);
    expect(errorOf(write('bad-mode.tar', bad))).toMatchObject({ offset: cmdlineHeader, field: 'mode' });
  });

  it('a wrong magic, and a header cut short', () => {
    const bad = Buffer.from(good);
    bad.write('ustaR', cmdlineHeader + 257, 'latin1');
    fixChecksum(bad, cmdlineHeader);
    expect(errorOf(write('bad-magic.tar', bad))).toMatchObject({ offset: cmdlineHeader, field: 'magic' });
    expect(errorOf(write('short.tar', good.subarray(0, cmdlineHeader + 100)))).toMatchObject({ offset: cmdlineHeader });
  });

  it('a path that climbs out, and an unsupported entry type', () => {
    const bad = Buffer.from(good);
    bad.write('../../etc/passwd\0', cmdlineHeader, 'latin1');
    fixChecksum(bad, cmdlineHeader);
    expect(errorOf(write('bad-name.tar', bad))).toMatchObject({ field: 'name' });
    const dev = Buffer.from(good);
    dev.write('3', cmdlineHeader + 156, 'latin1');
    fixChecksum(dev, cmdlineHeader);
    expect(errorOf(write('bad-type.tar', dev))).toMatchObject({ field: 'typeflag' });
  });

  it('a corrupt gzip is an InputError too', () => {
    const gz = zlib.gzipSync(good);
    expect(() => bundleTar(write('bad.tar.gz', gz.subarray(0, gz.length - 20)))).toThrow(InputError);
  });
});

function fixChecksum(h: Buffer, at: number): void {
  h.fill(0x20, at + 148, at + 156);
  let sum = 0;
  for (let i = at; i < at + 512; i++) sum += h[i]!;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', at + 148, 'latin1');
}
