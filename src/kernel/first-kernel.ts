// The first (production) kernel: boots on the machine, reserves the crash
// region, builds its page tables and memory map, brings up the APs, starts
// its drivers and runs a workload. kexec loading and the panic path live in
// their own files and act on this object.

import type { Machine } from '../platform/machine.js';
import type { Requester } from '../platform/memory-controller.js';
import { e820End, type E820Entry } from '../platform/e820.js';
import { deliverInit, deliverSipi } from '../platform/cpu/ipi.js';
import type { Cpu } from '../platform/cpu/cpu.js';
import { NS_PER_MS } from '../platform/clock.js';
import { MSR_EFER, EFER_LME, EFER_LMA, EFER_NXE, EFER_SCE } from '../platform/cpu/msr.js';
import { CPUID_EXT_EDX_PAGE1GB } from '../platform/cpu/cpuid.js';
import { hexPad } from '../util/hex.js';
import { Cmdline } from './cmdline.js';
import { KernelLog } from './dmesg.js';
import type { KernelProfile } from './profile.js';
import type { Range } from './memblock.js';
import { KernelImage } from './kernel-image.js';
import { PageTableBuilder } from './page-table-builder.js';
import { MemMap } from './mem-map.js';
import { buildMemSections, presentSections, VMEMMAP_START } from './mem-section.js';
import { PageAllocator } from './page-allocator.js';
import { PglistData, writeNodeStates } from './pglist-data.js';
import { KERNEL_PHYS_START, PAGE_OFFSET, START_KERNEL_MAP, alignDown, alignUp } from './layout.js';
import { reserveCrashRegion } from './crash-reservation.js';
import { buildVmcoreinfo, writeVmcoreinfoNote } from './vmcoreinfo-export.js';
import type { VmcoreInfo } from '../dump/vmcoreinfo.js';
import { CRASH_NOTE_BYTES } from './crash-notes.js';
import { RxNicDriver } from './drivers/rx-nic-driver.js';
import { probeStorageDrivers } from './drivers/storage-driver.js';
import type { KexecImage } from './kexec-file-load.js';
import { smeEnable, smeBanner, cbitHi, type SmeDecision } from './sme.js';
import { faultOfWrite, pageFaultOops } from './oops.js';
import { snpProbe, snpRmptableInit, ccpSnpInit, type SnpHostState } from './snp-host.js';
import { initIommu, type IommuDriver, type IommuHost } from './drivers/iommu.js';
import { checkTimer, stopHpet } from './io-apic-timer.js';
import { launchSnpGuests, type SnpGuest } from './kvm-snp.js';
import { KernelWriteFault, physAccess, writeU64, type PhysAccess } from './phys-access.js';
import { HOST_KEY_SLOT } from '../platform/machine.js';

/** A buffer the kernel handed to a device for DMA. */
export interface DmaMapping {
  device: string;
  pa: number;
  length: number;
  purpose: string;
}

export interface FirstKernelConfig {
  profile: KernelProfile;
  cmdline: string;
  seed: number;
  nic: { ringEntries: number; bufferBytes: number; pollIntervalNs: number };
  /** SNP guests KVM launches once the firmware is initialised, and their memory in pages. */
  snpGuests?: { count: number; pages: number; vcpus?: number };
  /**
   * Patches posted but never merged: the 2024 "x86/sev: Fix host kdump
   * support for SNP" — v1 decommissions the guests in the crash path, v2 from
   * the NMI shoot-down with a WBINVD on every CPU after it.
   */
  patches?: readonly ('snp-kdump-decommission-v1' | 'snp-kdump-decommission-v2')[];
}

export type BootOutcome = { ok: true } | { ok: false; reason: string };

/** Where the real-mode trampoline sits: below 1 MiB, page aligned, as SIPI needs. */
export const TRAMPOLINE_PA = 0x99000;

export function e820Line(e: E820Entry): string {
  return `BIOS-e820: [mem 0x${hexPad(e.addr, 16)}-0x${hexPad(e820End(e) - 1, 16)}] ${e.type}`;
}

export class FirstKernel {
  readonly machine: Machine;
  readonly config: FirstKernelConfig;
  readonly profile: KernelProfile;
  readonly log: KernelLog;
  readonly cmdline: Cmdline;
  readonly image: KernelImage;
  readonly who: Requester = { kind: 'cpu', id: 0 };
  memblock!: PageAllocator;
  pageTables!: PageTableBuilder;
  memMap!: MemMap;
  /** contig_page_data: node 0, its zones and the buddy allocator's free lists. */
  pgdat!: PglistData;
  /** The mem_section pointer: the virtual address of the SPARSEMEM_EXTREME root array. */
  memSection = 0n;
  vmcoreinfo!: VmcoreInfo;
  crashRegion: Range | undefined;
  crashLowRegion: Range | undefined;
  /** Physical address of each CPU's crash_notes buffer. */
  crashNotes: number[] = [];
  readonly dmaMappings: DmaMapping[] = [];
  readonly drivers: RxNicDriver[] = [];
  /** Set once the kernel stops scheduling work (panic). */
  running = false;
  kexecImage: KexecImage | undefined;
  /** sme_enable()'s decision (inactive until boot decides). */
  sme: SmeDecision = { active: false, mask: 0n, cbit: 0, reason: 'not decided yet' };
  /** SEV-SNP host state (inactive unless the profile, the CPU and the BIOS allow it). */
  snp: SnpHostState = { active: false, iommuSnp: false, skippedEnable: false, firmwareInitialized: false, sevInitialized: false };
  snpGuests: SnpGuest[] = [];
  /** The AMD IOMMU driver, when the machine has an IOMMU this kernel brought up. */
  iommu: IommuDriver | undefined;
  /** Ranges this kernel maps decrypted under SME. */
  readonly decrypted: Range[] = [];
  /** Physical memory as this kernel sees it (through its encryption view). */
  readonly mem: PhysAccess;
  /** The page-table root with the C-bit when the root table is encrypted. */
  cr3 = 0;

  constructor(machine: Machine, config: FirstKernelConfig) {
    this.machine = machine;
    this.config = config;
    this.profile = config.profile;
    this.log = new KernelLog(machine.clock);
    this.cmdline = new Cmdline(config.cmdline);
    this.image = new KernelImage(KERNEL_PHYS_START);
    this.mem = physAccess(machine.mc, this.who, (pa) => this.keyFor(pa));
  }

  /** A milestone of the causal story, recorded in the hardware trace. */
  step(detail: string, data?: Record<string, number | string | boolean>): void {
    this.machine.trace.record('kernel', 'step', detail, data);
  }

  /** Host SNP is on (CC_ATTR_HOST_SEV_SNP). */
  get hostSnp(): boolean {
    return this.snp.active;
  }

  /** Boots; a store the hardware refuses on the way is an oops, and the panic that follows ends the boot. */
  boot(): BootOutcome {
    try {
      return this.#boot();
    } catch (e) {
      if (!(e instanceof KernelWriteFault)) throw e;
      pageFaultOops(this, this.machine.bsp.id, faultOfWrite(e));
      this.log.printk('Kernel panic - not syncing: Fatal exception');
      this.running = false;
      return { ok: false, reason: `oops while booting: ${e.message}` };
    }
  }

  #boot(): BootOutcome {
    const m = this.machine;
    const clock = m.clock;
    this.log.printk(this.profile.banner);
    this.log.printk(`Command line: ${this.cmdline.raw}`);
    this.log.printk('BIOS-provided physical RAM map:');
    for (const e of m.e820) this.log.printk(e820Line(e));

    // memblock: usable RAM minus the first MiB (reserved for BIOS and real-mode code) and the image.
    this.memblock = new PageAllocator(m.e820.filter((e) => e.type === 'usable').map((e) => ({ start: alignUp(e.addr, 4096), end: alignDown(e820End(e), 4096) })));
    this.memblock.reserve(0, Math.min(0x100000, this.memblock.freeRanges[0]?.end ?? 0));
    if (!this.memblock.reserve(this.image.base, this.image.size)) {
      return { ok: false, reason: `kernel image at 0x${this.image.base.toString(16)} does not fit in usable memory` };
    }
    // The boot loader put the image there in plaintext; sme_enable() decides, sme_encrypt_kernel() converts in place.
    this.image.load(this.mem, this.profile.release, this.profile.banner, this.config.seed);
    this.sme = smeEnable(m.bsp, this.cmdline, this.profile);
    if (this.sme.active) {
      this.#encryptInPlace(this.image.base, this.image.size);
      this.step(`SME active: sme_me_mask 0x${this.sme.mask.toString(16)} (C-bit ${this.sme.cbit}); kernel image encrypted in place`, { cbit: this.sme.cbit });
    } else if (this.profile.mechanisms.memEncrypt && this.sme.cbit !== 0) {
      this.step(`SME not active: ${this.sme.reason}`);
    }
    clock.advance(4 * NS_PER_MS);

    this.snp = snpProbe(this);
    this.#buildPageTables();
    this.crashRegion = undefined;
    const res = reserveCrashRegion(this);
    if (res.region) this.crashRegion = res.region;
    if (res.lowRegion) this.crashLowRegion = res.lowRegion;

    const maxPfn = Math.floor(m.dram.size / 4096);
    // vmemmap_populate(): the struct pages in 2 MiB chunks, mapped at VMEMMAP_START.
    const mmBytes = alignUp(MemMap.bytesFor(maxPfn), 2 ** 21);
    const mmBase = this.memblock.alloc(mmBytes, 2 ** 21);
    if (mmBase === undefined) return { ok: false, reason: `cannot allocate the memory map (${mmBytes} bytes)` };
    this.memMap = new MemMap(mmBase, maxPfn);
    this.pageTables.map(VMEMMAP_START, mmBase, mmBytes, { writable: true, global: true });
    const usable = m.e820.filter((e) => e.type === 'usable').map((e) => ({ start: e.addr, end: e820End(e) }));
    const rootsPa = buildMemSections(this.mem, (bytes) => {
      const pa = this.memblock.alloc(bytes, 4096);
      if (pa === undefined) throw new RangeError('Cannot allocate mem_section: memblock is empty');
      this.mem.zero(pa, bytes);
      return pa;
    }, presentSections(usable));
    this.memSection = PAGE_OFFSET + BigInt(rootsPa);
    writeU64(this.mem, this.image.pa('mem_section'), this.memSection);
    this.memMap.describe(this.mem, this.image.base / 4096, this.image.size / 4096, 'kernel');
    // free_area_init(): node 0 online, its zones with empty free lists; then memblock hands its free memory over.
    writeNodeStates(this.mem, this.image.pa('node_states'));
    this.pgdat = new PglistData(this.image.pa('contig_page_data'), this.image.va('contig_page_data'), mmBase, usable);
    this.pgdat.init(this.mem);
    this.memblock.freeAll(this.mem, this.memMap, this.pgdat);
    if (this.sme.active) this.log.printk(smeBanner(this.profile));

    this.vmcoreinfo = buildVmcoreinfo({
      release: this.profile.release, image: this.image, smeMask: this.sme.mask, emitSmeMask: this.profile.mechanisms.vmcoreinfoSmeMask, memSection: this.memSection,
    });
    writeVmcoreinfoNote(this.mem, this.image, this.vmcoreinfo);

    const notesBytes = alignUp(m.cpus.length * CRASH_NOTE_BYTES, 4096);
    const notesBase = this.memblock.alloc(notesBytes, 4096);
    if (notesBase === undefined) return { ok: false, reason: 'cannot allocate crash_notes' };
    this.mem.zero(notesBase, notesBytes);
    this.crashNotes = m.cpus.map((_, i) => notesBase + i * CRASH_NOTE_BYTES);
    this.memMap.describe(this.mem, notesBase / 4096, notesBytes / 4096, 'slab');

    this.running = true;
    m.bsp.nmiHandler = (cpu) => this.#nmi(cpu);
    clock.advance(120 * NS_PER_MS);
    // enable_IR() before the IO-APIC is set up: the AMD IOMMU comes up (and says whether SNP may run), then check_timer().
    this.iommu = initIommu(this.iommuHost(), { kdump: false, wantSnp: this.snp.active });
    this.snp.iommuSnp = this.iommu?.snpEnabled ?? false;
    const timer = checkTimer(this, m.bsp.id, this.iommu);
    if (!timer.ok) {
      this.log.printk(`Kernel panic - not syncing: ${timer.message}`);
      this.running = false;
      return { ok: false, reason: timer.message };
    }
    stopHpet(m); // the local APIC timers take over
    this.#bringUpAps();

    clock.advance(100 * NS_PER_MS);
    snpRmptableInit(this, this.snp);
    ccpSnpInit(this, this.snp);
    this.snpGuests = launchSnpGuests(this, this.snp, this.config.snpGuests?.count ?? 0, this.config.snpGuests?.pages ?? 0, this.config.snpGuests?.vcpus ?? 1);
    clock.advance(500 * NS_PER_MS);
    for (const nic of m.nics) {
      const drv = new RxNicDriver(this, nic);
      drv.probe();
      this.drivers.push(drv);
    }
    probeStorageDrivers(this);
    clock.advance(900 * NS_PER_MS);
    this.log.printk('Run /sbin/init as init process');
    this.step(`first kernel ${this.profile.release} booted on ${m.cpus.length} CPUs`);
    return { ok: true };
  }

  /** What the IOMMU driver needs of this kernel. */
  iommuHost(): IommuHost {
    return {
      machine: this.machine, profile: this.profile, log: this.log, mem: this.mem, cmdline: this.cmdline, smeMask: this.sme.mask,
      allocDma32: (bytes, align) => {
        const pa = this.memblock.alloc(bytes, align, 0, 2 ** 32);
        if (pa !== undefined) this.mem.zero(pa, bytes);
        return pa;
      },
      step: (d, data) => this.step(d, data),
      noteDmaBuffer: (device, pa, length, purpose) => { this.dmaMappings.push({ device, pa, length, purpose }); },
      noteReusedOldMemory: () => { /* a first kernel reuses nothing of a previous one's */ },
    };
  }

  /** Allocates a zeroed page from memblock for kernel use (page tables, buffers). */
  allocPage(): number {
    const pa = this.memblock.alloc(4096, 4096);
    if (pa === undefined) throw new Error('BUG: out of boot memory');
    this.mem.zero(pa, 4096);
    return pa;
  }

  /**
   * The key slot this kernel's mapping of `pa` uses: the host key for its RAM
   * when SME is active, none for what it maps decrypted.
   */
  keyFor(pa: number): number {
    if (!this.sme.active) return 0;
    for (const r of this.decrypted) if (pa >= r.start && pa < r.end) return 0;
    return HOST_KEY_SLOT;
  }

  /** Marks a range decrypted in this kernel's view (set_memory_decrypted). */
  markDecrypted(r: Range): void {
    this.decrypted.push(r);
  }

  /** sme_encrypt_kernel(): read through a decrypted alias, write back through the encrypted one. */
  #encryptInPlace(pa: number, size: number): void {
    const m = this.machine;
    const buf = new Uint8Array(1 << 20);
    for (let off = 0; off < size; off += buf.length) {
      const n = Math.min(buf.length, size - off);
      const view = buf.subarray(0, n);
      m.mc.read(pa + off, view);
      m.mc.write(pa + off, view, this.who, { keyId: HOST_KEY_SLOT });
    }
  }

  #buildPageTables(): void {
    const m = this.machine;
    const root = this.image.pa('init_top_pgt');
    this.mem.zero(root, 4096);
    // Long mode with NX, and 1 GiB direct-map pages only where CPUID says the part has them.
    const bsp = m.bsp;
    bsp.wrmsr(MSR_EFER, bsp.rdmsr(MSR_EFER) | EFER_LME | EFER_LMA | EFER_NXE | EFER_SCE);
    const gbPages = (bsp.cpuid(0x8000_0001)[3] & CPUID_EXT_EDX_PAGE1GB) !== 0;
    this.pageTables = new PageTableBuilder(this.mem, root, () => this.allocPage(), gbPages, cbitHi(this.sme));
    // The direct map covers RAM and ACPI tables (those decrypted: firmware wrote them in the clear); the MMIO hole stays unmapped.
    for (const e of m.e820) {
      if (e.type !== 'usable' && e.type !== 'ACPI data' && e.type !== 'ACPI NVS') continue;
      const start = alignDown(e.addr, 4096);
      const end = alignUp(e820End(e), 4096);
      const decrypted = e.type !== 'usable';
      if (decrypted) this.markDecrypted({ start, end });
      this.pageTables.map(PAGE_OFFSET + BigInt(start), start, end - start, { writable: true, global: true, decrypted });
    }
    this.pageTables.map(START_KERNEL_MAP + BigInt(this.image.base), this.image.base, this.image.size, { writable: true, global: true });
    // CR3 carries the C-bit too when the top-level table is encrypted.
    this.cr3 = root + Number(this.sme.mask);
    for (const cpu of m.cpus) cpu.cr3 = this.cr3;
  }


  #bringUpAps(): void {
    const m = this.machine;
    this.log.printk('smp: Bringing up secondary CPUs ...');
    // The trampoline's bytes and what running them means: switch to the kernel's page tables and idle.
    const code = new Uint8Array(64);
    code.set([0xfa, 0xfc, 0x8c, 0xc8, 0x8e, 0xd8, 0x0f, 0x01, 0x16]);
    // The real-mode trampoline is decrypted: APs start without paging, so without the C-bit.
    this.markDecrypted({ start: TRAMPOLINE_PA, end: TRAMPOLINE_PA + 4096 });
    this.mem.write(TRAMPOLINE_PA, code);
    m.entryPoints.place(TRAMPOLINE_PA, 'trampoline_start', code, (cpu) => this.#apStart(cpu));
    const booted: string[] = [];
    for (const cpu of m.cpus) {
      if (cpu.isBsp) continue;
      deliverInit(cpu, m.trace);
      m.clock.advance(10 * 1000);
      deliverSipi(cpu, TRAMPOLINE_PA >> 12, m.entryPoints, m.trace);
      if (cpu.state === 'halted') booted.push(`#${cpu.id}`);
      m.clock.advance(200 * 1000);
    }
    if (booted.length > 0) {
      this.log.printk('x86: Booting SMP configuration:');
      this.log.printk(`.... node  #0, CPUs:      ${booted.join(' ')}`);
    }
    this.log.printk(`smp: Brought up 1 node, ${booted.length + 1} CPU${booted.length === 0 ? '' : 's'}`);
  }

  #apStart(cpu: Cpu): void {
    cpu.wrmsr(MSR_EFER, cpu.rdmsr(MSR_EFER) | EFER_LME | EFER_LMA | EFER_NXE | EFER_SCE);
    cpu.cr3 = this.cr3;
    cpu.nmiHandler = (c) => this.#nmi(c);
    // The idle task's context: kernel segments, interrupts on, on this CPU's idle stack, in the halt loop.
    cpu.regs.cs = 0x10n;
    cpu.regs.ss = 0x18n;
    cpu.regs.eflags = 0x246n;
    cpu.regs.rsp = 0xffff_c900_0000_0000n + BigInt(cpu.id) * 0x4000n + 0x3ed8n;
    cpu.regs.rbp = 0n;
    cpu.regs.rip = this.image.va('native_safe_halt');
    cpu.state = 'halted'; // the idle loop
  }

  /** NMI outside a crash: the kernel reports it and carries on. */
  #nmi(cpu: Cpu): void {
    this.log.printk(`Uhhuh. NMI received for unknown reason 00 on CPU ${cpu.id}.`);
  }

  /** Installs the NMI handler the panic path uses (nmi_shootdown_cpus). */
  setNmiHandler(cpu: Cpu, fn: (cpu: Cpu) => void): void {
    cpu.nmiHandler = fn;
  }
}
