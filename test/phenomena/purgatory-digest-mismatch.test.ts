// Seedless foundation phenomenon: a kexec segment that changes after
// kexec_file_load (here a stray DMA write into the capture kernel's image)
// is caught by purgatory's SHA-256 check, which spins rather than jump.
import { describe, expect, it } from 'vitest';
import { runScenario } from '../../src/scenario/run.js';
import type { Machine } from '../../src/platform/machine.js';
import { smallScenario } from '../helpers/small-scenario.js';

describe('capture kernel never starts when a kexec segment changed after load: purgatory digest mismatch', () => {
  let machine: Machine | undefined;
  const r = runScenario(smallScenario({ faults: [{ kind: 'stray-dma', target: 'kernel', offset: '1M', length: 64, phase: 'before-panic', device: 'stray-dma' }] }), {
    onMachine: (m) => { machine = m; },
  });
  const kinds = machine!.trace.events.map((e) => `${e.source}:${e.kind}`);

  it('ends in crash-kernel-hang with no capture-kernel log and no pages', () => {
    expect(r.verdict).toBe('crash-kernel-hang');
    expect(r.logs.crashKernel).toEqual([]);
    expect(r.oracle.pagesCaptured).toBe(0);
    expect(r.oracle.pagesExpected).toBeGreaterThan(0);
  });

  it('follows the chain: stray write, panic, jump to purgatory, digest mismatch, no jump to the kernel', () => {
    const fault = kinds.indexOf('stray-dma:fault');
    const jump = machine!.trace.events.findIndex((e) => e.kind === 'jump' && e.detail.includes('purgatory'));
    const mismatch = kinds.indexOf('purgatory:digest-mismatch');
    expect(fault).toBeGreaterThanOrEqual(0);
    expect(jump).toBeGreaterThan(fault);
    expect(mismatch).toBeGreaterThan(jump);
    expect(machine!.trace.events.some((e) => e.kind === 'jump' && e.detail.includes('startup_64'))).toBe(false);
    expect(kinds).not.toContain('purgatory:digest-ok');
    expect(r.chain.some((c) => c.includes('spinning forever'))).toBe(true);
  });

  it('the same scenario without the fault verifies the digest and dumps', () => {
    const ok = runScenario(smallScenario());
    expect(ok.verdict).toBe('dump-complete');
    expect(ok.chain.some((c) => c.includes('purgatory: SHA-256 of 4 segments'))).toBe(true);
  });
});
