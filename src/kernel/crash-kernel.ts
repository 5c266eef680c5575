// The capture kernel: entered from purgatory on the CPU that panicked, it
// boots inside the crash region only (its e820 from boot_params lists
// nothing else as RAM, and its page tables map nothing else writable),
// finds the elfcorehdr from `elfcorehdr=`, builds /proc/vmcore over the old
// kernel's memory, and its kdump service saves the vmcore.

import { initIommu, type IommuDriver, type IommuHost } from './drivers/iommu.js';
import { probeCaptureDrivers } from './drivers/capture-nic-driver.js';
import { checkTimer, stopHpet } from './io-apic-timer.js';
import type { Machine } from '../platform/machine.js';
import type { Cpu } from '../platform/cpu/cpu.js';
import type { Requester } from '../platform/memory-controller.js';
import { e820End } from '../platform/e820.js';
import { NS_PER_MS } from '../platform/clock.js';
import { CPUID_EXT_EDX_PAGE1GB } from '../platform/cpu/cpuid.js';
import { decodeElfHeader, decodeProgramHeader, EHDR_SIZE, PHDR_SIZE, PT_LOAD, PT_NOTE, ET_CORE, EM_X86_64 } from '../dump/elf.js';
import { decodeNotes, encodeNotes, type ElfNote } from '../dump/elf-note.js';
import { HOST_KEY_SLOT } from '../platform/machine.js';
import { smeEnable, smeBanner, cbitHi, type SmeDecision } from './sme.js';
import { KernelWriteFault, physAccess, type PhysAccess } from './phys-access.js';
import { faultOfWrite, pageFaultOops } from './oops.js';
import type { ElfLoadSpec } from '../dump/elf-vmcore-writer.js';
import { writeElfVmcore } from '../dump/elf-vmcore-writer.js';
import { writeKdumpCompressed } from '../dump/kdump-compressed-writer.js';
import { VmcoreFormatError } from '../util/errors.js';
import { KernelLog } from './dmesg.js';
import type { KernelProfile } from './profile.js';
import { Cmdline } from './cmdline.js';
import { Memblock } from './memblock.js';

/** IO_TLB_DEFAULT_SIZE: the bounce buffer swiotlb_init() sets aside unless swiotlb= says otherwise. */
const SWIOTLB_DEFAULT_BYTES = 64 * 2 ** 20;
import { PageTableBuilder } from './page-table-builder.js';
import { decodeBootParams, BOOT_PARAMS_SIZE } from './boot-params.js';
import { e820Line } from './first-kernel.js';
import { PAGE_OFFSET, START_KERNEL_MAP, alignDown, alignUp } from './layout.js';
import { ProcVmcore, type OldMemoryMapping } from './proc-vmcore.js';
import type { Codec } from '../dump/codecs.js';

export interface CaptureEnvironment {
  /** Where the kdump service saves the vmcore; without a path it reads /proc/vmcore through and keeps nothing. */
  vmcorePath?: string;
  /**
   * What the kdump service writes: the ELF /proc/vmcore as is (cp), or a
   * kdump-compressed file (makedumpfile -c -d 1: zlib, zero pages shared).
   */
  vmcoreFormat?: 'elf' | 'kdump';
  /** Page codec of the kdump-compressed file (default zlib; makedumpfile -c/-l/-p/-z). */
  vmcoreCompression?: Codec;
  /** makedumpfile's -d for the kdump-compressed file (default 1); above 1 filters by struct page. */
  dumpLevel?: number;
  /** Memory the capture kernel and its initramfs need to run the dump, bytes. */
  minMemory: number;
  onBoot?: (ck: CrashKernel) => void;
  onProgress?: (done: number, total: number) => void;
  /** Sees every page /proc/vmcore serves, as it is served, with the key slot its read used. */
  onPageServed?: (pfn: number, page: Uint8Array, keyId: number) => void;
  /** Told of old-kernel memory this kernel takes over and writes by design (the IOMMU buffers it reuses). */
  onReuseOldMemory?: (pa: number, length: number, purpose: string) => void;
}

export type CrashKernelOutcome =
  | { state: 'booting' }
  | { state: 'panicked'; message: string }
  | { state: 'no-vmcore'; reason: string }
  | { state: 'saved'; vmcore: ProcVmcore; file?: SavedVmcore };

/** The file the kdump service wrote. */
export interface SavedVmcore {
  path: string;
  format: 'elf' | 'kdump';
  size: number;
  bytesWritten: number;
}

/** The physical address of an elfcorehdr= value ("0x1234" or "1234K", as kexec-tools writes it). */
export function parseElfcorehdr(v: string): number | undefined {
  const m = /^(0x[0-9a-f]+|\d+)([KkMm]?)$/.exec(v.split('@').pop() ?? '');
  if (!m || m[1] === undefined) return undefined;
  const n = Number(m[1]);
  return m[2] === 'K' || m[2] === 'k' ? n * 1024 : m[2] === 'M' || m[2] === 'm' ? n * 2 ** 20 : n;
}

export class CrashKernel {
  readonly machine: Machine;
  readonly profile: KernelProfile;
  readonly cpu: Cpu;
  readonly env: CaptureEnvironment;
  readonly log: KernelLog;
  readonly who: Requester;
  cmdline = new Cmdline('');
  memblock: Memblock | undefined;
  outcome: CrashKernelOutcome = { state: 'booting' };
  sme: SmeDecision = { active: false, mask: 0n, cbit: 0, reason: 'not decided yet' };
  /** Its own memory, through its own encryption view (all of it encrypted when SME is active). */
  readonly mem: PhysAccess;
  vmcore: ProcVmcore | undefined;

  constructor(machine: Machine, profile: KernelProfile, cpu: Cpu, env: CaptureEnvironment) {
    this.machine = machine;
    this.profile = profile;
    this.cpu = cpu;
    this.env = env;
    this.log = new KernelLog(machine.clock);
    this.who = { kind: 'cpu', id: cpu.id };
    this.mem = physAccess(machine.mc, this.who, () => (this.sme.active ? HOST_KEY_SLOT : 0));
  }

  step(detail: string, data?: Record<string, number | string | boolean>): void {
    this.machine.trace.record('crash-kernel', 'step', detail, data);
  }

  /** The AMD IOMMU driver of this kernel, when the machine has an IOMMU. */
  iommu: IommuDriver | undefined;

  /** The capture kernel never initialises host SNP (it has no firmware or guests of its own). */
  readonly hostSnp = false;

  /** Boots; a store the hardware refuses on the way is an oops, and the capture kernel panics. */
  boot(): void {
    try {
      this.#boot();
    } catch (e) {
      if (!(e instanceof KernelWriteFault)) throw e;
      pageFaultOops(this, this.cpu.id, faultOfWrite(e));
      this.#panic('Fatal exception');
    }
  }

  #boot(): void {
    const m = this.machine;
    this.env.onBoot?.(this);
    const bpPa = Number(this.cpu.regs.rsi);
    const bpBytes = new Uint8Array(BOOT_PARAMS_SIZE);
    m.mc.read(bpPa, bpBytes);
    const bp = decodeBootParams(bpBytes);
    if (!bp.ok) {
      this.#hang(`capture kernel found no usable boot_params at 0x${bpPa.toString(16)}: ${bp.reason}`);
      return;
    }
    const cmd = new Uint8Array(Math.min(bp.cmdlineLength, 4096));
    m.mc.read(bp.cmdlinePa, cmd);
    this.cmdline = new Cmdline(new TextDecoder().decode(cmd).replace(/\0.*$/s, ''));
    this.log.printk(this.profile.banner);
    this.log.printk(`Command line: ${this.cmdline.raw}`);
    this.log.printk('BIOS-provided physical RAM map:');
    for (const e of bp.e820) this.log.printk(e820Line(e));
    this.step(`capture kernel ${this.profile.release} started on CPU ${this.cpu.id}`);

    const usable = bp.e820.filter((e) => e.type === 'usable').map((e) => ({ start: alignUp(e.addr, 4096), end: alignDown(e820End(e), 4096) }));
    const mb = new Memblock(usable);
    this.memblock = mb;
    mb.reserve(0, Math.min(0x100000, mb.freeRanges[0]?.end ?? 0)); // the first MiB stays untouched, as in any x86 kernel
    const kernelStart = alignDown(Number(this.cpu.regs.rip), 2 ** 21);
    mb.reserve(kernelStart, 8 * 2 ** 20);
    // SYSCFG survives kexec, so this kernel makes its own sme_enable() decision from its own command line.
    this.sme = smeEnable(this.cpu, this.cmdline, this.profile);
    if (this.sme.active) {
      const buf = new Uint8Array(8 * 2 ** 20);
      m.mc.read(kernelStart, buf);
      m.mc.write(kernelStart, buf, this.who, { keyId: HOST_KEY_SLOT });
      this.log.printk(smeBanner(this.profile));
    }
    this.step(`capture kernel SME ${this.sme.active ? 'active' : 'not active'}: ${this.sme.reason}`, { sme: this.sme.active });

    // Its own page tables, in its own memory; the direct map covers only what its e820 calls RAM.
    const root = this.#allocPage();
    const gbPages = (this.cpu.cpuid(0x8000_0001)[3] & CPUID_EXT_EDX_PAGE1GB) !== 0;
    const pt = new PageTableBuilder(this.mem, root, () => this.#allocPage(), gbPages, cbitHi(this.sme));
    for (const r of usable) pt.map(PAGE_OFFSET + BigInt(r.start), r.start, r.end - r.start, { writable: true, global: true });
    this.cpu.cr3 = root + Number(this.sme.mask);
    m.clock.advance(100 * NS_PER_MS);
    // With SME active every device DMA bounces through SWIOTLB (mem_encrypt_init forces it): 64 MiB of
    // low memory the capture kernel no longer has for its initramfs. This is why kdump tooling adds 64M.
    if (this.sme.active) {
      const pa = mb.alloc(SWIOTLB_DEFAULT_BYTES, 2 ** 12, 0, 2 ** 32);
      if (pa !== undefined) {
        this.log.printk(`software IO TLB: mapped [mem 0x${pa.toString(16).padStart(16, '0')}-0x${(pa + SWIOTLB_DEFAULT_BYTES).toString(16).padStart(16, '0')}] (${SWIOTLB_DEFAULT_BYTES >> 20}MB)`);
        this.step(`SWIOTLB (forced by SME) takes ${SWIOTLB_DEFAULT_BYTES >> 20} MiB of the reservation`);
      } else {
        this.step(`SWIOTLB (forced by SME) found no ${SWIOTLB_DEFAULT_BYTES >> 20} MiB below 4 GiB`);
      }
    }

    // enable_IR(): the AMD IOMMU driver finds translation on (is_kdump_kernel) and takes its era's path; then check_timer().
    this.iommu = initIommu(this.#iommuHost(), { kdump: true, wantSnp: false });
    const timer = checkTimer(this, this.cpu.id, this.iommu);
    if (!timer.ok) {
      this.#panic(timer.message);
      this.step(`capture kernel panics in check_timer: ${timer.message}`);
      return;
    }
    stopHpet(m); // the local APIC timer takes over
    m.clock.advance(200 * NS_PER_MS);
    this.log.printk('smp: Bringing up secondary CPUs ...');
    this.log.printk('smp: Brought up 1 node, 1 CPU');
    // device_initcall: the drivers the initramfs has probe their devices (and reset them under reset_devices).
    probeCaptureDrivers({
      machine: m, log: this.log, cmdline: this.cmdline, iommu: this.iommu, smeMask: this.sme.mask,
      allocDma: (bytes) => {
        const pa = this.memblock?.alloc(bytes, 4096, 0, 2 ** 32);
        if (pa !== undefined) this.mem.zero(pa, bytes);
        return pa;
      },
      step: (d, data) => this.step(d, data),
    });

    const available = mb.freeRanges.reduce((n, r) => n + (r.end - r.start), 0);
    this.log.printk(`Memory: ${Math.floor(available / 1024)}K/${Math.floor(mb.total / 1024)}K available`);
    if (available < this.env.minMemory) {
      m.clock.advance(900 * NS_PER_MS);
      this.log.printk('Out of memory and no killable processes...');
      this.#panic('System is deadlocked on memory');
      this.step(`capture kernel has ${available >> 20} MiB, its initramfs needs ${this.env.minMemory >> 20} MiB: out of memory`);
      return;
    }

    const hdrArg = this.cmdline.get('elfcorehdr');
    const hdrPa = typeof hdrArg === 'string' ? parseElfcorehdr(hdrArg) : undefined;
    if (hdrPa === undefined) {
      this.outcome = { state: 'no-vmcore', reason: 'no elfcorehdr= on the command line: not a kdump kernel' };
      this.step('no elfcorehdr=: /proc/vmcore is not created');
      return;
    }
    m.clock.advance(500 * NS_PER_MS);
    const vmcore = this.#vmcoreInit(hdrPa);
    if (vmcore === undefined) return;
    this.vmcore = vmcore;
    m.clock.advance(400 * NS_PER_MS);
    this.iommu?.pollEvents();
    this.#saveVmcore(vmcore);
    this.iommu?.pollEvents();
  }

  #iommuHost(): IommuHost {
    return {
      machine: this.machine, profile: this.profile, log: this.log, mem: this.mem, cmdline: this.cmdline, smeMask: this.sme.mask,
      allocDma32: (bytes, align) => {
        const pa = this.memblock?.alloc(bytes, align, 0, 2 ** 32);
        if (pa !== undefined) this.mem.zero(pa, bytes);
        return pa;
      },
      step: (d, data) => this.step(d, data),
      noteDmaBuffer: () => { /* what the capture kernel gives devices is its own memory, not the dump's */ },
      noteReusedOldMemory: (pa, length, purpose) => this.env.onReuseOldMemory?.(pa, length, purpose),
    };
  }

  #allocPage(): number {
    const pa = this.memblock?.alloc(4096, 4096);
    if (pa === undefined) throw new Error('BUG: capture kernel out of boot memory');
    this.mem.zero(pa, 4096);
    return pa;
  }

  /** vmcore_init(): parse the elfcorehdr, merge the notes, describe the PT_LOADs. */
  #vmcoreInit(hdrPa: number): ProcVmcore | undefined {
    const m = this.machine;
    const ehdr = new Uint8Array(EHDR_SIZE);
    m.mc.read(hdrPa, ehdr);
    let phnum: number;
    try {
      const h = decodeElfHeader(ehdr, `elfcorehdr@0x${hdrPa.toString(16)}`);
      if (h.type !== ET_CORE || h.machine !== EM_X86_64 || h.phnum === 0) throw new VmcoreFormatError('not an x86_64 core header', { file: 'elfcorehdr' });
      phnum = h.phnum;
    } catch (e) {
      if (!(e instanceof VmcoreFormatError)) throw e;
      this.log.printk('Warning: Core image elf header is not sane');
      this.log.printk('Kdump: vmcore not initialized');
      this.outcome = { state: 'no-vmcore', reason: `elfcorehdr at 0x${hdrPa.toString(16)} is not a sane ELF core header` };
      this.step(this.outcome.reason);
      return undefined;
    }
    const phBytes = new Uint8Array(phnum * PHDR_SIZE);
    m.mc.read(hdrPa + EHDR_SIZE, phBytes);
    const dv = new DataView(phBytes.buffer);
    const mapping = this.#oldMemoryMapping();
    const notes = [];
    const loads: ElfLoadSpec[] = [];
    let emptyNotes = 0;
    for (let i = 0; i < phnum; i++) {
      const p = decodeProgramHeader(dv, i * PHDR_SIZE);
      if (p.type === PT_NOTE) {
        const buf = new Uint8Array(Number(p.filesz));
        m.mc.read(Number(p.offset), buf, { keyId: mapping.keyId });
        const found = this.#readNotes(buf, Number(p.offset));
        if (found.length === 0) {
          emptyNotes++;
          this.log.printk('Warning: Zero PT_NOTE entries found');
        }
        notes.push(...found);
      } else if (p.type === PT_LOAD) {
        loads.push({ paddr: Number(p.paddr), vaddr: p.vaddr, memsz: Number(p.memsz), flags: p.flags });
      }
    }
    const merged = encodeNotes(notes);
    this.step(`/proc/vmcore: ${notes.length} notes${emptyNotes ? ` (${emptyNotes} CPU buffers empty)` : ''}, ${loads.length} PT_LOADs; old memory mapped ${mapping.why}`,
      { notes: notes.length, loads: loads.length, keyId: mapping.keyId });
    const vmcore = new ProcVmcore(m, merged, loads, mapping);
    vmcore.onServe = this.env.onPageServed;
    return vmcore;
  }

  /**
   * update_note_header_size_elf64(): walk the notes in one CPU's buffer; an
   * entry that does not fit (what encrypted bytes read in the clear look
   * like) is dropped with the kernel's warning.
   */
  #readNotes(buf: Uint8Array, pa: number): ElfNote[] {
    try {
      return decodeNotes(buf, { file: '/proc/vmcore', offset: pa });
    } catch (e) {
      if (!(e instanceof VmcoreFormatError)) throw e;
      const dv = new DataView(buf.buffer, buf.byteOffset, buf.length);
      const namesz = buf.length >= 4 ? dv.getUint32(0, true) : 0;
      const descsz = buf.length >= 8 ? dv.getUint32(4, true) : 0;
      this.log.printk(`Warning: Exceeded p_memsz, dropping PT_NOTE entry n_namesz=0x${namesz.toString(16)}, n_descsz=0x${descsz.toString(16)}`);
      return [];
    }
  }

  /** How copy_oldmem_page maps old memory in this kernel: per era, and whether SME is active here. */
  #oldMemoryMapping(): OldMemoryMapping {
    if (this.sme.active && this.profile.mechanisms.oldMemoryEncryptedRead) {
      return { keyId: HOST_KEY_SLOT, why: 'encrypted (ioremap_encrypted: SME is active in this kernel)' };
    }
    if (this.sme.active) return { keyId: 0, why: 'unencrypted (ioremap: this kernel predates ioremap_encrypted)' };
    return { keyId: 0, why: 'unencrypted (ioremap_cache: SME is not active in this kernel)' };
  }

  /** The kdump service in the initramfs: cp /proc/vmcore to its target. */
  #saveVmcore(vmcore: ProcVmcore): void {
    const m = this.machine;
    vmcore.beginCopy();
    let file: SavedVmcore | undefined;
    if (this.env.vmcorePath !== undefined) {
      const spec = {
        notes: vmcore.notes, loads: vmcore.loads, source: vmcore,
        ...(this.env.onProgress === undefined ? {} : { onProgress: this.env.onProgress }),
        // makedumpfile -E -d N: PT_LOADs split around the pages the level leaves out.
        ...(this.env.dumpLevel === undefined || this.env.dumpLevel <= 1 ? {} : { dumpLevel: this.env.dumpLevel }),
      };
      if (this.env.vmcoreFormat === 'kdump') {
        file = this.#saveKdumpCompressed(this.env.vmcorePath, vmcore);
      } else {
        const r = writeElfVmcore(this.env.vmcorePath, spec);
        file = { path: this.env.vmcorePath, format: 'elf', size: r.fileSize, bytesWritten: r.bytesWritten };
      }
    } else {
      vmcore.readAll();
    }
    vmcore.endCopy();
    const secs = (vmcore.record.endNs - vmcore.record.startNs) / 1e9;
    this.step(`kdump service copied /proc/vmcore (${vmcore.totalBytes} bytes) in ${secs.toFixed(3)} s${file ? ' to a file' : ''}`);
    this.outcome = file === undefined ? { state: 'saved', vmcore } : { state: 'saved', vmcore, file };
    m.clock.advance(200 * NS_PER_MS);
    this.log.printk('reboot: Restarting system');
  }

  /** makedumpfile -c -d 1 on /proc/vmcore: every RAM page once (the kernel-text PT_LOAD only aliases RAM). */
  #saveKdumpCompressed(path: string, vmcore: ProcVmcore): SavedVmcore {
    const ranges = vmcore.loads
      .filter((l) => l.vaddr < START_KERNEL_MAP)
      .map((l) => ({ startPfn: l.paddr / 4096, endPfn: (l.paddr + l.memsz) / 4096 }));
    const notes = decodeNotes(vmcore.notes, { file: '/proc/vmcore', offset: 0 });
    const info = notes.find((n) => n.name === 'VMCOREINFO');
    const text = info === undefined ? '' : new TextDecoder().decode(info.desc);
    const release = /^OSRELEASE=(.*)$/m.exec(text)?.[1] ?? this.profile.release;
    const r = writeKdumpCompressed(path, {
      source: vmcore,
      maxPfn: ranges.reduce((n, x) => Math.max(n, x.endPfn), 0),
      ranges,
      notes: vmcore.notes,
      release,
      nrCpus: notes.filter((n) => n.name === 'CORE' && n.type === 1).length,
      compression: this.env.vmcoreCompression ?? 'zlib',
      ...(this.env.dumpLevel === undefined ? {} : { dumpLevel: this.env.dumpLevel }),
      ...(this.env.onProgress === undefined ? {} : { onProgress: (d: number, t: number) => this.env.onProgress!(d * 4096, t * 4096) }),
    });
    return { path, format: 'kdump', size: r.fileSize, bytesWritten: r.fileSize };
  }

  #panic(message: string): void {
    this.log.printk(`Kernel panic - not syncing: ${message}`);
    this.outcome = { state: 'panicked', message };
  }

  #hang(reason: string): void {
    this.step(reason);
    this.outcome = { state: 'no-vmcore', reason };
  }
}
