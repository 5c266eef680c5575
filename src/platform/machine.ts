// A machine: clock, DRAM behind its memory controller, CPUs, the MMIO space
// and PCI devices, and the firmware's e820 map. State here survives kexec;
// only `resetPlatform` (not modelled as part of a kdump) puts it back.

import { VirtualClock } from './clock.js';
import { Trace } from './trace.js';
import { PhysicalMemory } from './physical-memory.js';
import { MemoryController } from './memory-controller.js';
import { Cpu } from './cpu/cpu.js';
import { EntryPoints } from './entry-points.js';
import { MmioBus } from './mmio.js';
import { DirectDma, type DmaPort, type DmaResult } from './dma-port.js';
import { RxNic } from './pci/rx-nic.js';
import { StorageController, STC_MMIO_SIZE } from './pci/storage-controller.js';
import { pcE820, reserveTop, type E820Entry } from './e820.js';
import { attachPsp } from './psp/psp-attach.js';
import type { PspMailbox } from './psp/psp-mailbox.js';
import { programCpuid, type CpuVendor } from './cpu/cpuid.js';
import { MSR_IA32_APIC_BASE, APIC_BASE_BSP, APIC_BASE_ENABLE, MSR_AMD64_SYSCFG, SYSCFG_MEM_ENCRYPT, MSR_AMD64_RMP_BASE, MSR_AMD64_RMP_END } from './cpu/msr.js';
import { AddressTweakedCipher } from './memory-cipher.js';
import { rmpLocationOf, rmpWriteGuard, type RmpLocation } from './snp/rmp.js';
import { snpEnabledOn, snpMsrWriteFilter } from './snp/snp-msrs.js';
import { attachInterruptFabric, type InterruptFabric, type InterruptFabricSpec } from './apic/interrupt-fabric.js';
import { attachAmdIommu } from './amd-iommu/attach.js';
import type { AmdIommu } from './amd-iommu/amd-iommu.js';
import { AmdIommuInterruptRouter } from './amd-iommu/interrupt-router.js';
import { attachVtd } from './vtd/attach.js';
import type { Vtd } from './vtd/vtd.js';

/** The memory controller's key slot for the host (SME) key. */
export const HOST_KEY_SLOT = 1;

export interface NicSpec {
  name: string;
  bdf: string;
  mmioBase: number;
  packetIntervalNs: number;
  packetBytes: number;
  /** Address bits the device drives (its driver's DMA mask); 64 unless it is a narrow device. */
  dmaAddressBits?: number;
  /**
   * Whether a capture kernel has a driver for the device (reset: it probes
   * it, resetting it under reset_devices) or leaves it alone (none, the
   * default). Carried with the device's description, as dmaAddressBits is;
   * the device model never reads it.
   */
  captureDriver?: 'reset' | 'none';
}

export interface StorageSpec {
  name: string;
  bdf: string;
  mmioBase: number;
  /** Bytes per second between disk and memory. */
  bytesPerSecond: number;
  /** Commands the first kernel's driver keeps queued, and the bytes of each (read by the driver, not the device). */
  queueEntries: number;
  ioBytes: number;
  dmaAddressBits?: number;
  /**
   * A range of host memory the firmware owns for the device and declares in
   * the ACPI DMAR table as an RMRR (base, inclusive end); the device's
   * firmware writes a status record there every `intervalNs`.
   */
  rmrr?: { base: number; end: number; intervalNs: number };
}

export interface MachineConfig {
  /** Bytes of DRAM. */
  memoryBytes: number;
  cpus: number;
  seed: number;
  nics: readonly NicSpec[];
  /** Storage controllers (none by default). */
  storage?: readonly StorageSpec[];
  /** CPU vendor; AMD parts carry the memory-encryption features later issues model. */
  cpuVendor?: CpuVendor;
  /** 1 GiB page support (CPUID pdpe1gb); on by default. */
  gbPages?: boolean;
  /**
   * AMD memory encryption: `supported` parts report SME in CPUID; `enabled`
   * means the firmware also set SYSCFG[MemEncryptionModEn]. `cbit` is the
   * page-table bit that selects encryption.
   */
  memEncrypt?: { state: 'supported' | 'enabled'; cbit: number };
  /**
   * The RMP the firmware reserved: it programs RMP_BASE and RMP_END (inclusive
   * last byte) on every CPU at power-on. Keeping that memory out of the e820
   * usable ranges is the scenario's business.
   */
  rmp?: { base: number; end: number };
  /**
   * SEV-SNP as the firmware sets it up: CPUID reports SNP, the BIOS reserves
   * an RMP of `rmpBytes` (plus a MiB for the PSP) at the top of memory and
   * programs the RMP MSRs there (or leaves them 0 when rmpBytes is 0), and the
   * PSP's SEV firmware of that version answers in its mailbox.
   */
  snp?: { rmpBytes: number; firmware: { major: number; minor: number; build: number } };
  /**
   * An AMD IOMMU (AMD-Vi) in front of every device's DMA and the IO-APIC's
   * interrupts; `efr` overrides its Extended Feature Register (SNPSup is bit 63).
   */
  amdIommu?: { efr?: bigint };
  /**
   * An Intel VT-d unit (one DRHD) in front of every device's DMA and the
   * IO-APIC's interrupts; `scalableMode` makes it advertise scalable-mode
   * translation (ECAP.SMTS).
   */
  intelIommu?: { scalableMode?: boolean };
  /** The interrupt fabric's shape (IO-APIC, HPET, PIT); defaults suit a PC. */
  interrupts?: InterruptFabricSpec;
  /** Caps stored trace entries. */
  traceLimit?: number;
  /** Trace kinds kept even past the cap (milestones; default just 'step'). */
  traceKeep?: readonly string[];
}

export class Machine {
  readonly config: MachineConfig;
  readonly clock = new VirtualClock();
  readonly trace: Trace;
  readonly dram: PhysicalMemory;
  readonly mc: MemoryController;
  readonly cpus: Cpu[];
  readonly entryPoints: EntryPoints;
  readonly mmio = new MmioBus();
  dma: DmaPort;
  readonly nics: RxNic[] = [];
  readonly storage: StorageController[] = [];
  readonly e820: readonly E820Entry[];
  /** The C-bit position when the part has memory encryption. */
  memEncryptMaskBit: number | undefined;
  /** The PSP's mailbox, on parts with SEV-SNP. */
  psp: PspMailbox | undefined;
  /** IO-APIC, HPET, PIT and the local APICs' interrupt acceptance. */
  readonly interrupts: InterruptFabric;
  /** The AMD IOMMU, when the machine has one, and where its registers are (the IVRS table's word). */
  amdIommu: AmdIommu | undefined;
  amdIommuMmio: number | undefined;
  /** The VT-d unit, when the machine has one, and where its registers are (the DRHD's base). */
  vtd: Vtd | undefined;
  vtdMmio: number | undefined;

  constructor(config: MachineConfig) {
    if (!(config.cpus >= 1 && config.cpus <= 4096)) throw new RangeError(`Cannot build machine: ${config.cpus} CPUs is out of range 1..4096`);
    this.config = config;
    this.trace = new Trace(this.clock, config.traceLimit, config.traceKeep);
    const pc = pcE820(config.memoryBytes);
    let map = pc.map;
    const physTop = pc.physTop;
    let rmp = config.rmp;
    let pspPrivate: { basePfn: number; count: number } | undefined;
    if (config.snp !== undefined) {
      // The PSP's private MiB sits at the very top; the RMP (8 KiB aligned, as RMP_BASE requires) below it.
      const psp = reserveTop(map, 2 ** 20, 2 ** 20);
      map = psp.map;
      pspPrivate = { basePfn: psp.base / 4096, count: 256 };
      if (config.snp.rmpBytes > 0) {
        const r = reserveTop(map, config.snp.rmpBytes, 8192);
        map = r.map;
        rmp = { base: r.base, end: r.base + config.snp.rmpBytes - 1 };
      }
    }
    this.e820 = map;
    this.dram = new PhysicalMemory(physTop);
    this.mc = new MemoryController(this.dram);
    this.entryPoints = new EntryPoints(this.mc, this.trace);
    this.cpus = [];
    const me = config.memEncrypt;
    for (let i = 0; i < config.cpus; i++) {
      const cpu = new Cpu(i, i, i === 0);
      programCpuid(cpu, {
        vendor: config.cpuVendor ?? 'AuthenticAMD',
        physBits: 48,
        gbPages: config.gbPages ?? true,
        ...(me === undefined ? {} : { memEncrypt: { sme: true, sev: true, sevEs: true, snp: config.snp !== undefined, cbit: me.cbit, physReduction: 1 } }),
      });
      cpu.wrmsr(MSR_IA32_APIC_BASE, 0xfee0_0000n | APIC_BASE_ENABLE | (cpu.isBsp ? APIC_BASE_BSP : 0n));
      if (me?.state === 'enabled') cpu.wrmsr(MSR_AMD64_SYSCFG, SYSCFG_MEM_ENCRYPT);
      if (rmp !== undefined) {
        cpu.wrmsr(MSR_AMD64_RMP_BASE, BigInt(rmp.base));
        cpu.wrmsr(MSR_AMD64_RMP_END, BigInt(rmp.end));
      }
      // SYSCFG.SNP_EN locks the RMP MSRs; on the BSP it also turns the RMP check on.
      cpu.msrWriteFilter = snpMsrWriteFilter(cpu, cpu.isBsp ? () => this.#enableRmpChecks() : undefined);
      this.cpus.push(cpu);
    }
    if (me !== undefined) {
      // The security processor draws the host key at platform reset; it lives until the next reset, so kexec keeps it.
      this.mc.setKeySlot(HOST_KEY_SLOT, new AddressTweakedCipher('SME host key', config.seed, 'host'));
      this.memEncryptMaskBit = me.cbit;
    }
    if (config.snp !== undefined && pspPrivate !== undefined) {
      this.psp = attachPsp(this, { version: config.snp.firmware, build: config.snp.firmware.build, privatePages: pspPrivate });
    }
    const direct = new DirectDma(this.mc, config.memEncrypt?.state === 'enabled' ? { bit: config.memEncrypt.cbit, keyId: HOST_KEY_SLOT } : undefined);
    // No DRAM decodes the PCI hole below 4 GiB: a device's untranslated request there master-aborts.
    const holeStart = Math.min(config.memoryBytes, 3 * 2 ** 30);
    const inHole = (a: number, n: number): boolean => a < 2 ** 32 && a + n > holeStart && this.dram.size > holeStart;
    const abort = (a: number): DmaResult => ({ ok: false, fault: 'master-abort', detail: `no memory at 0x${a.toString(16)} (PCI hole)` });
    this.dma = {
      write: (dev, a, data) => (inHole(a, data.length) ? abort(a) : direct.write(dev, a, data)),
      read: (dev, a, dst) => (inHole(a, dst.length) ? abort(a) : direct.read(dev, a, dst)),
    };
    // Devices reach memory through `this.dma` as it is at the time of each transfer.
    const port: DmaPort = {
      write: (dev, addr, data) => this.dma.write(dev, addr, data),
      read: (dev, addr, dst) => this.dma.read(dev, addr, dst),
    };
    config.nics.forEach((spec, i) => {
      const nic = new RxNic(
        { name: spec.name, bdf: spec.bdf, packetIntervalNs: spec.packetIntervalNs, packetBytes: spec.packetBytes, seed: config.seed + i },
        this.clock, port, this.trace,
      );
      this.mmio.map(spec.mmioBase, 0x20000, nic);
      this.nics.push(nic);
    });
    for (const spec of config.storage ?? []) {
      const sc = new StorageController({
        name: spec.name, bdf: spec.bdf, bytesPerSecond: spec.bytesPerSecond, seed: config.seed,
        ...(spec.rmrr === undefined ? {} : { firmwareRegion: { base: spec.rmrr.base, size: spec.rmrr.end + 1 - spec.rmrr.base, intervalNs: spec.rmrr.intervalNs } }),
      }, this.clock, port, this.trace);
      this.mmio.map(spec.mmioBase, STC_MMIO_SIZE, sc);
      this.storage.push(sc);
    }
    this.interrupts = attachInterruptFabric(this, config.interrupts);
    if (config.amdIommu !== undefined) {
      const devids: Record<string, number> = {};
      for (const nic of this.nics) devids[nic.bdf] = requesterId(nic.bdf);
      for (const sc of this.storage) devids[sc.bdf] = requesterId(sc.bdf);
      const a = attachAmdIommu(this, { devids, ...(config.amdIommu.efr === undefined ? {} : { efr: config.amdIommu.efr }) });
      this.amdIommu = a.iommu;
      this.amdIommuMmio = a.mmioBase;
      this.interrupts.router = new AmdIommuInterruptRouter(a.iommu, this.interrupts.bus, this.interrupts.direct, this.trace);
    }
    if (config.intelIommu !== undefined) {
      const v = attachVtd(this, { scalableMode: config.intelIommu.scalableMode === true });
      this.vtd = v.unit;
      this.vtdMmio = v.mmioBase;
    }
    this.trace.record('platform', 'power-on', `power on: ${config.cpus} CPUs, ${config.memoryBytes} bytes of DRAM`);
  }

  get bsp(): Cpu {
    return this.cpus[0]!;
  }

  /** SNP is enabled for the platform when the BSP's SYSCFG.SNP_EN is set. */
  get snpEnabled(): boolean {
    return snpEnabledOn(this.bsp);
  }

  /** The RMP as the BSP's RMP_BASE/RMP_END describe it (undefined: none reserved). */
  get rmp(): RmpLocation | undefined {
    return rmpLocationOf(this.bsp);
  }

  /** The BSP just set SNP_EN: from now on every host and device write is RMP-checked. */
  #enableRmpChecks(): void {
    const loc = this.rmp;
    if (loc === undefined) {
      this.trace.record('cpu0', 'snp-enable', 'SYSCFG.SNP_EN set with no RMP reserved: nothing to check writes against');
      return;
    }
    this.mc.setWriteGuard(rmpWriteGuard(this.mc, loc, (r, who) => {
      this.trace.record(who.kind === 'cpu' ? `cpu${who.id}` : who.name, 'rmp-violation', r.detail, { pa: r.pa });
    }));
    this.trace.record('cpu0', 'snp-enable', `SYSCFG.SNP_EN set: RMP [0x${loc.base.toString(16)} - 0x${loc.end.toString(16)}] covers ${loc.entries} PFNs; writes are RMP-checked`, { base: loc.base, end: loc.end });
  }
}

/** A PCI requester id (bus << 8 | device << 3 | function) from "bb:dd.f". */
export function requesterId(bdf: string): number {
  const m = /^([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i.exec(bdf);
  if (m === null) throw new RangeError(`Cannot parse PCI address "${bdf}": expected bb:dd.f`);
  return (parseInt(m[1]!, 16) << 8) | (parseInt(m[2]!, 16) << 3) | parseInt(m[3]!, 10);
}
