import { describe, it, expect } from 'vitest';
import { Machine } from '../../src/platform/machine.js';
import type { KeySlot } from '../../src/platform/memory-controller.js';
import type { Cpu } from '../../src/platform/cpu/cpu.js';

function machine(): Machine {
  return new Machine({ memoryBytes: 64 * 2 ** 20, cpus: 2, seed: 1, nics: [] });
}

const cpu0 = { kind: 'cpu', id: 0 } as const;

/** A toy cipher: XOR with a byte derived from the key and the physical address. */
function xorSlot(key: number): KeySlot {
  const apply = (pa: number, f: Uint8Array): void => {
    for (let i = 0; i < f.length; i++) f[i]! ^= (key + (pa >>> 12) + i) & 0xff;
  };
  return { name: `xor${key}`, encrypt: apply, decrypt: apply };
}

describe('EntryPoints', () => {
  it('runs placed code when the bytes are intact, once per jump', () => {
    const m = machine();
    const code = Uint8Array.of(0x0f, 0x01, 0xd9, 0xf4);
    m.mc.write(0x5000, code, cpu0);
    const ran: number[] = [];
    m.entryPoints.place(0x5000, 'purgatory', code, (c: Cpu) => ran.push(c.id));
    m.entryPoints.execute(m.cpus[1]!, 0x5000);
    m.entryPoints.execute(m.cpus[0]!, 0x5000);
    expect(ran).toEqual([1, 0]);
    expect(m.trace.find('jump').map((e) => e.detail)).toEqual([
      'CPU 1 jumps to purgatory at 0x5000',
      'CPU 0 jumps to purgatory at 0x5000',
    ]);
  });

  it('writing the same bytes again, or bytes just past the end, does not count as overwriting', () => {
    const m = machine();
    const code = Uint8Array.from({ length: 100 }, (_, i) => i + 1);
    m.mc.write(0x9000, code, cpu0);
    let ran = 0;
    m.entryPoints.place(0x9000, 'trampoline', code, () => { ran++; });
    m.mc.write(0x9000, code, cpu0);
    m.mc.write(0x9000 + code.length, Uint8Array.of(0xcc), cpu0);
    m.mc.write(0x9000 - 1, Uint8Array.of(0xcc), cpu0);
    m.entryPoints.execute(m.cpus[1]!, 0x9000);
    expect(ran).toBe(1);
    expect(m.cpus[1]!.state).toBe('wait-for-sipi'); // execute itself does not change the state on success
  });

  it('triple-faults when nothing was placed at the target', () => {
    const m = machine();
    m.entryPoints.execute(m.cpus[1]!, 0x77000);
    expect(m.cpus[1]!.state).toBe('shutdown');
    const tf = m.trace.find('triple-fault', 'cpu1');
    expect(tf).toHaveLength(1);
    expect(tf[0]!.detail).toMatch(/no code was placed/);
    expect(tf[0]!.data).toEqual({ pa: 0x77000 });
  });

  it('triple-faults when a memory clear zeroed the code', () => {
    const m = machine();
    const code = Uint8Array.of(1, 2, 3);
    m.mc.write(0x9a000, code, cpu0);
    let ran = 0;
    m.entryPoints.place(0x9a000, 'trampoline', code, () => { ran++; });
    m.mc.zero(0x9a000, 4096, cpu0);
    m.entryPoints.execute(m.bsp, 0x9a000);
    expect(m.bsp.state).toBe('shutdown');
    expect(ran).toBe(0);
  });

  it('code written through a key slot runs only while its ciphertext is intact', () => {
    const m = machine();
    m.mc.setKeySlot(1, xorSlot(0x5a));
    const code = Uint8Array.from({ length: 32 }, (_, i) => 0x40 + i);
    m.mc.write(0x20000, code, cpu0, { keyId: 1 });
    // DRAM holds ciphertext, not the plaintext code.
    const raw = new Uint8Array(code.length);
    m.mc.read(0x20000, raw);
    expect(raw).not.toEqual(code);
    let ran = 0;
    m.entryPoints.place(0x20000, 'sme-kernel', code, () => { ran++; }, 1);
    m.entryPoints.execute(m.cpus[1]!, 0x20000);
    expect(ran).toBe(1);
    // A device without the key writes the plaintext bytes back: decrypted, that is garbage.
    m.mc.write(0x20000, code, { kind: 'device', name: 'nic0' });
    m.entryPoints.execute(m.cpus[1]!, 0x20000);
    expect(ran).toBe(1);
    expect(m.cpus[1]!.state).toBe('shutdown');
    expect(m.trace.find('triple-fault', 'cpu1')[0]!.detail).toMatch(/sme-kernel were overwritten/);
  });
});
