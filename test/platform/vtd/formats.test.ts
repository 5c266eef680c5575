import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { encodeRootEntry, decodeRootEntry, encodeScalableRootEntry, decodeScalableRootEntry } from '../../../src/platform/vtd/root-table.js';
import {
  encodeContextEntry, decodeContextEntry, encodeScalableContextEntry, decodeScalableContextEntry,
} from '../../../src/platform/vtd/context-entry.js';
import { encodePasidDirEntry, decodePasidDirEntry, encodePasidEntry, decodePasidEntry } from '../../../src/platform/vtd/pasid-table.js';
import { encodeSlPte, decodeSlPte } from '../../../src/platform/vtd/second-level-table.js';
import { encodeIrte, decodeIrte } from '../../../src/platform/vtd/irte.js';
import { encodeDescriptor, decodeDescriptor, type InvDescriptor } from '../../../src/platform/vtd/invalidation-descriptor.js';
import { encodeFaultRecord, decodeFaultRecord } from '../../../src/platform/vtd/fault-recording.js';
import { capValue, capFaultRecords, capFaultRegOffset, capSagaw, capMgaw, capSps, capMamv } from '../../../src/platform/vtd/registers.js';

const page = fc.integer({ min: 0, max: 2 ** 40 - 1 }).map((n) => n * 4096);
const u = (bits: number): fc.Arbitrary<number> => fc.integer({ min: 0, max: 2 ** bits - 1 });

describe('VT-d in-memory formats', () => {
  it('round-trips root, context, PASID and second-level entries', () => {
    fc.assert(fc.property(fc.boolean(), page, (present, contextTable) => {
      const e = { present, contextTable };
      expect(decodeRootEntry(encodeRootEntry(e).lo)).toEqual(e);
    }));
    fc.assert(fc.property(fc.option(page, { nil: undefined }), fc.option(page, { nil: undefined }), (lower, upper) => {
      const { lo, hi } = encodeScalableRootEntry({ lower, upper });
      expect(decodeScalableRootEntry(lo, hi)).toEqual({ lower, upper });
    }));
    fc.assert(fc.property(fc.record({
      present: fc.boolean(), fpd: fc.boolean(), translationType: u(2), slptptr: page, addressWidth: u(3), domainId: u(16),
    }), (e) => {
      const { lo, hi } = encodeContextEntry(e);
      expect(decodeContextEntry(lo, hi)).toEqual(e);
    }));
    fc.assert(fc.property(fc.record({
      present: fc.boolean(), fpd: fc.boolean(), deviceTlb: fc.boolean(), pasidEnable: fc.boolean(), pageRequest: fc.boolean(),
      pdts: u(3), pasidDirectory: page, ridPasid: u(20),
    }), (e) => {
      expect(decodeScalableContextEntry(encodeScalableContextEntry(e))).toEqual(e);
    }));
    fc.assert(fc.property(fc.record({ present: fc.boolean(), fpd: fc.boolean(), pasidTable: page }), (e) => {
      expect(decodePasidDirEntry(encodePasidDirEntry(e))).toEqual(e);
    }));
    fc.assert(fc.property(fc.record({
      present: fc.boolean(), fpd: fc.boolean(), addressWidth: u(3), pgtt: u(3), slptptr: page, domainId: u(16), flptptr: page,
    }), (e) => {
      expect(decodePasidEntry(encodePasidEntry(e))).toEqual(e);
    }));
    fc.assert(fc.property(fc.record({
      read: fc.boolean(), write: fc.boolean(), superpage: fc.boolean(), snoop: fc.boolean(), address: fc.integer({ min: 0, max: 2 ** 40 - 1 }).map((n) => n * 4096),
    }), (e) => {
      expect(decodeSlPte(encodeSlPte(e))).toEqual(e);
    }));
  });

  it('round-trips IRTEs in both destination modes', () => {
    fc.assert(fc.property(fc.record({
      present: fc.boolean(), fpd: fc.boolean(), destLogical: fc.boolean(), redirectionHint: fc.boolean(), levelTriggered: fc.boolean(),
      deliveryMode: u(3), vector: u(8), destination: u(32), sid: u(16), sq: u(2), svt: u(2),
    }), fc.boolean(), (e, x2apic) => {
      const f = x2apic ? e : { ...e, destination: e.destination & 0xff };
      const { lo, hi } = encodeIrte(f, x2apic);
      expect(decodeIrte(lo, hi, x2apic)).toEqual(f);
    }));
  });

  it('round-trips invalidation descriptors and fault records', () => {
    const descs: fc.Arbitrary<InvDescriptor> = fc.oneof(
      fc.record({ type: fc.constant('context' as const), granularity: u(2), did: u(16), sid: u(16), fm: u(2) }),
      fc.record({ type: fc.constant('iotlb' as const), granularity: u(2), did: u(16), addr: page, am: u(6), ih: fc.boolean(), drain: fc.boolean() }),
      fc.record({ type: fc.constant('iec' as const), indexSelective: fc.boolean(), index: u(16), im: u(5) }),
      fc.record({
        type: fc.constant('wait' as const), statusWrite: fc.boolean(), interrupt: fc.boolean(), fence: fc.boolean(), statusData: u(32),
        statusAddr: fc.integer({ min: 0, max: 2 ** 50 - 1 }).map((n) => n * 4),
      }),
      fc.record({ type: fc.constant('pasid-iotlb' as const), pageSelective: fc.boolean(), did: u(16), pasid: u(20), addr: page, am: u(6) }),
      fc.record({ type: fc.constant('pasid-cache' as const), granularity: u(2), did: u(16), pasid: u(20) }),
      fc.record({ type: fc.constant('no-effect' as const), code: fc.constantFrom(3, 8, 9) }),
    );
    fc.assert(fc.property(descs, (d) => {
      const [lo, hi] = encodeDescriptor(d);
      expect(decodeDescriptor(lo, hi)).toEqual(d);
    }));
    fc.assert(fc.property(u(16), u(8), page, fc.boolean(), fc.option(u(20), { nil: undefined }), (sourceId, reason, address, read, pasid) => {
      const { lo, hi } = encodeFaultRecord({ sourceId, reason, address, read, ...(pasid === undefined ? {} : { pasid }) });
      expect(decodeFaultRecord(lo, hi)).toMatchObject({ valid: true, sourceId, reason, address, read, pasid });
    }));
  });

  it('decodes every CAP field it encodes', () => {
    fc.assert(fc.property(u(5), fc.integer({ min: 1, max: 64 }), u(10), u(4), fc.integer({ min: 1, max: 256 }), u(6), (sagaw, mgaw, fro, sps, nfr, mamv) => {
      const cap = capValue({ nd: 6, sagaw, mgaw, fro, sps, nfr, mamv, flags: 0n });
      expect([capSagaw(cap), capMgaw(cap), capFaultRegOffset(cap), capSps(cap), capFaultRecords(cap), capMamv(cap)]).toEqual([sagaw, mgaw, fro * 16, sps, nfr, mamv]);
    }));
  });

  it('decodes an unknown descriptor type as undefined', () => {
    expect(decodeDescriptor(0xfn, 0n)).toBeUndefined();
    expect(decodeDescriptor(0n, 0n)).toBeUndefined();
  });
});
