// A NIC keeps receiving after the panic, into the buffers the dead kernel had
// handed it. Nobody recycles descriptors any more, so DMA stops once the ring
// is full. The oracle must count exactly the pages that DMA changed.
import { describe, expect, it } from 'vitest';
import { runScenario } from '../../src/scenario/run.js';
import type { Machine } from '../../src/platform/machine.js';
import type { FirstKernel } from '../../src/kernel/first-kernel.js';
import { RX_DESC_SIZE } from '../../src/platform/pci/rx-nic.js';
import { smallScenario } from '../helpers/small-scenario.js';

describe('DMA after the panic is bounded by the ring and accounted exactly', () => {
  let machine: Machine | undefined;
  let kernel: FirstKernel | undefined;
  const predicted = new Set<number>();
  const r = runScenario(smallScenario(), {
    onMachine: (m, k) => {
      machine = m;
      kernel = k;
      // At the jump to purgatory, the descriptors from RDH up to RDT still belong to the device.
      m.trace.subscribe((ev) => {
        if (ev.kind !== 'jump' || !ev.detail.includes('purgatory')) return;
        const nic = m.nics[0]!;
        const drv = k.drivers[0]!;
        const n = nic.ringEntries;
        for (let i = nic.rdh; i !== nic.rdt; i = (i + 1) % n) {
          const buf = drv.buffersPa + i * 2048;
          predicted.add(Math.floor(buf / 4096));
          predicted.add(Math.floor((buf + 1513) / 4096));
          predicted.add(Math.floor((drv.ringPa + i * RX_DESC_SIZE) / 4096));
        }
      });
    },
  });

  it('dumps completely although pages changed', () => {
    expect(r.verdict).toBe('dump-complete');
    expect(r.oracle.pagesWrong).toBe(0);
  });

  it('the device filled the rest of its ring and then dropped packets', () => {
    const nic = machine!.nics[0]!;
    expect(r.metrics.dmaPacketsAfterPanic).toBeGreaterThan(0);
    expect(r.metrics.dmaPacketsAfterPanic).toBeLessThan(nic.ringEntries);
    expect(nic.rdh).toBe(nic.rdt); // ring full: head caught up with tail
    expect(r.metrics.dmaPacketsDropped).toBeGreaterThan(0);
  });

  it('the pages the oracle counts as changed after the panic are exactly the ones the ring predicts', () => {
    expect(predicted.size).toBeGreaterThan(0);
    expect(r.oracle.pagesChangedAfterPanic).toBe(predicted.size);
    expect(kernel!.dmaMappings.map((d) => d.device)).toContain('00:03.0');
  });
});
