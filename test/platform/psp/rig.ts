// A PSP on a bare machine: clock, trace, memory, an MMIO bus, a map-backed
// RMP and a platform whose SNP_EN and WBINVD history the test controls.

import { VirtualClock, NS_PER_US, NS_PER_S } from '../../../src/platform/clock.js';
import { Trace } from '../../../src/platform/trace.js';
import { PhysicalMemory } from '../../../src/platform/physical-memory.js';
import { MemoryController } from '../../../src/platform/memory-controller.js';
import { MmioBus } from '../../../src/platform/mmio.js';
import { SevFirmware, type RmpWriter, type SnpPlatform } from '../../../src/platform/psp/sev-firmware.js';
import {
  PspMailbox, PSP_CMDRESP, PSP_CMDBUFF_ADDR_LO, PSP_CMDBUFF_ADDR_HI, PSP_MAILBOX_SIZE,
  CMDRESP_RESP, CMDRESP_IOC, CMDRESP_CMD_SHIFT, CMDRESP_STS_MASK,
} from '../../../src/platform/psp/psp-mailbox.js';

export const MMIO_BASE = 0xfe00_0000;
export const BUF_PA = 0x10_0000;
export const FW_BASE_PFN = 0x800;
export const FW_PAGES = 4;
export const IOMMU_PFNS = [0x900, 0x901, 0x902];
export const CPUS = 4;

export type RmpState = 'hv' | 'fw' | 'fixed' | 'guest';

export class MapRmp implements RmpWriter {
  readonly entries = new Map<number, RmpState>();
  markFirmwareOwned(pfn: number): void { this.entries.set(pfn, 'fw'); }
  markHypervisorOwned(pfn: number): void { this.entries.delete(pfn); }
  markHypervisorFixed(pfn: number, count: number): void {
    for (let i = 0; i < count; i++) this.entries.set(pfn + i, 'fixed');
  }
  isAssigned(pfn: number): boolean {
    const e = this.entries.get(pfn);
    return e === 'fw' || e === 'guest';
  }
  state(pfn: number): RmpState { return this.entries.get(pfn) ?? 'hv'; }
  /** Guest pages by ASID, and which were validated (VMSA or not). */
  readonly guestAsid = new Map<number, number>();
  readonly validated = new Map<number, 'page' | 'vmsa'>();
  assignToGuest(pfn: number, asid: number): void { this.entries.set(pfn, 'guest'); this.guestAsid.set(pfn, asid); }
  isGuestPageOf(pfn: number, asid: number): boolean {
    return this.entries.get(pfn) === 'guest' && this.guestAsid.get(pfn) === asid && !this.validated.has(pfn);
  }
  markValidated(pfn: number, vmsa: boolean): void { this.validated.set(pfn, vmsa ? 'vmsa' : 'page'); }
  ownerAsid(pfn: number): number | undefined {
    const e = this.entries.get(pfn);
    if (e === 'fw') return 0;
    return e === 'guest' ? this.guestAsid.get(pfn) : undefined;
  }
}

export class TestPlatform implements SnpPlatform {
  snpEn = true;
  /** Last WBINVD time per CPU; -1 never. */
  readonly wbinvdAt: number[] = Array.from({ length: CPUS }, () => -1);
  iommu: number[] = [...IOMMU_PFNS];
  iommuShutdowns = 0;
  readonly #clock: VirtualClock;
  constructor(clock: VirtualClock) { this.#clock = clock; }
  snpEnabledOnAllCpus(): boolean { return this.snpEn; }
  wbinvdDoneOnAllCpusSince(t: number): boolean { return this.wbinvdAt.every((w) => w >= t); }
  iommuPages(): readonly number[] { return this.iommu; }
  iommuSnpShutdown(): void { this.iommuShutdowns++; }
  iommuEnforcements = 0;
  iommuSnpEnforce(): void { this.iommuEnforcements++; }
  wbinvdAll(): void { this.wbinvdAt.fill(this.#clock.now); }
}

export interface Rig {
  clock: VirtualClock;
  trace: Trace;
  mc: MemoryController;
  bus: MmioBus;
  rmp: MapRmp;
  platform: TestPlatform;
  fw: SevFirmware;
  mailbox: PspMailbox;
  irqs: number;
  /** Starts `cmd` through MMIO with `buf` written at BUF_PA (or `pa`). */
  start(cmd: number, buf?: Uint8Array, opts?: { ioc?: boolean; pa?: number }): void;
  /** Polls CMDRESP every 10 µs (interrupts off) until bit 31; returns the status. */
  poll(): number;
  /** start + poll. */
  run(cmd: number, buf?: Uint8Array, opts?: { ioc?: boolean; pa?: number }): number;
}

export function rig(version = { major: 1, minor: 55 }, maxSnpAsid = 16): Rig {
  const clock = new VirtualClock();
  const trace = new Trace(clock);
  const mc = new MemoryController(new PhysicalMemory(2 ** 26));
  const bus = new MmioBus();
  const rmp = new MapRmp();
  const platform = new TestPlatform(clock);
  const fw = new SevFirmware(
    { version, build: 7, privatePages: { basePfn: FW_BASE_PFN, count: FW_PAGES }, maxSnpAsid },
    { clock, mc, rmp, platform, trace },
  );
  const r: Rig = {
    clock, trace, mc, bus, rmp, platform, fw, irqs: 0,
    mailbox: undefined as unknown as PspMailbox,
    start(cmd, buf, opts) {
      const pa = opts?.pa ?? BUF_PA;
      if (buf !== undefined) mc.write(pa, buf, { kind: 'cpu', id: 0 });
      bus.write(MMIO_BASE + PSP_CMDBUFF_ADDR_LO, BigInt(pa % 2 ** 32));
      bus.write(MMIO_BASE + PSP_CMDBUFF_ADDR_HI, BigInt(Math.floor(pa / 2 ** 32)));
      bus.write(MMIO_BASE + PSP_CMDRESP, BigInt((cmd << CMDRESP_CMD_SHIFT) | (opts?.ioc === true ? CMDRESP_IOC : 0)));
    },
    poll() {
      const deadline = clock.now + 100 * NS_PER_S;
      for (;;) {
        const v = Number(bus.read(MMIO_BASE + PSP_CMDRESP));
        if ((v & CMDRESP_RESP) !== 0) return v & CMDRESP_STS_MASK;
        if (clock.now >= deadline) throw new Error('PSP command timed out');
        clock.advance(10 * NS_PER_US);
      }
    },
    run(cmd, buf, opts) {
      r.start(cmd, buf, opts);
      return r.poll();
    },
  };
  r.mailbox = new PspMailbox({ onInterrupt: () => { r.irqs++; } }, fw, trace);
  bus.map(MMIO_BASE, PSP_MAILBOX_SIZE, r.mailbox);
  return r;
}

/** A little-endian buffer builder. */
export function bytes(size: number, fill: (dv: DataView) => void): Uint8Array {
  const b = new Uint8Array(size);
  fill(new DataView(b.buffer));
  return b;
}

export function setU64(dv: DataView, off: number, v: number): void {
  dv.setUint32(off, v % 2 ** 32, true);
  dv.setUint32(off + 4, Math.floor(v / 2 ** 32), true);
}

export function addrBuf(pa: number): Uint8Array {
  return bytes(8, (dv) => setU64(dv, 0, pa));
}

export function initExBuf(flags: number, listPaddr = 0, maxAsid = 0): Uint8Array {
  return bytes(64, (dv) => {
    dv.setUint32(0, flags, true);
    setU64(dv, 8, listPaddr);
    dv.setUint16(16, maxAsid, true);
  });
}

export function shutdownExBuf(flags: number, len = 8): Uint8Array {
  return bytes(8, (dv) => {
    dv.setUint32(0, len, true);
    dv.setUint32(4, flags, true);
  });
}

export function activateBuf(gctx: number, asid: number): Uint8Array {
  return bytes(12, (dv) => {
    setU64(dv, 0, gctx);
    dv.setUint32(8, asid, true);
  });
}
