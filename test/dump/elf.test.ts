import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  EHDR_SIZE, EM_X86_64, ET_CORE, PHDR_SIZE, PT_LOAD,
  decodeElfHeader, decodeProgramHeader, encodeElfHeader, encodeProgramHeader, type ProgramHeader,
} from '../../src/dump/elf.js';
import { VmcoreFormatError } from '../../src/util/errors.js';

const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const u32 = fc.integer({ min: 0, max: 0xffffffff });

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected an exception');
}

describe('ELF header', () => {
  it('encodes the x86_64 ET_CORE header the kernel writes', () => {
    const b = encodeElfHeader({ phnum: 3 });
    expect(b.length).toBe(EHDR_SIZE);
    expect(Array.from(b.subarray(0, 8))).toEqual([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]);
    const h = decodeElfHeader(b, 'x.elf');
    expect(h).toMatchObject({ type: ET_CORE, machine: EM_X86_64, version: 1, phoff: 64n, shoff: 0n, flags: 0, ehsize: 64, phentsize: 56, phnum: 3, shnum: 0 });
  });

  it('decodes what it encodes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xfffe }), u32, (phnum, flags) => {
        const h = decodeElfHeader(encodeElfHeader({ phnum, flags }), 'x.elf');
        expect(h.phnum).toBe(phnum);
        expect(h.flags).toBe(flags);
      }),
    );
  });

  it('rejects e_phnum that would need PN_XNUM', () => {
    expect(() => encodeElfHeader({ phnum: 0xffff })).toThrow(RangeError);
  });

  it.each([
    ['magic', 0, 0x7e, /magic is "7e 45 4c 46"/],
    ['class', 4, 1, /EI_CLASS is 1/],
    ['data', 5, 2, /EI_DATA is 2/],
    ['ident version', 6, 0, /EI_VERSION is 0/],
    ['e_version', 20, 2, /e_version is 2/],
    ['e_ehsize', 52, 40, /e_ehsize is 40/],
    ['e_phentsize', 54, 32, /e_phentsize is 32/],
  ])('rejects a bad %s with a typed error', (_what, off, value, msg) => {
    const b = encodeElfHeader({ phnum: 2 });
    b[off] = value;
    const e = thrown(() => decodeElfHeader(b, 'x.elf'));
    expect(e).toBeInstanceOf(VmcoreFormatError);
    expect((e as VmcoreFormatError).message).toMatch(/^Cannot read the ELF header of "x\.elf": /);
    expect((e as VmcoreFormatError).message).toMatch(msg);
    expect((e as VmcoreFormatError).offset).toBe(off);
  });

  it('accepts the e_ehsize of 8 that QEMU 7.2 writes', () => {
    const b = encodeElfHeader({ phnum: 2 });
    b[52] = 8;
    expect(decodeElfHeader(b, 'qemu.core').ehsize).toBe(8);
  });

  it('rejects a short buffer', () => {
    expect(() => decodeElfHeader(new Uint8Array(10), 'x.elf')).toThrow(/only 10 bytes/);
  });
});

describe('program header', () => {
  const phdr: fc.Arbitrary<ProgramHeader> = fc.record({
    type: u32, flags: u32, offset: u64, vaddr: u64, paddr: u64, filesz: u64, memsz: u64, align: u64,
  });

  it('decodes what it encodes, at any offset', () => {
    fc.assert(
      fc.property(phdr, fc.integer({ min: 0, max: 100 }), (p, off) => {
        const v = new DataView(new ArrayBuffer(off + PHDR_SIZE));
        encodeProgramHeader(p, v, off);
        expect(decodeProgramHeader(v, off)).toEqual(p);
      }),
    );
  });

  it('puts fields at the Elf64_Phdr offsets', () => {
    const v = new DataView(new ArrayBuffer(PHDR_SIZE));
    encodeProgramHeader({ type: PT_LOAD, flags: 7, offset: 1n, vaddr: 2n, paddr: 3n, filesz: 4n, memsz: 5n, align: 6n }, v, 0);
    expect([0, 4].map((o) => v.getUint32(o, true))).toEqual([1, 7]);
    expect([8, 16, 24, 32, 40, 48].map((o) => v.getBigUint64(o, true))).toEqual([1n, 2n, 3n, 4n, 5n, 6n]);
  });

  it('refuses values that do not fit', () => {
    const v = new DataView(new ArrayBuffer(PHDR_SIZE));
    const p = { type: PT_LOAD, flags: 7, offset: 0n, vaddr: 1n << 64n, paddr: 0n, filesz: 0n, memsz: 0n, align: 0n };
    expect(() => encodeProgramHeader(p, v, 0)).toThrow(RangeError);
  });
});
