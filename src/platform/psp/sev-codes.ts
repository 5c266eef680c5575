// SEV / SEV-SNP firmware command ids and return codes, as include/linux/psp-sev.h
// and include/uapi/linux/psp-sev.h number them (ref/amd-snp-host-and-iommu.md
// sections 2.2 and 2.4). Only the commands this model executes are named; any
// other id reaches the firmware and comes back INVALID_COMMAND.

// Legacy SEV platform commands.
export const SEV_CMD_INIT = 0x01;
export const SEV_CMD_SHUTDOWN = 0x02;
export const SEV_CMD_PLATFORM_STATUS = 0x04;
export const SEV_CMD_DF_FLUSH = 0x0a;

// SEV-SNP platform commands.
export const SEV_CMD_SNP_INIT = 0x81;
export const SEV_CMD_SNP_SHUTDOWN = 0x82;
export const SEV_CMD_SNP_PLATFORM_STATUS = 0x83;
export const SEV_CMD_SNP_DF_FLUSH = 0x84;
export const SEV_CMD_SNP_INIT_EX = 0x85;
export const SEV_CMD_SNP_SHUTDOWN_EX = 0x86;

// SEV-SNP guest commands the workload needs.
export const SEV_CMD_SNP_DECOMMISSION = 0x90;
export const SEV_CMD_SNP_ACTIVATE = 0x91;
export const SEV_CMD_SNP_GCTX_CREATE = 0x93;
export const SEV_CMD_SNP_LAUNCH_UPDATE = 0xa1;
export const SEV_CMD_SNP_PAGE_RECLAIM = 0xc7;
export const SEV_CMD_SNP_LAUNCH_FINISH = 0xa2;

export const SEV_CMD_NAMES: Readonly<Record<number, string>> = {
  [SEV_CMD_INIT]: 'INIT',
  [SEV_CMD_SHUTDOWN]: 'SHUTDOWN',
  [SEV_CMD_PLATFORM_STATUS]: 'PLATFORM_STATUS',
  [SEV_CMD_DF_FLUSH]: 'DF_FLUSH',
  [SEV_CMD_SNP_INIT]: 'SNP_INIT',
  [SEV_CMD_SNP_SHUTDOWN]: 'SNP_SHUTDOWN',
  [SEV_CMD_SNP_PLATFORM_STATUS]: 'SNP_PLATFORM_STATUS',
  [SEV_CMD_SNP_DF_FLUSH]: 'SNP_DF_FLUSH',
  [SEV_CMD_SNP_INIT_EX]: 'SNP_INIT_EX',
  [SEV_CMD_SNP_SHUTDOWN_EX]: 'SNP_SHUTDOWN_EX',
  [SEV_CMD_SNP_DECOMMISSION]: 'SNP_DECOMMISSION',
  [SEV_CMD_SNP_ACTIVATE]: 'SNP_ACTIVATE',
  [SEV_CMD_SNP_GCTX_CREATE]: 'SNP_GCTX_CREATE',
  [SEV_CMD_SNP_LAUNCH_UPDATE]: 'SNP_LAUNCH_UPDATE',
  [SEV_CMD_SNP_LAUNCH_FINISH]: 'SNP_LAUNCH_FINISH',
  [SEV_CMD_SNP_PAGE_RECLAIM]: 'SNP_PAGE_RECLAIM',
};

export function sevCommandName(cmd: number): string {
  return SEV_CMD_NAMES[cmd] ?? `CMD_0x${cmd.toString(16)}`;
}

// Return codes (enum sev_ret_code, with the 2024 renumbering above 0x1D; 0x1E is unused).
export const SEV_RET_SUCCESS = 0x00;
export const SEV_RET_INVALID_PLATFORM_STATE = 0x01;
export const SEV_RET_INVALID_GUEST_STATE = 0x02;
export const SEV_RET_INVALID_CONFIG = 0x03;
export const SEV_RET_INVALID_LEN = 0x04;
export const SEV_RET_ALREADY_OWNED = 0x05;
export const SEV_RET_INVALID_CERTIFICATE = 0x06;
export const SEV_RET_POLICY_FAILURE = 0x07;
export const SEV_RET_INACTIVE = 0x08;
export const SEV_RET_INVALID_ADDRESS = 0x09;
export const SEV_RET_BAD_SIGNATURE = 0x0a;
export const SEV_RET_BAD_MEASUREMENT = 0x0b;
export const SEV_RET_ASID_OWNED = 0x0c;
export const SEV_RET_INVALID_ASID = 0x0d;
export const SEV_RET_WBINVD_REQUIRED = 0x0e;
export const SEV_RET_DFFLUSH_REQUIRED = 0x0f;
export const SEV_RET_INVALID_GUEST = 0x10;
export const SEV_RET_INVALID_COMMAND = 0x11;
export const SEV_RET_ACTIVE = 0x12;
export const SEV_RET_HWSEV_RET_PLATFORM = 0x13;
export const SEV_RET_HWSEV_RET_UNSAFE = 0x14;
export const SEV_RET_UNSUPPORTED = 0x15;
export const SEV_RET_INVALID_PARAM = 0x16;
export const SEV_RET_RESOURCE_LIMIT = 0x17;
export const SEV_RET_SECURE_DATA_INVALID = 0x18;
export const SEV_RET_INVALID_PAGE_SIZE = 0x19;
export const SEV_RET_INVALID_PAGE_STATE = 0x1a;
export const SEV_RET_INVALID_MDATA_ENTRY = 0x1b;
export const SEV_RET_INVALID_PAGE_OWNER = 0x1c;
export const SEV_RET_AEAD_OFLOW = 0x1d;
export const SEV_RET_EXIT_RING_BUFFER = 0x1f;
export const SEV_RET_RMP_INIT_REQUIRED = 0x20;
export const SEV_RET_BAD_SVN = 0x21;
export const SEV_RET_BAD_VERSION = 0x22;
export const SEV_RET_SHUTDOWN_REQUIRED = 0x23;
export const SEV_RET_UPDATE_FAILED = 0x24;
export const SEV_RET_RESTORE_REQUIRED = 0x25;
export const SEV_RET_RMP_INITIALIZATION_FAILED = 0x26;
export const SEV_RET_INVALID_KEY = 0x27;
export const SEV_RET_SHUTDOWN_INCOMPLETE = 0x28;

export const SEV_RET_NAMES: Readonly<Record<number, string>> = {
  0x00: 'SUCCESS', 0x01: 'INVALID_PLATFORM_STATE', 0x02: 'INVALID_GUEST_STATE', 0x03: 'INVALID_CONFIG',
  0x04: 'INVALID_LEN', 0x05: 'ALREADY_OWNED', 0x06: 'INVALID_CERTIFICATE', 0x07: 'POLICY_FAILURE',
  0x08: 'INACTIVE', 0x09: 'INVALID_ADDRESS', 0x0a: 'BAD_SIGNATURE', 0x0b: 'BAD_MEASUREMENT',
  0x0c: 'ASID_OWNED', 0x0d: 'INVALID_ASID', 0x0e: 'WBINVD_REQUIRED', 0x0f: 'DFFLUSH_REQUIRED',
  0x10: 'INVALID_GUEST', 0x11: 'INVALID_COMMAND', 0x12: 'ACTIVE', 0x13: 'HWSEV_RET_PLATFORM',
  0x14: 'HWSEV_RET_UNSAFE', 0x15: 'UNSUPPORTED', 0x16: 'INVALID_PARAM', 0x17: 'RESOURCE_LIMIT',
  0x18: 'SECURE_DATA_INVALID', 0x19: 'INVALID_PAGE_SIZE', 0x1a: 'INVALID_PAGE_STATE',
  0x1b: 'INVALID_MDATA_ENTRY', 0x1c: 'INVALID_PAGE_OWNER', 0x1d: 'AEAD_OFLOW', 0x1f: 'EXIT_RING_BUFFER',
  0x20: 'RMP_INIT_REQUIRED', 0x21: 'BAD_SVN', 0x22: 'BAD_VERSION', 0x23: 'SHUTDOWN_REQUIRED',
  0x24: 'UPDATE_FAILED', 0x25: 'RESTORE_REQUIRED', 0x26: 'RMP_INITIALIZATION_FAILED',
  0x27: 'INVALID_KEY', 0x28: 'SHUTDOWN_INCOMPLETE',
};

export function sevReturnName(status: number): string {
  return SEV_RET_NAMES[status] ?? `STATUS_0x${status.toString(16)}`;
}

/** Legacy SEV platform states (sev->state; PLATFORM_STATUS byte 2). */
export const SEV_STATE_UNINIT = 0;
export const SEV_STATE_INIT = 1;
export const SEV_STATE_WORKING = 2;

// Command buffer layouts (psp-sev.h), byte offsets.
/** sev_data_init: u32 flags; u32 rsvd; u64 tmr_address; u32 tmr_len. */
export const SEV_DATA_INIT_SIZE = 20;
export const SEV_INIT_FLAGS_SEV_ES = 1 << 0;
/** sev_user_data_status: u8 api_major, u8 api_minor, u8 state, u32 flags, u8 build, u32 guest_count (packed). */
export const SEV_USER_DATA_STATUS_SIZE = 12;
/** sev_data_snp_init_ex, 64 bytes: u32 flags; u32 rsvd; u64 list_paddr; u16 max_snp_asid; 46 rsvd. */
export const SNP_INIT_EX_SIZE = 64;
export const SNP_INIT_EX_INIT_RMP = 1 << 0;
export const SNP_INIT_EX_LIST_PADDR_EN = 1 << 1;
/** sev_data_snp_shutdown_ex, 8 bytes: u32 len (= 8); u32 flags. */
export const SNP_SHUTDOWN_EX_SIZE = 8;
export const SNP_SHUTDOWN_EX_IOMMU_SNP_SHUTDOWN = 1 << 0;
/** sev_data_snp_addr: u64 gctx_paddr (DECOMMISSION, GCTX_CREATE) or status page address (SNP_PLATFORM_STATUS). */
export const SNP_ADDR_SIZE = 8;
/** sev_data_snp_activate: u64 gctx_paddr; u32 asid. */
export const SNP_ACTIVATE_SIZE = 12;
/**
 * sev_data_snp_launch_update, 32 bytes: u64 gctx_paddr; u32 bits (0 page_size,
 * 3:1 page_type, 4 imi_page); u32 rsvd; u64 address; u32 VMPL permissions; u32 rsvd.
 */
export const SNP_LAUNCH_UPDATE_SIZE = 32;
/** SNP page types for SNP_LAUNCH_UPDATE. */
export const SNP_PAGE_TYPE_NORMAL = 1;
export const SNP_PAGE_TYPE_VMSA = 2;
/** sev_data_snp_launch_finish starts with u64 gctx_paddr; the ID block fields are not modelled. */
export const SNP_LAUNCH_FINISH_SIZE = 8;
/** sev_user_data_snp_status as the firmware writes it to the status page (32 bytes). */
export const SNP_STATUS_SIZE = 32;
/** HV-fixed range list: u32 num_elements; u32 rsvd; then { u64 base; u32 page_count; u32 rsvd } x N; at most 4 KiB. */
export const HV_FIXED_LIST_HEADER = 8;
export const HV_FIXED_LIST_ENTRY = 16;
export const HV_FIXED_LIST_MAX = 4096;
