// The x86-64 kernel's virtual memory layout (4-level paging, no KASLR, so runs
// are reproducible and match what makedumpfile falls back to).

export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;
/** Base of the direct map of all physical memory (page_offset_base). */
export const PAGE_OFFSET = 0xffff_8880_0000_0000n;
/** __START_KERNEL_map: the kernel text mapping starts here, at physical 0 + phys_base. */
export const START_KERNEL_MAP = 0xffff_ffff_8000_0000n;
/** Where the first kernel's image is loaded (CONFIG_PHYSICAL_START). */
export const KERNEL_PHYS_START = 0x100_0000;
/** KERNEL_IMAGE_SIZE with KASLR configured. */
export const KERNEL_IMAGE_SIZE = 0x4000_0000;

export function directMapVirt(pa: number): bigint {
  return PAGE_OFFSET + BigInt(pa);
}

/** Virtual address of a kernel-image symbol at physical `pa` (phys_base 0). */
export function kernelTextVirt(pa: number): bigint {
  return START_KERNEL_MAP + BigInt(pa);
}

export function alignUp(v: number, a: number): number {
  return Math.ceil(v / a) * a;
}

export function alignDown(v: number, a: number): number {
  return Math.floor(v / a) * a;
}
