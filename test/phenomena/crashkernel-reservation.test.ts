// What the crashkernel= reservation decides: no reservation means kexec -p
// is refused; a region too small for the segments is refused at load; a
// region that fits the segments but not the capture kernel's working set
// lets the capture kernel start and then run out of memory.
import { describe, expect, it } from 'vitest';
import { runScenario } from '../../src/scenario/run.js';
import { smallScenario } from '../helpers/small-scenario.js';

const withCmdline = (cmdline: string) => smallScenario({ firstKernel: { profile: 'linux-6.1', cmdline } });

describe('crash kernel reservation and its consequences', () => {
  it('no crashkernel= at all: kexec -p is refused with kexec-tools\' message', () => {
    const r = runScenario(withCmdline('root=/dev/vda1 ro'));
    expect(r.verdict).toBe('kexec-refused');
    expect(r.chain).toContain('kexec: Memory for crashkernel is not reserved');
    expect(r.logs.firstKernel.some((l) => l.includes('crashkernel'))).toBe(false);
  });

  it('a reservation nobody loaded a capture kernel into: the panic has nowhere to go', () => {
    const s = smallScenario({ firstKernel: { profile: 'linux-6.1', cmdline: 'root=/dev/vda1 ro crashkernel=256M' }, crashKernel: { loaded: false } });
    const r = runScenario(s);
    expect(r.verdict).toBe('no-crash-kernel');
    expect(r.logs.firstKernel.some((l) => l.includes('crashkernel reserved') || l.includes('for crashkernel'))).toBe(true);
    expect(r.logs.firstKernel.some((l) => l.includes('Kernel panic - not syncing'))).toBe(true);
    expect(r.logs.crashKernel).toEqual([]);
    const i = r.chain.findIndex((c) => c.includes('no capture kernel loaded'));
    expect(i).toBeGreaterThanOrEqual(0);
    expect(r.chain.findIndex((c) => c.includes('no crash kernel loaded'))).toBeGreaterThan(i);
  });

  it('a range form that matches no range reserves nothing', () => {
    const r = runScenario(withCmdline('root=/dev/vda1 crashkernel=2G-64G:256M'));
    expect(r.verdict).toBe('kexec-refused');
    expect(r.logs.firstKernel.some((l) => l.endsWith('crashkernel size resulted in zero bytes'))).toBe(true);
  });

  it('a range form that matches reserves the matched size, logged in the era\'s wording', () => {
    const r = runScenario(withCmdline('root=/dev/vda1 crashkernel=512M-2G:160M,2G-:256M'));
    expect(r.verdict).toBe('dump-complete');
    expect(r.logs.firstKernel.some((l) => /Reserving 160MB of memory at \d+MB for crashkernel \(System RAM: \d+MB\)/.test(l))).toBe(true);
    const newer = runScenario(smallScenario({ firstKernel: { profile: 'linux-6.12', cmdline: 'root=/dev/vda1 crashkernel=160M' } }));
    expect(newer.logs.firstKernel.some((l) => /crashkernel reserved: 0x[0-9a-f]{16} - 0x[0-9a-f]{16} \(160 MB\)/.test(l))).toBe(true);
  });

  it('segments that do not fit: kexec_file_load fails', () => {
    const r = runScenario(withCmdline('root=/dev/vda1 crashkernel=8M'));
    expect(r.verdict).toBe('kexec-refused');
    expect(r.chain.some((c) => c.includes('segments need'))).toBe(true);
  });

  it('segments fit but the capture kernel cannot run its initramfs: it panics out of memory', () => {
    const r = runScenario(withCmdline('root=/dev/vda1 crashkernel=64M'));
    expect(r.verdict).toBe('crash-kernel-panic');
    expect(r.logs.crashKernel).toContainEqual(expect.stringContaining('Kernel panic - not syncing: System is deadlocked on memory'));
    const mem = r.logs.crashKernel.find((l) => l.includes('Memory: '));
    expect(mem).toBeDefined();
    expect(r.chain.some((c) => c.includes('out of memory'))).toBe(true);
  });
});
