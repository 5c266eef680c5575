// /proc/vmcore in the capture kernel: the merged notes and the PT_LOADs of
// the elfcorehdr, with reads served from the old kernel's memory through
// the capture kernel's old-memory mapping (copy_oldmem_page). Reading takes
// virtual time, so devices that keep doing DMA act while the dump is copied.

import type { PageSource } from '../dump/page-source.js';
import type { ElfLoadSpec } from '../dump/elf-vmcore-writer.js';
import type { Machine } from '../platform/machine.js';

export interface OldMemoryMapping {
  /** Key slot the mapping applies (0: old memory read as it sits in DRAM). */
  keyId: number;
  /** Why this mapping was chosen, for the causal chain. */
  why: string;
}

/** When the copy of /proc/vmcore ran and how much it covered. */
export interface CaptureRecord {
  /** Frames served (zero or not), counted once per frame even if two PT_LOADs cover it. */
  framesCovered: number;
  /** Virtual time the copy started and ended. */
  startNs: number;
  endNs: number;
}

export class ProcVmcore implements PageSource {
  readonly notes: Uint8Array;
  readonly loads: readonly ElfLoadSpec[];
  readonly mapping: OldMemoryMapping;
  readonly #machine: Machine;
  /** Bytes per ns the copy proceeds at. */
  readonly #rate: number;
  #startNs = 0;
  #loadIndex = 0;
  readonly #loadOffsets: number[];
  readonly record: CaptureRecord = { framesCovered: 0, startNs: 0, endNs: 0 };
  /** Sees every page as it is served, with the key slot the read used (the oracle watches here). */
  onServe: ((pfn: number, page: Uint8Array, keyId: number) => void) | undefined;

  constructor(machine: Machine, notes: Uint8Array, loads: readonly ElfLoadSpec[], mapping: OldMemoryMapping, bytesPerSecond = 2e9) {
    this.#machine = machine;
    this.notes = notes;
    this.loads = loads;
    this.mapping = mapping;
    this.#rate = bytesPerSecond / 1e9;
    let off = 0;
    this.#loadOffsets = loads.map((l) => {
      const o = off;
      off += l.memsz;
      return o;
    });
  }

  get totalBytes(): number {
    return this.loads.reduce((n, l) => n + l.memsz, 0);
  }

  /** Marks the start of a sequential read of the whole file. */
  beginCopy(): void {
    this.#startNs = this.#machine.clock.now;
    this.record.startNs = this.#startNs;
    this.#loadIndex = 0;
  }

  /** Ends the copy: time moves to when reading the last byte would finish. */
  endCopy(): void {
    this.#machine.clock.advanceTo(this.#startNs + this.totalBytes / this.#rate);
    this.record.endNs = this.#machine.clock.now;
    const covered = new Set<string>();
    let frames = 0;
    for (const l of this.loads) {
      const key = `${l.paddr}:${l.memsz}`;
      if (covered.has(key)) continue;
      covered.add(key);
      frames += l.memsz / 4096;
    }
    // The kernel-text PT_LOAD repeats frames a RAM PT_LOAD also covers.
    this.record.framesCovered = frames - this.#duplicateFrames();
  }

  presentFrames(startPfn: number, endPfn: number): Iterable<number> {
    const i = this.loads.findIndex((l, idx) => idx >= this.#loadIndex && l.paddr / 4096 === startPfn && (l.paddr + l.memsz) / 4096 === endPfn);
    if (i >= 0) this.#loadIndex = i;
    // Frames never written hold zeros in DRAM; listing only written ones is
    // equivalent to reading every frame and skipping zero pages.
    return this.#machine.dram.presentFrames(startPfn, endPfn);
  }

  readFrame(pfn: number, dst: Uint8Array): void {
    const l = this.loads[this.#loadIndex];
    if (l !== undefined) {
      const pos = this.#loadOffsets[this.#loadIndex]! + (pfn * 4096 - l.paddr);
      this.#machine.clock.advanceTo(this.#startNs + pos / this.#rate);
    }
    this.#machine.mc.read(pfn * 4096, dst, { keyId: this.mapping.keyId });
    this.onServe?.(pfn, dst, this.mapping.keyId);
  }

  /** Reads every page the way `cp /proc/vmcore` would, without writing a file. */
  readAll(): void {
    const buf = new Uint8Array(4096);
    for (const l of this.loads) {
      for (const pfn of this.presentFrames(l.paddr / 4096, (l.paddr + l.memsz) / 4096)) this.readFrame(pfn, buf);
    }
  }

  #duplicateFrames(): number {
    const sorted = [...this.loads].sort((a, b) => a.paddr - b.paddr);
    let dup = 0;
    let reach = 0;
    for (const l of sorted) {
      const end = l.paddr + l.memsz;
      if (l.paddr < reach) dup += (Math.min(end, reach) - l.paddr) / 4096;
      reach = Math.max(reach, end);
    }
    return dup;
  }
}

