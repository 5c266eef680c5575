// Byte layouts of the kdump-compressed ("diskdump", signature "KDUMP   ")
// format as makedumpfile writes it for x86_64: disk_dump_header in block 0,
// kdump_sub_header plus the copied ELF notes from block 1, two bitmaps, one
// 24-byte page descriptor per dumped page, then the page data.

export const KDUMP_SIGNATURE = 'KDUMP   ';
export const DISKDUMP_SIGNATURE = 'DISKDUMP';
export const KDUMP_HEADER_VERSION = 6;

/** disk_dump_header (x86_64). */
export const DH_SIZE = 464;
export const DH_SIGNATURE = 0;
export const DH_HEADER_VERSION = 8;
export const DH_UTSNAME = 12;
export const UTS_FIELD_LEN = 65;
export const UTS_SYSNAME = 0;
export const UTS_NODENAME = 1;
export const UTS_RELEASE = 2;
export const UTS_VERSION = 3;
export const UTS_MACHINE = 4;
export const UTS_DOMAINNAME = 5;
export const DH_TIMESTAMP_SEC = 408;
export const DH_TIMESTAMP_USEC = 416;
export const DH_STATUS = 424;
export const DH_BLOCK_SIZE = 428;
export const DH_SUB_HDR_SIZE = 432;
export const DH_BITMAP_BLOCKS = 436;
export const DH_MAX_MAPNR = 440;
export const DH_TOTAL_RAM_BLOCKS = 444;
export const DH_DEVICE_BLOCKS = 448;
export const DH_WRITTEN_BLOCKS = 452;
export const DH_CURRENT_CPU = 456;
export const DH_NR_CPUS = 460;

/** kdump_sub_header (x86_64). */
export const SH_SIZE = 104;
export const SH_PHYS_BASE = 0;
export const SH_DUMP_LEVEL = 8;
export const SH_SPLIT = 12;
export const SH_START_PFN = 16;
export const SH_END_PFN = 24;
export const SH_OFFSET_VMCOREINFO = 32;
export const SH_SIZE_VMCOREINFO = 40;
export const SH_OFFSET_NOTE = 48;
export const SH_SIZE_NOTE = 56;
export const SH_OFFSET_ERASEINFO = 64;
export const SH_SIZE_ERASEINFO = 72;
export const SH_START_PFN_64 = 80;
export const SH_END_PFN_64 = 88;
export const SH_MAX_MAPNR_64 = 96;

/** page_desc. */
export const PD_SIZE = 24;
export const PD_OFFSET = 0;
export const PD_SIZE_FIELD = 8;
export const PD_FLAGS = 12;
export const PD_PAGE_FLAGS = 16;

/** disk_dump_header.status and page_desc.flags. */
export const DUMP_DH_COMPRESSED_ZLIB = 0x1;
export const DUMP_DH_COMPRESSED_LZO = 0x2;
export const DUMP_DH_COMPRESSED_SNAPPY = 0x4;
export const DUMP_DH_COMPRESSED_INCOMPLETE = 0x8;
export const DUMP_DH_EXCLUDED_VMEMMAP = 0x10;
export const DUMP_DH_COMPRESSED_ZSTD = 0x20;
export const DUMP_DH_COMPRESSION_MASK = DUMP_DH_COMPRESSED_ZLIB | DUMP_DH_COMPRESSED_LZO | DUMP_DH_COMPRESSED_SNAPPY | DUMP_DH_COMPRESSED_ZSTD;

/** Dump level bit: zero pages share one descriptor (kdump-compressed output). */
export const DL_EXCLUDE_ZERO = 1;

/** Block sizes readers accept (libkdumpfile try_header). */
export const MIN_BLOCK_SIZE = 4096;
export const MAX_BLOCK_SIZE = 262144;

export function compressionName(flags: number): string {
  switch (flags) {
    case 0: return 'none';
    case DUMP_DH_COMPRESSED_ZLIB: return 'zlib';
    case DUMP_DH_COMPRESSED_LZO: return 'lzo';
    case DUMP_DH_COMPRESSED_SNAPPY: return 'snappy';
    case DUMP_DH_COMPRESSED_ZSTD: return 'zstd';
    default: return `unknown (0x${flags.toString(16)})`;
  }
}

/** Blocks of ONE bitmap covering maxMapnr frames. */
export function bitmapBlocksFor(maxMapnr: number, blockSize: number): number {
  return Math.ceil(Math.ceil(maxMapnr / 8) / blockSize);
}

/** Bit for pfn n = bit (n & 7) of byte n >> 3. */
export function bitmapTest(bitmap: Uint8Array, pfn: number): boolean {
  const b = bitmap[Math.floor(pfn / 8)];
  return b !== undefined && ((b >> (pfn % 8)) & 1) === 1;
}

export function bitmapSet(bitmap: Uint8Array, pfn: number): void {
  const i = Math.floor(pfn / 8);
  bitmap[i] = (bitmap[i] ?? 0) | (1 << (pfn % 8));
}

export function bitmapClear(bitmap: Uint8Array, pfn: number): void {
  const i = Math.floor(pfn / 8);
  bitmap[i] = (bitmap[i] ?? 0) & ~(1 << (pfn % 8));
}

export const POPCOUNT8: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (let i = 1; i < 256; i++) t[i] = (i & 1) + (t[i >> 1] ?? 0);
  return t;
})();

/**
 * Rank structure over a bitmap: rank(pfn) = set bits below pfn, in O(64
 * byte lookups) using a prefix count per 512-frame section.
 */
export class BitmapRank {
  static readonly SECTION_BYTES = 64;
  readonly bitmap: Uint8Array;
  readonly total: number;
  readonly #prefix: Float64Array;

  constructor(bitmap: Uint8Array) {
    this.bitmap = bitmap;
    const sections = Math.ceil(bitmap.length / BitmapRank.SECTION_BYTES);
    this.#prefix = new Float64Array(sections + 1);
    let count = 0;
    for (let s = 0; s < sections; s++) {
      this.#prefix[s] = count;
      const end = Math.min(bitmap.length, (s + 1) * BitmapRank.SECTION_BYTES);
      for (let i = s * BitmapRank.SECTION_BYTES; i < end; i++) count += POPCOUNT8[bitmap[i] ?? 0] ?? 0;
    }
    this.#prefix[sections] = count;
    this.total = count;
  }

  /** Set bits at positions < pfn. */
  rank(pfn: number): number {
    const byte = Math.floor(pfn / 8);
    if (byte >= this.bitmap.length) return this.total;
    const s = Math.floor(byte / BitmapRank.SECTION_BYTES);
    let count = this.#prefix[s] ?? 0;
    for (let i = s * BitmapRank.SECTION_BYTES; i < byte; i++) count += POPCOUNT8[this.bitmap[i] ?? 0] ?? 0;
    const bits = pfn % 8;
    if (bits > 0) count += POPCOUNT8[(this.bitmap[byte] ?? 0) & ((1 << bits) - 1)] ?? 0;
    return count;
  }
}
