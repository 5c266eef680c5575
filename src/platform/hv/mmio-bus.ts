// The hypervisor's guest MMIO bus: guest-physical ranges no RAM backs, each
// served by an emulated device. For an SEV-ES or SNP guest the CPU cannot
// hand the hypervisor the faulting instruction (it is in encrypted memory),
// so an access to such a range is a nested page fault the CPU turns into a
// #VC in the guest; the guest's #VC handler decodes the instruction and asks
// for the access through the GHCB (NAE MMIO read 0x80000001 / write
// 0x80000002, ref/sme-sev-kexec.md §3.4). The hypervisor then calls the
// device's read or write entry point, as QEMU dispatches an MMIO exit.

import type { Trace } from '../trace.js';
import { hex } from '../../util/hex.js';

/** One emulated device: an MMIO read and an MMIO write entry point, by offset in its range. */
export interface MmioDevice {
  readonly name: string;
  read(offset: number, size: number): bigint;
  write(offset: number, size: number, value: bigint): void;
}

export interface MmioRegion {
  readonly base: number;
  readonly size: number;
  readonly device: MmioDevice;
}

export class MmioBus {
  readonly #regions: MmioRegion[] = [];

  map(base: number, size: number, device: MmioDevice): void {
    if (!(Number.isSafeInteger(base) && base >= 0 && size > 0)) throw new RangeError(`Cannot map MMIO device "${device.name}": range ${hex(base)} + ${hex(size)} is invalid`);
    const clash = this.#regions.find((r) => base < r.base + r.size && r.base < base + size);
    if (clash !== undefined) throw new RangeError(`Cannot map MMIO device "${device.name}" at ${hex(base)}: it overlaps "${clash.device.name}" at ${hex(clash.base)}`);
    this.#regions.push({ base, size, device });
  }

  /** The region an access of `length` bytes at `gpa` falls in (any overlap counts). */
  find(gpa: number, length: number): MmioRegion | undefined {
    return this.#regions.find((r) => gpa < r.base + r.size && r.base < gpa + Math.max(length, 1));
  }
}

/** VGA text mode memory (the colour text buffer at 0xB8000): two bytes a cell, character then attribute. */
export const VGA_TEXT_BASE = 0xb_8000;
export const VGA_TEXT_BYTES = 0x8000;

/**
 * A VGA text console: it keeps the cells written and traces each write as
 * 'mmio' with its offset, size and value, so a test can see what the guest
 * printed. Reset puts every cell at blank (0x0720).
 */
export class VgaTextConsole implements MmioDevice {
  readonly name = 'vga-text';
  readonly #cells = new Uint8Array(VGA_TEXT_BYTES);
  readonly #trace: Trace;
  readonly #source: string;

  constructor(trace: Trace, source: string) {
    this.#trace = trace;
    this.#source = source;
    this.reset();
  }

  reset(): void {
    for (let i = 0; i < VGA_TEXT_BYTES; i += 2) { this.#cells[i] = 0x20; this.#cells[i + 1] = 0x07; }
  }

  read(offset: number, size: number): bigint {
    let v = 0n;
    for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(this.#cells[offset + i] ?? 0xff);
    return v;
  }

  write(offset: number, size: number, value: bigint): void {
    for (let i = 0; i < size && offset + i < VGA_TEXT_BYTES; i++) this.#cells[offset + i] = Number((value >> BigInt(8 * i)) & 0xffn);
    this.#trace.record(this.#source, 'mmio', `VGA text write at offset ${hex(offset)} (${size} byte${size === 1 ? '' : 's'}): ${hex(value)}`,
      { device: this.name, offset, size, value: hex(value), op: 'write' });
  }

  /** The characters of text row `row` (80 columns), trailing blanks cut. */
  row(row: number, cols = 80): string {
    let s = '';
    for (let c = 0; c < cols; c++) s += String.fromCharCode(this.#cells[(row * cols + c) * 2]!);
    return s.trimEnd();
  }
}
