// KVM launching SEV-SNP guests on the host, as far as the RMP and the
// firmware see it: a guest context page handed to the firmware (made
// firmware-owned with RMPUPDATE, then SNP_GCTX_CREATE), an ASID bound with
// SNP_ACTIVATE, the guest's memory assigned to that ASID page by page, its
// initial image measured in with SNP_LAUNCH_UPDATE (the firmware validates
// those pages), one VMSA page per vCPU launched the same way with the VMSA
// page type, then SNP_LAUNCH_FINISH. From then on the host cannot write
// those pages, and SNP_SHUTDOWN_EX cannot succeed until the guests are
// decommissioned.

import { rmpupdate, type RmpState } from '../platform/snp/rmp-instructions.js';
import { wbinvd } from '../platform/cpu/wbinvd.js';
import {
  SEV_CMD_SNP_ACTIVATE, SEV_CMD_SNP_GCTX_CREATE, SEV_CMD_SNP_LAUNCH_FINISH, SEV_CMD_SNP_LAUNCH_UPDATE,
  SEV_CMD_SNP_DECOMMISSION, SEV_CMD_SNP_PAGE_RECLAIM, SEV_CMD_SNP_DF_FLUSH,
  SNP_ACTIVATE_SIZE, SNP_LAUNCH_UPDATE_SIZE, SNP_PAGE_TYPE_NORMAL, SNP_PAGE_TYPE_VMSA, sevReturnName,
} from '../platform/psp/sev-codes.js';
import type { FirstKernel } from './first-kernel.js';
import type { SnpHostState } from './snp-host.js';
import { CCP_DEV, pspCommand } from './snp-host.js';
import type { Cpu } from '../platform/cpu/cpu.js';

export interface SnpGuest {
  asid: number;
  gctx: number;
  /** Physical base of the guest's memory (contiguous here). */
  memory: number;
  pages: number;
  /** Pages measured in at launch (validated by the firmware), from the start of `memory`. */
  launchedPages: number;
  /** One VMSA page per vCPU. */
  vmsas: number[];
}

/** KVM's GPA for a vCPU's VMSA (the RMP entry's GPA field; the guest never maps it). */
const INITIAL_VMSA_GPA = 0xffff_fffff000;
/** Pages of each guest's initial image (firmware, kernel) measured in with LAUNCH_UPDATE. */
const LAUNCH_IMAGE_PAGES = 16;

export function launchSnpGuests(k: FirstKernel, state: SnpHostState, count: number, pagesPerGuest: number, vcpus: number): SnpGuest[] {
  const m = k.machine;
  if (!state.firmwareInitialized || count === 0) return [];
  const guests: SnpGuest[] = [];
  const buf = k.allocPage();
  const fw = (cmd: number, bytes: Uint8Array): number => {
    k.mem.write(buf, bytes);
    return pspCommand(k, m.bsp, cmd, buf);
  };
  const makePrivate = (pa: number, s: RmpState): boolean => {
    const r = rmpupdate(m, m.bsp, pa, s);
    if (!r.ok) k.log.printk(`SEV-SNP: RMPUPDATE failed for PFN ${(pa / 4096).toString(16)}, pg_level: 1, ret: ${'rc' in r ? r.rc : -1}`);
    return r.ok;
  };
  for (let i = 0; i < count; i++) {
    const asid = i + 1;
    const gctx = kvmAlloc(k, 4096, 4096);
    if (gctx === undefined) break;
    // rmp_make_private(gctx, 0, 4K, asid 0, immutable): the page becomes the firmware's.
    if (!makePrivate(gctx, { gpa: 0, assigned: true, pageSize: 0, immutable: true, asid: 0 })) break;
    const rc1 = fw(SEV_CMD_SNP_GCTX_CREATE, u64le(gctx, 8));
    const act = new Uint8Array(SNP_ACTIVATE_SIZE);
    act.set(u64le(gctx, 8));
    new DataView(act.buffer).setUint32(8, asid, true);
    const rc2 = rc1 === 0 ? fw(SEV_CMD_SNP_ACTIVATE, act) : rc1;
    if (rc2 !== 0) {
      k.step(`SNP guest ${asid}: firmware refused (${sevReturnName(rc2)})`);
      break;
    }
    const memory = kvmAlloc(k, pagesPerGuest * 4096, 2 ** 21);
    if (memory === undefined) break;
    for (let p = 0; p < pagesPerGuest; p++) {
      makePrivate(memory + p * 4096, { gpa: p * 4096, assigned: true, pageSize: 0, immutable: false, asid });
    }
    const launchedPages = Math.min(LAUNCH_IMAGE_PAGES, pagesPerGuest);
    let rc = 0;
    for (let p = 0; p < launchedPages && rc === 0; p++) rc = fw(SEV_CMD_SNP_LAUNCH_UPDATE, launchUpdate(gctx, SNP_PAGE_TYPE_NORMAL, memory + p * 4096));
    const vmsas: number[] = [];
    for (let v = 0; v < vcpus && rc === 0; v++) {
      const vmsa = kvmAlloc(k, 4096, 4096);
      if (vmsa === undefined) break;
      // snp_launch_update_vmsa: the VMSA becomes the guest's, immutable, then the firmware takes it in as a VMSA.
      if (!makePrivate(vmsa, { gpa: INITIAL_VMSA_GPA, assigned: true, pageSize: 0, immutable: true, asid })) break;
      rc = fw(SEV_CMD_SNP_LAUNCH_UPDATE, launchUpdate(gctx, SNP_PAGE_TYPE_VMSA, vmsa));
      vmsas.push(vmsa);
    }
    if (rc === 0) rc = fw(SEV_CMD_SNP_LAUNCH_FINISH, u64le(gctx, 8));
    if (rc !== 0) {
      k.step(`SNP guest ${asid}: launch failed (${sevReturnName(rc)})`);
      break;
    }
    guests.push({ asid, gctx, memory, pages: pagesPerGuest, launchedPages, vmsas });
    m.trace.record('kernel', 'snp-guest', `SNP guest ASID ${asid}: context 0x${gctx.toString(16)}, memory 0x${memory.toString(16)} (${pagesPerGuest} pages), VMSA ${vmsas.map((v) => `0x${v.toString(16)}`).join(' ')}`, {
      asid, gctx, memory, pages: pagesPerGuest, launchedPages, vmsas: vmsas.join(','),
    });
  }
  if (guests.length > 0) {
    k.step(`${guests.length} SNP guests running (ASIDs ${guests.map((g) => g.asid).join(', ')}), ${pagesPerGuest} pages each assigned in the RMP, ${vcpus} VMSA page${vcpus === 1 ? '' : 's'} each`, { guests: guests.length });
  }
  return guests;
}

/**
 * The VMMs stop their guests (as a shutdown or `systemctl kexec` does before
 * kexec): KVM decommissions each context, gives the guest's memory back with
 * RMPUPDATE, has the firmware reclaim the pages it cannot (VMSAs, the context
 * page: immutable), then flushes and SNP_DF_FLUSHes so the ASIDs are free.
 */
export function stopSnpGuests(k: FirstKernel): void {
  const m = k.machine;
  if (k.snpGuests.length === 0) return;
  const buf = k.allocPage();
  const fw = (cmd: number, pa: number): number => {
    k.mem.write(buf, u64le(pa, 8));
    return pspCommand(k, m.bsp, cmd, buf);
  };
  const shared: RmpState = { gpa: 0, assigned: false, pageSize: 0, immutable: false, asid: 0 };
  let failures = 0;
  for (const g of k.snpGuests) {
    if (fw(SEV_CMD_SNP_DECOMMISSION, g.gctx) !== 0) failures++;
    for (let p = 0; p < g.pages; p++) if (!rmpupdate(m, m.bsp, g.memory + p * 4096, shared).ok) failures++;
    for (const pa of [...g.vmsas, g.gctx]) if (fw(SEV_CMD_SNP_PAGE_RECLAIM, pa) !== 0) failures++;
  }
  for (const c of m.cpus) wbinvd(c, m.clock.now, m.trace, 'sev_flush_asids');
  if (pspCommand(k, m.bsp, SEV_CMD_SNP_DF_FLUSH, 0) !== 0) failures++;
  k.step(`VMMs stopped: ${k.snpGuests.length} SNP guests decommissioned and their pages returned to the hypervisor${failures > 0 ? ` (${failures} steps failed)` : ''}`, { failures });
  k.snpGuests = [];
}

/**
 * The 2024 "x86/sev: Fix host kdump support for SNP" posts, not merged:
 * decommission every live guest during the crash so SNP_SHUTDOWN_EX can
 * succeed. v1 did it in the crash path after the other CPUs had stopped
 * (and flushed): SNP_DF_FLUSH then finds CPUs that did not flush since the
 * decommission and fails with WBINVD_REQUIRED. v2 did it from the NMI path
 * with every CPU flushing afterwards, and the flush succeeds. False: the
 * shutdown should not be tried.
 */
export function decommissionGuestsOnCrash(k: FirstKernel, cpu: Cpu, v2: boolean): boolean {
  const m = k.machine;
  const buf = k.allocPage();
  for (const g of k.snpGuests) {
    k.mem.write(buf, u64le(g.gctx, 8));
    pspCommand(k, cpu, SEV_CMD_SNP_DECOMMISSION, buf);
  }
  const flushed = v2 ? m.cpus : [cpu];
  for (const c of flushed) wbinvd(c, m.clock.now, m.trace, v2 ? 'after SNP_DECOMMISSION, synchronised across CPUs' : 'after SNP_DECOMMISSION, this CPU only');
  const rc = pspCommand(k, cpu, SEV_CMD_SNP_DF_FLUSH, 0);
  k.step(`crash path (${v2 ? 'v2' : 'v1'} patch): ${k.snpGuests.length} SNP guests decommissioned; SNP_DF_FLUSH ${rc === 0 ? 'succeeded' : `failed (${sevReturnName(rc)})`}`, { status: rc });
  if (rc !== 0) {
    k.log.printk(`${CCP_DEV}: SEV-SNP DF_FLUSH failed with error ${rc}`);
    return false;
  }
  k.snpGuests = [];
  return true;
}

/**
 * KVM's pages (guest memory, contexts, VMSAs) come from the page allocator,
 * anywhere in RAM; here from the bottom of memory above 4 GiB, away from the
 * top-down boot allocations a kexec'd kernel makes first.
 */
function kvmAlloc(k: FirstKernel, size: number, align: number): number | undefined {
  const pa = k.memblock.allocLow(size, align, 2 ** 32) ?? k.memblock.alloc(size, align);
  if (pa !== undefined) k.mem.zero(pa, size);
  return pa;
}

function u64le(v: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, v % 2 ** 32, true);
  dv.setUint32(4, Math.floor(v / 2 ** 32), true);
  return b;
}

function launchUpdate(gctx: number, pageType: number, pa: number): Uint8Array {
  const b = new Uint8Array(SNP_LAUNCH_UPDATE_SIZE);
  b.set(u64le(gctx, 8));
  new DataView(b.buffer).setUint32(8, pageType << 1, true);
  b.set(u64le(pa, 8), 16);
  return b;
}
