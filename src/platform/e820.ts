// The BIOS memory map handed to a kernel (INT 15h E820, or the boot_params copy kexec builds).

export type E820Type = 'usable' | 'reserved' | 'ACPI data' | 'ACPI NVS' | 'unusable';

export interface E820Entry {
  addr: number;
  size: number;
  type: E820Type;
}

/** Code numbers as boot_params carries them. */
export const E820_TYPE_CODE: Record<E820Type, number> = {
  usable: 1, reserved: 2, 'ACPI data': 3, 'ACPI NVS': 4, unusable: 5,
};

export function e820End(e: E820Entry): number {
  return e.addr + e.size;
}

/** Sorts and checks a map: entries must not overlap. */
export function normalizeE820(entries: readonly E820Entry[]): E820Entry[] {
  const s = [...entries].filter((e) => e.size > 0).sort((a, b) => a.addr - b.addr);
  for (let i = 1; i < s.length; i++) {
    const prev = s[i - 1]!;
    const cur = s[i]!;
    if (cur.addr < e820End(prev)) {
      throw new RangeError(`Cannot use e820 map: entry at 0x${cur.addr.toString(16)} overlaps the one at 0x${prev.addr.toString(16)}`);
    }
  }
  return s;
}

/**
 * Firmware reserving `bytes` at the top of the highest usable range (where
 * BIOSes put the RMP): that range shrinks and a reserved entry takes its place.
 * Returns the new map and the reserved base.
 */
export function reserveTop(map: readonly E820Entry[], bytes: number, align: number): { map: E820Entry[]; base: number } {
  const usable = [...map].filter((e) => e.type === 'usable').sort((a, b) => b.addr - a.addr)[0];
  if (usable === undefined) throw new RangeError('Cannot reserve memory: the e820 map has no usable range');
  const end = e820End(usable);
  const base = Math.floor((end - bytes) / align) * align;
  if (base <= usable.addr) throw new RangeError(`Cannot reserve 0x${bytes.toString(16)} bytes at the top of memory: the highest usable range is too small`);
  const out = map.filter((e) => e !== usable);
  out.push({ addr: usable.addr, size: base - usable.addr, type: 'usable' }, { addr: base, size: end - base, type: 'reserved' });
  return { map: normalizeE820(out), base };
}

/** Total bytes of entries of a type. */
export function e820Total(entries: readonly E820Entry[], type: E820Type = 'usable'): number {
  return entries.filter((e) => e.type === type).reduce((n, e) => n + e.size, 0);
}

/**
 * The e820 map of a PC with `ramBytes` of DRAM: low memory below 640 KiB, the
 * legacy BIOS area reserved, RAM up to 3 GiB with ACPI tables at its top, the
 * PCI MMIO hole from 3 GiB to 4 GiB, and the rest of RAM above 4 GiB.
 * Returns the map and the highest physical address DRAM must cover.
 */
export function pcE820(ramBytes: number): { map: E820Entry[]; physTop: number } {
  const MiB = 2 ** 20;
  const GiB = 2 ** 30;
  const lowTop = 3 * GiB;
  const acpiSize = 128 * 1024;
  const map: E820Entry[] = [
    { addr: 0, size: 0x9fc00, type: 'usable' },
    { addr: 0x9fc00, size: 0x400, type: 'reserved' },
    { addr: 0xf0000, size: 0x10000, type: 'reserved' },
  ];
  const lowRam = Math.min(ramBytes, lowTop);
  if (lowRam <= MiB + acpiSize) throw new RangeError(`Cannot build e820 map: ${ramBytes} bytes of RAM is too small`);
  map.push({ addr: MiB, size: lowRam - MiB - acpiSize, type: 'usable' });
  map.push({ addr: lowRam - acpiSize, size: acpiSize, type: 'ACPI data' });
  let physTop = lowRam;
  if (ramBytes > lowTop) {
    map.push({ addr: 0xfec00000, size: 0x1000, type: 'reserved' }); // IO-APIC
    map.push({ addr: 0xfee00000, size: 0x1000, type: 'reserved' }); // local APIC
    map.push({ addr: 4 * GiB, size: ramBytes - lowTop, type: 'usable' });
    physTop = 4 * GiB + (ramBytes - lowTop);
  }
  return { map: normalizeE820(map), physTop };
}
