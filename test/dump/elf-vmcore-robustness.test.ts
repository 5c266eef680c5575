// Damaged and hostile files: each either opens (and then every page read gives
// a status or a VmcoreFormatError) or fails to open with a VmcoreFormatError
// naming the file. Nothing else may escape, and nothing may hang.

import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EHDR_SIZE, PHDR_SIZE } from '../../src/dump/elf.js';
import { writeElfVmcore } from '../../src/dump/elf-vmcore-writer.js';
import { PAGE_SIZE, MapPageSource } from '../../src/dump/page-source.js';
import { openVmcore } from '../../src/dump/vmcore-reader.js';
import { VmcoreFormatError } from '../../src/util/errors.js';
import { PAGE_OFFSET, KERNEL_MAP, patternPage, sampleNotes, tempDir } from './vmcore-fixtures.js';

const dir = tempDir('fuzz');
const base = path.join(dir, 'base.vmcore');
const victim = path.join(dir, 'victim.vmcore');
let good: Uint8Array;
const PHNUM = 4;

beforeAll(() => {
  const frames = new Map<number, Uint8Array>();
  for (const pfn of [0x100, 0x101, 0x103, 0x1000, 0x1001]) frames.set(pfn, patternPage(pfn));
  writeElfVmcore(base, {
    notes: sampleNotes(2).bytes,
    loads: [
      { paddr: 0x100000, vaddr: PAGE_OFFSET + 0x100000n, memsz: 0x4000 },
      { paddr: 0x1000000, vaddr: PAGE_OFFSET + 0x1000000n, memsz: 0x2000 },
      { paddr: 0x1000000, vaddr: KERNEL_MAP + 0x1000000n, memsz: 0x1000 },
    ],
    source: new MapPageSource(frames),
  });
  good = new Uint8Array(fs.readFileSync(base));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

type Outcome = 'opened' | 'rejected';

/** Opens `bytes` as a vmcore and reads pages around every range; returns what happened or rethrows the unexpected. */
function exercise(bytes: Uint8Array): Outcome {
  fs.writeFileSync(victim, bytes);
  let reader;
  try {
    reader = openVmcore(victim);
  } catch (e) {
    expectTyped(e);
    return 'rejected';
  }
  try {
    const page = new Uint8Array(reader.pageSize);
    void reader.notes.length;
    void reader.prstatus.length;
    const ranges = reader.physRanges().slice(0, 8);
    for (const r of ranges) {
      const first = Math.floor(r.start / reader.pageSize);
      const last = Math.floor((r.end - 1) / reader.pageSize);
      // Both ends of each range plus one page either side; a damaged p_memsz may span terabytes.
      const pfns = new Set<number>();
      for (let i = -1; i < 16; i++) pfns.add(first + i).add(last - i + 0);
      pfns.add(last + 1);
      for (const pfn of pfns) {
        if (pfn < 0) continue;
        try {
          expect(['present', 'excluded', 'absent']).toContain(reader.readPage(pfn, page));
        } catch (e) {
          expectTyped(e);
        }
      }
      try {
        reader.readPhys(r.start, Math.min(64, r.end - r.start));
      } catch (e) {
        expectTyped(e);
      }
    }
    return 'opened';
  } finally {
    reader.close();
  }
}

function expectTyped(e: unknown): void {
  if (!(e instanceof VmcoreFormatError)) throw e;
  expect(e.file).toBe(victim);
  expect(e.message).toContain(`"${victim}"`);
  expect(e.message).toMatch(/^[A-Z][^\n]*[^.]$/);
}

function withU16(bytes: Uint8Array, off: number, v: number): Uint8Array {
  const b = bytes.slice();
  new DataView(b.buffer).setUint16(off, v, true);
  return b;
}

function withU64(bytes: Uint8Array, off: number, v: bigint): Uint8Array {
  const b = bytes.slice();
  new DataView(b.buffer).setBigUint64(off, v, true);
  return b;
}

const phdrOff = (i: number, field: number): number => EHDR_SIZE + PHDR_SIZE * i + field;

describe('ELF vmcore reader on damaged files', () => {
  it('opens the undamaged file', () => {
    expect(exercise(good)).toBe('opened');
  });

  it('truncated at any length', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 40000 }), (n) => {
        const len = Math.min(n, good.length - 1);
        const outcome = exercise(good.subarray(0, len));
        // Cutting into the PT_LOAD data must be noticed when the file is opened.
        if (len < good.length) expect(outcome).toBe('rejected');
      }),
      { numRuns: 150 },
    );
  });

  it('random bytes flipped in the header and program headers', () => {
    const headerBytes = EHDR_SIZE + PHDR_SIZE * PHNUM;
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: headerBytes - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        (flips) => {
          const b = good.slice();
          for (const [off, v] of flips) b[off] = v;
          exercise(b);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('random bytes flipped anywhere in the metadata pages (including notes)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 2 * PAGE_SIZE - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 16 }),
        (flips) => {
          const b = good.slice();
          for (const [off, v] of flips) b[off] = v;
          exercise(b);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('random 64-bit values in PT_LOAD fields', () => {
    const field = fc.constantFrom(8, 16, 24, 32, 40); // offset, vaddr, paddr, filesz, memsz
    const value = fc.oneof(
      fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      fc.constantFrom(0n, 1n, 0xfffn, 0x1000n, (1n << 53n) - 1n, 1n << 53n, (1n << 64n) - 1n, 1n << 63n),
      fc.bigInt({ min: 0n, max: 0x2000000n }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: PHNUM - 1 }), field, value, (i, f, v) => {
        exercise(withU64(good, phdrOff(i, f), v));
      }),
      { numRuns: 300 },
    );
  });

  it('e_phnum 0xfffe is refused before anything is allocated', () => {
    const e = catchError(() => openVmcore(writeVictim(withU16(good, 56, 0xfffe))));
    expect(e).toBeInstanceOf(VmcoreFormatError);
    expect((e as Error).message).toMatch(/^Cannot read program headers of ".*": e_phoff 0x40 \+ 65534 × 56 bytes runs past the end of the file/);
  });

  it('e_phnum PN_XNUM without a section header is refused', () => {
    expect(exercise(withU16(good, 56, 0xffff))).toBe('rejected');
  });

  it('two RAM PT_LOADs that overlap are refused, naming both', () => {
    const e = catchError(() => openVmcore(writeVictim(withU64(good, phdrOff(2, 24), 0x103000n))));
    expect(e).toBeInstanceOf(VmcoreFormatError);
    expect((e as Error).message).toMatch(/program header 2 .*overlaps program header 1/);
  });

  it('a PT_LOAD past the end of the file names its index', () => {
    const e = catchError(() => openVmcore(writeVictim(withU64(good, phdrOff(3, 8), 0x1f000000n))));
    expect((e as Error).message).toMatch(/^Cannot read program header 3 of ".*": p_offset 0x1f000000 is past the end of the file \(size 0x[0-9a-f]+\)$/);
    const e2 = catchError(() => openVmcore(writeVictim(withU64(good, phdrOff(1, 32), 0x5000n))));
    expect((e2 as Error).message).toMatch(/^Cannot read program header 1 of ".*": p_filesz 0x5000 exceeds p_memsz 0x4000$/);
  });

  it('random garbage, with and without an ELF magic', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.boolean(), (bytes, magic) => {
        const b = magic ? Uint8Array.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, ...bytes]) : bytes;
        exercise(b);
      }),
      { numRuns: 200 },
    );
  });

  it('a plausible header followed by random program headers', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.uint8Array({ minLength: 40 * PHDR_SIZE, maxLength: 40 * PHDR_SIZE + 500 }), (phnum, rest) => {
        const b = new Uint8Array(EHDR_SIZE + rest.length);
        b.set(good.subarray(0, EHDR_SIZE));
        b.set(rest, EHDR_SIZE);
        new DataView(b.buffer).setUint16(56, phnum, true);
        exercise(b);
      }),
      { numRuns: 200 },
    );
  });
});

function writeVictim(bytes: Uint8Array): string {
  fs.writeFileSync(victim, bytes);
  return victim;
}

function catchError(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected an exception');
}
