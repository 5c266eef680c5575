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
import { MSR_IA32_APIC_BASE, APIC_BASE_BSP, APIC_BASE_ENABLE } from './cpu/msr.js';

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
    for (let i = 0; i < config.cpus; i++) {
      const cpu = new Cpu(i, i, i === 0);
      programCpuid(cpu, { vendor: config.cpuVendor ?? 'AuthenticAMD', physBits: 48, gbPages: config.gbPages ?? true });
      cpu.wrmsr(MSR_IA32_APIC_BASE, 0xfee0_0000n | APIC_BASE_ENABLE | (cpu.isBsp ? APIC_BASE_BSP : 0n));
      this.cpus.push(cpu);
    }
    this.dma = new DirectDma(this.mc);
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
