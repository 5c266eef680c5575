// The MMIO address space: device register files mapped at physical addresses.

export interface MmioDevice {
  readonly name: string;
  mmioRead(offset: number, size: 4 | 8): bigint;
  mmioWrite(offset: number, size: 4 | 8, value: bigint): void;
}

interface Mapping {
  base: number;
  size: number;
  device: MmioDevice;
}

export class MmioBus {
  #maps: Mapping[] = [];

  map(base: number, size: number, device: MmioDevice): void {
    for (const m of this.#maps) {
      if (base < m.base + m.size && m.base < base + size) {
        throw new RangeError(`Cannot map ${device.name} at 0x${base.toString(16)}: overlaps ${m.device.name}`);
      }
    }
    this.#maps.push({ base, size, device });
  }

  read(addr: number, size: 4 | 8 = 4): bigint {
    const m = this.#find(addr);
    // Unclaimed MMIO reads as all ones, as on a PCI bus.
    if (m === undefined) return size === 4 ? 0xffff_ffffn : 0xffff_ffff_ffff_ffffn;
    return m.device.mmioRead(addr - m.base, size);
  }

  write(addr: number, value: bigint, size: 4 | 8 = 4): void {
    const m = this.#find(addr);
    if (m === undefined) return; // unclaimed writes vanish
    m.device.mmioWrite(addr - m.base, size, value);
  }

  #find(addr: number): Mapping | undefined {
    return this.#maps.find((m) => addr >= m.base && addr < m.base + m.size);
  }
}
