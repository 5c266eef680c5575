import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AddressTweakedCipher } from '../../src/platform/memory-cipher.js';
import { MemoryController } from '../../src/platform/memory-controller.js';
import { PhysicalMemory } from '../../src/platform/physical-memory.js';

const who = { kind: 'cpu', id: 0 } as const;
function controller(): MemoryController {
  const mc = new MemoryController(new PhysicalMemory(64 * 2 ** 20));
  mc.setKeySlot(1, new AddressTweakedCipher('host', 42, 'host'));
  return mc;
}
const text = (s: string): Uint8Array => new TextEncoder().encode(s.repeat(Math.ceil(4096 / s.length)).slice(0, 4096));

describe('memory encryption in the memory controller', () => {
  it('the same plaintext written at two physical addresses gives different ciphertext', () => {
    const mc = controller();
    const p = text('crash kernel ');
    mc.write(0x10000, p, who, { keyId: 1 });
    mc.write(0x20000, p, who, { keyId: 1 });
    const a = new Uint8Array(4096);
    const b = new Uint8Array(4096);
    mc.read(0x10000, a);
    mc.read(0x20000, b);
    expect(Buffer.compare(a, b)).not.toBe(0);
    expect(Buffer.compare(a, p)).not.toBe(0);
  });

  it('a read without the key returns exactly what DRAM stores (the ciphertext), never an error', () => {
    const mc = controller();
    mc.write(0x30000, text('vmcore '), who, { keyId: 1 });
    const viaMc = new Uint8Array(4096);
    mc.read(0x30000, viaMc);
    const dram = new Uint8Array(4096);
    mc.dram.read(0x30000, dram);
    expect(Buffer.compare(viaMc, dram)).toBe(0);
  });

  it('ciphertext moved to another address decrypts to garbage; in place it decrypts to the plaintext', () => {
    const mc = controller();
    const p = text('old memory ');
    mc.write(0x40000, p, who, { keyId: 1 });
    const ct = new Uint8Array(4096);
    mc.read(0x40000, ct);
    mc.write(0x50000, ct, who); // a copy without the key, like a DMA engine moving bytes
    const moved = new Uint8Array(4096);
    mc.read(0x50000, moved, { keyId: 1 });
    expect(Buffer.compare(moved, p)).not.toBe(0);
    const back = new Uint8Array(4096);
    mc.read(0x40000, back, { keyId: 1 });
    expect(Buffer.compare(back, p)).toBe(0);
  });

  it('the key is deterministic per seed: another platform reset (seed) draws another key', () => {
    const a = new AddressTweakedCipher('a', 1, 'host');
    const b = new AddressTweakedCipher('b', 2, 'host');
    const x = new Uint8Array(64);
    const y = new Uint8Array(64);
    a.encrypt(0x1000, x);
    b.encrypt(0x1000, y);
    expect(Buffer.compare(x, y)).not.toBe(0);
    const z = new Uint8Array(64);
    new AddressTweakedCipher('a2', 1, 'host').encrypt(0x1000, z);
    expect(Buffer.compare(x, z)).toBe(0);
  });

  it('writes of any size and alignment agree with whole-frame encryption (property)', () => {
    fc.assert(fc.property(fc.nat(8191), fc.uint8Array({ minLength: 1, maxLength: 9000 }), (off, bytes) => {
      const mc = controller();
      const pa = 0x100000 + off;
      mc.write(pa, bytes, who, { keyId: 1 });
      const back = new Uint8Array(bytes.length);
      mc.read(pa, back, { keyId: 1 });
      expect(Buffer.compare(back, bytes)).toBe(0);
      // The same bytes encrypted in one piece at the same address give the same DRAM content.
      const whole = Uint8Array.from(bytes);
      new AddressTweakedCipher('host', 42, 'host').encrypt(pa, whole);
      const dram = new Uint8Array(bytes.length);
      mc.dram.read(pa, dram);
      expect(Buffer.compare(dram, whole)).toBe(0);
    }), { numRuns: 100 });
  });
});
