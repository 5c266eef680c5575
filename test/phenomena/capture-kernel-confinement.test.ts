// The capture kernel lives in the crash region: its e820 lists nothing else
// as RAM, its page tables map nothing else, so it cannot write old memory.
import { describe, expect, it } from 'vitest';
import { runScenario } from '../../src/scenario/run.js';
import type { Machine } from '../../src/platform/machine.js';
import type { FirstKernel } from '../../src/kernel/first-kernel.js';
import { walk } from '../../src/platform/cpu/paging.js';
import { PAGE_OFFSET } from '../../src/kernel/layout.js';
import { smallScenario } from '../helpers/small-scenario.js';

describe('capture kernel writes stay inside the crash region', () => {
  let machine: Machine | undefined;
  let kernel: FirstKernel | undefined;
  const cpuWritesAfterJump: { pa: number; len: number }[] = [];
  let jumped = false;
  const r = runScenario(smallScenario(), {
    onMachine: (m, k) => {
      machine = m;
      kernel = k;
      m.trace.subscribe((ev) => {
        if (ev.kind === 'jump' && ev.detail.includes('purgatory')) jumped = true;
      });
      m.mc.addWriteObserver((pa, len, who) => {
        if (jumped && who.kind === 'cpu') cpuWritesAfterJump.push({ pa, len });
      });
    },
  });

  it('dumps completely', () => {
    expect(r.verdict).toBe('dump-complete');
  });

  it('every CPU write after the jump to purgatory lands in the crash region', () => {
    const region = kernel!.crashRegion!;
    expect(cpuWritesAfterJump.length).toBeGreaterThan(0); // its page tables, at least
    const outside = cpuWritesAfterJump.filter((w) => w.pa < region.start || w.pa + w.len > region.end);
    expect(outside).toEqual([]);
  });

  it('old memory is not mapped in the capture kernel: a write through its page tables faults', () => {
    const cpu = machine!.cpus[1]!; // the panicking CPU runs the capture kernel
    const region = kernel!.crashRegion!;
    const old = kernel!.dmaMappings[0]!.pa; // the NIC ring, in old memory
    const inside = region.start + 0x2000_000;
    expect(walk(machine!.mc, cpu.cr3, PAGE_OFFSET + BigInt(inside), { write: true }).ok).toBe(true);
    const w = walk(machine!.mc, cpu.cr3, PAGE_OFFSET + BigInt(old), { write: true });
    expect(w.ok).toBe(false);
    if (!w.ok) expect(w.fault).toBe('not-present');
  });
});
