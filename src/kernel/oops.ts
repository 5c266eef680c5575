// A kernel-mode page fault the kernel cannot fix up: the #PF report as x86's
// show_fault_oops words it, then the oops header. Kernels that know the RMP
// bit (the SNP host ones) name the violation and, while host SNP is on, dump
// the RMP entry of the page; older ones call it a permissions violation.

import { PF_INSTR, PF_PRESENT, PF_RSVD, PF_RMP, PF_USER, PF_WRITE } from '../platform/cpu/paging.js';
import { encodeRmpEntry, readRmpEntry, rmpCovers } from '../platform/snp/rmp.js';
import type { Machine } from '../platform/machine.js';
import { hexPad } from '../util/hex.js';
import type { KernelLog } from './dmesg.js';
import type { KernelProfile } from './profile.js';
import { directMapVirt } from './layout.js';
import type { KernelWriteFault } from './phys-access.js';
import type { AccessResult } from './virtual-access.js';

export interface PageFault {
  va: bigint;
  errorCode: number;
  /** Physical address the RMP check refused, for an RMP violation. */
  rmpPa?: number;
  detail: string;
}

/** What an oops needs of the kernel it happens in. */
export interface OopsingKernel {
  readonly machine: Machine;
  readonly profile: KernelProfile;
  readonly log: KernelLog;
  /** Host SNP is on in this kernel (CC_ATTR_HOST_SEV_SNP): the RMP entry is dumped. */
  readonly hostSnp: boolean;
  step(detail: string, data?: Record<string, number | string | boolean>): void;
}

export function pageFaultOops(k: OopsingKernel, cpu: number, f: PageFault): void {
  const ec = f.errorCode;
  const knowsRmp = k.profile.mechanisms.snpHost;
  const what = (ec & PF_INSTR) !== 0 ? 'instruction fetch' : (ec & PF_WRITE) !== 0 ? 'write access' : 'read access';
  const why = (ec & PF_PRESENT) === 0 ? 'not-present page'
    : (ec & PF_RSVD) !== 0 ? 'reserved bit violation'
      : knowsRmp && (ec & PF_RMP) !== 0 ? 'RMP violation' : 'permissions violation';
  k.log.printk(`BUG: unable to handle page fault for address: ${hexPad(f.va, 16)}`);
  k.log.printk(`#PF: ${(ec & PF_USER) !== 0 ? 'user' : 'supervisor'} ${what} in kernel mode`);
  k.log.printk(`#PF: error_code(0x${hexPad(ec >>> 0, 4)}) - ${why}`);
  const pfn = f.rmpPa === undefined ? undefined : Math.floor(f.rmpPa / 4096);
  const loc = k.machine.rmp;
  if (knowsRmp && k.hostSnp && pfn !== undefined && loc !== undefined && rmpCovers(loc, pfn)) {
    const { lo, hi } = encodeRmpEntry(readRmpEntry(k.machine.mc, loc, pfn));
    k.log.printk(`SEV-SNP: PFN 0x${pfn.toString(16)}, RMP entry: [0x${hexPad(lo, 16)} - 0x${hexPad(hi, 16)}]`);
  }
  k.log.printk(`Oops: ${hexPad(ec & 0xffff, 4)} [#1] PREEMPT SMP NOPTI`);
  k.step(`CPU ${cpu}: kernel write to 0x${f.va.toString(16)} faulted (error code 0x${(ec >>> 0).toString(16)}): ${f.detail}`, { cpu, errorCode: ec >>> 0 });
}

/** The fault a refused write through the kernel's page tables reports. */
export function faultOfAccess(r: Extract<AccessResult, { ok: false }>): PageFault {
  return {
    va: r.va, errorCode: r.fault.errorCode, detail: r.fault.detail,
    ...(r.fault.fault === 'rmp-violation' ? { rmpPa: r.fault.pa } : {}),
  };
}

/** The fault a refused store to a physical address (through the direct map) reports. */
export function faultOfWrite(e: KernelWriteFault): PageFault {
  return { va: directMapVirt(e.pa), errorCode: (PF_RMP | PF_WRITE | PF_PRESENT) >>> 0, rmpPa: e.pa, detail: e.detail };
}
