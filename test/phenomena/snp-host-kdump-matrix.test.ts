// The SNP host kdump matrix against the version history the reference gives:
// without SNP (6.1) every capture kernel dumps; on an SNP host a capture
// kernel that copies the device table (up to 6.17) dumps only when the panic
// notifier's SNP_SHUTDOWN_EX succeeded (no guest running, no firmware
// error); a 6.18 capture kernel, which reuses the old IOMMU buffers, dumps
// either way. Firmware 1.52 or 1.55 makes no difference to kdump.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { loadMatrixFile } from '../../src/scenario/matrix.js';
import { runMatrix } from '../../src/scenario/matrix-run.js';

describe('scenarios/matrix-snp-host-kdump.yaml', () => {
  it('every cell\'s verdict follows the history, and the reason for each failure is the timer misrouted by the locked IOMMU', async () => {
    const plan = loadMatrixFile(join(import.meta.dirname, '..', '..', 'scenarios', 'matrix-snp-host-kdump.yaml'));
    for (const c of plan.cells) c.scenario.workload.pages = 500;
    const result = await runMatrix(plan, { jobs: 1 });
    expect(result.cells).toHaveLength(48);
    for (const c of result.cells) {
      const snpHost = c.coords['first-kernel'] !== '6.1';
      const copies = c.coords['capture-kernel']!.includes('copy');
      const shutdownFails = c.coords['guests'] === 'running' || c.coords['shutdown'] === 'psp-fails';
      const expected = snpHost && copies && shutdownFails ? 'crash-kernel-panic' : 'dump-complete';
      expect(c.verdict, c.id).toBe(expected);
      if (expected === 'crash-kernel-panic') expect(c.reason, c.id).toMatch(/timer interrupts remapped through the old kernel's IRQ table to CPU 0 \(halted\)/);
    }
  });
});
