// AMD IOMMU register file: offsets from the MMIO base and bit fields, laid
// out to be read next to ref/amd-snp-host-and-iommu.md §3.1-3.3.

/** Bytes of MMIO the IOMMU claims (the kernel maps 512 KiB when counters are present). */
export const AMD_IOMMU_MMIO_SIZE = 0x8_0000;
/** Where attach puts the register file unless told otherwise (ours; real parts report it in IVRS). */
export const AMD_IOMMU_DEFAULT_MMIO_BASE = 0xfd20_0000;

export const REG_DEV_TAB_BASE = 0x0000;
export const REG_CMD_BUF_BASE = 0x0008;
export const REG_EVENT_LOG_BASE = 0x0010;
export const REG_CONTROL = 0x0018;
/** Exclusion Base; the Completion Store Base when the part supports SNP. */
export const REG_EXCL_BASE = 0x0020;
/** Exclusion Range Limit; the Completion Store Limit when the part supports SNP. */
export const REG_EXCL_LIMIT = 0x0028;
export const REG_EFR = 0x0030;
export const REG_EFR2 = 0x01a0;
export const REG_CMD_BUF_HEAD = 0x2000;
export const REG_CMD_BUF_TAIL = 0x2008;
export const REG_EVENT_LOG_HEAD = 0x2010;
export const REG_EVENT_LOG_TAIL = 0x2018;
export const REG_STATUS = 0x2020;

/** Names used in trace entries. */
export const REGISTER_NAMES: Readonly<Record<number, string>> = {
  [REG_DEV_TAB_BASE]: 'DevTabBase',
  [REG_CMD_BUF_BASE]: 'CmdBufBase',
  [REG_EVENT_LOG_BASE]: 'EventLogBase',
  [REG_CONTROL]: 'Control',
  [REG_EXCL_BASE]: 'ExclusionBase',
  [REG_EXCL_LIMIT]: 'ExclusionLimit',
  [REG_EFR]: 'ExtendedFeatures',
  [REG_EFR2]: 'ExtendedFeatures2',
  [REG_CMD_BUF_HEAD]: 'CmdBufHead',
  [REG_CMD_BUF_TAIL]: 'CmdBufTail',
  [REG_EVENT_LOG_HEAD]: 'EventLogHead',
  [REG_EVENT_LOG_TAIL]: 'EventLogTail',
  [REG_STATUS]: 'Status',
};

/** The register name, or its offset in hex for registers the model only stores. */
export function registerName(offset: number, snpSup: boolean): string {
  if (snpSup && offset === REG_EXCL_BASE) return 'CompletionStoreBase';
  if (snpSup && offset === REG_EXCL_LIMIT) return 'CompletionStoreLimit';
  return REGISTER_NAMES[offset] ?? `reg_0x${offset.toString(16)}`;
}

/** Control register bits (§3.2). Bits not listed are stored and read back. */
export const CTRL_IOMMU_EN = 1n << 0n;
export const CTRL_HT_TUN_EN = 1n << 1n;
export const CTRL_EVENT_LOG_EN = 1n << 2n;
export const CTRL_EVENT_INT_EN = 1n << 3n;
export const CTRL_COM_WAIT_INT_EN = 1n << 4n;
export const CTRL_INV_TIMEOUT_SHIFT = 5n;
export const CTRL_INV_TIMEOUT_MASK = 7n;
export const CTRL_CMD_BUF_EN = 1n << 12n;
export const CTRL_GA_EN = 1n << 17n;
export const CTRL_IRT_CACHE_DIS = 1n << 59n;

/** Status register bits (§3.2). */
export const STATUS_EVENT_OVERFLOW = 1n << 0n;
export const STATUS_EVENT_LOG_INT = 1n << 1n;
export const STATUS_COM_WAIT_INT = 1n << 2n;
export const STATUS_EVENT_LOG_RUN = 1n << 3n;
export const STATUS_CMD_BUF_RUN = 1n << 4n;
export const STATUS_PPR_OVERFLOW = 1n << 5n;
export const STATUS_PPR_INT = 1n << 6n;
export const STATUS_GA_LOG_OVERFLOW = 1n << 9n;
export const STATUS_GA_INT = 1n << 10n;
/** Status bits software clears by writing 1; the run bits are read-only. */
export const STATUS_W1C = STATUS_EVENT_OVERFLOW | STATUS_EVENT_LOG_INT | STATUS_COM_WAIT_INT
  | STATUS_PPR_OVERFLOW | STATUS_PPR_INT | STATUS_GA_LOG_OVERFLOW | STATUS_GA_INT;

/** Extended Feature Register bits (§3.3). */
export const EFR_IA_SUP = 1n << 6n;
export const EFR_GA_SUP = 1n << 7n;
export const EFR_SNP_SUP = 1n << 63n;
/** The EFR of an SNP-capable part (the reference's example). */
export const DEFAULT_EFR = 0x841f_77e0_2209_4acen;

/** Writable bits of each base register; the rest read as zero. */
export const DEV_TAB_BASE_MASK = 0x000f_ffff_ffff_f1ffn; // 51:12 address, 8:0 size
export const RING_BASE_MASK = 0x0f0f_ffff_ffff_f000n; // 51:12 address, 59:56 length code
export const EXCL_BASE_MASK = 0x000f_ffff_ffff_f003n; // 51:12 address, 1 Allow, 0 ExEn
export const EXCL_LIMIT_MASK = 0x000f_ffff_ffff_f000n; // 51:12 inclusive last page
/** Head and tail registers: byte offsets, bits 18:4 significant. */
export const RING_PTR_MASK = 0x7_fff0n;

export const ADDR_MASK = 0x000f_ffff_ffff_f000n;
export const EXCL_EN = 1n << 0n;
export const EXCL_ALLOW = 1n << 1n;

/** Bytes of device table a Device Table Base value describes: (bits 8:0 + 1) pages. */
export function devTabBytes(reg: bigint): number {
  return (Number(reg & 0x1ffn) + 1) * 4096;
}

/**
 * Entries of a command buffer or event log from its base register: 2^n for
 * length code n in bits 59:56. Codes below 8 are reserved; the model treats
 * them as 8 (256 entries), so the size is always 4 KiB..512 KiB.
 */
export function ringEntries(reg: bigint): number {
  const code = Number((reg >> 56n) & 0xfn);
  return 2 ** Math.max(code, 8);
}

/** The address field (bits 51:12) of a base register, as a number. */
export function baseAddress(reg: bigint): number {
  return Number(reg & ADDR_MASK);
}

/** Encodes a Command Buffer / Event Log Base value: address plus length code for `entries` (a power of two, 256..32768). */
export function ringBaseValue(pa: number, entries: number): bigint {
  const code = Math.log2(entries);
  if (!Number.isInteger(code) || code < 8 || code > 15) throw new RangeError(`Cannot encode ring base: ${entries} entries is not a power of two in 256..32768`);
  if (pa % 4096 !== 0) throw new RangeError(`Cannot encode ring base: address 0x${pa.toString(16)} is not 4 KiB aligned`);
  return (BigInt(code) << 56n) | (BigInt(pa) & ADDR_MASK);
}

/** Encodes a Device Table Base value for a table of `bytes` (a multiple of 4 KiB, at most 2 MiB). */
export function devTabBaseValue(pa: number, bytes: number): bigint {
  if (bytes % 4096 !== 0 || bytes < 4096 || bytes > 512 * 4096) throw new RangeError(`Cannot encode device table base: size 0x${bytes.toString(16)} is not 4 KiB..2 MiB in pages`);
  if (pa % 4096 !== 0) throw new RangeError(`Cannot encode device table base: address 0x${pa.toString(16)} is not 4 KiB aligned`);
  return (BigInt(pa) & ADDR_MASK) | BigInt(bytes / 4096 - 1);
}
