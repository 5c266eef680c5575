// From a validated scenario to a machine and the kernels' configurations.

import { DEFAULT_EFR, EFR_SNP_SUP } from '../platform/amd-iommu/registers.js';
import { CHAIN_KINDS } from './chain.js';
import { Machine, type NicSpec, type StorageSpec } from '../platform/machine.js';
import { kernelProfile, type KernelProfile } from '../kernel/profile.js';
import type { FirstKernelConfig } from '../kernel/first-kernel.js';
import { parseDuration, parseSize } from '../util/units.js';
import { InputError } from '../util/errors.js';
import type { Scenario } from './schema.js';
import { applyCmdlineFaults } from './faults.js';

/** Where NIC BARs go: the usual 0xfeb00000 area of a PC's MMIO hole. */
const NIC_MMIO_BASE = 0xfeb0_0000;
const NAPI_POLL_NS = 1_000_000;

export function size(v: string | number, field: string): number {
  const n = parseSize(v);
  if (n === undefined) throw new InputError(`Cannot use ${field}: "${v}" is not a size`);
  return n;
}

export function duration(v: string | number, field: string): number {
  const n = parseDuration(v);
  if (n === undefined) throw new InputError(`Cannot use ${field}: "${v}" is not a duration`);
  return n;
}

export function buildMachine(s: Scenario, seed: number): Machine {
  if (s.machine.memory === undefined) throw new InputError('Cannot build machine: machine.memory is not set');
  const memory = size(s.machine.memory, 'machine.memory');
  if (memory < 256 * 2 ** 20 || memory % 4096 !== 0) {
    throw new InputError(`Cannot build machine: machine.memory ${memory} must be a multiple of 4K and at least 256M`);
  }
  const nics: NicSpec[] = [];
  const storage: StorageSpec[] = [];
  s.machine.devices.forEach((d, i) => {
    const mmioBase = NIC_MMIO_BASE + i * 0x20000;
    const bits = d.dmaAddressBits === undefined ? {} : { dmaAddressBits: d.dmaAddressBits };
    if (d.kind === 'rx-nic') {
      nics.push({
        name: d.name, bdf: d.bdf, mmioBase, packetIntervalNs: duration(d.packetInterval, `machine.devices[${i}].packetInterval`),
        packetBytes: d.packetBytes, ...bits, captureDriver: d.captureDriver,
      });
      return;
    }
    let rmrr: StorageSpec['rmrr'];
    if (d.rmrr !== undefined) {
      const base = size(d.rmrr.base, `machine.devices[${i}].rmrr.base`);
      const bytes = size(d.rmrr.size, `machine.devices[${i}].rmrr.size`);
      if (base % 4096 !== 0 || bytes === 0 || bytes % 4096 !== 0) {
        throw new InputError(`Cannot use machine.devices[${i}].rmrr: base 0x${base.toString(16)} and size 0x${bytes.toString(16)} must be non-empty multiples of 4K`);
      }
      rmrr = { base, end: base + bytes - 1, intervalNs: duration(d.rmrr.interval, `machine.devices[${i}].rmrr.interval`) };
    }
    storage.push({
      name: d.name, bdf: d.bdf, mmioBase, bytesPerSecond: size(d.rate, `machine.devices[${i}].rate`),
      queueEntries: d.queueEntries, ioBytes: d.ioBytes, ...bits, ...(rmrr === undefined ? {} : { rmrr }),
    });
  });
  const cpu = s.machine.cpu;
  if (cpu.vendor === 'intel' && cpu.memoryEncryption !== 'none') {
    throw new InputError('Cannot build machine: machine.cpu.memoryEncryption needs an AMD part (vendor: amd)');
  }
  return new Machine({
    memoryBytes: memory,
    cpus: s.machine.cpus,
    seed,
    nics,
    ...(storage.length === 0 ? {} : { storage }),
    cpuVendor: cpu.vendor === 'amd' ? 'AuthenticAMD' : 'GenuineIntel',
    ...(cpu.memoryEncryption === 'none' ? {} : { memEncrypt: { state: cpu.memoryEncryption, cbit: cpu.cbit } }),
    ...(cpu.snp === undefined ? {} : { snp: snpConfig(cpu.snp, memory) }),
    ...(s.machine.iommu?.kind === 'amd' ? { amdIommu: s.machine.iommu.snpSupport ? {} : { efr: DEFAULT_EFR & ~EFR_SNP_SUP } } : {}),
    ...(s.machine.iommu?.kind === 'intel' ? { intelIommu: { scalableMode: s.machine.iommu.scalableMode === true } } : {}),
    traceKeep: [...CHAIN_KINDS],
  });
}

/** The RMP a BIOS reserves: an entry per page of DRAM plus the bookkeeping area, rounded to a MiB. */
function snpConfig(snp: { firmware: string; rmp: 'reserved' | 'too-small' | 'none' }, memory: number): { rmpBytes: number; firmware: { major: number; minor: number; build: number } } {
  const [major, minor] = snp.firmware.split('.').map(Number) as [number, number];
  // DRAM spans past 4 GiB by the size of the MMIO hole; cover the whole span.
  const span = memory > 3 * 2 ** 30 ? memory + 2 ** 30 : memory;
  const full = Math.ceil(((span / 4096) * 16 + 0x4000) / 2 ** 20) * 2 ** 20;
  const rmpBytes = snp.rmp === 'reserved' ? full : snp.rmp === 'too-small' ? full / 2 : 0;
  return { rmpBytes, firmware: { major, minor, build: 21 } };
}

export function firstKernelConfig(s: Scenario, seed: number): FirstKernelConfig {
  const nic = s.machine.devices.find((d) => d.kind === 'rx-nic');
  let cmdline = s.firstKernel.cmdline;
  if (s.firstKernel.crashkernel !== undefined) {
    cmdline = cmdline.split(/\s+/).filter((w) => w !== '' && !w.startsWith('crashkernel=')).concat(`crashkernel=${s.firstKernel.crashkernel}`).join(' ');
  }
  return {
    profile: kernelProfile(s.firstKernel.profile),
    cmdline: applyCmdlineFaults(cmdline, s.faults),
    seed,
    nic: { ringEntries: nic?.ringEntries ?? 256, bufferBytes: 2048, pollIntervalNs: NAPI_POLL_NS },
    patches: s.firstKernel.patches,
    ...(s.machine.cpu.snp === undefined ? {} : { snpGuests: { count: s.machine.cpu.snp.guests, pages: s.machine.cpu.snp.guestPages, vcpus: s.machine.cpu.snp.guestVcpus } }),
  };
}

export function crashKernelProfile(s: Scenario): KernelProfile {
  return kernelProfile(s.crashKernel.profile);
}
