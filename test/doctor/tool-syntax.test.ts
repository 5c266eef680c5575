// The same host under each kdump tool: the fix is the same change, written in
// the tool's own file and command.
import { describe, expect, it } from 'vitest';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBundle } from '../../src/doctor/host-source.js';
import { readHostFacts } from '../../src/doctor/read-host-facts.js';
import { diagnose, type Diagnosis } from '../../src/doctor/diagnose.js';

const F4 = join(import.meta.dirname, '..', 'fixtures', 'doctor', 'F4-sme-capture-without-mem-encrypt');
const CMDLINE = 'BOOT_IMAGE=/boot/vmlinuz-5.14.0-rc2-snp-host-6d4469b86f90 root=UUID=5271158d-59ce-4c94-b0bd-5f67dbc947e1 ro';

/** F4 with its kdump-utils files replaced by another tool's. */
function withTool(files: Record<string, string>): Diagnosis {
  const dir = mkdtempSync(join(tmpdir(), 'kdumpsim-tools-'));
  try {
    const b = join(dir, 'b');
    cpSync(F4, b, { recursive: true });
    rmSync(join(b, 'etc'), { recursive: true, force: true });
    for (const [rel, text] of Object.entries(files)) {
      mkdirSync(join(b, rel, '..'), { recursive: true });
      writeFileSync(join(b, rel), text);
    }
    return diagnose(readHostFacts(openBundle(b), b));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const firstFix = (d: Diagnosis): string[] => d.fixes[0]?.fixes.flatMap((f) => f.lines) ?? [];

describe('fix lines in each kdump tool\'s syntax (an SME host whose capture command line lacks mem_encrypt=on)', () => {
  it('openSUSE kdump: KDUMP_COMMANDLINE_APPEND in /etc/sysconfig/kdump, then systemctl restart kdump', () => {
    const d = withTool({ 'etc/sysconfig/kdump': `KDUMP_COMMANDLINE="${CMDLINE}"\nKDUMP_CPUS=32\nKDUMP_SAVEDIR="/var/crash"\nKDUMP_DUMPLEVEL=31\n` });
    expect(d.model.lines.find((l) => l.field === 'crashKernel.cmdline')?.because).toContain('opensuse-kdump');
    expect(d.readiness).toBe('not-ready');
    expect(firstFix(d)).toEqual(['/etc/sysconfig/kdump: add mem_encrypt=on to KDUMP_COMMANDLINE_APPEND, then: systemctl restart kdump']);
  });

  it('kdump-tools: KDUMP_CMDLINE_APPEND in /etc/default/kdump-tools, then kdump-config reload', () => {
    const d = withTool({ 'etc/default/kdump-tools': `USE_KDUMP=1\nKDUMP_CMDLINE="${CMDLINE}"\n` });
    expect(d.model.lines.find((l) => l.field === 'crashKernel.cmdline')?.because).toContain('kdump-tools');
    expect(d.readiness).toBe('not-ready');
    expect(firstFix(d)).toEqual(['/etc/default/kdump-tools: add mem_encrypt=on to KDUMP_CMDLINE_APPEND, then: kdump-config reload']);
  });
});
