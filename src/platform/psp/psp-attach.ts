// The PSP as one machine has it: the SEV firmware writing real RMP entries,
// asking the machine's CPUs about SNP_EN and WBINVD, behind a mailbox mapped
// in the MMIO space.

import type { Machine } from '../machine.js';
import { readRmpEntry, writeRmpEntry, EMPTY_RMP_ENTRY, rmpCovers } from '../snp/rmp.js';
import { snpEnabledOn } from '../snp/snp-msrs.js';
import { SevFirmware, type RmpWriter, type SnpPlatform } from './sev-firmware.js';
import { PspMailbox, PSP_MAILBOX_SIZE } from './psp-mailbox.js';

/** Where the PSP mailbox sits in this machine's MMIO space (ours; real parts expose it in a PCI BAR). */
export const PSP_MMIO_BASE = 0xfea0_0000;
export const PSP_REQUESTER = { kind: 'device', name: 'psp' } as const;

export interface PspSpec {
  version: { major: number; minor: number };
  build: number;
  /** The firmware's private pages (firmware-owned at SNP_INIT). */
  privatePages: { basePfn: number; count: number };
}

export function attachPsp(m: Machine, spec: PspSpec): PspMailbox {
  const rmp: RmpWriter = {
    markFirmwareOwned: (pfn) => {
      const loc = m.rmp;
      if (loc && rmpCovers(loc, pfn)) writeRmpEntry(m.mc, loc, pfn, { ...EMPTY_RMP_ENTRY, assigned: true, immutable: true }, PSP_REQUESTER);
    },
    markHypervisorOwned: (pfn) => {
      const loc = m.rmp;
      if (loc && rmpCovers(loc, pfn)) writeRmpEntry(m.mc, loc, pfn, EMPTY_RMP_ENTRY, PSP_REQUESTER);
    },
    // HV-fixed pages stay hypervisor-owned; the model only records the ranges (the firmware keeps its own list).
    markHypervisorFixed: () => {},
    isAssigned: (pfn) => {
      const loc = m.rmp;
      return loc !== undefined && rmpCovers(loc, pfn) && readRmpEntry(m.mc, loc, pfn).assigned;
    },
    isGuestPageOf: (pfn, asid) => {
      const loc = m.rmp;
      if (loc === undefined || !rmpCovers(loc, pfn)) return false;
      const e = readRmpEntry(m.mc, loc, pfn);
      return e.assigned && e.asid === asid && e.pageSize === 0 && !e.validated;
    },
    ownerAsid: (pfn) => {
      const loc = m.rmp;
      if (loc === undefined || !rmpCovers(loc, pfn)) return undefined;
      const e = readRmpEntry(m.mc, loc, pfn);
      return e.assigned ? e.asid : undefined;
    },
    markValidated: (pfn, vmsa) => {
      const loc = m.rmp;
      if (loc && rmpCovers(loc, pfn)) writeRmpEntry(m.mc, loc, pfn, { ...readRmpEntry(m.mc, loc, pfn), validated: true, vmsa }, PSP_REQUESTER);
    },
  };
  const platform: SnpPlatform = {
    snpEnabledOnAllCpus: () => m.cpus.every((c) => snpEnabledOn(c)),
    wbinvdDoneOnAllCpusSince: (t) => m.cpus.every((c) => c.lastWbinvdNs >= t),
    iommuPages: () => m.amdIommu?.snpBufferPfns() ?? [],
    iommuSnpEnforce: () => { m.amdIommu?.snpEnforce(); },
    iommuSnpShutdown: () => { m.amdIommu?.snpShutdown(); },
  };
  const fw = new SevFirmware(
    { version: spec.version, build: spec.build, privatePages: spec.privatePages },
    { clock: m.clock, mc: m.mc, rmp, platform, trace: m.trace },
  );
  const mailbox = new PspMailbox({ name: 'psp' }, fw, m.trace);
  m.mmio.map(PSP_MMIO_BASE, PSP_MAILBOX_SIZE, mailbox);
  return mailbox;
}
