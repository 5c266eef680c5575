// Command-buffer entries: 16 bytes, four little-endian 32-bit words, opcode
// in word 1 bits 31:28 (ref §3.6). Encoding is format knowledge a kernel
// model uses to fill its ring; decoding is what the command processor reads.

export const COMMAND_BYTES = 16;

export const OP_COMPLETION_WAIT = 0x1;
export const OP_INVALIDATE_DEVTAB_ENTRY = 0x2;
export const OP_INVALIDATE_IOMMU_PAGES = 0x3;
export const OP_INVALIDATE_IOTLB_PAGES = 0x4;
export const OP_INVALIDATE_INTERRUPT_TABLE = 0x5;
export const OP_PREFETCH_IOMMU_PAGES = 0x6;
export const OP_COMPLETE_PPR = 0x7;
export const OP_INVALIDATE_IOMMU_ALL = 0x8;
export const OP_INSERT_GUEST_EVENT = 0x9;
export const OP_RESET_VMMIO = 0xa;

export const COMMAND_NAMES: Readonly<Record<number, string>> = {
  [OP_COMPLETION_WAIT]: 'COMPLETION_WAIT',
  [OP_INVALIDATE_DEVTAB_ENTRY]: 'INVALIDATE_DEVTAB_ENTRY',
  [OP_INVALIDATE_IOMMU_PAGES]: 'INVALIDATE_IOMMU_PAGES',
  [OP_INVALIDATE_IOTLB_PAGES]: 'INVALIDATE_IOTLB_PAGES',
  [OP_INVALIDATE_INTERRUPT_TABLE]: 'INVALIDATE_INTERRUPT_TABLE',
  [OP_PREFETCH_IOMMU_PAGES]: 'PREFETCH_IOMMU_PAGES',
  [OP_COMPLETE_PPR]: 'COMPLETE_PPR',
  [OP_INVALIDATE_IOMMU_ALL]: 'INVALIDATE_IOMMU_ALL',
  [OP_INSERT_GUEST_EVENT]: 'INSERT_GUEST_EVENT',
  [OP_RESET_VMMIO]: 'RESET_VMMIO',
};

export function commandName(op: number): string {
  return COMMAND_NAMES[op] ?? `UNKNOWN_0x${op.toString(16)}`;
}

/** The address INVALIDATE_IOMMU_PAGES carries, with S=1, to mean every page of the domain. */
export const INV_ALL_PAGES_ADDRESS = 0x7fff_ffff_ffff_f000n;

export type AmdIommuCommand =
  | { readonly op: 'completion-wait'; readonly store: boolean; readonly interrupt: boolean; readonly flush: boolean; /** 8-byte aligned, may carry the C-bit. */ readonly address: number; readonly data: bigint }
  | { readonly op: 'invalidate-devtab-entry'; readonly devid: number }
  | { readonly op: 'invalidate-iommu-pages'; readonly domainId: number; readonly pasid: number; /** Bits 63:12; with `size` the trailing ones encode the range. */ readonly address: bigint; readonly size: boolean; readonly pde: boolean; readonly guest: boolean }
  | { readonly op: 'invalidate-interrupt-table'; readonly devid: number }
  | { readonly op: 'invalidate-iommu-all' }
  /** Commands the model accepts but gives no effect (device IOTLB, PPR, prefetch, guest events). */
  | { readonly op: 'no-effect'; readonly opcode: number };

/** The raw 16 bytes of a command. */
export function encodeCommand(c: AmdIommuCommand): Uint8Array {
  const w = [0, 0, 0, 0];
  switch (c.op) {
    case 'completion-wait': {
      if (c.address % 8 !== 0) throw new RangeError(`Cannot encode COMPLETION_WAIT: store address 0x${c.address.toString(16)} is not 8-byte aligned`);
      const lo = c.address % 2 ** 32;
      w[0] = (lo | (c.store ? 1 : 0) | (c.interrupt ? 2 : 0) | (c.flush ? 4 : 0)) >>> 0;
      w[1] = ((OP_COMPLETION_WAIT << 28) | (Math.floor(c.address / 2 ** 32) & 0xf_ffff)) >>> 0;
      w[2] = Number(c.data & 0xffff_ffffn);
      w[3] = Number((c.data >> 32n) & 0xffff_ffffn);
      break;
    }
    case 'invalidate-devtab-entry':
      w[0] = c.devid & 0xffff;
      w[1] = (OP_INVALIDATE_DEVTAB_ENTRY << 28) >>> 0;
      break;
    case 'invalidate-iommu-pages': {
      w[0] = c.pasid & 0xf_ffff;
      w[1] = ((OP_INVALIDATE_IOMMU_PAGES << 28) | (c.domainId & 0xffff)) >>> 0;
      const a = c.address & 0xffff_ffff_ffff_f000n;
      w[2] = (Number(a & 0xffff_f000n) | (c.size ? 1 : 0) | (c.pde ? 2 : 0) | (c.guest ? 4 : 0)) >>> 0;
      w[3] = Number(a >> 32n);
      break;
    }
    case 'invalidate-interrupt-table':
      w[0] = c.devid & 0xffff;
      w[1] = (OP_INVALIDATE_INTERRUPT_TABLE << 28) >>> 0;
      break;
    case 'invalidate-iommu-all':
      w[1] = (OP_INVALIDATE_IOMMU_ALL << 28) >>> 0;
      break;
    case 'no-effect':
      w[1] = ((c.opcode & 0xf) << 28) >>> 0;
      break;
  }
  const out = new Uint8Array(COMMAND_BYTES);
  const dv = new DataView(out.buffer);
  w.forEach((v, i) => dv.setUint32(i * 4, v, true));
  return out;
}

/** Invalidate every cached translation of one domain. */
export function invalidateAllPages(domainId: number): AmdIommuCommand {
  return { op: 'invalidate-iommu-pages', domainId, pasid: 0, address: INV_ALL_PAGES_ADDRESS, size: true, pde: true, guest: false };
}

/** The command in 16 bytes, or undefined for an opcode the hardware does not know. */
export function decodeCommand(bytes: Uint8Array): { opcode: number; command: AmdIommuCommand | undefined } {
  if (bytes.length < COMMAND_BYTES) throw new RangeError(`Cannot decode IOMMU command: ${bytes.length} bytes, need ${COMMAND_BYTES}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, COMMAND_BYTES);
  const w0 = dv.getUint32(0, true);
  const w1 = dv.getUint32(4, true);
  const w2 = dv.getUint32(8, true);
  const w3 = dv.getUint32(12, true);
  const opcode = w1 >>> 28;
  switch (opcode) {
    case OP_COMPLETION_WAIT:
      return {
        opcode,
        command: {
          op: 'completion-wait', store: (w0 & 1) !== 0, interrupt: (w0 & 2) !== 0, flush: (w0 & 4) !== 0,
          address: (w0 >>> 3) * 8 + (w1 & 0xf_ffff) * 2 ** 32,
          data: BigInt(w2) | (BigInt(w3) << 32n),
        },
      };
    case OP_INVALIDATE_DEVTAB_ENTRY:
      return { opcode, command: { op: 'invalidate-devtab-entry', devid: w0 & 0xffff } };
    case OP_INVALIDATE_IOMMU_PAGES:
      return {
        opcode,
        command: {
          op: 'invalidate-iommu-pages', pasid: w0 & 0xf_ffff, domainId: w1 & 0xffff,
          address: (BigInt(w3) << 32n) | BigInt((w2 & 0xffff_f000) >>> 0),
          size: (w2 & 1) !== 0, pde: (w2 & 2) !== 0, guest: (w2 & 4) !== 0,
        },
      };
    case OP_INVALIDATE_INTERRUPT_TABLE:
      return { opcode, command: { op: 'invalidate-interrupt-table', devid: w0 & 0xffff } };
    case OP_INVALIDATE_IOMMU_ALL:
      return { opcode, command: { op: 'invalidate-iommu-all' } };
    case OP_INVALIDATE_IOTLB_PAGES:
    case OP_PREFETCH_IOMMU_PAGES:
    case OP_COMPLETE_PPR:
    case OP_INSERT_GUEST_EVENT:
    case OP_RESET_VMMIO:
      return { opcode, command: { op: 'no-effect', opcode } };
    default:
      return { opcode, command: undefined };
  }
}

/**
 * The IOVA range [first, end) an INVALIDATE_IOMMU_PAGES names. S=0: the one
 * page. S=1: the run of ones from bit 12 up says how many low address bits
 * are "don't care", so n ones cover 2^(13+n) bytes; the all-pages address
 * (bits 62:12 set) covers everything.
 */
export function invalidationRange(address: bigint, size: boolean): { first: bigint; end: bigint } {
  const a = address & 0xffff_ffff_ffff_f000n;
  if (!size) return { first: a, end: a + 0x1000n };
  let ones = 0n;
  while (ones < 52n && ((a >> (12n + ones)) & 1n) === 1n) ones++;
  const span = 1n << (13n + ones);
  const first = a & ~(span - 1n);
  return { first, end: first + span };
}
