// A VT-d host running scalable mode on a 5.x kernel: the capture kernel's old
// copy code misreads the scalable-mode tables. The doctor finds it from the
// files and confirms both ways out: scalable mode off, or a 6.0 capture kernel.
import { describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBundle } from '../../src/doctor/host-source.js';
import { readHostFacts } from '../../src/doctor/read-host-facts.js';
import { diagnose } from '../../src/doctor/diagnose.js';

describe('doctor: VT-d scalable mode with a 5.x capture kernel', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kdumpsim-sm-'));
  const b = join(dir, 'bundle');
  cpSync(join(import.meta.dirname, '..', 'fixtures', 'doctor', 'F8-vtd-pre-4.2-capture'), b, { recursive: true });
  writeFileSync(join(b, 'commands', 'uname-r'), '5.14.21-150500.55.19-default\n');
  writeFileSync(join(b, 'proc', 'cmdline'), 'BOOT_IMAGE=/boot/vmlinuz-5.14.21-150500.55.19-default root=/dev/sda2 intel_iommu=on,sm_on crashkernel=256M\n');
  writeFileSync(join(b, 'sys', 'class', 'iommu', 'dmar0', 'intel-iommu', 'ecap'), '80000f020de\n'); // bit 43 (SMTS) set
  rmSync(join(b, 'commands', 'console-log'));
  const d = diagnose(readHostFacts(openBundle(b), b));
  rmSync(dir, { recursive: true, force: true });

  it('models scalable mode from ECAP and the command line, and the capture kernel faults', () => {
    expect(d.model.lines.find((l) => l.field === 'machine.iommu')?.because).toContain('bit 43 (SMTS) set');
    expect(d.model.lines.find((l) => l.field === 'firstKernel.profile')?.value).toBe('linux-5.10');
    expect(d.readiness).toBe('not-ready');
    expect(d.runs[0]!.captureFaults).toBeGreaterThan(0);
  });

  it('confirms leaving scalable mode off (cheapest) and a 6.0 capture kernel', () => {
    const ids = d.fixes.map((f) => f.fixes.map((x) => x.id).join('+'));
    expect(ids[0]).toBe('intel-iommu-sm-off');
    expect(ids).toContain('capture-kernel-linux-6.1');
    expect(d.fixes.find((f) => f.fixes[0]!.id === 'capture-kernel-linux-6.1')?.fixes[0]!.title).toBe('a 6.0 capture kernel');
    expect(d.fixes[0]!.fixes[0]!.lines).toEqual(['grubby --update-kernel=ALL --remove-args="intel_iommu=on,sm_on"', 'grubby --update-kernel=ALL --args="intel_iommu=on"', 'reboot']);
  });
});
