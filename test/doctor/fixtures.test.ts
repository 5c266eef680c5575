// The doctor on the fixture bundles F1..F10, each built around a real log
// excerpt (kdump-doctor-facts.md §4): the diagnosis the reference gives, its
// evidence by file and line, and fixes that a re-run confirmed.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { openBundle } from '../../src/doctor/host-source.js';
import { readHostFacts } from '../../src/doctor/read-host-facts.js';
import { diagnose, doctorExitCode, type Diagnosis } from '../../src/doctor/diagnose.js';
import { scenarioSchema } from '../../src/scenario/schema.js';
import { runScenario } from '../../src/scenario/run.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'doctor');

function doctor(name: string): Diagnosis {
  const dir = join(FIXTURES, name);
  return diagnose(readHostFacts(openBundle(dir), dir));
}

const line = (d: Diagnosis, field: string) => d.model.lines.find((l) => l.field === field);
const fixIds = (d: Diagnosis): string[][] => d.fixes.map((f) => f.fixes.map((x) => x.id));
const evidenceFiles = (d: Diagnosis, field: string): string[] => (line(d, field)?.evidence ?? []).map((e) => `${e.file}:${e.line ?? ''}`);

describe('F1: SNP host whose capture kernel dies on the locked IOMMU', () => {
  const d = doctor('F1-snp-host-locked-iommu');
  it('not ready: the capture kernel panics in check_timer after Completion-Wait timeouts, as the host\'s console showed', () => {
    expect(d.readiness).toBe('not-ready');
    expect(doctorExitCode(d)).toBe(1);
    expect(d.runs.every((r) => r.verdict === 'crash-kernel-panic')).toBe(true);
    expect(d.reasons.some((r) => r.includes('writes to base registers ignored under SNP enforcement'))).toBe(true);
    expect(d.reasons.some((r) => r.includes('capture kernel panics in check_timer'))).toBe(true);
    const seen = d.reproduced.map((e) => `${e.file}:${e.line}`);
    expect(seen).toContain('commands/console-log:1'); // Copied DEV table
    expect(seen).toContain('commands/console-log:2'); // Completion-Wait loop timed out
    expect(seen).toContain('commands/console-log:8'); // the panic
  });
  it('names its evidence: the SNP host tree release, the RMP line, the firmware line, EFR bit 63', () => {
    expect(line(d, 'firstKernel.profile')?.value).toBe('linux-6.5-snp-host');
    expect(evidenceFiles(d, 'machine.cpu.snp.rmp')).toEqual(['commands/kernel-log:4']);
    expect(line(d, 'machine.cpu.snp.firmware')?.value).toBe('1.54');
    expect(line(d, 'machine.iommu')?.because).toContain('bit 63 (SNPSup) set');
  });
  it('fixes confirmed by re-runs: a 6.18 capture kernel first; the unknown guest count was run both ways', () => {
    expect(d.model.unknowns.map((u) => u.fact)).toContain('whether SNP guests run when the host crashes');
    expect(fixIds(d)[0]).toEqual(['capture-kernel-linux-6.18']);
    expect(fixIds(d).flat()).toContain('bios-snp-off');
    for (const f of d.fixes) expect(f.verdicts.every((v) => v === 'dump-complete')).toBe(true);
    expect(d.fixes[0]!.fixes[0]!.lines.join('\n')).toContain('/etc/default/kdump-tools: KDUMP_KERNEL=');
    // A newer first kernel with the panic notifier alone does not help while guests may run.
    expect(d.rejected.map((r) => r.id)).toContain('no-snp-guests');
  });
});

describe('F2: SNP host with live SNP guests', () => {
  const d = doctor('F2-snp-host-live-guests');
  it('not ready: SNP_SHUTDOWN_EX refused with guests alive, then the capture kernel dies', () => {
    expect(d.readiness).toBe('not-ready');
    expect(line(d, 'machine.cpu.snp.guests')?.value).toBe('2');
    expect(evidenceFiles(d, 'machine.cpu.snp.guests')).toEqual(['commands/snp-guests:1', 'commands/snp-guests:2']);
    expect(line(d, 'firstKernel.profile')?.value).toBe('linux-6.9');
    expect(d.reasons.some((r) => r.includes('SNP_SHUTDOWN_EX failed (DFFLUSH_REQUIRED)'))).toBe(true);
    expect(d.reproduced.length).toBeGreaterThanOrEqual(4);
  });
  it('fixes: a 6.18 capture kernel, or no SNP (with what that costs)', () => {
    expect(fixIds(d)[0]).toEqual(['capture-kernel-linux-6.18']);
    const bios = d.fixes.find((f) => f.fixes[0]!.id === 'bios-snp-off');
    expect(bios?.fixes[0]!.drawback).toContain('no SEV-SNP guests');
    expect(d.rejected.map((r) => r.id)).toContain('sev-firmware-1.55');
  });
});

describe('F3: SNP refused because the IOMMU is in passthrough', () => {
  const d = doctor('F3-snp-refused-passthrough');
  it('ready: SNP never comes up, so the SNP kdump hazard is absent; firmware below 1.51 is noted', () => {
    expect(d.readiness).toBe('ready');
    expect(doctorExitCode(d)).toBe(0);
    expect(line(d, 'machine.cpu.snp.guests')?.because).toContain('kvm_amd.sev_snp is N');
    expect(line(d, 'machine.cpu.snp.firmware')?.value).toBe('1.49');
    expect(d.model.notes.some((n) => n.includes('below 1.51'))).toBe(true);
    expect(d.model.scenario.firstKernel?.cmdline).toContain('iommu=pt');
    // A firmware update would not change that: iommu=pt still rules SNP out, so no hazard is reported.
    expect(d.hazards).toEqual([]);
    expect(d.runsMade).toBeGreaterThan(d.runs.length);
  });
});

describe('F4: SME host whose capture kernel runs without mem_encrypt', () => {
  const d = doctor('F4-sme-capture-without-mem-encrypt');
  it('not ready: old memory read unencrypted, pages captured as ciphertext', () => {
    expect(d.readiness).toBe('not-ready');
    expect(d.runs[0]!.verdict).toBe('dump-partial');
    expect(d.reasons.some((r) => r.includes('captured as ciphertext'))).toBe(true);
    expect(line(d, 'crashKernel.cmdline')?.value).not.toContain('mem_encrypt');
    expect(evidenceFiles(d, 'crashKernel.cmdline').some((e) => e.startsWith('/etc/sysconfig/kdump'))).toBe(true);
  });
  it('the fix is mem_encrypt=on for the capture kernel, in kdump-utils\' syntax, and a re-run confirms it', () => {
    expect(fixIds(d)[0]).toEqual(['capture-mem-encrypt-on']);
    expect(d.fixes[0]!.fixes[0]!.lines[0]).toBe('/etc/sysconfig/kdump: add mem_encrypt=on to KDUMP_COMMANDLINE_APPEND, then: kdumpctl restart');
    expect(d.fixes[0]!.verdicts).toEqual(['dump-complete']);
  });
});

describe('F5 and F6: SNP configured but never initialised', () => {
  it('F5: firmware 1.49 refuses SNP; ready, firmware flagged', () => {
    const d = doctor('F5-snp-firmware-too-old');
    expect(d.readiness).toBe('ready');
    expect(evidenceFiles(d, 'machine.cpu.snp.firmware')).toEqual(['commands/kernel-log:6']);
    expect(d.model.notes.some((n) => n.includes('below 1.51'))).toBe(true);
    // The update the note invites would arm SNP on a kernel without the panic notifier: the doctor says so, with the fix.
    const z = d.hazards.find((h) => h.id === 'firmware-update');
    expect(z?.verdicts.every((v) => v === 'crash-kernel-panic')).toBe(true);
    expect(z?.fixes[0]?.fixes.map((x) => x.id)).toEqual(['capture-kernel-linux-6.18']);
    expect(z?.fixes[0]?.verdicts.every((v) => v === 'dump-complete')).toBe(true);
  });
  it('F6: SNP_INIT fails with INVALID_CONFIG (modelled as that firmware answer at boot); ready', () => {
    const d = doctor('F6-snp-init-invalid-config');
    expect(d.readiness).toBe('ready');
    expect(d.model.scenario.faults).toEqual([{ kind: 'psp-command-fails', command: 'SNP_INIT_EX', status: 3, phase: 'boot' }]);
    expect(evidenceFiles(d, 'faults')).toEqual(['commands/kernel-log:4']);
    expect(d.model.notes.some((n) => n.includes('configured in the BIOS but not active'))).toBe(true);
    const z = d.hazards.find((h) => h.id === 'snp-init-fixed');
    expect(z?.outcome).toBe('a capture kernel panic (no dump)');
    expect(z?.fixes.length).toBeGreaterThan(0);
  });
});

describe('F7: SEV disabled by the BIOS (RHEL 8.7, crashkernel=auto)', () => {
  const d = doctor('F7-sev-off-in-bios');
  it('ready under plain kdump rules; the host\'s own reservation stands in for crashkernel=auto', () => {
    expect(d.readiness).toBe('ready');
    expect(line(d, 'machine.cpu.memoryEncryption')?.value).toBe('supported');
    expect(evidenceFiles(d, 'machine.cpu.memoryEncryption')).toEqual(['commands/kernel-log:3']);
    expect(line(d, 'firstKernel.crashkernel')?.value).toBe('256 MiB');
    expect(line(d, 'firstKernel.crashkernel')?.because).toContain('crashkernel=auto');
    expect(d.model.notes.some((n) => n.includes('distribution kernel'))).toBe(true);
  });
});

describe('F8: VT-d faults in a pre-4.2 capture kernel', () => {
  const d = doctor('F8-vtd-pre-4.2-capture');
  it('not ready: the capture kernel\'s devices fault on DMA, as the host\'s console showed', () => {
    expect(d.readiness).toBe('not-ready');
    expect(d.runs[0]!.captureFaults).toBeGreaterThan(0);
    expect(line(d, 'crashKernel.profile')?.value).toBe('linux-4.1');
    expect(d.reproduced.map((e) => e.text)).toContain('DMAR:[fault reason 01] Present bit in root entry is clear');
  });
  it('the fix is a capture kernel from 4.2 on (the table copy), confirmed by a re-run', () => {
    expect(fixIds(d)[0]).toEqual(['capture-kernel-linux-4.9']);
    expect(d.fixes[0]!.fixes[0]!.title).toBe('a 4.2 capture kernel');
    expect(d.fixes[0]!.verdicts).toEqual(['dump-complete']);
  });
});

describe('F9: SME host, mem_encrypt=on in both kernels (4.20)', () => {
  const d = doctor('F9-sme-host-ok');
  it('ready: the capture command line from the recorded kexec command carries mem_encrypt=on, SWIOTLB fits in 256 MB', () => {
    expect(d.readiness).toBe('ready');
    expect(line(d, 'crashKernel.cmdline')?.value).toContain('mem_encrypt=on');
    expect(evidenceFiles(d, 'crashKernel.cmdline').some((e) => e.startsWith('/var/crash/kexec_cmd'))).toBe(true);
    expect(d.runs[0]!.why.some((w) => w.includes('old memory mapped encrypted'))).toBe(true);
    // The 256 MB must also hold the 64 MiB SWIOTLB that SME forces in the capture kernel: the run shows the headroom.
    expect(d.model.notes.some((n) => /capture kernel had \d+ MiB free .* after the 64 MiB SWIOTLB that SME forces/.test(n))).toBe(true);
  });
});

describe('F10: no reservation under Ubuntu\'s range default on a 1 GB VM', () => {
  const d = doctor('F10-no-reservation-ubuntu-range');
  it('not ready: the range form reserves nothing on 1 GB, so kexec -p is refused', () => {
    expect(d.readiness).toBe('not-ready');
    expect(d.runs[0]!.verdict).toBe('kexec-refused');
    // The kernel's parser checks each entry's size against RAM (rounded up to 128 MiB) before matching:
    // 32G-64G:1024M is not below 1 GiB, so parsing stops with "invalid size" before any range matches.
    expect(line(d, 'firstKernel.crashkernel')?.because).toContain('crashkernel: invalid size');
    expect(evidenceFiles(d, 'firstKernel.crashkernel')).toEqual(['/sys/kernel/kexec_crash_size:1']);
  });
  it('the fix is an explicit crashkernel= in kdump-tools\' grub snippet, the smallest size a re-run confirms', () => {
    expect(fixIds(d)[0]).toEqual(['crashkernel=192M']);
    expect(d.fixes[0]!.fixes[0]!.lines[0]).toBe('/etc/default/grub.d/kdump-tools.cfg: GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT crashkernel=192M"');
  });
});

describe('the host scenario is a scenario like any other', () => {
  it('validates against the schema and, run on its own, gives the doctor\'s verdict', () => {
    const d = doctor('F10-no-reservation-ubuntu-range');
    const r = runScenario(scenarioSchema.parse(d.model.scenario));
    expect(r.verdict).toBe(d.runs[0]!.verdict);
  });
});
