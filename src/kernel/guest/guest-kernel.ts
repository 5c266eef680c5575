// A Linux kernel running inside an SEV-ES or SEV-SNP guest. It runs on the
// guest's vCPUs and has only what a guest kernel has: its own memory through
// the C-bit (private pages with the guest key, shared pages without), the
// GHCB MSR and VMGEXIT, PVALIDATE and RMPADJUST (SNP), and INIT/SIPI through
// its local APIC. Which kexec mechanisms it has comes from its profile
// (`sevEsGuestKexec`, `snpGuestKexec`). The same class serves as the first
// kernel, as a kernel a plain `kexec -e` boots into (role 'kexec': a full
// kernel like the first, with its own trampoline), and as the crash kernel a
// kernel kexecs into on panic.
//
// Modelling choices (ours): an online AP sits in the idle loop as a running
// vCPU, so the panic path can run the NMI stop handler on it directly (the
// hypervisor model has no NMI delivery); kernel code is stand-in bytes the
// VM checks before running their behaviour (src/platform/hv/guest-code.ts).

import { createHash } from 'node:crypto';
import type { SevGuestVm } from '../../platform/hv/sev-guest-vm.js';
import type { Vcpu } from '../../platform/hv/vcpu.js';
import { MSR_AMD64_SEV } from '../../platform/cpu/msr.js';
import {
  GHCB_MSR_SEV_INFO_RESP, GHCB_MSR_HV_FT_RESP, GHCB_MSR_REG_GPA_RESP, GHCB_MSR_PSC_RESP, GHCB_HV_FT_SNP, GHCB_HV_FT_SNP_AP_CREATION,
  PSC_OP_SHARED, SEV_TERM_SET_GEN, SEV_TERM_SET_LINUX, GHCB_SEV_ES_GEN_REQ, GHCB_SNP_UNSUPPORTED, GHCB_TERM_REGISTER, GHCB_TERM_PSC,
  GHCB_TERM_PVALIDATE, sevInfoRequest, decodeSevInfo, hvFeaturesRequest, ghcbMsrInfo, ghcbMsrData, registerGhcbRequest, pscRequest,
  pscResponseError, terminateRequest,
} from '../../platform/hv/ghcb-msr.js';
import {
  SVM_VMGEXIT_AP_JUMP_TABLE, AP_JUMP_TABLE_GET, SVM_VMGEXIT_AP_CREATION, SVM_VMGEXIT_AP_CREATE, SVM_VMGEXIT_MMIO_WRITE, GHCB_OFF_SHARED_BUFFER,
  apCreationInfo1,
} from '../../platform/hv/ghcb-page.js';
import { VC_EXIT_NPF } from '../../platform/hv/vcpu.js';
import { VGA_TEXT_BASE } from '../../platform/hv/mmio-bus.js';
import { encodeVmsa, startVmsaState } from '../../platform/hv/vmsa.js';
import { KernelLog } from '../dmesg.js';
import type { KernelProfile } from '../profile.js';
import { hex } from '../../util/hex.js';
import { msrCall, ghcbCall } from './ghcb-calls.js';
import { apJumpTableBlob, placeApJumpTableBlob } from './ap-jump-table-blob.js';
import {
  PAGE, FIRST_TRAMPOLINE, CRASH_TRAMPOLINE, KEXEC_TRAMPOLINE, KEXEC_IMAGE, SEV_ES_TRAMPOLINE_IP, BSS_DECRYPTED, FIRST_VMSAS, WORKLOAD, KERNEL_TEXT,
  CRASH_IMAGE_OFF, CRASH_GHCB_OFF, CRASH_VMSAS_OFF, ghcbOf, backupGhcbOf, resetVectorOf,
} from './layout.js';

/** The most recent GHCB protocol version the guest kernels here speak (2 since SNP guest support). */
export const GHCB_PROTOCOL_MAX = 2;
export const GHCB_PROTOCOL_MIN = 1;
/** How long smpboot waits for an AP to call in. */
export const AP_BOOT_TIMEOUT_NS = 10_000_000_000;
/** Pages of kernel text the first kernel's image covers (stand-in content, checked by the oracle). */
export const KERNEL_TEXT_PAGES = 16;

export type GuestRole = 'first' | 'kexec' | 'crash';
/** What `kexec_file_load` loads: a capture kernel (`kexec -p`) or the next kernel for `kexec -e` (`kexec -l`). */
export type KexecKind = 'crash' | 'reboot';

export interface GuestKernelConfig {
  readonly profile: KernelProfile;
  readonly role: GuestRole;
  /** GPA of the crashkernel= reservation (the crash kernel runs there). */
  readonly crashBase: number;
  /** Seed of the stand-in bytes (kernel text, workload). */
  readonly seed: number;
}

export type BootResult = { ok: true } | { ok: false; reason: string };
/** boot_params.screen_info as far as the decompressor's console uses it (0 lines or columns: no text console). */
export interface ScreenInfo { readonly lines: number; readonly cols: number }
/** What the decompressor prints first (arch/x86/boot/compressed's "Decompressing Linux... "). */
export const DECOMPRESSOR_BANNER = 'Decompressing Linux... ';
export type KexecLoadResult = { ok: true; entry: number } | { ok: false; errno: 'ENOSYS'; reason: string };

/** What the crash kernel hands the dump for every old page it read (C=1, the guest key). */
export type PageSink = (gpa: number, bytes: Uint8Array) => void;
export type DumpOutcome = { state: 'saved'; pages: number } | { state: 'terminated'; detail: string } | { state: 'stopped'; detail: string };

export class GuestKernel {
  readonly vm: SevGuestVm;
  readonly profile: KernelProfile;
  readonly role: GuestRole;
  readonly crashBase: number;
  readonly seed: number;
  readonly log: KernelLog;
  readonly source: string;
  readonly bsp: Vcpu;
  ghcbVersion = 0;
  /** The AP jump table GPA (0: none; SEV-ES only). */
  jumpTable = 0;
  /** The RFC blob is on the jump table page (sev_kexec_supported() is true). */
  blobInstalled = false;
  /** vCPU indexes that called in (the BSP included). */
  readonly online = new Set<number>();
  /** Pages of the direct map mapped decrypted (C=0), by GPA. */
  readonly shared = new Set<number>();
  /** .bss..decrypted pages mapped decrypted. */
  readonly bssDecrypted = new Set<number>();
  /** SNP: the VMSA page this kernel allocated for each AP it created. */
  readonly apVmsas = new Map<number, number>();
  /** SNP: enc_kexec_begin stopped shared<->private conversions. */
  conversionsStopped = false;
  /** False once snp_kexec_finish switched to the MSR protocol. */
  ghcbsUsable = true;
  /** The capture kernel to enter on panic (set by kexec_load). */
  crashEntry: number | undefined;
  /** The kernel `kexec -e` enters (set by kexec_load of a reboot image). */
  rebootEntry: number | undefined;
  /** screen_info the loader handed this kernel (the firmware boot of the first kernel: none). */
  screenInfo: ScreenInfo = { lines: 0, cols: 0 };

  constructor(vm: SevGuestVm, cfg: GuestKernelConfig) {
    this.vm = vm;
    this.profile = cfg.profile;
    this.role = cfg.role;
    this.crashBase = cfg.crashBase;
    this.seed = cfg.seed;
    this.log = new KernelLog(vm.machine.clock);
    this.source = { first: 'guest-kernel', kexec: 'guest-kexec-kernel', crash: 'guest-crash-kernel' }[cfg.role];
    this.bsp = vm.vcpus[0]!;
  }

  get isSnp(): boolean {
    return this.vm.type === 'snp';
  }

  /** A full kernel (the first one, or one a kexec reboot started), not a capture kernel in its reservation. */
  get isFull(): boolean {
    return this.role !== 'crash';
  }

  get trampoline(): number {
    return { first: FIRST_TRAMPOLINE, kexec: KEXEC_TRAMPOLINE, crash: CRASH_TRAMPOLINE }[this.role];
  }

  /** How the trace names this kernel. */
  get title(): string {
    return { first: 'kernel', kexec: 'kexec\'d kernel', crash: 'crash kernel' }[this.role];
  }

  /** The BSP's GHCB: a full kernel's per-CPU one, or the crash kernel's own in its reservation. */
  get ghcb(): number {
    return this.isFull ? ghcbOf(0) : this.crashBase + CRASH_GHCB_OFF;
  }

  get perCpuGhcbs(): number[] {
    return this.isFull ? this.vm.vcpus.map((v) => ghcbOf(v.index)) : [this.ghcb];
  }

  step(text: string, data?: Record<string, number | string | boolean>): void {
    this.vm.trace.record(this.source, 'step', text, data);
  }

  printk(text: string): void {
    this.log.printk(text);
  }

  /** Asks the hypervisor to end the VM (MSR protocol), as sev_es_terminate() does. */
  terminate(set: number, code: number, why: string): { ok: false; reason: string } {
    this.step(`${why}: terminate request, reason set ${set} code ${code}`, { set, code });
    msrCall(this.bsp, terminateRequest(set, code));
    return { ok: false, reason: why };
  }

  // Boot -------------------------------------------------------------------------

  boot(): BootResult {
    const p = this.profile;
    this.printk(p.banner);
    this.step(`guest ${this.title} ${p.release} starts on vCPU ${this.bsp.index}`);
    const status = this.bsp.cpu.rdmsr(MSR_AMD64_SEV);
    const names = ['SEV', ...(status & 2n ? ['SEV-ES'] : []), ...(status & 4n ? ['SEV-SNP'] : [])].join(' ');
    this.printk(p.mechanisms.memEncryptBanner === 'features' ? `Memory Encryption Features active: AMD ${names}` : `AMD Memory Encryption Features active: ${names}`);
    const neg = this.negotiate();
    if (!neg.ok) return neg;
    if (this.isSnp) {
      const f = msrCall(this.bsp, hvFeaturesRequest());
      if (!f.ok || ghcbMsrInfo(f.response) !== GHCB_MSR_HV_FT_RESP || (ghcbMsrData(f.response) & GHCB_HV_FT_SNP) === 0n) {
        return this.terminate(SEV_TERM_SET_GEN, GHCB_SNP_UNSUPPORTED, 'the hypervisor does not offer SNP');
      }
    }
    const g = this.setupGhcbs();
    if (!g.ok) return g;
    const d = this.decompressorConsole();
    if (!d.ok) return d;
    if (this.isFull) this.loadImage();
    this.placeTrampoline();
    if (!this.isSnp) {
      const jt = this.setupJumpTable();
      if (!jt.ok) return jt;
    }
    this.online.add(this.bsp.index);
    this.bringUpAps();
    this.step(`${this.online.size} of ${this.vm.vcpus.length} CPUs online`, { online: this.online.size, vcpus: this.vm.vcpus.length });
    return { ok: true };
  }

  /** SEV_INFO over the MSR protocol: the version is min(hypervisor max, ours). */
  negotiate(): BootResult {
    const r = msrCall(this.bsp, sevInfoRequest());
    if (!r.ok) return { ok: false, reason: `SEV_INFO failed: ${r.detail}` };
    const info = decodeSevInfo(r.response);
    if (info.code !== GHCB_MSR_SEV_INFO_RESP || info.max < GHCB_PROTOCOL_MIN || info.min > GHCB_PROTOCOL_MAX) {
      return this.terminate(SEV_TERM_SET_GEN, GHCB_SEV_ES_GEN_REQ, `GHCB protocol negotiation failed (hypervisor ${info.min}..${info.max})`);
    }
    this.ghcbVersion = Math.min(info.max, GHCB_PROTOCOL_MAX);
    if (this.profile.mechanisms.sevEsGuestKexec === 'ap-jump-table') {
      // The RFC's "Save and print negotiated GHCB protocol version".
      this.printk(`SEV: Hypervisor GHCB protocol version support: min=${info.min} max=${info.max}`);
      this.printk(`SEV: Using GHCB protocol version ${this.ghcbVersion}`);
    }
    this.step(`GHCB protocol version ${this.ghcbVersion} negotiated (hypervisor ${info.min}..${info.max})`, { version: this.ghcbVersion, min: info.min, max: info.max });
    return { ok: true };
  }

  /** Maps a page decrypted; for SNP first rescinds validation, then asks the hypervisor to make it shared. */
  makeShared(gpa: number): BootResult {
    if (this.conversionsStopped) return { ok: false, reason: `conversion of GPA ${hex(gpa)} refused: -EBUSY after enc_kexec_begin` };
    if (this.isSnp) {
      const pv = this.bsp.pvalidate(gpa, false);
      if (!pv.ok) return this.terminate(SEV_TERM_SET_LINUX, GHCB_TERM_PVALIDATE, `PVALIDATE of GPA ${hex(gpa)} failed: ${pv.detail}`);
      const r = msrCall(this.bsp, pscRequest(gpa / PAGE, PSC_OP_SHARED));
      if (!r.ok) return { ok: false, reason: r.detail };
      if (ghcbMsrInfo(r.response) !== GHCB_MSR_PSC_RESP) {
        this.printk(`Wrong PSC response code: 0x${ghcbMsrInfo(r.response).toString(16)}`);
        return this.terminate(SEV_TERM_SET_LINUX, GHCB_TERM_PSC, 'page state change failed');
      }
      const err = pscResponseError(r.response);
      if (err !== 0) {
        this.printk(`Failed to change page state to 'shared' paddr 0x${gpa.toString(16)} error 0x${err.toString(16)}`);
        return this.terminate(SEV_TERM_SET_LINUX, GHCB_TERM_PSC, 'page state change failed');
      }
    }
    return { ok: true };
  }

  setupGhcbs(): BootResult {
    const pages = this.isFull
      ? this.vm.vcpus.flatMap((v) => [ghcbOf(v.index), backupGhcbOf(v.index)])
      : [this.ghcb];
    for (const gpa of pages) {
      const r = this.makeShared(gpa);
      if (!r.ok) return r;
      this.shared.add(gpa);
    }
    if (this.isFull) {
      const r = this.makeShared(BSS_DECRYPTED);
      if (!r.ok) return r;
      this.bssDecrypted.add(BSS_DECRYPTED);
    }
    this.step(`GHCBs mapped shared: ${pages.map(hex).join(', ')}${this.isFull ? `; .bss..decrypted at ${hex(BSS_DECRYPTED)}` : ''}`,
      { pages: pages.length });
    if (this.isSnp) {
      // SNP: the GHCB must be registered before the hypervisor serves it.
      const gfn = this.ghcb / PAGE;
      const r = msrCall(this.bsp, registerGhcbRequest(gfn));
      if (!r.ok) return { ok: false, reason: r.detail };
      if (ghcbMsrInfo(r.response) !== GHCB_MSR_REG_GPA_RESP || ghcbMsrData(r.response) !== BigInt(gfn)) {
        return this.terminate(SEV_TERM_SET_LINUX, GHCB_TERM_REGISTER, `GHCB GPA ${hex(this.ghcb)} registration failed`);
      }
    }
    return { ok: true };
  }

  /**
   * screen_info this kernel's kexec hands the next kernel. (ours) The RFC's
   * kexec passes a VGA text console (80x25), the case its decompressor MMIO
   * patch was for ("kexec boots may enable the VGA console", §3.7);
   * other kernels pass the firmware boot's, which has none.
   */
  kexecScreenInfo(): ScreenInfo {
    return this.profile.mechanisms.sevEsDecompressorMmio === 'vc-mmio' ? { lines: 25, cols: 80 } : { lines: 0, cols: 0 };
  }

  /**
   * The decompressor's console (before the kernel proper runs): with a text
   * console in screen_info it stores each character of its banner into VGA
   * text memory, one byte store a character. In an SEV-ES/SNP guest each
   * store is a #VC (NPF on an MMIO GPA) that its #VC handler must emulate.
   * (ours) The decompressor's boot GHCB is this kernel's GHCB page, mapped
   * shared above; the protocol version is the one negotiated.
   */
  decompressorConsole(): BootResult {
    const { lines, cols } = this.screenInfo;
    if (lines === 0 || cols === 0) return { ok: true };
    const m = this.profile.mechanisms.sevEsDecompressorMmio;
    if (m === 'skip-video') {
      this.step('decompressor: early_sev_detect: SEV-ES active, lines = cols = 0: no video memory access');
      return { ok: true };
    }
    this.step(`decompressor: screen_info has a ${cols}x${lines} text console: printing to VGA memory at GPA ${hex(VGA_TEXT_BASE)}`, { lines, cols });
    for (let i = 0; i < DECOMPRESSOR_BANNER.length; i++) {
      const gpa = VGA_TEXT_BASE + i * 2;
      const ch = new Uint8Array([DECOMPRESSOR_BANNER.charCodeAt(i)]);
      const w = this.bsp.write(gpa, ch, { encrypted: false });
      if (w.ok) continue;
      if (w.fault !== 'vc') return { ok: false, reason: `decompressor console store at GPA ${hex(gpa)} failed: ${w.detail}` };
      const h = this.decompressorVc(w.exitCode, gpa, ch);
      if (!h.ok) return h;
    }
    this.step(`decompressor: printed "${DECOMPRESSOR_BANNER.trimEnd()}" through ${DECOMPRESSOR_BANNER.length} MMIO stores`, { stores: DECOMPRESSOR_BANNER.length });
    return { ok: true };
  }

  /**
   * The decompressor's #VC handler for a store it faulted on: with the RFC's
   * MMIO support an NPF becomes an MMIO write NAE event (GPA in
   * SW_EXITINFO1, length in SW_EXITINFO2, the data in the GHCB shared
   * buffer at SW_SCRATCH); without it the exit is not one the handler
   * knows, and it asks to be terminated (set 0, code 0).
   */
  decompressorVc(exitCode: number, gpa: number, data: Uint8Array): BootResult {
    if (exitCode !== VC_EXIT_NPF || this.profile.mechanisms.sevEsDecompressorMmio !== 'vc-mmio') {
      this.step(`decompressor #VC exit code ${hex(exitCode)} at GPA ${hex(gpa)}: the boot/compressed #VC handler cannot emulate MMIO`, { exitCode, gpa });
      return this.terminate(SEV_TERM_SET_GEN, GHCB_SEV_ES_GEN_REQ, 'unhandled #VC in the decompressor');
    }
    const r = ghcbCall(this.bsp, this.ghcb, {
      exitCode: SVM_VMGEXIT_MMIO_WRITE, info1: BigInt(gpa), info2: BigInt(data.length), scratch: BigInt(this.ghcb + GHCB_OFF_SHARED_BUFFER),
      sharedBuffer: data, protocolVersion: this.ghcbVersion,
    });
    if (!r.ok || r.info1 !== 0n) {
      this.step(`decompressor: MMIO write to GPA ${hex(gpa)} failed${r.ok ? `: SW_EXITINFO2 ${hex(r.info2)}` : `: ${r.detail}`}`, { gpa });
      return this.terminate(SEV_TERM_SET_GEN, GHCB_SEV_ES_GEN_REQ, 'MMIO emulation failed in the decompressor');
    }
    return { ok: true };
  }

  /** The first kernel's text: stand-in bytes, private, part of what the dump must get right. */
  loadImage(): void {
    for (let i = 0; i < KERNEL_TEXT_PAGES; i++) this.bsp.write(KERNEL_TEXT + i * PAGE, seededPage(this.seed ^ 0x7e47, i), { encrypted: true });
  }

  /** The real-mode trampoline; its SEV-ES/SNP entry brings an AP online in this kernel. */
  placeTrampoline(): void {
    const bytes = seededPage(this.seed ^ { first: 0x7a3b, kexec: 0x7b3c, crash: 0x7c4d }[this.role], 0).subarray(0, 0x100);
    this.bsp.write(this.trampoline, bytes, { encrypted: true });
    const entry = this.trampoline + SEV_ES_TRAMPOLINE_IP;
    this.vm.code.place(entry, `${this.title} trampoline (sev_es_trampoline_start)`,
      bytes.subarray(SEV_ES_TRAMPOLINE_IP), (v) => this.apCallIn(v));
  }

  /** An AP reached this kernel's 64-bit code: it calls in and goes idle. */
  apCallIn(v: Vcpu): void {
    this.online.add(v.index);
    this.step(`CPU ${v.index} called in (${this.title} trampoline at GPA ${hex(this.trampoline)})`, { vcpu: v.index });
  }

  /**
   * SEV-ES: ask the hypervisor where the AP jump table is, write this
   * kernel's reset vector there, and (RFC) install the parking blob unless
   * the run-time opt-out applies.
   */
  setupJumpTable(): BootResult {
    const r = ghcbCall(this.bsp, this.ghcb, { exitCode: SVM_VMGEXIT_AP_JUMP_TABLE, info1: BigInt(AP_JUMP_TABLE_GET), info2: 0n, protocolVersion: this.ghcbVersion });
    if (!r.ok || r.info1 !== 0n || r.info2 % BigInt(PAGE) !== 0n) {
      this.printk('Failed to get/update SEV-ES AP Jump Table');
      return { ok: false, reason: `AP jump table GET failed${r.ok ? `: ${hex(r.info2)}` : `: ${r.detail}`}` };
    }
    this.jumpTable = Number(r.info2);
    if (this.jumpTable === 0) {
      this.step('no AP jump table: a UP guest');
      return { ok: true };
    }
    const vec = resetVectorOf(this.trampoline);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint16(0, vec.ip, true);
    new DataView(b.buffer).setUint16(2, vec.cs, true);
    const w = this.bsp.write(this.jumpTable, b, { encrypted: true });
    if (!w.ok) return { ok: false, reason: `AP jump table write failed: ${w.detail}` };
    this.step(`AP jump table at GPA ${hex(this.jumpTable)}: reset vector ${hex(vec.cs)}:${hex(vec.ip)}`, { table: this.jumpTable, ip: vec.ip, cs: vec.cs });
    if (this.profile.mechanisms.sevEsGuestKexec === 'ap-jump-table') this.setupParkingBlob(vec);
    return { ok: true };
  }

  setupParkingBlob(vec: { ip: number; cs: number }): void {
    if (this.ghcbVersion < 2) {
      this.printk('SEV: AP jump table parking requires at least GHCB protocol version 2');
      this.step(`AP jump table parking not enabled: GHCB protocol version ${this.ghcbVersion}`, { version: this.ghcbVersion });
      return;
    }
    if (this.jumpTable + PAGE > 2 ** 32) {
      this.printk('SEV: AP jump table is above 4GB or address overflow - not enabling AP jump table parking');
      this.step(`AP jump table parking not enabled: table at GPA ${hex(this.jumpTable)} is above 4 GiB`, { table: this.jumpTable });
      return;
    }
    const blob = apJumpTableBlob(this.jumpTable, vec);
    const w = this.bsp.write(this.jumpTable, blob, { encrypted: true });
    if (!w.ok) return;
    placeApJumpTableBlob(this.vm, this.jumpTable, blob);
    this.blobInstalled = true;
    this.printk('SEV: AP jump table Blob successfully set up');
    this.step(`AP jump table blob installed at GPA ${hex(this.jumpTable)}`, { table: this.jumpTable });
  }

  // APs --------------------------------------------------------------------------

  bringUpAps(): void {
    for (const ap of this.vm.vcpus.slice(1)) {
      if (this.isSnp) this.snpCreateAp(ap);
      else this.wakeWithInitSipi(ap);
      if (!this.waitForCallIn(ap)) {
        this.step(`CPU ${ap.index} never came up: no call-in within ${AP_BOOT_TIMEOUT_NS / 1e9} s (vCPU ${ap.runState})`, { vcpu: ap.index, state: ap.runState });
      }
    }
  }

  /** INIT, SIPI with the trampoline's vector, and a second SIPI if the AP has not called in yet. */
  wakeWithInitSipi(ap: Vcpu): void {
    const vector = this.trampoline >> 12;
    this.bsp.sendIpi(ap.apicId, 'init');
    this.vm.machine.clock.advance(10_000);
    this.bsp.sendIpi(ap.apicId, 'sipi', vector);
    this.vm.machine.clock.advance(200_000);
    if (!this.online.has(ap.index)) this.bsp.sendIpi(ap.apicId, 'sipi', vector);
  }

  /** SNP: a fresh VMSA for the AP starting at the trampoline, marked VMSA with RMPADJUST, then AP CREATE. */
  snpCreateAp(ap: Vcpu): void {
    const f = msrCall(this.bsp, hvFeaturesRequest());
    if (!f.ok || (ghcbMsrData(f.response) & GHCB_HV_FT_SNP_AP_CREATION) === 0n) {
      this.step(`CPU ${ap.index}: the hypervisor offers no SNP AP creation (-EOPNOTSUPP)`, { vcpu: ap.index });
      return;
    }
    const base = this.isFull ? FIRST_VMSAS : this.crashBase + CRASH_VMSAS_OFF;
    const vmsa = base + ap.index * 2 * PAGE + PAGE;
    const sevFeatures = this.bsp.cpu.rdmsr(MSR_AMD64_SEV) >> 2n;
    const w = this.bsp.write(vmsa, encodeVmsa(startVmsaState(this.trampoline + SEV_ES_TRAMPOLINE_IP, sevFeatures)), { encrypted: true });
    if (!w.ok) return;
    const adj = this.bsp.rmpadjustVmsa(vmsa, true);
    if (!adj.ok) {
      this.printk(`set VMSA page failed (${adj.fault === 'rmp-fail' ? adj.rc : 0})`);
      return;
    }
    const r = ghcbCall(this.bsp, this.ghcb, {
      exitCode: SVM_VMGEXIT_AP_CREATION, info1: apCreationInfo1(ap.apicId, 0, SVM_VMGEXIT_AP_CREATE), info2: BigInt(vmsa), rax: sevFeatures,
      protocolVersion: this.ghcbVersion,
    });
    if (!r.ok || r.info1 !== 0n) {
      this.printk('SNP AP CREATE error');
      return;
    }
    this.apVmsas.set(ap.index, vmsa);
    this.step(`CPU ${ap.index}: AP CREATE with a new VMSA at GPA ${hex(vmsa)}`, { vcpu: ap.index, vmsa });
  }

  /** smpboot's wait: polls for the AP's call-in, up to the timeout. */
  waitForCallIn(ap: Vcpu): boolean {
    const clock = this.vm.machine.clock;
    let waited = 0;
    let stepNs = 1_000;
    while (!this.online.has(ap.index) && waited < AP_BOOT_TIMEOUT_NS) {
      clock.advance(stepNs);
      waited += stepNs;
      stepNs = Math.min(stepNs * 2, 100_000_000);
    }
    return this.online.has(ap.index);
  }

  // Workload, kexec load, panic ----------------------------------------------------

  /** Fills `pages` private pages with seeded bytes; returns them as the ground truth. */
  runWorkload(pages: number): Map<number, Uint8Array> {
    const truth = new Map<number, Uint8Array>();
    for (let i = 0; i < KERNEL_TEXT_PAGES; i++) truth.set(KERNEL_TEXT + i * PAGE, seededPage(this.seed ^ 0x7e47, i));
    for (let i = 0; i < pages; i++) {
      const gpa = WORKLOAD + i * PAGE;
      const b = seededPage(this.seed, i);
      this.bsp.write(gpa, b, { encrypted: true });
      truth.set(gpa, b);
    }
    this.step(`workload filled ${pages} private pages at GPA ${hex(WORKLOAD)}`, { pages });
    return truth;
  }

  /**
   * kexec_file_load of a capture kernel (`kind` 'crash', into the
   * reservation) or of the next kernel for `kexec -e` ('reboot', staged in
   * free memory): machine_kexec_prepare() first asks whether kexec can work
   * here, for either kind, then the segments are written with the C-bit set
   * (a guest's kexec pages are encrypted).
   */
  kexecLoad(image: Uint8Array, onEntry: (v: Vcpu) => void, kind: KexecKind = 'crash'): KexecLoadResult {
    const m = this.profile.mechanisms;
    const cmd = kind === 'crash' ? 'kexec -p' : 'kexec -l';
    if (!this.isSnp && this.vm.vcpus.length > 1) {
      if (m.sevEsGuestKexec === 'refuse') {
        this.step(`kexec_file_load (${cmd}): machine_kexec_prepare() returns -ENOSYS: guest state is encrypted (CC_ATTR_GUEST_STATE_ENCRYPT)`);
        return { ok: false, errno: 'ENOSYS', reason: 'SEV-ES guest: kexec disabled' };
      }
      if (m.sevEsGuestKexec === 'ap-jump-table' && !this.blobInstalled) {
        this.step(`kexec_file_load (${cmd}): sev_kexec_supported() is false (no AP jump table blob): -ENOSYS`);
        return { ok: false, errno: 'ENOSYS', reason: 'SEV-ES guest: APs cannot be parked' };
      }
    }
    const entry = kind === 'crash' ? this.crashBase + CRASH_IMAGE_OFF : KEXEC_IMAGE;
    const w = this.bsp.write(entry, image, { encrypted: true });
    if (!w.ok) return { ok: false, errno: 'ENOSYS', reason: w.detail };
    this.vm.code.place(entry, kind === 'crash' ? 'crash kernel entry' : 'kexec\'d kernel entry', image, onEntry);
    if (kind === 'crash') this.crashEntry = entry;
    else this.rebootEntry = entry;
    this.step(`kexec_file_load: ${kind === 'crash' ? 'crash kernel' : 'kernel for kexec -e'} loaded at GPA ${hex(entry)} (C-bit set)`, { entry, kind });
    return { ok: true, entry };
  }

  /**
   * `kexec -e`: kernel_kexec() -> machine_shutdown() -> machine_kexec().
   * native_machine_shutdown() runs enc_kexec_begin while every CPU still
   * runs, stops the other CPUs (each runs stop_this_cpu(), which under the
   * RFC parks an SEV-ES AP on the AP jump table exactly as on panic), runs
   * enc_kexec_finish, and relocate_kernel jumps to the new kernel.
   */
  kexecReboot(hooks: { begin: (k: GuestKernel) => BootResult; finish: (k: GuestKernel) => BootResult }): BootResult {
    if (this.rebootEntry === undefined) return { ok: false, reason: 'kexec -e: no kernel loaded' };
    this.step(`kexec -e on vCPU ${this.bsp.index}: machine_shutdown`);
    this.printk('kexec_core: Starting new kernel');
    const b = hooks.begin(this);
    if (!b.ok) return b;
    for (const i of [...this.online].filter((x) => x !== this.bsp.index)) {
      const ap = this.vm.vcpus[i]!;
      this.step(`stop_other_cpus: REBOOT_VECTOR IPI to CPU ${i}`, { vcpu: i });
      if (ap.runState === 'running') this.stopThisCpu(ap);
      this.online.delete(i);
    }
    const f = hooks.finish(this);
    if (!f.ok) return f;
    this.step(`machine_kexec: relocate_kernel jumps to the new kernel at GPA ${hex(this.rebootEntry)}`, { entry: this.rebootEntry });
    this.bsp.jump(this.rebootEntry, 'relocate_kernel: jump to the new kernel');
    return { ok: true };
  }

  /**
   * panic() on the BSP: stop the other CPUs, run the guest's kexec hooks,
   * and jump to the capture kernel. `hooks` runs the SNP enc_kexec callbacks.
   */
  panic(hooks: (k: GuestKernel) => BootResult): void {
    this.step(`panic on vCPU ${this.bsp.index}: crash_kexec`);
    for (const i of [...this.online].filter((x) => x !== this.bsp.index)) {
      const ap = this.vm.vcpus[i]!;
      this.vm.trace.record(this.bsp.source, 'nmi', `NMI shoot-down to CPU ${i}`, { vcpu: i });
      if (ap.runState === 'running') this.stopThisCpu(ap);
      this.online.delete(i);
    }
    const h = hooks(this);
    if (!h.ok) return;
    if (this.crashEntry === undefined) return;
    this.step(`jumping to the crash kernel at GPA ${hex(this.crashEntry)}`);
    this.bsp.jump(this.crashEntry, 'purgatory: jump to the crash kernel');
  }

  /** stop_this_cpu(): the RFC parks an SEV-ES AP on the jump table; otherwise the AP halts where it is. */
  stopThisCpu(ap: Vcpu): void {
    if (!this.isSnp && this.blobInstalled) {
      this.step(`CPU ${ap.index}: sev_es_stop_this_cpu: far jump to CS16:0x10 on the AP jump table page`, { vcpu: ap.index });
      ap.jump(this.jumpTable + 0x10, 'sev_ap_park_asm: far jump to CS16:0x10');
      return;
    }
    this.step(`CPU ${ap.index}: stop_this_cpu: HLT loop in the old kernel`, { vcpu: ap.index });
    ap.hlt();
  }

  // The capture side ---------------------------------------------------------------

  /**
   * /proc/vmcore read by the capture kernel: every old page below the
   * reservation through a C=1 mapping (one flag for all of old memory, as
   * §4.3 says). A #VC the kernel cannot handle ends the VM.
   */
  readOldMemory(top: number, sink: PageSink): DumpOutcome {
    const buf = new Uint8Array(PAGE);
    let pages = 0;
    for (let gpa = 0; gpa < top; gpa += PAGE) {
      // MMIO ranges (the VGA hole) are not RAM in the old kernel's memory map: no PT_LOAD covers them.
      if (this.vm.mmio.find(gpa, PAGE) !== undefined) continue;
      const r = this.bsp.read(gpa, buf, { encrypted: true });
      if (!r.ok) {
        if (r.fault === 'vc') {
          this.step(`#VC exit code ${hex(r.exitCode)} reading old memory at GPA ${hex(r.gpa)}: not a #VC the handler can emulate; the guest asks to be terminated`,
            { gpa: r.gpa, exitCode: r.exitCode });
          this.terminate(SEV_TERM_SET_GEN, GHCB_SEV_ES_GEN_REQ, 'unhandled #VC');
          return { state: 'terminated', detail: r.detail };
        }
        this.step(`reading old memory at GPA ${hex(gpa)} failed: ${r.detail}`, { gpa });
        return { state: 'stopped', detail: r.detail };
      }
      sink(gpa, buf.slice());
      pages++;
    }
    this.step(`/proc/vmcore read: ${pages} old pages through the guest key`, { pages });
    return { state: 'saved', pages };
  }
}

/** Deterministic page contents for seed and index. */
export function seededPage(seed: number, index: number): Uint8Array {
  const out = new Uint8Array(PAGE);
  for (let off = 0, n = 0; off < PAGE; n++) {
    const h = createHash('sha256').update(`${seed}:${index}:${n}`).digest();
    out.set(h.subarray(0, Math.min(32, PAGE - off)), off);
    off += 32;
  }
  return out;
}
