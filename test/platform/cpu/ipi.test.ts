import { describe, it, expect } from 'vitest';
import { Machine } from '../../../src/platform/machine.js';
import { deliverInit, deliverNmi, deliverSipi } from '../../../src/platform/cpu/ipi.js';
import type { Cpu } from '../../../src/platform/cpu/cpu.js';

function machine(cpus = 4): Machine {
  return new Machine({ memoryBytes: 64 * 2 ** 20, cpus, seed: 1, nics: [] });
}

/** Writes `bytes` at `pa` and places them as code that records which CPU ran it. */
function placeTrampoline(m: Machine, pa: number, ran: number[]): Uint8Array {
  const code = Uint8Array.from({ length: 64 }, (_, i) => (0x90 + i) & 0xff);
  m.mc.write(pa, code, { kind: 'cpu', id: 0 });
  m.entryPoints.place(pa, 'trampoline', code, (cpu: Cpu) => {
    ran.push(cpu.id);
    cpu.state = 'halted';
  });
  return code;
}

describe('INIT, SIPI and NMI delivery', () => {
  it('powers on with the BSP running and the APs waiting for SIPI', () => {
    const m = machine();
    expect(m.cpus.map((c) => c.state)).toEqual(['running', 'wait-for-sipi', 'wait-for-sipi', 'wait-for-sipi']);
    expect(m.bsp.isBsp).toBe(true);
    expect(m.trace.find('power-on')).toHaveLength(1);
  });

  it('INIT parks a running CPU in wait-for-SIPI and drops its NMI handler', () => {
    const m = machine();
    const cpu = m.cpus[1]!;
    cpu.state = 'running';
    cpu.nmiHandler = () => {};
    deliverInit(cpu, m.trace);
    expect(cpu.state).toBe('wait-for-sipi');
    expect(cpu.nmiHandler).toBeUndefined();
    expect(m.trace.find('init', 'cpu1')).toHaveLength(1);
  });

  it('an NMI to a CPU in wait-for-SIPI is not taken: it is latched and the handler does not run', () => {
    const m = machine();
    const cpu = m.cpus[2]!;
    let ran = 0;
    cpu.state = 'running';
    deliverInit(cpu, m.trace);
    cpu.nmiHandler = () => { ran++; }; // even if something installed one
    expect(deliverNmi(cpu, m.trace)).toBe(false);
    expect(deliverNmi(cpu, m.trace)).toBe(false);
    expect(ran).toBe(0);
    expect(cpu.nmisLatched).toBe(2);
    expect(cpu.state).toBe('wait-for-sipi');
    expect(m.trace.find('nmi-blocked', 'cpu2')).toHaveLength(2);
    expect(m.trace.find('nmi', 'cpu2')).toHaveLength(0);
  });

  it('an NMI to a running or halted CPU runs its handler; a halted CPU wakes', () => {
    const m = machine();
    const cpu = m.bsp;
    const seen: string[] = [];
    cpu.nmiHandler = (c) => seen.push(c.state);
    cpu.state = 'halted';
    expect(deliverNmi(cpu, m.trace)).toBe(true);
    expect(seen).toEqual(['running']);
    expect(cpu.nmisLatched).toBe(0);
    expect(m.trace.find('nmi', 'cpu0')).toHaveLength(1);
  });

  it('an NMI with no handler installed triple-faults the CPU', () => {
    const m = machine();
    const cpu = m.bsp;
    expect(deliverNmi(cpu, m.trace)).toBe(false);
    expect(cpu.state).toBe('shutdown');
    expect(m.trace.find('triple-fault', 'cpu0')).toHaveLength(1);
    // A CPU in shutdown takes no further NMIs.
    expect(deliverNmi(cpu, m.trace)).toBe(false);
    expect(cpu.nmisLatched).toBe(1);
  });

  it('a SIPI starts a waiting CPU at vector << 12, running the code placed there', () => {
    const m = machine();
    const ran: number[] = [];
    placeTrampoline(m, 0x9a000, ran);
    const cpu = m.cpus[3]!;
    deliverSipi(cpu, 0x9a, m.entryPoints, m.trace);
    expect(ran).toEqual([3]);
    expect(cpu.state).toBe('halted');
    const sipi = m.trace.find('sipi', 'cpu3');
    expect(sipi).toHaveLength(1);
    expect(sipi[0]!.data).toEqual({ pa: 0x9a000 });
    expect(m.trace.find('jump', 'cpu3')[0]!.data).toEqual({ pa: 0x9a000 });
    // The trace orders the chain: sipi, then jump.
    const kinds = m.trace.events.filter((e) => e.source === 'cpu3').map((e) => e.kind);
    expect(kinds).toEqual(['sipi', 'jump']);
  });

  it('a SIPI uses only the low 8 bits of the vector', () => {
    const m = machine();
    const ran: number[] = [];
    placeTrampoline(m, 0x10000, ran);
    deliverSipi(m.cpus[1]!, 0x110, m.entryPoints, m.trace);
    expect(ran).toEqual([1]);
  });

  it('a SIPI to a CPU that is not waiting for one is ignored', () => {
    const m = machine();
    const ran: number[] = [];
    placeTrampoline(m, 0x9a000, ran);
    deliverSipi(m.bsp, 0x9a, m.entryPoints, m.trace);
    expect(ran).toEqual([]);
    expect(m.bsp.state).toBe('running');
    expect(m.trace.find('sipi-ignored', 'cpu0')).toHaveLength(1);
  });

  it('INIT then SIPI restarts a CPU, and NMIs are taken again once its new code installs a handler', () => {
    const m = machine(2);
    const cpu = m.cpus[1]!;
    const code = Uint8Array.of(0xfa, 0xf4);
    m.mc.write(0x8000, code, { kind: 'cpu', id: 0 });
    let nmis = 0;
    m.entryPoints.place(0x8000, 'ap-start', code, (c) => {
      c.nmiHandler = () => { nmis++; };
    });
    deliverNmi(cpu, m.trace); // still waiting: blocked
    deliverSipi(cpu, 0x08, m.entryPoints, m.trace);
    expect(cpu.state).toBe('running');
    expect(deliverNmi(cpu, m.trace)).toBe(true);
    expect(nmis).toBe(1);
    expect(cpu.nmisLatched).toBe(1);
  });

  it('jumping to placed code whose bytes were overwritten triple-faults', () => {
    const m = machine();
    const ran: number[] = [];
    const code = placeTrampoline(m, 0x9a000, ran);
    // Something (a stray DMA, a memset) overwrites one byte of the trampoline.
    m.mc.write(0x9a000 + code.length - 1, Uint8Array.of(code[code.length - 1]! ^ 0xff), { kind: 'device', name: 'nic0' });
    const cpu = m.cpus[1]!;
    deliverSipi(cpu, 0x9a, m.entryPoints, m.trace);
    expect(ran).toEqual([]);
    expect(cpu.state).toBe('shutdown');
    const tf = m.trace.find('triple-fault', 'cpu1');
    expect(tf).toHaveLength(1);
    expect(tf[0]!.detail).toMatch(/overwritten/);
    expect(m.trace.find('jump', 'cpu1')).toHaveLength(0);
  });
});
