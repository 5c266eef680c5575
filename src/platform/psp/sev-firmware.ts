// The SEV/SNP firmware running on the AMD Secure Processor (PSP). It takes a
// command id and the physical address of a command buffer from its mailbox,
// reads the buffer from DRAM (plaintext), works for a while in virtual time,
// then writes any output and hands back a return code. Its platform state
// (legacy SEV state, SNP initialized, guest contexts, ASIDs) lives here and
// survives kexec: only reset() (a platform reset) clears it.
//
// Rules follow ref/amd-snp-host-and-iommu.md §2.5-2.9. Where the reference is
// silent the choice is ours and is marked "(our choice)" below.

import type { VirtualClock } from '../clock.js';
import { NS_PER_MS, NS_PER_US } from '../clock.js';
import type { MemoryController, Requester } from '../memory-controller.js';
import type { Trace } from '../trace.js';
import {
  HV_FIXED_LIST_ENTRY, HV_FIXED_LIST_HEADER, HV_FIXED_LIST_MAX,
  SEV_CMD_DF_FLUSH, SEV_CMD_INIT, SEV_CMD_PLATFORM_STATUS, SEV_CMD_SHUTDOWN,
  SEV_CMD_SNP_ACTIVATE, SEV_CMD_SNP_DECOMMISSION, SEV_CMD_SNP_DF_FLUSH, SEV_CMD_SNP_GCTX_CREATE,
  SEV_CMD_SNP_INIT, SEV_CMD_SNP_INIT_EX, SEV_CMD_SNP_PLATFORM_STATUS, SEV_CMD_SNP_SHUTDOWN,
  SEV_CMD_SNP_SHUTDOWN_EX, SEV_DATA_INIT_SIZE,
  SEV_RET_ASID_OWNED, SEV_RET_DFFLUSH_REQUIRED, SEV_RET_INVALID_ADDRESS, SEV_RET_INVALID_ASID,
  SEV_RET_INVALID_COMMAND, SEV_RET_INVALID_CONFIG, SEV_RET_INVALID_GUEST, SEV_RET_INVALID_GUEST_STATE,
  SEV_RET_INVALID_LEN, SEV_RET_INVALID_PAGE_STATE, SEV_RET_INVALID_PARAM, SEV_RET_INVALID_PLATFORM_STATE,
  SEV_RET_RMP_INIT_REQUIRED, SEV_RET_SUCCESS, SEV_RET_WBINVD_REQUIRED,
  SEV_STATE_INIT, SEV_STATE_UNINIT, SEV_USER_DATA_STATUS_SIZE,
  SNP_ACTIVATE_SIZE, SNP_ADDR_SIZE, SEV_CMD_SNP_LAUNCH_UPDATE, SEV_CMD_SNP_LAUNCH_FINISH, SNP_LAUNCH_UPDATE_SIZE, SEV_CMD_SNP_PAGE_RECLAIM,
  SNP_LAUNCH_FINISH_SIZE, SNP_PAGE_TYPE_VMSA, SEV_RET_INVALID_PAGE_SIZE, SNP_INIT_EX_INIT_RMP, SNP_INIT_EX_LIST_PADDR_EN, SNP_INIT_EX_SIZE,
  SNP_SHUTDOWN_EX_IOMMU_SNP_SHUTDOWN, SNP_SHUTDOWN_EX_SIZE, SNP_STATUS_SIZE,
  sevCommandName, sevReturnName,
} from './sev-codes.js';

const PAGE = 4096;

/**
 * The firmware's view of RMP entries. The machine wires it to the real RMP
 * (bytes in DRAM); tests use a map. All calls are per 4 KiB page.
 */
export interface RmpWriter {
  /** Makes the page an assigned, immutable, firmware-owned 4 KiB entry. */
  markFirmwareOwned(pfn: number): void;
  /** Reclaim: makes the page a hypervisor-owned (unassigned, mutable) entry again. */
  markHypervisorOwned(pfn: number): void;
  /** Marks `count` pages from `pfn` HV-fixed (SNP_INIT_EX list_paddr ranges). */
  markHypervisorFixed(pfn: number, count: number): void;
  isAssigned(pfn: number): boolean;
  /** The page is a 4 KiB guest page assigned to `asid` and not yet validated. */
  isGuestPageOf(pfn: number, asid: number): boolean;
  /** Launch: the firmware validates the page for its guest, and marks it a VMSA when it holds a vCPU's state. */
  markValidated(pfn: number, vmsa: boolean): void;
  /** The ASID an assigned page belongs to (0: the firmware's), undefined when not assigned. */
  ownerAsid(pfn: number): number | undefined;
}

/** What the firmware asks of the platform around it; the machine implements it. */
export interface SnpPlatform {
  /** SYSCFG.SNP_EN is set on every CPU. */
  snpEnabledOnAllCpus(): boolean;
  /** Every CPU executed WBINVD at or after virtual time `t` (ns). */
  wbinvdDoneOnAllCpusSince(t: number): boolean;
  /**
   * PFNs of the IOMMU buffers (device table, command buffer, event log, PPR
   * log, completion-wait page) that SNP_INIT protects, as the firmware finds
   * them from the IOMMUs' base registers. Empty when there is no IOMMU model.
   */
  iommuPages(): readonly number[];
  /** SNP_INIT succeeded: the IOMMUs start enforcing SNP (base registers locked, completion stores confined). */
  iommuSnpEnforce(): void;
  /** SNP_SHUTDOWN_EX with iommu_snp_shutdown succeeded: the IOMMUs drop SNP enforcement. */
  iommuSnpShutdown(): void;
}

export interface SevFirmwareConfig {
  /** SEV API version, e.g. { major: 1, minor: 55 }. SNP needs >= 1.51. */
  readonly version: { readonly major: number; readonly minor: number };
  readonly build?: number;
  /** The firmware's private pages, made firmware-owned at SNP_INIT. */
  readonly privatePages: { readonly basePfn: number; readonly count: number };
  /** Highest SNP ASID the part supports (SNP_INIT_EX max_snp_asid may lower it). */
  readonly maxSnpAsid?: number;
}

export interface SevFirmwareDeps {
  readonly clock: VirtualClock;
  readonly mc: MemoryController;
  readonly rmp: RmpWriter;
  readonly platform: SnpPlatform;
  readonly trace: Trace;
}

/** A live SNP guest context. */
export interface GuestContext {
  readonly gctxPaddr: number;
  /** Bound by SNP_ACTIVATE; undefined until then. */
  asid: number | undefined;
  /** SNP_LAUNCH_FINISH done: the guest runs, and no more pages can be launched into it. */
  launched: boolean;
}

/**
 * Virtual time each command takes (stand-ins: the real times are not public;
 * SNP_INIT walks the RMP and is the slowest).
 */
export const SEV_COMMAND_DELAY_NS: Readonly<Record<number, number>> = {
  [SEV_CMD_INIT]: 1 * NS_PER_MS,
  [SEV_CMD_SHUTDOWN]: 500 * NS_PER_US,
  [SEV_CMD_PLATFORM_STATUS]: 50 * NS_PER_US,
  [SEV_CMD_DF_FLUSH]: 200 * NS_PER_US,
  [SEV_CMD_SNP_INIT]: 20 * NS_PER_MS,
  [SEV_CMD_SNP_INIT_EX]: 20 * NS_PER_MS,
  [SEV_CMD_SNP_SHUTDOWN]: 2 * NS_PER_MS,
  [SEV_CMD_SNP_SHUTDOWN_EX]: 2 * NS_PER_MS,
  [SEV_CMD_SNP_PLATFORM_STATUS]: 50 * NS_PER_US,
  [SEV_CMD_SNP_DF_FLUSH]: 200 * NS_PER_US,
  [SEV_CMD_SNP_DECOMMISSION]: 100 * NS_PER_US,
  [SEV_CMD_SNP_GCTX_CREATE]: 100 * NS_PER_US,
  [SEV_CMD_SNP_ACTIVATE]: 50 * NS_PER_US,
  [SEV_CMD_SNP_LAUNCH_UPDATE]: 20 * NS_PER_US,
  [SEV_CMD_SNP_LAUNCH_FINISH]: 100 * NS_PER_US,
  [SEV_CMD_SNP_PAGE_RECLAIM]: 20 * NS_PER_US,
};
const UNKNOWN_COMMAND_DELAY_NS = 10 * NS_PER_US;

/** Bytes of command buffer the firmware reads when a command starts. */
const BUFFER_IN_BYTES: Readonly<Record<number, number>> = {
  [SEV_CMD_INIT]: SEV_DATA_INIT_SIZE,
  [SEV_CMD_SNP_INIT_EX]: SNP_INIT_EX_SIZE,
  [SEV_CMD_SNP_SHUTDOWN_EX]: SNP_SHUTDOWN_EX_SIZE,
  [SEV_CMD_SNP_PLATFORM_STATUS]: SNP_ADDR_SIZE,
  [SEV_CMD_SNP_DECOMMISSION]: SNP_ADDR_SIZE,
  [SEV_CMD_SNP_GCTX_CREATE]: SNP_ADDR_SIZE,
  [SEV_CMD_SNP_ACTIVATE]: SNP_ACTIVATE_SIZE,
  [SEV_CMD_SNP_LAUNCH_UPDATE]: SNP_LAUNCH_UPDATE_SIZE,
  [SEV_CMD_SNP_LAUNCH_FINISH]: SNP_LAUNCH_FINISH_SIZE,
  [SEV_CMD_SNP_PAGE_RECLAIM]: SNP_ADDR_SIZE,
};

const SNP_COMMANDS = new Set([
  SEV_CMD_SNP_INIT, SEV_CMD_SNP_SHUTDOWN, SEV_CMD_SNP_PLATFORM_STATUS, SEV_CMD_SNP_DF_FLUSH,
  SEV_CMD_SNP_INIT_EX, SEV_CMD_SNP_SHUTDOWN_EX, SEV_CMD_SNP_DECOMMISSION, SEV_CMD_SNP_ACTIVATE,
  SEV_CMD_SNP_GCTX_CREATE, SEV_CMD_SNP_LAUNCH_UPDATE, SEV_CMD_SNP_LAUNCH_FINISH, SEV_CMD_SNP_PAGE_RECLAIM,
]);

const PSP: Requester = { kind: 'device', name: 'psp' };
const DEFAULT_MAX_SNP_ASID = 509;

function u64(dv: DataView, off: number): number {
  return dv.getUint32(off, true) + dv.getUint32(off + 4, true) * 2 ** 32;
}

export class SevFirmware {
  readonly config: SevFirmwareConfig;
  readonly #deps: SevFirmwareDeps;

  // Platform state (survives kexec; reset() is a platform reset).
  /** Legacy SEV state: SEV_STATE_UNINIT / SEV_STATE_INIT. */
  legacyState = SEV_STATE_UNINIT;
  snpInitialized = false;
  /** The RMP has been initialized by SNP_INIT[_EX] (init_rmp) since the last platform reset. */
  rmpInitialized = false;
  /** Effective max SNP ASID, set by SNP_INIT_EX. */
  maxSnpAsid: number;
  readonly guests = new Map<number, GuestContext>();
  /** ASIDs freed by DECOMMISSION that cannot be bound again until SNP_DF_FLUSH. */
  readonly asidsAwaitingFlush = new Set<number>();
  /** IOMMU pages made firmware-owned at SNP_INIT and not reclaimed since. */
  readonly iommuPagesOwned = new Set<number>();
  /** HV-fixed ranges from the last SNP_INIT_EX list. */
  hvFixedRanges: { basePfn: number; count: number }[] = [];
  /** Virtual time of the last guest-related command (ACTIVATE, DECOMMISSION): WBINVD must follow it before DF_FLUSH. */
  lastGuestActivityNs = 0;

  busy = false;
  commandsExecuted = 0;
  readonly #injected = new Map<number, number>();

  constructor(config: SevFirmwareConfig, deps: SevFirmwareDeps) {
    if (!(config.privatePages.count >= 1)) {
      throw new RangeError(`Cannot build SEV firmware: privatePages.count ${config.privatePages.count} must be at least 1`);
    }
    this.config = config;
    this.#deps = deps;
    this.maxSnpAsid = config.maxSnpAsid ?? DEFAULT_MAX_SNP_ASID;
  }

  /** Firmware supports SEV API `major.minor` or later. */
  versionAtLeast(major: number, minor: number): boolean {
    const v = this.config.version;
    return v.major > major || (v.major === major && v.minor >= minor);
  }

  /** Platform reset: power-on firmware state. kexec never calls this. */
  reset(): void {
    this.legacyState = SEV_STATE_UNINIT;
    this.snpInitialized = false;
    this.rmpInitialized = false;
    this.maxSnpAsid = this.config.maxSnpAsid ?? DEFAULT_MAX_SNP_ASID;
    this.guests.clear();
    this.asidsAwaitingFlush.clear();
    this.iommuPagesOwned.clear();
    this.hvFixedRanges = [];
    this.lastGuestActivityNs = 0;
    this.busy = false;
    this.#injected.clear();
  }

  /** Fault injection: the next command `cmd` fails with `status` and changes nothing. */
  failNext(cmd: number, status: number): void {
    if (!(Number.isInteger(status) && status > 0 && status <= 0xffff)) {
      throw new RangeError(`Cannot inject PSP failure for ${sevCommandName(cmd)}: status ${status} is not a 16-bit error code`);
    }
    this.#injected.set(cmd, status);
  }

  /**
   * Starts command `cmd` with its buffer at `bufferPa`: reads the buffer now,
   * and after the command's virtual delay executes it, writes any output and
   * calls `done(status)`. Returns the delay in ns.
   */
  submit(cmd: number, bufferPa: number, done: (status: number) => void): number {
    if (this.busy) throw new Error(`Cannot submit PSP command ${sevCommandName(cmd)}: a command is in flight`);
    this.busy = true;
    const inLen = BUFFER_IN_BYTES[cmd] ?? 0;
    const input = new Uint8Array(inLen);
    if (inLen > 0) this.#deps.mc.read(bufferPa, input);
    const delay = SEV_COMMAND_DELAY_NS[cmd] ?? UNKNOWN_COMMAND_DELAY_NS;
    this.#deps.trace.record('psp', 'psp-command-start', `${sevCommandName(cmd)} buffer 0x${bufferPa.toString(16)}`, {
      cmd, buffer: bufferPa,
    });
    this.#deps.clock.schedule(delay, `psp ${sevCommandName(cmd)}`, () => {
      const status = this.#complete(cmd, bufferPa, input);
      this.busy = false;
      done(status);
    });
    return delay;
  }

  #complete(cmd: number, bufferPa: number, input: Uint8Array): number {
    this.commandsExecuted++;
    const injected = this.#injected.get(cmd);
    let status: number;
    if (injected !== undefined) {
      this.#injected.delete(cmd);
      status = injected;
    } else {
      status = this.#execute(cmd, bufferPa, new DataView(input.buffer, input.byteOffset, input.byteLength));
    }
    const name = sevCommandName(cmd);
    const data: Record<string, number | boolean> = { cmd, status };
    if (injected !== undefined) data['injected'] = true;
    this.#deps.trace.record('psp', 'psp-command',
      `${name} -> ${sevReturnName(status)} (0x${status.toString(16)})${injected !== undefined ? ' [injected]' : ''}`, data);
    return status;
  }

  #execute(cmd: number, bufferPa: number, buf: DataView): number {
    // (our choice) Firmware older than SNP_MIN_API 1.51 does not implement the
    // SNP commands, so it answers them as unknown ids: INVALID_COMMAND.
    if (SNP_COMMANDS.has(cmd) && !this.versionAtLeast(1, 51)) return SEV_RET_INVALID_COMMAND;
    switch (cmd) {
      case SEV_CMD_INIT: return this.#init();
      case SEV_CMD_SHUTDOWN: return this.#shutdown();
      case SEV_CMD_PLATFORM_STATUS: return this.#platformStatus(bufferPa);
      case SEV_CMD_DF_FLUSH: return this.#dfFlush(false);
      case SEV_CMD_SNP_INIT: return this.#snpInit(SNP_INIT_EX_INIT_RMP, 0, 0);
      case SEV_CMD_SNP_INIT_EX: return this.#snpInit(buf.getUint32(0, true), u64(buf, 8), buf.getUint16(16, true));
      case SEV_CMD_SNP_SHUTDOWN: return this.#snpShutdown(0);
      case SEV_CMD_SNP_SHUTDOWN_EX: {
        if (buf.getUint32(0, true) !== SNP_SHUTDOWN_EX_SIZE) return SEV_RET_INVALID_LEN;
        return this.#snpShutdown(buf.getUint32(4, true));
      }
      case SEV_CMD_SNP_PLATFORM_STATUS: return this.#snpPlatformStatus(u64(buf, 0));
      case SEV_CMD_SNP_DF_FLUSH: return this.#dfFlush(true);
      case SEV_CMD_SNP_GCTX_CREATE: return this.#gctxCreate(u64(buf, 0));
      case SEV_CMD_SNP_ACTIVATE: return this.#activate(u64(buf, 0), buf.getUint32(8, true));
      case SEV_CMD_SNP_DECOMMISSION: return this.#decommission(u64(buf, 0));
      case SEV_CMD_SNP_LAUNCH_UPDATE: return this.#launchUpdate(u64(buf, 0), buf.getUint32(8, true), u64(buf, 16));
      case SEV_CMD_SNP_LAUNCH_FINISH: return this.#launchFinish(u64(buf, 0));
      case SEV_CMD_SNP_PAGE_RECLAIM: return this.#pageReclaim(u64(buf, 0));
      default: return SEV_RET_INVALID_COMMAND;
    }
  }

  // Legacy SEV INIT. Rule (§2.5) "SNP must be initialized before legacy SEV
  // INIT on SNP-capable parts": (our choice of where the firmware enforces
  // it) INIT itself succeeds, but once legacy SEV is initialized SNP_INIT[_EX]
  // refuses with INVALID_PLATFORM_STATE until SHUTDOWN.
  #init(): number {
    if (this.legacyState !== SEV_STATE_UNINIT) return SEV_RET_INVALID_PLATFORM_STATE;
    this.legacyState = SEV_STATE_INIT;
    return SEV_RET_SUCCESS;
  }

  // SHUTDOWN is accepted in any state (our choice, as for the SEV API's SHUTDOWN).
  #shutdown(): number {
    this.legacyState = SEV_STATE_UNINIT;
    return SEV_RET_SUCCESS;
  }

  #platformStatus(pa: number): number {
    const out = new Uint8Array(SEV_USER_DATA_STATUS_SIZE);
    const dv = new DataView(out.buffer);
    dv.setUint8(0, this.config.version.major);
    dv.setUint8(1, this.config.version.minor);
    dv.setUint8(2, this.legacyState);
    dv.setUint32(3, 0, true); // flags
    dv.setUint8(7, (this.config.build ?? 0) & 0xff);
    dv.setUint32(8, 0, true); // legacy guests are not modelled
    this.#deps.mc.write(pa, out, PSP);
    return SEV_RET_SUCCESS;
  }

  // SNP_INIT / SNP_INIT_EX: needs SNP_EN on every CPU, legacy SEV uninitialized,
  // and an initialized RMP (init_rmp now, or an earlier init since reset).
  #snpInit(flags: number, listPaddr: number, maxAsid: number): number {
    if (this.snpInitialized) return SEV_RET_INVALID_PLATFORM_STATE;
    if (this.legacyState !== SEV_STATE_UNINIT) return SEV_RET_INVALID_PLATFORM_STATE;
    // (our choice) SNP_EN missing on any CPU is a configuration error.
    if (!this.#deps.platform.snpEnabledOnAllCpus()) return SEV_RET_INVALID_CONFIG;
    if ((flags & SNP_INIT_EX_INIT_RMP) === 0 && !this.rmpInitialized) return SEV_RET_RMP_INIT_REQUIRED;
    let ranges: { basePfn: number; count: number }[] = [];
    if ((flags & SNP_INIT_EX_LIST_PADDR_EN) !== 0) {
      // (our choice) the HV-fixed list needs 1.52 (§2.5); older firmware rejects the flag.
      if (!this.versionAtLeast(1, 52)) return SEV_RET_INVALID_PARAM;
      const parsed = this.#readHvFixedList(listPaddr);
      if (parsed === undefined) return SEV_RET_INVALID_PARAM;
      ranges = parsed;
    }
    const rmp = this.#deps.rmp;
    const own = this.config.privatePages;
    for (let i = 0; i < own.count; i++) rmp.markFirmwareOwned(own.basePfn + i);
    for (const pfn of this.#deps.platform.iommuPages()) {
      rmp.markFirmwareOwned(pfn);
      this.iommuPagesOwned.add(pfn);
    }
    this.#deps.platform.iommuSnpEnforce();
    for (const r of ranges) rmp.markHypervisorFixed(r.basePfn, r.count);
    this.hvFixedRanges = ranges;
    this.rmpInitialized = true;
    const cap = this.config.maxSnpAsid ?? DEFAULT_MAX_SNP_ASID;
    this.maxSnpAsid = maxAsid > 0 ? Math.min(maxAsid, cap) : cap;
    this.snpInitialized = true;
    return SEV_RET_SUCCESS;
  }

  #readHvFixedList(pa: number): { basePfn: number; count: number }[] | undefined {
    if (pa % 8 !== 0) return undefined;
    const head = new Uint8Array(HV_FIXED_LIST_HEADER);
    this.#deps.mc.read(pa, head);
    const n = new DataView(head.buffer).getUint32(0, true);
    if (HV_FIXED_LIST_HEADER + n * HV_FIXED_LIST_ENTRY > HV_FIXED_LIST_MAX) return undefined;
    const body = new Uint8Array(n * HV_FIXED_LIST_ENTRY);
    this.#deps.mc.read(pa + HV_FIXED_LIST_HEADER, body);
    const dv = new DataView(body.buffer);
    const out: { basePfn: number; count: number }[] = [];
    for (let i = 0; i < n; i++) {
      const base = u64(dv, i * HV_FIXED_LIST_ENTRY);
      if (base % PAGE !== 0) return undefined;
      out.push({ basePfn: base / PAGE, count: dv.getUint32(i * HV_FIXED_LIST_ENTRY + 8, true) });
    }
    return out;
  }

  // SNP_SHUTDOWN[_EX]. Rules followed, from §2.5 "Firmware-side rule":
  //  - "legacy SHUTDOWN must come first": legacy SEV still initialized ->
  //    INVALID_PLATFORM_STATE;
  //  - "SNP_SHUTDOWN_EX only succeeds when no SNP guest context is live
  //    (else DFFLUSH_REQUIRED)": exactly that test, live contexts counted
  //    whether or not they were activated. ASIDs awaiting DF_FLUSH after
  //    DECOMMISSION do not block it (the reference states no such rule).
  // Shutting down an uninitialized SNP platform succeeds and does nothing (our choice).
  // iommu_snp_shutdown (§2.7): the IOMMUs drop SNP enforcement; firmware
  // >= 1.53 also moves the IOMMU pages back to hypervisor state (reclaim),
  // older firmware leaves them firmware-owned.
  #snpShutdown(flags: number): number {
    if (this.legacyState !== SEV_STATE_UNINIT) return SEV_RET_INVALID_PLATFORM_STATE;
    if (!this.snpInitialized) return SEV_RET_SUCCESS;
    if (this.guests.size > 0) return SEV_RET_DFFLUSH_REQUIRED;
    this.snpInitialized = false;
    if ((flags & SNP_SHUTDOWN_EX_IOMMU_SNP_SHUTDOWN) !== 0) {
      this.#deps.trace.record('psp', 'psp-iommu-snp-shutdown', 'IOMMU SNP enforcement released', {
        reclaim: this.versionAtLeast(1, 53),
      });
      this.#deps.platform.iommuSnpShutdown();
      if (this.versionAtLeast(1, 53)) {
        for (const pfn of this.iommuPagesOwned) this.#deps.rmp.markHypervisorOwned(pfn);
        this.iommuPagesOwned.clear();
      }
    }
    return SEV_RET_SUCCESS;
  }

  #snpPlatformStatus(pa: number): number {
    if (pa % PAGE !== 0) return SEV_RET_INVALID_ADDRESS;
    const out = new Uint8Array(SNP_STATUS_SIZE);
    const dv = new DataView(out.buffer);
    dv.setUint8(0, this.config.version.major);
    dv.setUint8(1, this.config.version.minor);
    // (our choice) state 0 = uninitialized, 1 = initialized: the reference did not find the encoding.
    dv.setUint8(2, this.snpInitialized ? 1 : 0);
    dv.setUint8(3, this.rmpInitialized ? 1 : 0);
    dv.setUint32(4, this.config.build ?? 0, true);
    dv.setUint32(8, 0, true); // feature flags
    dv.setUint32(12, this.guests.size, true);
    this.#deps.mc.write(pa, out, PSP);
    return SEV_RET_SUCCESS;
  }

  // DF_FLUSH / SNP_DF_FLUSH: WBINVD_REQUIRED unless every CPU executed WBINVD
  // since the last guest activity (§2.9: "DF_FLUSH failed with error 14").
  // Success frees the ASIDs decommissioned since the last flush.
  #dfFlush(snp: boolean): number {
    if (snp ? !this.snpInitialized : this.legacyState === SEV_STATE_UNINIT) return SEV_RET_INVALID_PLATFORM_STATE;
    if (!this.#deps.platform.wbinvdDoneOnAllCpusSince(this.lastGuestActivityNs)) return SEV_RET_WBINVD_REQUIRED;
    if (snp) this.asidsAwaitingFlush.clear();
    return SEV_RET_SUCCESS;
  }

  // SNP_GCTX_CREATE: the page must already be firmware state in the RMP (the
  // hypervisor assigned it to the firmware first) and not hold a context.
  #gctxCreate(gctx: number): number {
    if (!this.snpInitialized) return SEV_RET_INVALID_PLATFORM_STATE;
    if (gctx % PAGE !== 0) return SEV_RET_INVALID_ADDRESS;
    if (this.guests.has(gctx) || !this.#deps.rmp.isAssigned(gctx / PAGE)) return SEV_RET_INVALID_PAGE_STATE;
    const own = this.config.privatePages;
    const pfn = gctx / PAGE;
    if (pfn >= own.basePfn && pfn < own.basePfn + own.count) return SEV_RET_INVALID_PAGE_STATE;
    this.guests.set(gctx, { gctxPaddr: gctx, asid: undefined, launched: false });
    // The context page is the firmware's own now: its writes to it are not RMP-checked.
    this.#deps.mc.zero(gctx, PAGE, PSP, { guardExempt: true });
    return SEV_RET_SUCCESS;
  }

  #activate(gctx: number, asid: number): number {
    if (!this.snpInitialized) return SEV_RET_INVALID_PLATFORM_STATE;
    const g = this.guests.get(gctx);
    if (g === undefined) return SEV_RET_INVALID_GUEST;
    if (g.asid !== undefined) return SEV_RET_INVALID_GUEST_STATE;
    if (asid < 1 || asid > this.maxSnpAsid) return SEV_RET_INVALID_ASID;
    for (const other of this.guests.values()) if (other.asid === asid) return SEV_RET_ASID_OWNED;
    // A decommissioned ASID holds stale cache/data-fabric state until SNP_DF_FLUSH.
    if (this.asidsAwaitingFlush.has(asid)) return SEV_RET_DFFLUSH_REQUIRED;
    g.asid = asid;
    this.lastGuestActivityNs = this.#deps.clock.now;
    return SEV_RET_SUCCESS;
  }

  // SNP_LAUNCH_UPDATE: the page must already be assigned to the guest's ASID
  // (the hypervisor's RMPUPDATE); the firmware validates it, and a VMSA page
  // also gets the VMSA bit. Only 4 KiB pages are modelled.
  #launchUpdate(gctx: number, bits: number, address: number): number {
    if (!this.snpInitialized) return SEV_RET_INVALID_PLATFORM_STATE;
    const g = this.guests.get(gctx);
    if (g === undefined) return SEV_RET_INVALID_GUEST;
    if (g.asid === undefined || g.launched) return SEV_RET_INVALID_GUEST_STATE;
    if ((bits & 1) !== 0) return SEV_RET_INVALID_PAGE_SIZE;
    if (address % PAGE !== 0) return SEV_RET_INVALID_ADDRESS;
    const pfn = address / PAGE;
    if (!this.#deps.rmp.isGuestPageOf(pfn, g.asid)) return SEV_RET_INVALID_PAGE_STATE;
    this.#deps.rmp.markValidated(pfn, ((bits >>> 1) & 7) === SNP_PAGE_TYPE_VMSA);
    return SEV_RET_SUCCESS;
  }

  #launchFinish(gctx: number): number {
    if (!this.snpInitialized) return SEV_RET_INVALID_PLATFORM_STATE;
    const g = this.guests.get(gctx);
    if (g === undefined) return SEV_RET_INVALID_GUEST;
    if (g.asid === undefined || g.launched) return SEV_RET_INVALID_GUEST_STATE;
    g.launched = true;
    return SEV_RET_SUCCESS;
  }

  // SNP_PAGE_RECLAIM: a firmware or guest page the hypervisor wants back.
  // Refused while a live context uses it (a context page, or a page of a
  // live guest's ASID). (our choice) The reclaim state and the hypervisor's
  // RMPUPDATE that follows it are one step here: the page becomes
  // hypervisor-owned. Only 4 KiB pages (bit 0 clear) are modelled.
  #pageReclaim(addr: number): number {
    if (!this.snpInitialized) return SEV_RET_INVALID_PLATFORM_STATE;
    if (addr % 2 !== 0) return SEV_RET_INVALID_PAGE_SIZE;
    if (addr % PAGE !== 0) return SEV_RET_INVALID_ADDRESS;
    const pfn = addr / PAGE;
    const owner = this.#deps.rmp.ownerAsid(pfn);
    if (owner === undefined || this.guests.has(addr)) return SEV_RET_INVALID_PAGE_STATE;
    const own = this.config.privatePages;
    if (pfn >= own.basePfn && pfn < own.basePfn + own.count) return SEV_RET_INVALID_PAGE_STATE;
    for (const g of this.guests.values()) if (owner !== 0 && g.asid === owner) return SEV_RET_INVALID_PAGE_STATE;
    this.#deps.rmp.markHypervisorOwned(pfn);
    return SEV_RET_SUCCESS;
  }

  #decommission(gctx: number): number {
    if (!this.snpInitialized) return SEV_RET_INVALID_PLATFORM_STATE;
    const g = this.guests.get(gctx);
    if (g === undefined) return SEV_RET_INVALID_GUEST;
    this.guests.delete(gctx);
    if (g.asid !== undefined) {
      this.asidsAwaitingFlush.add(g.asid);
      this.lastGuestActivityNs = this.#deps.clock.now;
    }
    return SEV_RET_SUCCESS;
  }
}
