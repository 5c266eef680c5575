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
import { DirectDma, type DmaPort } from './dma-port.js';
import { RxNic } from './pci/rx-nic.js';
import { pcE820, type E820Entry } from './e820.js';
import { programCpuid, type CpuVendor } from './cpu/cpuid.js';
import { MSR_IA32_APIC_BASE, APIC_BASE_BSP, APIC_BASE_ENABLE, MSR_AMD64_SYSCFG, SYSCFG_MEM_ENCRYPT } from './cpu/msr.js';
import { AddressTweakedCipher } from './memory-cipher.js';

/** The memory controller's key slot for the host (SME) key. */
export const HOST_KEY_SLOT = 1;

export interface NicSpec {
  name: string;
  bdf: string;
  mmioBase: number;
  packetIntervalNs: number;
  packetBytes: number;
}

export interface MachineConfig {
  /** Bytes of DRAM. */
  memoryBytes: number;
  cpus: number;
  seed: number;
  nics: readonly NicSpec[];
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
  /** Caps stored trace entries. */
  traceLimit?: number;
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
  readonly e820: readonly E820Entry[];
  /** The C-bit position when the part has memory encryption. */
  memEncryptMaskBit: number | undefined;

  constructor(config: MachineConfig) {
    if (!(config.cpus >= 1 && config.cpus <= 4096)) throw new RangeError(`Cannot build machine: ${config.cpus} CPUs is out of range 1..4096`);
    this.config = config;
    this.trace = new Trace(this.clock, config.traceLimit);
    const { map, physTop } = pcE820(config.memoryBytes);
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
        ...(me === undefined ? {} : { memEncrypt: { sme: true, sev: true, sevEs: true, snp: false, cbit: me.cbit, physReduction: 1 } }),
      });
      cpu.wrmsr(MSR_IA32_APIC_BASE, 0xfee0_0000n | APIC_BASE_ENABLE | (cpu.isBsp ? APIC_BASE_BSP : 0n));
      if (me?.state === 'enabled') cpu.wrmsr(MSR_AMD64_SYSCFG, SYSCFG_MEM_ENCRYPT);
      this.cpus.push(cpu);
    }
    if (me !== undefined) {
      // The security processor draws the host key at platform reset; it lives until the next reset, so kexec keeps it.
      this.mc.setKeySlot(HOST_KEY_SLOT, new AddressTweakedCipher('SME host key', config.seed, 'host'));
      this.memEncryptMaskBit = me.cbit;
    }
    this.dma = new DirectDma(this.mc, config.memEncrypt?.state === 'enabled' ? { bit: config.memEncrypt.cbit, keyId: HOST_KEY_SLOT } : undefined);
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
    this.trace.record('platform', 'power-on', `power on: ${config.cpus} CPUs, ${config.memoryBytes} bytes of DRAM`);
  }

  get bsp(): Cpu {
    return this.cpus[0]!;
  }
}
