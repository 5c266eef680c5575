// What a kernel build turns on by default shows only in its log: SME active
// without mem_encrypt=on, an IOMMU default domain of passthrough without
// iommu=pt. The doctor models both as the command-line word that does the same.
import { describe, expect, it } from 'vitest';
import { appendFileSync, cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBundle } from '../../src/doctor/host-source.js';
import { readHostFacts } from '../../src/doctor/read-host-facts.js';
import { diagnose, type Diagnosis } from '../../src/doctor/diagnose.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'doctor');

function variant(base: string, edit: (dir: string) => void): Diagnosis {
  const dir = mkdtempSync(join(tmpdir(), 'kdumpsim-defaults-'));
  try {
    const b = join(dir, 'b');
    cpSync(join(FIXTURES, base), b, { recursive: true });
    edit(b);
    return diagnose(readHostFacts(openBundle(b), b));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('build defaults seen in the log', () => {
  it('SME active without mem_encrypt=on: both kernels of the build get it, and the host is ready', () => {
    const d = variant('F9-sme-host-ok', (b) => {
      writeFileSync(join(b, 'proc', 'cmdline'), 'BOOT_IMAGE=/vmlinuz-4.20.0 root=/dev/mapper/fedora-root ro crashkernel=256M\n');
      writeFileSync(join(b, 'var', 'crash', 'kexec_cmd'), 'kexec -p /boot/vmlinuz-4.20.0 --initrd=/boot/initrd-4.20.0 --command-line="BOOT_IMAGE=/vmlinuz-4.20.0 root=/dev/mapper/fedora-root ro nr_cpus=1 irqpoll reset_devices"\n');
    });
    const line = d.model.lines.find((l) => l.value === '+ mem_encrypt=on');
    expect(line?.because).toContain('CONFIG_AMD_MEM_ENCRYPT_ACTIVE_BY_DEFAULT');
    expect(line?.evidence.map((e) => `${e.file}:${e.line}`)).toEqual(['commands/kernel-log:2']);
    expect(d.model.scenario.crashKernel?.cmdline).toContain('mem_encrypt=on');
    expect(d.readiness).toBe('ready');
  });

  it('a passthrough default domain rules host SNP out as iommu=pt would', () => {
    const d = variant('F1-snp-host-locked-iommu', (b) => {
      writeFileSync(join(b, 'commands', 'uname-r'), '6.12.9\n');
      appendFileSync(join(b, 'commands', 'kernel-log'), '[    1.200000] iommu: Default domain type: Passthrough\n');
      rmSync(join(b, 'commands', 'console-log'));
    });
    expect(d.model.lines.find((l) => l.value === '+ iommu=pt')?.evidence[0]?.line).toBe(11);
    expect(d.model.scenario.firstKernel?.cmdline).toMatch(/ iommu=pt$/);
    expect(d.runs.every((r) => r.why.every((w) => !w.includes('writes to base registers ignored')))).toBe(true);
    expect(d.readiness).toBe('ready');
  });
});
