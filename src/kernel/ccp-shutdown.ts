// The CCP driver shutting the SEV firmware down (__sev_firmware_shutdown):
// legacy SHUTDOWN first, then SNP_SHUTDOWN_EX with IOMMU_SNP_SHUTDOWN after
// a WBINVD (every CPU normally; only this one from the panic path, where the
// others flushed as they stopped). DFFLUSH_REQUIRED gets one SNP_DF_FLUSH and
// one retry; with SNP guests still live the firmware refuses again. On
// success amd_iommu_snp_disable() hands the IOMMU's pages back. Runs at kexec
// (device shutdown) and, in kernels that have the notifier, on panic.

import { wbinvd } from '../platform/cpu/wbinvd.js';
import {
  SEV_CMD_SHUTDOWN, SEV_CMD_SNP_DF_FLUSH, SEV_CMD_SNP_SHUTDOWN_EX, SEV_RET_DFFLUSH_REQUIRED,
  SNP_SHUTDOWN_EX_IOMMU_SNP_SHUTDOWN, SNP_SHUTDOWN_EX_SIZE, sevReturnName,
} from '../platform/psp/sev-codes.js';
import { rmpupdate } from '../platform/snp/rmp-instructions.js';
import { readRmpEntry, rmpCovers } from '../platform/snp/rmp.js';
import type { FirstKernel } from './first-kernel.js';
import { CCP_DEV, pspCommand } from './snp-host.js';

/** The kernel's return value for a failed PSP command (-EIO). */
const EIO = -5;

export type SnpShutdownOutcome =
  | { snp: 'not-initialized' }
  | { snp: 'shut-down' }
  | { snp: 'failed'; status: number };

export function sevFirmwareShutdown(k: FirstKernel, opts: { panic: boolean; cpu?: number }): SnpShutdownOutcome {
  const m = k.machine;
  const cpu = m.cpus[opts.cpu ?? 0] ?? m.bsp;
  const details = k.profile.mechanisms.ccpErrorDetails;
  if (k.snp.sevInitialized) {
    const rc = pspCommand(k, cpu, SEV_CMD_SHUTDOWN, 0);
    if (rc !== 0) k.log.printk(`${CCP_DEV}: SEV: failed to SHUTDOWN error 0x${rc.toString(16)}, rc ${EIO}`);
    else k.snp.sevInitialized = false;
  }
  if (!k.snp.firmwareInitialized) return { snp: 'not-initialized' };
  const buf = k.allocPage();
  const b = new Uint8Array(SNP_SHUTDOWN_EX_SIZE);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, SNP_SHUTDOWN_EX_SIZE, true);
  dv.setUint32(4, SNP_SHUTDOWN_EX_IOMMU_SNP_SHUTDOWN, true);
  k.mem.write(buf, b);
  const flushed = opts.panic ? [cpu] : m.cpus;
  for (const c of flushed) wbinvd(c, m.clock.now, m.trace, 'before SNP_SHUTDOWN_EX');
  let rc = pspCommand(k, cpu, SEV_CMD_SNP_SHUTDOWN_EX, buf);
  if (rc === SEV_RET_DFFLUSH_REQUIRED) {
    const flush = pspCommand(k, cpu, SEV_CMD_SNP_DF_FLUSH, 0);
    if (flush !== 0) {
      k.log.printk(`${CCP_DEV}: ${details ? `SEV-SNP DF_FLUSH failed, ret = ${EIO}, error = 0x${flush.toString(16)}` : 'SEV-SNP DF_FLUSH failed'}`);
      k.step(`SNP_SHUTDOWN_EX needed SNP_DF_FLUSH, which failed (${sevReturnName(flush)})`, { status: flush });
      return { snp: 'failed', status: flush };
    }
    rc = pspCommand(k, cpu, SEV_CMD_SNP_SHUTDOWN_EX, buf);
  }
  if (rc !== 0) {
    k.log.printk(`${CCP_DEV}: ${details ? `SEV-SNP firmware shutdown failed, rc ${EIO}, error 0x${rc.toString(16)}` : 'SEV-SNP firmware shutdown failed'}`);
    k.step(`SNP_SHUTDOWN_EX failed (${sevReturnName(rc)}): the firmware keeps SNP initialised${k.snpGuests.length > 0 ? ` while ${k.snpGuests.length} guest contexts live` : ''}`, { status: rc });
    return { snp: 'failed', status: rc };
  }
  k.snp.firmwareInitialized = false;
  k.step('SNP_SHUTDOWN_EX with IOMMU_SNP_SHUTDOWN succeeded: the IOMMU is no longer locked');
  amdIommuSnpDisable(k);
  return { snp: 'shut-down' };
}

/**
 * snp_shutdown_on_panic(): the CCP panic notifier. Interrupts are off, so
 * completion is polled; only this CPU flushes (the others did as they
 * stopped).
 */
export function snpShutdownOnPanic(k: FirstKernel, cpu: number): void {
  sevFirmwareShutdown(k, { panic: true, cpu });
}

/** amd_iommu_snp_disable(): the event log and CWB pages back to hypervisor state (rmp_make_shared). */
export function amdIommuSnpDisable(k: FirstKernel): void {
  const m = k.machine;
  const loc = m.rmp;
  if (m.amdIommu === undefined || loc === undefined) return;
  let failed = 0;
  for (const pfn of m.amdIommu.snpBufferPfns()) {
    if (!rmpCovers(loc, pfn) || !readRmpEntry(m.mc, loc, pfn).assigned) continue;
    const r = rmpupdate(m, m.bsp, pfn * 4096, { gpa: 0, assigned: false, pageSize: 0, immutable: false, asid: 0 });
    if (!r.ok) {
      failed++;
      k.log.printk(`SEV-SNP: RMPUPDATE failed for PFN ${pfn.toString(16)}, pg_level: 1, ret: ${'rc' in r ? r.rc : -1}`);
    }
  }
  if (failed > 0) k.step(`amd_iommu_snp_disable: ${failed} IOMMU pages stay firmware-owned (the firmware did not reclaim them)`, { failed });
}
