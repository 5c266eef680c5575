// Seed 001: "Check if SEV-SNP is already enabled, this can happen if we are
// coming from kexec boot" — the second kernel must keep the RMP, not clear it.
import { describe, expect, it } from 'vitest';
import { loadScenarioFile } from '../../src/scenario/load.js';
import { runScenario } from '../../src/scenario/run.js';
import type { Machine } from '../../src/platform/machine.js';
import { MSR_AMD64_SYSCFG, SYSCFG_SNP_EN } from '../../src/platform/cpu/msr.js';
import { readRmpEntry } from '../../src/platform/snp/rmp.js';
import { rmpupdate } from '../../src/platform/snp/rmp-instructions.js';

describe('kexec into a second SNP kernel keeps the RMP', () => {
  const s = loadScenarioFile('scenarios/snp-kexec-reboot.yaml');
  s.workload.pages = 1000;
  let m: Machine | undefined;
  let marker = -1;
  let baseMsrs: [bigint, bigint] = [0n, 0n];
  const r = runScenario(s, {
    onMachine: (mm) => {
      m = mm;
      // Once the first kernel has enabled SNP, an entry as a guest would leave it: in firmware-reserved
      // memory (ACPI tables), which neither kernel allocates.
      const acpi = mm.e820.find((e) => e.type === 'ACPI data')!;
      marker = acpi.addr / 4096;
      mm.trace.subscribe((e) => {
        if (e.kind === 'step' && e.detail.startsWith('RMP cleared')) {
          const rc = rmpupdate(mm, mm.bsp, marker * 4096, { gpa: 0x1234000, assigned: true, pageSize: 0, immutable: false, asid: 7 });
          expect(rc.ok).toBe(true);
          baseMsrs = [mm.bsp.rdmsr(0xc001_0132), mm.bsp.rdmsr(0xc001_0133)];
        }
      });
    },
  });

  it('meets its expectation: shutdown, jump, skip path, firmware init again, then a complete dump', () => {
    expect(r.expectation).toEqual({ met: true, differences: [] });
  });

  it('the RMP was cleared once (first kernel) and kept by the second', () => {
    const steps = r.chain.filter((c) => c.includes('RMP cleared') || c.includes('RMP kept'));
    expect(steps).toHaveLength(2);
    expect(steps[0]).toContain('RMP cleared');
    expect(steps[1]).toContain('SNP_EN already set (kexec)');
    const e = readRmpEntry(m!.mc, m!.rmp!, marker);
    expect(e).toMatchObject({ assigned: true, asid: 7, gpa: 0x1234000 });
  });

  it('SNP_EN and the RMP MSRs carried over without a reset', () => {
    for (const c of m!.cpus) expect(c.rdmsr(MSR_AMD64_SYSCFG) & SYSCFG_SNP_EN).toBe(SYSCFG_SNP_EN);
    expect([m!.bsp.rdmsr(0xc001_0132), m!.bsp.rdmsr(0xc001_0133)]).toEqual(baseMsrs);
  });

  it('the firmware was shut down before the jump and initialised again after it', () => {
    const cmds = m!.trace.find('psp-command').map((e) => e.detail.split(' ')[0]);
    const i = cmds.indexOf('SNP_SHUTDOWN_EX');
    expect(i).toBeGreaterThan(0);
    expect(cmds.slice(i + 1)).toContain('SNP_INIT_EX');
    expect(r.logs.firstKernel).toContainEqual(expect.stringContaining('kexec_core: Starting new kernel'));
  });
});
