// SNP guest kexec (ref/sme-sev-kexec.md §3.8, §3.9): the enc_kexec_begin and
// enc_kexec_finish hooks the panic path runs before jumping to the next
// kernel. Begin stops shared<->private conversions. Finish (optionally)
// destroys the other APs, walks the direct map and converts every page mapped
// decrypted back to private (hypervisor page-state change first, then
// PVALIDATE), does .bss..decrypted the same way, then switches to the MSR
// protocol and converts the per-CPU GHCBs last, since those pages carried the
// conversion requests until then.
//
// The 6.12 walk skips any mapping whose range "contains" a GHCB with an
// inclusive upper bound (addr <= ghcb <= addr + size), so a 4 KiB page that
// ends where a GHCB starts is skipped too and stays shared: the page just
// below each GHCB. The May 2025 fix makes the bound exclusive.

import type { Vcpu } from '../../platform/hv/vcpu.js';
import {
  GHCB_MSR_PSC_RESP, PSC_OP_PRIVATE, SEV_TERM_SET_LINUX, GHCB_TERM_PSC, GHCB_TERM_PVALIDATE,
  pscRequest, pscResponseError, ghcbMsrInfo,
} from '../../platform/hv/ghcb-msr.js';
import {
  SVM_VMGEXIT_PSC, SVM_VMGEXIT_AP_CREATION, SVM_VMGEXIT_AP_DESTROY, GHCB_OFF_SHARED_BUFFER,
  apCreationInfo1, encodePscDescriptor,
} from '../../platform/hv/ghcb-page.js';
import { hex } from '../../util/hex.js';
import { msrCall, ghcbCall } from './ghcb-calls.js';
import { PAGE } from './layout.js';
import type { BootResult, GuestKernel } from './guest-kernel.js';

/** PSC entries per GHCB request (VMGEXIT_PSC_MAX_ENTRY in the newest header). */
export const PSC_ENTRIES_PER_REQUEST = 64;

export function snpKexecBegin(k: GuestKernel): BootResult {
  k.conversionsStopped = true;
  k.step('snp_kexec_begin: shared<->private conversions stopped');
  return { ok: true };
}

export function snpKexecFinish(k: GuestKernel): BootResult {
  const fixed = k.profile.mechanisms.snpGuestKexec === 'unshare-fixed';
  if (fixed) shutdownAllAps(k);
  const ghcbs = k.perCpuGhcbs;
  const containsGhcb = (addr: number, size: number): boolean =>
    ghcbs.some((g) => addr <= g && (fixed ? g < addr + size : g <= addr + size));

  // unshare_all_memory(): the direct map, skipping mappings that hold a GHCB.
  const convert: number[] = [];
  const skipped: number[] = [];
  for (const gpa of [...k.shared].sort((a, b) => a - b)) (containsGhcb(gpa, PAGE) ? skipped : convert).push(gpa);
  const r1 = toPrivateViaGhcb(k, convert);
  if (!r1.ok) return r1;
  const leftShared = skipped.filter((g) => !ghcbs.includes(g));
  k.step(`snp_kexec_finish: unshare_all_memory made ${convert.length} pages private; skipped ${skipped.length} as holding a GHCB (${skipped.map(hex).join(', ')})`
    + (leftShared.length > 0 ? `; ${leftShared.map(hex).join(', ')} ${leftShared.length === 1 ? 'holds no GHCB and stays' : 'hold no GHCB and stay'} shared` : ''),
  { converted: convert.length, skipped: skipped.length, leftShared: leftShared.map(hex).join(',') });

  // .bss..decrypted
  const bss = [...k.bssDecrypted].sort((a, b) => a - b);
  const r2 = toPrivateViaGhcb(k, bss);
  if (!r2.ok) return r2;
  for (const g of bss) k.bssDecrypted.delete(g);
  k.step(`snp_kexec_finish: .bss..decrypted made private (${bss.length} pages)`, { pages: bss.length });

  // No more GHCB calls: the GHCBs themselves go last, over the MSR protocol.
  k.ghcbsUsable = false;
  for (const g of ghcbs) {
    const r = toPrivateViaMsr(k, g);
    if (!r.ok) return r;
  }
  k.step(`snp_kexec_finish: switched to the MSR protocol; per-CPU GHCBs made private last (${ghcbs.map(hex).join(', ')})`, { ghcbs: ghcbs.length });
  return { ok: true };
}

/** The 2025 shutdown_all_aps(): AP DESTROY for every other AP with a kernel VMSA, then clear its VMSA attribute. */
function shutdownAllAps(k: GuestKernel): void {
  for (const [cpu, vmsa] of k.apVmsas) {
    if (cpu === k.bsp.index) continue;
    const ap = k.vm.vcpus[cpu]!;
    const r = ghcbCall(k.bsp, k.ghcb, { exitCode: SVM_VMGEXIT_AP_CREATION, info1: apCreationInfo1(ap.apicId, 0, SVM_VMGEXIT_AP_DESTROY), info2: BigInt(vmsa), protocolVersion: k.ghcbVersion });
    if (!r.ok || r.info1 !== 0n) {
      k.printk('SNP AP DESTROY error');
      continue;
    }
    const adj = k.bsp.rmpadjustVmsa(vmsa, false);
    if (!adj.ok) {
      k.printk(`clear VMSA page failed (${adj.fault === 'rmp-fail' ? adj.rc : 0}), leaking page`);
      continue;
    }
    k.apVmsas.delete(cpu);
    k.step(`shutdown_all_aps: CPU ${cpu} destroyed, VMSA page ${hex(vmsa)} is an ordinary page again`, { vcpu: cpu, vmsa });
  }
}

function toPrivateViaGhcb(k: GuestKernel, pages: readonly number[]): BootResult {
  for (let i = 0; i < pages.length; i += PSC_ENTRIES_PER_REQUEST) {
    const batch = pages.slice(i, i + PSC_ENTRIES_PER_REQUEST);
    const desc = encodePscDescriptor(batch.map((g) => ({ gfn: g / PAGE, op: PSC_OP_PRIVATE, pageSize: 0 as const })));
    const r = ghcbCall(k.bsp, k.ghcb, {
      exitCode: SVM_VMGEXIT_PSC, info1: 0n, info2: 0n, scratch: BigInt(k.ghcb + GHCB_OFF_SHARED_BUFFER), sharedBuffer: desc, protocolVersion: k.ghcbVersion,
    });
    if (!r.ok || r.info2 !== 0n) {
      k.printk(`SNP: PSC failed ret=${r.ok ? 0 : -5} exit_info_2=${r.ok ? r.info2.toString(16) : '0'}`);
      return k.terminate(SEV_TERM_SET_LINUX, GHCB_TERM_PSC, 'page state change failed');
    }
    for (const g of batch) {
      const v = validate(k, k.bsp, g);
      if (!v.ok) return v;
      k.shared.delete(g);
    }
  }
  return { ok: true };
}

function toPrivateViaMsr(k: GuestKernel, gpa: number): BootResult {
  const r = msrCall(k.bsp, pscRequest(gpa / PAGE, PSC_OP_PRIVATE));
  if (!r.ok) return { ok: false, reason: r.detail };
  if (ghcbMsrInfo(r.response) !== GHCB_MSR_PSC_RESP) {
    k.printk(`Wrong PSC response code: 0x${ghcbMsrInfo(r.response).toString(16)}`);
    return k.terminate(SEV_TERM_SET_LINUX, GHCB_TERM_PSC, 'page state change failed');
  }
  const err = pscResponseError(r.response);
  if (err !== 0) {
    k.printk(`Failed to change page state to 'private' paddr 0x${gpa.toString(16)} error 0x${err.toString(16)}`);
    return k.terminate(SEV_TERM_SET_LINUX, GHCB_TERM_PSC, 'page state change failed');
  }
  const v = validate(k, k.bsp, gpa);
  if (!v.ok) return v;
  k.shared.delete(gpa);
  return { ok: true };
}

function validate(k: GuestKernel, v: Vcpu, gpa: number): BootResult {
  const pv = v.pvalidate(gpa, true);
  if (!pv.ok) return k.terminate(SEV_TERM_SET_LINUX, GHCB_TERM_PVALIDATE, `PVALIDATE of GPA ${hex(gpa)} failed: ${pv.detail}`);
  return { ok: true };
}
