import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { encodeDte, decodeDte, type DteFields } from '../../../src/platform/amd-iommu/device-table-entry.js';
import { encodeCommand, decodeCommand, invalidationRange, INV_ALL_PAGES_ADDRESS, type AmdIommuCommand } from '../../../src/platform/amd-iommu/command-buffer.js';
import { encodeIrte, decodeIrte, type IrteFields } from '../../../src/platform/amd-iommu/interrupt-remapping-table.js';
import { encodeEvent, decodeEvent } from '../../../src/platform/amd-iommu/event-log.js';
import { encodeIoPte, decodeIoPte, walkIoPageTable, ioPde, ioLeaf } from '../../../src/platform/amd-iommu/io-page-table.js';

const page = fc.integer({ min: 0, max: 2 ** 40 - 1 }).map((p) => p * 4096);

describe('AMD IOMMU formats', () => {
  it('DTE encode then decode is the identity', () => {
    const dte = fc.record({
      valid: fc.boolean(), translationValid: fc.boolean(), mode: fc.integer({ min: 0, max: 7 }), pageTableRoot: page,
      ir: fc.boolean(), iw: fc.boolean(), domainId: fc.integer({ min: 0, max: 0xffff }), ex: fc.boolean(),
      interruptValid: fc.boolean(), intTabLen: fc.integer({ min: 0, max: 15 }),
      irtRoot: fc.integer({ min: 0, max: 2 ** 46 - 1 }).map((x) => x * 64), intCtl: fc.integer({ min: 0, max: 3 }),
    });
    fc.assert(fc.property(dte, (f: DteFields) => {
      expect(decodeDte(encodeDte(f))).toEqual(f);
    }));
  });

  it('command encode then decode is the identity', () => {
    const cmd: fc.Arbitrary<AmdIommuCommand> = fc.oneof(
      fc.record({
        op: fc.constant('completion-wait' as const), store: fc.boolean(), interrupt: fc.boolean(), flush: fc.boolean(),
        address: fc.integer({ min: 0, max: 2 ** 49 - 1 }).map((x) => x * 8), data: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      }),
      fc.record({ op: fc.constant('invalidate-devtab-entry' as const), devid: fc.integer({ min: 0, max: 0xffff }) }),
      fc.record({
        op: fc.constant('invalidate-iommu-pages' as const), domainId: fc.integer({ min: 0, max: 0xffff }), pasid: fc.integer({ min: 0, max: 0xf_ffff }),
        address: fc.bigInt({ min: 0n, max: 2n ** 52n - 1n }).map((x) => x << 12n), size: fc.boolean(), pde: fc.boolean(), guest: fc.boolean(),
      }),
      fc.record({ op: fc.constant('invalidate-interrupt-table' as const), devid: fc.integer({ min: 0, max: 0xffff }) }),
      fc.constant({ op: 'invalidate-iommu-all' as const }),
      fc.constantFrom(4, 6, 7, 9, 10).map((opcode) => ({ op: 'no-effect' as const, opcode })),
    );
    fc.assert(fc.property(cmd, (c) => {
      expect(decodeCommand(encodeCommand(c)).command).toEqual(c);
    }));
  });

  it('opcodes 0 and 0xb..0xf decode as unknown', () => {
    for (const op of [0, 0xb, 0xc, 0xd, 0xe, 0xf]) {
      const b = new Uint8Array(16);
      new DataView(b.buffer).setUint32(4, op << 28 >>> 0, true);
      expect(decodeCommand(b)).toEqual({ opcode: op, command: undefined });
    }
  });

  it('IRTE encode then decode is the identity in both formats', () => {
    const f = (ga: boolean): fc.Arbitrary<IrteFields> => fc.record({
      remapEn: fc.boolean(), supIopf: fc.boolean(), intType: fc.integer({ min: 0, max: 7 }), rqEoi: fc.boolean(), dm: fc.boolean(),
      destination: fc.integer({ min: 0, max: ga ? 0xffff_ffff : 0xff }), vector: fc.integer({ min: 0, max: 0xff }), guestMode: ga ? fc.boolean() : fc.constant(false),
    });
    for (const ga of [false, true]) {
      fc.assert(fc.property(f(ga), (x) => {
        expect(decodeIrte(encodeIrte(x, ga), ga)).toEqual(x);
      }));
    }
  });

  it('event encode then decode keeps every field', () => {
    const ev = fc.record({
      type: fc.integer({ min: 0, max: 15 }), devid: fc.integer({ min: 0, max: 0xffff }), domainId: fc.integer({ min: 0, max: 0xffff }),
      flags: fc.integer({ min: 0, max: 0xfff }), flagsRmp: fc.integer({ min: 0, max: 0xffff }), address: fc.integer({ min: 0, max: 2 ** 52 }),
    });
    fc.assert(fc.property(ev, (e) => {
      expect(decodeEvent(encodeEvent(e))).toMatchObject(e);
    }));
  });

  it('I/O PTE encode then decode is the identity', () => {
    fc.assert(fc.property(fc.boolean(), fc.integer({ min: 0, max: 7 }), page, fc.boolean(), fc.boolean(), (present, nextLevel, address, ir, iw) => {
      const f = { present, nextLevel, address, ir, iw };
      expect(decodeIoPte(encodeIoPte(f))).toEqual(f);
    }));
  });

  it('INVALIDATE_IOMMU_PAGES ranges: one page, 8 KiB per trailing one, everything for the all-pages address', () => {
    expect(invalidationRange(0x5000n, false)).toEqual({ first: 0x5000n, end: 0x6000n });
    expect(invalidationRange(0x4000n, true)).toEqual({ first: 0x4000n, end: 0x6000n });
    expect(invalidationRange(0x5000n, true)).toEqual({ first: 0x4000n, end: 0x8000n });
    expect(invalidationRange(INV_ALL_PAGES_ADDRESS, true)).toEqual({ first: 0n, end: 2n ** 64n });
  });

  it('walks large pages, level skips and refuses a next level that does not descend', () => {
    const mem = new Map<number, bigint>();
    const read = (a: number): bigint => mem.get(a) ?? 0n;
    // Level 3 root at 0x1000; entry 0 points straight to a level-1 table (skipping level 2).
    mem.set(0x1000, ioPde(0x2000, 1));
    mem.set(0x2000 + 8 * 3, ioLeaf(0x9000));
    expect(walkIoPageTable(read, 0x1000, 3, 0x3abc, true, true)).toMatchObject({ ok: true, page: 0x9000, leafLevel: 1 });
    // An IOVA with level-2 bits set cannot use the skip.
    expect(walkIoPageTable(read, 0x1000, 3, 0x20_3000, true, true)).toMatchObject({ ok: false, fault: 'not-present' });
    // Entry 1 of the root is a 1 GiB leaf.
    mem.set(0x1008, ioLeaf(0x4000_0000, { ir: true, iw: false }));
    expect(walkIoPageTable(read, 0x1000, 3, 0x4123_4567, true, true)).toMatchObject({ ok: true, page: 0x4123_4000, ir: true, iw: false });
    mem.set(0x1010, ioPde(0x3000, 3));
    expect(walkIoPageTable(read, 0x1000, 3, 0x8000_0000, true, true)).toMatchObject({ ok: false, fault: 'reserved' });
    expect(walkIoPageTable(read, 0x1000, 3, 2 ** 39, true, true)).toMatchObject({ ok: false, fault: 'not-present' });
  });
});
