// Purgatory: the small program kexec runs between the dead kernel and the
// new one. It hashes every loaded segment with SHA-256 and compares the
// result with the digest computed at load time; on a mismatch it spins
// forever rather than jump into corrupted code. The table of regions, the
// expected digest and the entry registers are data in its own segment.

import { createHash } from 'node:crypto';
import type { Machine } from '../platform/machine.js';
import type { Cpu } from '../platform/cpu/cpu.js';

/** Layout of the purgatory segment. */
export const PURGATORY = {
  size: 0x4000,
  code: 0x0000,
  codeSize: 0x1000,
  shaRegions: 0x1000, // u32 count, then { u64 start, u64 len }[]
  maxRegions: 16,
  digest: 0x2000, // 32 bytes: purgatory_sha256_digest
  entry: 0x3000, // u64 rip of the next kernel, u64 rsi (boot_params)
} as const;

export interface ShaRegion {
  start: number;
  len: number;
}

export function sha256Regions(machine: Machine, regions: readonly ShaRegion[]): Buffer {
  const h = createHash('sha256');
  const chunk = new Uint8Array(1 << 20);
  for (const r of regions) {
    for (let off = 0; off < r.len; off += chunk.length) {
      const n = Math.min(chunk.length, r.len - off);
      const view = chunk.subarray(0, n);
      machine.mc.read(r.start + off, view);
      h.update(view);
    }
  }
  return h.digest();
}

/** SHA-256 of segment buffers, each padded with zeros to its region's length, as they sit in memory once loaded. */
export function sha256Buffers(buffers: readonly Uint8Array[], regions: readonly ShaRegion[]): Buffer {
  const h = createHash('sha256');
  buffers.forEach((b, i) => {
    const len = regions[i]!.len;
    h.update(b.subarray(0, Math.min(b.length, len)));
    if (len > b.length) h.update(new Uint8Array(len - b.length));
  });
  return h.digest();
}

/** The purgatory segment's bytes: code, region table, digest, entry state. */
export function buildPurgatory(regions: readonly ShaRegion[], digest: Uint8Array, entryRip: number, bootParams: number): Uint8Array {
  if (regions.length > PURGATORY.maxRegions) throw new RangeError(`Cannot build purgatory: ${regions.length} regions exceed ${PURGATORY.maxRegions}`);
  const b = new Uint8Array(PURGATORY.size);
  const dv = new DataView(b.buffer);
  // Code bytes: a fixed, recognisable sequence (what the simulator jumps to).
  for (let i = 0; i < PURGATORY.codeSize; i++) b[PURGATORY.code + i] = (0x90 + i * 13) & 0xff;
  dv.setUint32(PURGATORY.shaRegions, regions.length, true);
  regions.forEach((r, i) => {
    dv.setBigUint64(PURGATORY.shaRegions + 8 + i * 16, BigInt(r.start), true);
    dv.setBigUint64(PURGATORY.shaRegions + 16 + i * 16, BigInt(r.len), true);
  });
  b.set(digest, PURGATORY.digest);
  dv.setBigUint64(PURGATORY.entry, BigInt(entryRip), true);
  dv.setBigUint64(PURGATORY.entry + 8, BigInt(bootParams), true);
  return b;
}

/**
 * What the purgatory code does when a CPU arrives at its entry: reads its
 * own data from memory, verifies the digest, then jumps to the next kernel.
 */
export function runPurgatory(machine: Machine, cpu: Cpu, base: number): void {
  const data = new Uint8Array(PURGATORY.size);
  machine.mc.read(base, data);
  const dv = new DataView(data.buffer);
  const count = dv.getUint32(PURGATORY.shaRegions, true);
  const regions: ShaRegion[] = [];
  for (let i = 0; i < Math.min(count, PURGATORY.maxRegions); i++) {
    regions.push({
      start: Number(dv.getBigUint64(PURGATORY.shaRegions + 8 + i * 16, true)),
      len: Number(dv.getBigUint64(PURGATORY.shaRegions + 16 + i * 16, true)),
    });
  }
  const expected = Buffer.from(data.subarray(PURGATORY.digest, PURGATORY.digest + 32));
  const bytes = regions.reduce((n, r) => n + r.len, 0);
  machine.clock.advance(Math.round(bytes / 500)); // ~500 MB/s SHA-256 in purgatory
  const actual = sha256Regions(machine, regions);
  if (!actual.equals(expected)) {
    machine.trace.record('purgatory', 'digest-mismatch',
      `SHA-256 of ${regions.length} segments is ${actual.toString('hex').slice(0, 16)}..., expected ${expected.toString('hex').slice(0, 16)}...; spinning forever`,
      { regions: regions.length });
    cpu.state = 'running'; // for (;;); in verify_sha256_digest's caller
    return;
  }
  machine.trace.record('purgatory', 'digest-ok', `SHA-256 of ${regions.length} segments (${bytes} bytes) verified`, { regions: regions.length, bytes });
  const rip = Number(dv.getBigUint64(PURGATORY.entry, true));
  cpu.regs.rsi = dv.getBigUint64(PURGATORY.entry + 8, true);
  cpu.regs.rip = BigInt(rip);
  machine.entryPoints.execute(cpu, rip);
}
