// KVM launching SEV-SNP guests on the host, as far as the RMP and the
// firmware see it: a guest context page handed to the firmware (made
// firmware-owned with RMPUPDATE, then SNP_GCTX_CREATE), an ASID bound with
// SNP_ACTIVATE, and the guest's memory assigned to that ASID page by page.
// From then on the host cannot write those pages, and SNP_SHUTDOWN_EX
// cannot succeed until the guests are decommissioned.

import { rmpupdate } from '../platform/snp/rmp-instructions.js';
import { SEV_CMD_SNP_ACTIVATE, SEV_CMD_SNP_GCTX_CREATE, SNP_ACTIVATE_SIZE, sevReturnName } from '../platform/psp/sev-codes.js';
import type { FirstKernel } from './first-kernel.js';
import type { SnpHostState } from './snp-host.js';
import { pspCommand } from './snp-host.js';

export interface SnpGuest {
  asid: number;
  gctx: number;
  /** Physical base of the guest's memory (contiguous here). */
  memory: number;
  pages: number;
}

export function launchSnpGuests(k: FirstKernel, state: SnpHostState, count: number, pagesPerGuest: number): SnpGuest[] {
  const m = k.machine;
  if (!state.firmwareInitialized || count === 0) return [];
  const guests: SnpGuest[] = [];
  const buf = k.allocPage();
  for (let i = 0; i < count; i++) {
    const asid = i + 1;
    const gctx = k.allocPage();
    // rmp_make_private(gctx, 0, 4K, asid 0, immutable): the page becomes the firmware's.
    const own = rmpupdate(m, m.bsp, gctx, { gpa: 0, assigned: true, pageSize: 0, immutable: true, asid: 0 });
    if (!own.ok) {
      k.log.printk(`SEV-SNP: RMPUPDATE failed for PFN ${(gctx / 4096).toString(16)}, pg_level: 1, ret: ${own.ok === false && 'rc' in own ? own.rc : -1}`);
      break;
    }
    const b = new Uint8Array(SNP_ACTIVATE_SIZE);
    const dv = new DataView(b.buffer);
    dv.setBigUint64(0, BigInt(gctx), true);
    k.mem.write(buf, b.subarray(0, 8));
    const rc1 = pspCommand(k, m.bsp, SEV_CMD_SNP_GCTX_CREATE, buf);
    dv.setUint32(8, asid, true);
    k.mem.write(buf, b);
    const rc2 = rc1 === 0 ? pspCommand(k, m.bsp, SEV_CMD_SNP_ACTIVATE, buf) : rc1;
    if (rc2 !== 0) {
      k.step(`SNP guest ${asid}: firmware refused (${sevReturnName(rc2)})`);
      break;
    }
    const memory = k.memblock.alloc(pagesPerGuest * 4096, 2 ** 21);
    if (memory === undefined) break;
    for (let p = 0; p < pagesPerGuest; p++) {
      rmpupdate(m, m.bsp, memory + p * 4096, { gpa: p * 4096, assigned: true, pageSize: 0, immutable: false, asid });
    }
    guests.push({ asid, gctx, memory, pages: pagesPerGuest });
  }
  if (guests.length > 0) k.step(`${guests.length} SNP guests running (ASIDs ${guests.map((g) => g.asid).join(', ')}), ${pagesPerGuest} pages each assigned in the RMP`, { guests: guests.length });
  return guests;
}
