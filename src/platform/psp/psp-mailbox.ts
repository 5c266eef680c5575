// The PSP's SEV mailbox: three 32-bit registers through which the host hands
// the SEV firmware a command id and the physical address of its buffer, and
// reads back completion and status (ref/amd-snp-host-and-iommu.md §2.1).
//
// The real register offsets differ per part (the ccp driver takes them from
// per-device vdata); the offsets below are ours, the bit layout of CMDRESP is
// the documented one. A command starts when CMDRESP is written; CMDRESP reads
// without bit 31 until the firmware finishes in virtual time, so a driver
// polling with interrupts off sees completion once time passes. IOC asks for
// an interrupt, delivered through the `onInterrupt` callback.

import type { MmioDevice } from '../mmio.js';
import type { Trace } from '../trace.js';
import type { SevFirmware } from './sev-firmware.js';
import { sevCommandName } from './sev-codes.js';

/** Register offsets (ours; the real ones are per-part). */
export const PSP_CMDRESP = 0x00;
export const PSP_CMDBUFF_ADDR_LO = 0x04;
export const PSP_CMDBUFF_ADDR_HI = 0x08;
/** Bytes of MMIO the mailbox claims. */
export const PSP_MAILBOX_SIZE = 0x10;

/** CMDRESP fields. */
export const CMDRESP_STS_MASK = 0xffff;
/** Interrupt on completion, written by the driver in bit 0 (shares the status field). */
export const CMDRESP_IOC = 1 << 0;
export const CMDRESP_CMD_SHIFT = 16;
export const CMDRESP_CMD_MASK = 0x7ff; // bits 26:16
export const CMDRESP_RESP = 0x8000_0000; // bit 31: response / done

export interface PspMailboxConfig {
  readonly name?: string;
  /** Raised at completion of a command submitted with IOC (stands in for the PSP interrupt). */
  readonly onInterrupt?: () => void;
}

export class PspMailbox implements MmioDevice {
  readonly name: string;
  readonly firmware: SevFirmware;
  /** CMDRESP as the host reads it. Power-on: bit 31 set (ready), no command. */
  cmdresp = CMDRESP_RESP;
  cmdbuffLo = 0;
  cmdbuffHi = 0;
  readonly #trace: Trace;
  readonly #onInterrupt: (() => void) | undefined;
  /** Bumped by reset() so a completion of a command from before the reset is dropped. */
  #generation = 0;

  constructor(config: PspMailboxConfig, firmware: SevFirmware, trace: Trace) {
    this.name = config.name ?? 'psp';
    this.firmware = firmware;
    this.#trace = trace;
    this.#onInterrupt = config.onInterrupt;
  }

  /** Power-on register values. kexec does not call this. */
  reset(): void {
    this.cmdresp = CMDRESP_RESP;
    this.cmdbuffLo = 0;
    this.cmdbuffHi = 0;
    this.#generation++;
  }

  /** A command is in flight (CMDRESP bit 31 clear). */
  get busy(): boolean {
    return (this.cmdresp & CMDRESP_RESP) === 0;
  }

  mmioRead(offset: number, _size: 4 | 8): bigint {
    switch (offset) {
      case PSP_CMDRESP: return BigInt(this.cmdresp >>> 0);
      case PSP_CMDBUFF_ADDR_LO: return BigInt(this.cmdbuffLo >>> 0);
      case PSP_CMDBUFF_ADDR_HI: return BigInt(this.cmdbuffHi >>> 0);
      default: return 0n;
    }
  }

  mmioWrite(offset: number, _size: 4 | 8, value: bigint): void {
    const v = Number(value & 0xffff_ffffn);
    switch (offset) {
      case PSP_CMDBUFF_ADDR_LO: this.cmdbuffLo = v; return;
      case PSP_CMDBUFF_ADDR_HI: this.cmdbuffHi = v; return;
      case PSP_CMDRESP: this.#doorbell(v); return;
      default: return;
    }
  }

  #doorbell(v: number): void {
    const cmd = (v >>> CMDRESP_CMD_SHIFT) & CMDRESP_CMD_MASK;
    if (this.busy || this.firmware.busy) {
      // The firmware is still working: the write is lost.
      this.#trace.record('psp', 'psp-busy', `CMDRESP write for ${sevCommandName(cmd)} ignored: command in flight`, { cmd });
      return;
    }
    const ioc = (v & CMDRESP_IOC) !== 0;
    const pa = this.cmdbuffLo + this.cmdbuffHi * 2 ** 32;
    this.cmdresp = (cmd << CMDRESP_CMD_SHIFT) >>> 0;
    const gen = this.#generation;
    this.firmware.submit(cmd, pa, (status) => {
      if (gen !== this.#generation) return;
      this.cmdresp = (CMDRESP_RESP | (cmd << CMDRESP_CMD_SHIFT) | (status & CMDRESP_STS_MASK)) >>> 0;
      if (ioc && this.#onInterrupt !== undefined) {
        this.#trace.record('psp', 'psp-irq', `completion interrupt for ${sevCommandName(cmd)}`, { cmd });
        this.#onInterrupt();
      }
    });
  }
}
