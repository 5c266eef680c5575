// Fault reason codes the unit writes into a fault record's FR field
// (ref §2.6): legacy DMA remapping 0x00-0x0D, interrupt remapping 0x20-0x26,
// scalable-mode DMA remapping from 0x30. The texts are the meanings software
// prints for them, so a trace reads like a DMAR log.

export const FR_SOFTWARE = 0x00;
export const FR_ROOT_NOT_PRESENT = 0x01;
export const FR_CONTEXT_NOT_PRESENT = 0x02;
export const FR_CONTEXT_INVALID = 0x03;
export const FR_BEYOND_MGAW = 0x04;
export const FR_WRITE = 0x05;
export const FR_READ = 0x06;
export const FR_PAGING_ENTRY_INVALID = 0x07;
export const FR_ROOT_TABLE_INVALID = 0x08;
export const FR_CONTEXT_TABLE_INVALID = 0x09;
export const FR_ROOT_RESERVED = 0x0a;
export const FR_CONTEXT_RESERVED = 0x0b;
export const FR_PTE_RESERVED = 0x0c;
export const FR_CONTEXT_TT_BLOCKS = 0x0d;

export const FR_IR_REQUEST_RESERVED = 0x20;
export const FR_IR_INDEX_OVER = 0x21;
export const FR_IR_NOT_PRESENT = 0x22;
export const FR_IR_TABLE_ACCESS = 0x23;
export const FR_IR_IRTE_RESERVED = 0x24;
export const FR_IR_COMPAT_BLOCKED = 0x25;
export const FR_IR_SID_MISMATCH = 0x26;

export const FR_SM_ROOT_ACCESS = 0x38;
export const FR_SM_ROOT_NOT_PRESENT = 0x39;
export const FR_SM_ROOT_RESERVED = 0x3a;
export const FR_SM_CONTEXT_ACCESS = 0x40;
export const FR_SM_CONTEXT_NOT_PRESENT = 0x41;
export const FR_SM_CONTEXT_RESERVED = 0x42;
export const FR_SM_CONTEXT_INVALID = 0x43;
export const FR_SM_RID_PASID = 0x48;
export const FR_SM_PASID_DIR_ACCESS = 0x50;
export const FR_SM_PASID_DIR_NOT_PRESENT = 0x51;
export const FR_SM_PASID_DIR_RESERVED = 0x52;
export const FR_SM_PASID_ENTRY_ACCESS = 0x58;
export const FR_SM_PASID_ENTRY_NOT_PRESENT = 0x59;
export const FR_SM_PASID_ENTRY_RESERVED = 0x5a;
export const FR_SM_PASID_ENTRY_INVALID = 0x5b;
export const FR_SM_SL_ACCESS = 0x78;
export const FR_SM_SL_PERMISSION = 0x79;
export const FR_SM_SL_RESERVED = 0x7a;
export const FR_SM_BEYOND_MAX = 0x83;

const TEXT: Readonly<Record<number, string>> = {
  [FR_SOFTWARE]: 'Software',
  [FR_ROOT_NOT_PRESENT]: 'Present bit in root entry is clear',
  [FR_CONTEXT_NOT_PRESENT]: 'Present bit in context entry is clear',
  [FR_CONTEXT_INVALID]: 'Invalid context entry',
  [FR_BEYOND_MGAW]: 'Access beyond MGAW',
  [FR_WRITE]: 'PTE Write access is not set',
  [FR_READ]: 'PTE Read access is not set',
  [FR_PAGING_ENTRY_INVALID]: 'Next page table ptr is invalid',
  [FR_ROOT_TABLE_INVALID]: 'Root table address invalid',
  [FR_CONTEXT_TABLE_INVALID]: 'Context table ptr is invalid',
  [FR_ROOT_RESERVED]: 'non-zero reserved fields in RTP',
  [FR_CONTEXT_RESERVED]: 'non-zero reserved fields in CTP',
  [FR_PTE_RESERVED]: 'non-zero reserved fields in PTE',
  [FR_CONTEXT_TT_BLOCKS]: 'PCE for translation request specifies blocking',
  [FR_IR_REQUEST_RESERVED]: 'Detected reserved fields in the decoded interrupt-remapped request',
  [FR_IR_INDEX_OVER]: 'Interrupt index exceeded the interrupt-remapping table size',
  [FR_IR_NOT_PRESENT]: 'Present field in the IRTE entry is clear',
  [FR_IR_TABLE_ACCESS]: 'Error accessing interrupt-remapping table pointed by IRTA_REG',
  [FR_IR_IRTE_RESERVED]: 'Detected reserved fields in the IRTE entry',
  [FR_IR_COMPAT_BLOCKED]: 'Blocked a compatibility format interrupt request',
  [FR_IR_SID_MISMATCH]: 'Blocked an interrupt request due to source-id verification failure',
  [FR_SM_ROOT_ACCESS]: 'SM: Error attempting to access Root Entry',
  [FR_SM_ROOT_NOT_PRESENT]: 'SM: Present bit in Root Entry is clear',
  [FR_SM_ROOT_RESERVED]: 'SM: Non-zero reserved field set in Root Entry',
  [FR_SM_CONTEXT_ACCESS]: 'SM: Error attempting to access Context Entry',
  [FR_SM_CONTEXT_NOT_PRESENT]: 'SM: Present bit in Context Entry is clear',
  [FR_SM_CONTEXT_RESERVED]: 'SM: Non-zero reserved field set in the Context Entry',
  [FR_SM_CONTEXT_INVALID]: 'SM: Invalid Context Entry',
  [FR_SM_RID_PASID]: 'SM: RID_PASID field error in Context-Entry',
  [FR_SM_PASID_DIR_ACCESS]: 'SM: Error attempting to access the PASID Directory Entry',
  [FR_SM_PASID_DIR_NOT_PRESENT]: 'SM: Present bit in Directory Entry is clear',
  [FR_SM_PASID_DIR_RESERVED]: 'SM: Non-zero reserved field set in PASID Directory Entry',
  [FR_SM_PASID_ENTRY_ACCESS]: 'SM: Error attempting to access PASID Table Entry',
  [FR_SM_PASID_ENTRY_NOT_PRESENT]: 'SM: Present bit in PASID Table Entry is clear',
  [FR_SM_PASID_ENTRY_RESERVED]: 'SM: Non-zero reserved field set in PASID Table Entry',
  [FR_SM_PASID_ENTRY_INVALID]: 'SM: Invalid Scalable-Mode PASID Table Entry',
  [FR_SM_SL_ACCESS]: 'SM: Error attempting to access second-level paging entry',
  [FR_SM_SL_PERMISSION]: 'SM: Read/Write permission error in second-level paging entry',
  [FR_SM_SL_RESERVED]: 'SM: Non-zero reserved field set in second-level paging entry',
  [FR_SM_BEYOND_MAX]: 'SM: Address beyond the DMA hardware max',
};

export function faultReasonText(fr: number): string {
  return TEXT[fr] ?? 'Unknown';
}

/** Interrupt-remapping reasons: their records carry an index, not an address. */
export function isInterruptFault(fr: number): boolean {
  return fr >= 0x20 && fr < 0x30;
}

/**
 * Faults the FPD bit of the entry in use may suppress (the "qualified" ones,
 * ref §2.6): problems of a device's own entries and mappings, and of an IRTE
 * (whose own FPD counts, even when it is not present). Faults in the root
 * table or in reaching the tables at all are always reported.
 */
const QUALIFIED: ReadonlySet<number> = new Set([
  FR_CONTEXT_NOT_PRESENT, FR_CONTEXT_INVALID, FR_BEYOND_MGAW, FR_WRITE, FR_READ, FR_PAGING_ENTRY_INVALID, FR_PTE_RESERVED,
  FR_CONTEXT_TT_BLOCKS, FR_SM_CONTEXT_NOT_PRESENT, FR_SM_CONTEXT_INVALID, FR_SM_RID_PASID, FR_SM_PASID_DIR_NOT_PRESENT,
  FR_SM_PASID_ENTRY_NOT_PRESENT, FR_SM_PASID_ENTRY_RESERVED, FR_SM_PASID_ENTRY_INVALID, FR_SM_SL_ACCESS, FR_SM_SL_PERMISSION,
  FR_SM_SL_RESERVED, FR_SM_BEYOND_MAX, FR_IR_NOT_PRESENT, FR_IR_IRTE_RESERVED, FR_IR_SID_MISMATCH,
]);

export function isQualifiedFault(fr: number): boolean {
  return QUALIFIED.has(fr);
}
