import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { NT_PRSTATUS, decodeNotes, decodeNotesAt, encodeNotes, noteSize, type ElfNote } from '../../src/dump/elf-note.js';
import { VmcoreFormatError } from '../../src/util/errors.js';

const note: fc.Arbitrary<ElfNote> = fc.record({
  name: fc.string({ unit: fc.integer({ min: 1, max: 0xff }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 20 }),
  type: fc.integer({ min: 0, max: 0xffffffff }),
  desc: fc.uint8Array({ maxLength: 64 }),
});

const where = { file: 'n.core', offset: 0x1000 };

describe('ELF notes', () => {
  it('decodes what it encodes, with or without a terminator', () => {
    fc.assert(
      fc.property(fc.array(note, { maxLength: 6 }), fc.boolean(), (notes, terminator) => {
        const buf = encodeNotes(notes, { terminator });
        expect(buf.length).toBe(notes.reduce((s, n) => s + noteSize(n), 0) + (terminator ? 12 : 0));
        expect(buf.length % 4).toBe(0);
        expect(decodeNotes(buf, where)).toEqual(notes);
      }),
    );
  });

  it('encodes CORE/NT_PRSTATUS with n_namesz = strlen + 1 and 4-byte padding', () => {
    const buf = encodeNotes([{ name: 'CORE', type: NT_PRSTATUS, desc: new Uint8Array(336) }, { name: 'VMCOREINFO', type: 0, desc: new Uint8Array(5) }]);
    const v = new DataView(buf.buffer);
    expect([v.getUint32(0, true), v.getUint32(4, true), v.getUint32(8, true)]).toEqual([5, 336, 1]);
    expect(buf.length).toBe(356 + 12 + 12 + 8);
    expect(v.getUint32(356, true)).toBe(11);
  });

  it('stops at the zero header and reports file offsets', () => {
    const buf = encodeNotes([{ name: 'A', type: 1, desc: Uint8Array.of(1, 2, 3) }], { terminator: true });
    const garbage = new Uint8Array(buf.length + 16).fill(0xee);
    garbage.set(buf);
    const got = decodeNotesAt(garbage, where);
    expect(got.map((n) => [n.offset, n.descOffset])).toEqual([[0x1000, 0x1000 + 16]]);
  });

  it('accepts a name size without the NUL, as libkdumpfile does', () => {
    const buf = encodeNotes([{ name: 'CORE', type: 1, desc: new Uint8Array(4) }]);
    new DataView(buf.buffer).setUint32(0, 4, true);
    expect(decodeNotes(buf, where)[0]?.name).toBe('CORE');
  });

  it('names the file offset of a note whose sizes run past the segment', () => {
    const buf = encodeNotes([{ name: 'A', type: 1, desc: new Uint8Array(8) }, { name: 'B', type: 1, desc: new Uint8Array(8) }]);
    new DataView(buf.buffer).setUint32(24 + 4, 0xfffffff0, true);
    expect(() => decodeNotes(buf, where)).toThrow(VmcoreFormatError);
    expect(() => decodeNotes(buf, where)).toThrow(/^Cannot read note at offset 0x1018 of "n\.core": n_descsz 0xfffffff0 runs past/);
    new DataView(buf.buffer).setUint32(24, 0x7fffffff, true);
    expect(() => decodeNotes(buf, where)).toThrow(/n_namesz 0x7fffffff/);
  });

  it('gives only typed errors on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          decodeNotes(bytes, where);
        } catch (e) {
          expect(e).toBeInstanceOf(VmcoreFormatError);
          expect((e as Error).message).toContain('"n.core"');
        }
      }),
    );
  });
});
