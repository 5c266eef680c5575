// makedumpfile's flattened stream: regular → flat → regular is byte-identical,
// openVmcore names the format, and damaged streams give VmcoreFormatError.

import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { writeKdumpCompressed } from '../../src/dump/kdump-compressed-writer.js';
import {
  FLAT_HEADER_SIZE, FLAT_MAX_RECORD_BYTES, FLAT_RECORD_HEADER_SIZE, flattenFile, unflattenFile,
} from '../../src/dump/flattened.js';
import { MapPageSource, PAGE_SIZE } from '../../src/dump/page-source.js';
import { openVmcore } from '../../src/dump/vmcore-reader.js';
import { VmcoreFormatError } from '../../src/util/errors.js';
import { patternPage, sampleNotes, tempDir } from './vmcore-fixtures.js';

const dir = tempDir('flattened');
const regular = path.join(dir, 'base.kdump');
const flat = path.join(dir, 'base.flat');
const MAX_PFN = 0x400;
let frames: Map<number, Uint8Array>;
let flatBytes: Uint8Array;

beforeAll(() => {
  frames = new Map<number, Uint8Array>();
  for (let pfn = 0x10; pfn < 0x180; pfn += 3) frames.set(pfn, patternPage(pfn));
  // Incompressible pages make the file span several 1 MiB chunks.
  for (let pfn = 0x200; pfn < 0x380; pfn++) frames.set(pfn, new Uint8Array(randomBytes(PAGE_SIZE)));
  writeKdumpCompressed(regular, {
    source: new MapPageSource(frames), maxPfn: MAX_PFN, ranges: [{ startPfn: 0x10, endPfn: 0x180 }, { startPfn: 0x200, endPfn: 0x380 }],
    notes: sampleNotes(2).bytes, release: '6.1.0', nrCpus: 2, compression: 'zlib',
  });
  flattenFile(regular, flat);
  flatBytes = new Uint8Array(fs.readFileSync(flat));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function be64(b: Uint8Array, off: number): bigint {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getBigInt64(off, false);
}

describe('flattened format', () => {
  it('writes the header, records and end marker as makedumpfile does', () => {
    expect(Buffer.from(flatBytes.subarray(0, 16)).toString('latin1')).toBe('makedumpfile\0\0\0\0');
    expect(be64(flatBytes, 16)).toBe(1n);
    expect(be64(flatBytes, 24)).toBe(1n);
    expect(flatBytes.subarray(32, FLAT_HEADER_SIZE).every((b) => b === 0)).toBe(true);
    expect(Buffer.from(flatBytes.subarray(flatBytes.length - 16)).equals(Buffer.alloc(16, 0xff))).toBe(true);
    expect(be64(flatBytes, FLAT_HEADER_SIZE)).toBe(0n);
    expect(fs.statSync(regular).size).toBeGreaterThan(1 << 20); // several records
  });

  it('round trip regular → flat → regular is byte-identical and reads back', () => {
    const back = path.join(dir, 'back.kdump');
    const r = unflattenFile(flat, back);
    expect(r.records).toBeGreaterThan(1);
    expect(fs.existsSync(`${back}.part`)).toBe(false);
    expect(Buffer.compare(fs.readFileSync(back), fs.readFileSync(regular))).toBe(0);
    const reader = openVmcore(back);
    try {
      const page = new Uint8Array(PAGE_SIZE);
      for (const [pfn, want] of frames) {
        expect(reader.readPage(pfn, page)).toBe('present');
        expect(Buffer.from(page).equals(want)).toBe(true);
      }
    } finally {
      reader.close();
    }
  });

  it('rearranges out-of-order and overlapping records, later record winning', () => {
    const f = path.join(dir, 'ooo.flat');
    const hdr = flatBytes.subarray(0, FLAT_HEADER_SIZE);
    const rec = (off: number, data: Uint8Array): Buffer => {
      const h = Buffer.alloc(16);
      h.writeBigInt64BE(BigInt(off), 0);
      h.writeBigInt64BE(BigInt(data.length), 8);
      return Buffer.concat([h, data]);
    };
    fs.writeFileSync(f, Buffer.concat([hdr, rec(8, Buffer.from('BBBB')), rec(0, Buffer.from('AAAAAAAA')), rec(10, Buffer.from('C')), Buffer.alloc(16, 0xff)]));
    const out = path.join(dir, 'ooo.out');
    unflattenFile(f, out);
    expect(fs.readFileSync(out, 'latin1')).toBe('AAAAAAAABBCB');
  });

  it('openVmcore rejects a flattened file, telling how to rearrange it', () => {
    expect(() => openVmcore(flat)).toThrow(VmcoreFormatError);
    expect(() => openVmcore(flat)).toThrow(/flattened format.*makedumpfile -R/);
  });

  it('flattenFile refuses an already flattened file', () => {
    expect(() => flattenFile(flat, path.join(dir, 'twice.flat'))).toThrow(VmcoreFormatError);
    expect(fs.existsSync(path.join(dir, 'twice.flat.part'))).toBe(false);
  });

  it('rejects bad records with the offending file offset', () => {
    const out = path.join(dir, 'bad.out');
    const withRecord = (offset: bigint, size: bigint): string => {
      const f = path.join(dir, 'bad.flat');
      const h = Buffer.alloc(16);
      h.writeBigInt64BE(offset, 0);
      h.writeBigInt64BE(size, 8);
      fs.writeFileSync(f, Buffer.concat([flatBytes.subarray(0, FLAT_HEADER_SIZE), h, Buffer.alloc(64), Buffer.alloc(16, 0xff)]));
      return f;
    };
    const cases: [bigint, bigint, RegExp][] = [
      [-5n, 64n, /invalid end marker/],
      [0n, 0n, /invalid end marker/],
      [-1n, 0n, /invalid end marker/],
      [0n, BigInt(FLAT_MAX_RECORD_BYTES) + 1n, /exceeds/],
      [0x7fff_ffff_ffff_0000n, 64n, /beyond/],
      [0n, 1n << 20n, /truncated stream/],
    ];
    for (const [o, s, re] of cases) {
      let err: unknown;
      try {
        unflattenFile(withRecord(o, s), out);
      } catch (e) {
        err = e;
      }
      expect(err, `${o}/${s}`).toBeInstanceOf(VmcoreFormatError);
      expect((err as VmcoreFormatError).message).toMatch(re);
      expect((err as VmcoreFormatError).offset).toBeGreaterThanOrEqual(FLAT_HEADER_SIZE);
      expect(fs.existsSync(out)).toBe(false);
      expect(fs.existsSync(`${out}.part`)).toBe(false);
    }
  });

  it('every truncation gives a VmcoreFormatError naming an offset within the file', () => {
    const victim = path.join(dir, 'trunc.flat');
    const out = path.join(dir, 'trunc.out');
    fc.assert(
      fc.property(fc.integer({ min: 0, max: flatBytes.length - 1 }), (len) => {
        fs.writeFileSync(victim, flatBytes.subarray(0, len));
        let err: unknown;
        try {
          unflattenFile(victim, out);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(VmcoreFormatError);
        const off = (err as VmcoreFormatError).offset!;
        expect(off).toBeGreaterThanOrEqual(0);
        expect(off).toBeLessThanOrEqual(len);
        expect(fs.existsSync(out)).toBe(false);
      }),
      { numRuns: 60 },
    );
  });

  it('corrupted header fields give a VmcoreFormatError; corrupt payload still rearranges', () => {
    const victim = path.join(dir, 'corrupt.flat');
    const out = path.join(dir, 'corrupt.out');
    // Byte positions of the flat header's fields and of every record header.
    const headerBytes: number[] = [];
    for (let i = 0; i < 32; i++) headerBytes.push(i);
    for (let pos = FLAT_HEADER_SIZE; pos < flatBytes.length;) {
      for (let i = 0; i < FLAT_RECORD_HEADER_SIZE; i++) headerBytes.push(pos + i);
      const size = be64(flatBytes, pos + 8);
      if (size < 0n) break;
      pos += FLAT_RECORD_HEADER_SIZE + Number(size);
    }
    const maxFileSize = 4 * fs.statSync(regular).size;
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(...headerBytes), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: flatBytes.length - 1 }), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
        (headerFlips, anyBytes) => {
          const bytes = new Uint8Array(flatBytes);
          for (const [pos, x] of headerFlips) bytes[pos]! ^= x;
          for (const [pos, v] of anyBytes) bytes[pos] = v;
          fs.writeFileSync(victim, bytes);
          try {
            const r = unflattenFile(victim, out, { maxFileSize });
            // A flip may still leave a valid stream (e.g. a smaller size that lands on
            // another record header); then the result is bounded as asked.
            expect(r.fileSize).toBeLessThanOrEqual(maxFileSize);
            expect(fs.statSync(out).size).toBe(r.fileSize);
            fs.rmSync(out);
          } catch (e) {
            expect(e).toBeInstanceOf(VmcoreFormatError);
            expect(fs.existsSync(out)).toBe(false);
            expect(fs.existsSync(`${out}.part`)).toBe(false);
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
