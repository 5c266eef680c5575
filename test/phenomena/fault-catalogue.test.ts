// Each fault acts through a mechanism at its phase, and the chain shows it.
import { describe, expect, it } from 'vitest';
import { runScenario } from '../../src/scenario/run.js';
import type { Machine } from '../../src/platform/machine.js';
import type { Fault } from '../../src/scenario/schema.js';
import { smallScenario } from '../helpers/small-scenario.js';

type FaultIn = Partial<Fault> & { kind: Fault['kind'] };
function run(faults: FaultIn[]) {
  let machine: Machine | undefined;
  const r = runScenario(smallScenario({ faults: faults as Fault[] }), { onMachine: (m) => { machine = m; } });
  return { r, m: machine! };
}
const idx = (chain: string[], s: string): number => chain.findIndex((c) => c.includes(s));

describe('fault catalogue', () => {
  it('stray DMA into the elfcorehdr as the capture kernel starts: the header is not sane, no /proc/vmcore', () => {
    const { r } = run([{ kind: 'stray-dma', target: 'elfcorehdr', phase: 'crash-kernel-init' }]);
    expect(r.verdict).toBe('no-dump');
    expect(r.logs.crashKernel.some((l) => l.endsWith('Warning: Core image elf header is not sane'))).toBe(true);
    expect(r.logs.crashKernel.some((l) => l.endsWith('Kdump: vmcore not initialized'))).toBe(true);
    // Purgatory had verified the segments: the write came after.
    const ok = idx(r.chain, 'purgatory: SHA-256');
    const fault = idx(r.chain, 'fault injected (crash-kernel-init)');
    const sane = idx(r.chain, 'not a sane ELF core header');
    expect(ok).toBeGreaterThanOrEqual(0);
    expect(fault).toBeGreaterThan(ok);
    expect(sane).toBeGreaterThan(fault);
  });

  it('stray DMA into the capture kernel entry after purgatory checked it: the CPU executes garbage', () => {
    const { r, m } = run([{ kind: 'stray-dma', target: 'kernel', offset: 0x200, phase: 'purgatory' }]);
    expect(r.verdict).toBe('crash-kernel-hang');
    const tf = m.trace.find('triple-fault');
    expect(tf).toHaveLength(1);
    expect(tf[0]!.detail).toContain('were overwritten');
    expect(m.trace.find('digest-ok')).toHaveLength(1);
  });

  it('stray DMA into old memory during capture: the oracle names the page and the device', () => {
    const pa = 0x0a00_0000; // old memory well away from the crash region and the NIC ring
    const { r } = run([{ kind: 'stray-dma', target: { pa: `0x${pa.toString(16)}` }, phase: 'crash-kernel-init', device: 'rogue-dev', length: 256 }]);
    expect(r.verdict).toBe('dump-partial');
    expect(r.oracle.pagesWrong).toBe(1);
    expect(r.oracle.errors[0]).toEqual({ pfn: pa / 4096, pa: `0x${pa.toString(16)}`, cause: 'overwritten after the panic by DMA from rogue-dev outside its buffers' });
    expect(r.oracle.pageMap.find((x) => x.startPfn === pa / 4096)?.fate).toBe('wrong');
  });

  it('the same stray write before the panic is part of the truth: the dump is complete', () => {
    const { r } = run([{ kind: 'stray-dma', target: { pa: '0xa000000' }, phase: 'before-panic', length: 256 }]);
    expect(r.verdict).toBe('dump-complete');
  });

  it('a CPU that cannot take the crash NMI: the panic waits a second, its registers are missing, the pages are all there', () => {
    const { r, m } = run([{ kind: 'cpu-ignores-nmi', cpu: 0 }]);
    expect(r.verdict).toBe('dump-complete');
    expect(m.trace.find('nmi-blocked').map((e) => e.source)).toEqual(['cpu0']);
    expect(r.chain.some((c) => c.includes('NMI shoot-down: 0 of 1 other CPUs'))).toBe(true);
    expect(r.logs.crashKernel.some((l) => l.endsWith('Warning: Zero PT_NOTE entries found'))).toBe(true);
    const panic = m.trace.events.find((e) => e.kind === 'step' && e.detail.startsWith('panic on CPU'))!;
    const jump = m.trace.events.find((e) => e.kind === 'jump' && e.detail.includes('purgatory'))!;
    expect(jump.t - panic.t).toBeGreaterThanOrEqual(1e9);
    expect(r.chain.some((c) => c.includes('/proc/vmcore: 2 notes'))).toBe(true); // one PRSTATUS + VMCOREINFO
  });

  it('a crashkernel reservation too small for the segments: kexec load is refused', () => {
    const { r } = run([{ kind: 'crashkernel-size', size: '8M' }]);
    expect(r.verdict).toBe('kexec-refused');
    expect(r.logs.firstKernel.some((l) => l.includes('Reserving 8MB of memory'))).toBe(true);
  });
});
