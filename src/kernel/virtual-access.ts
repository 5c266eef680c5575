// Memory accesses a kernel makes through its own page tables: translate with
// the CPU's CR3, then go through the memory controller. A fault comes back as
// a value naming the address, as the #PF handler would see it.

import { mmuEncryption, walk, PF_PRESENT, PF_RMP, PF_WRITE, type WalkResult } from '../platform/cpu/paging.js';
import { HOST_KEY_SLOT } from '../platform/machine.js';
import type { Cpu } from '../platform/cpu/cpu.js';
import type { MemoryController } from '../platform/memory-controller.js';

/** A fault the CPU reports for an access: a page-walk fault, or an RMP check failure (#PF with PF_RMP). */
export type AccessFault = Extract<WalkResult, { ok: false }> | { ok: false; fault: 'rmp-violation'; level: number; errorCode: number; detail: string; pa: number };
export type AccessResult = { ok: true } | { ok: false; va: bigint; fault: AccessFault };

function pageChunks(va: bigint, length: number, fn: (v: bigint, off: number, n: number) => AccessResult): AccessResult {
  let done = 0;
  while (done < length) {
    const v = va + BigInt(done);
    const inPage = 4096 - Number(v & 0xfffn);
    const n = Math.min(inPage, length - done);
    const r = fn(v, done, n);
    if (!r.ok) return r;
    done += n;
  }
  return { ok: true };
}

/** A CPU's translation, with the C-bit honoured when its SYSCFG enables memory encryption. */
export function translate(mc: MemoryController, cpu: Cpu, va: bigint, write = false): WalkResult {
  const enc = mmuEncryption(cpu, HOST_KEY_SLOT);
  return walk(mc, cpu.cr3, va, write ? { ...enc, write } : enc);
}

export function writeVirt(mc: MemoryController, cpu: Cpu, va: bigint, data: Uint8Array): AccessResult {
  return pageChunks(va, data.length, (v, off, n) => {
    const w = translate(mc, cpu, v, true);
    if (!w.ok) return { ok: false, va: v, fault: w };
    const r = mc.write(w.pa, data.subarray(off, off + n), { kind: 'cpu', id: cpu.id }, { keyId: w.encrypted ? HOST_KEY_SLOT : 0 });
    if (!r.ok) {
      // The RMP check refused the store: #PF with the RMP bit, on a present page, for a write.
      const pfn = Math.floor(r.pa / 4096);
      return { ok: false, va: v, fault: { ok: false, fault: 'rmp-violation', level: w.level, errorCode: (PF_RMP | PF_WRITE | PF_PRESENT) >>> 0, detail: `RMP violation at PFN 0x${pfn.toString(16)}: ${r.detail}`, pa: r.pa } };
    }
    return { ok: true };
  });
}

export function readVirt(mc: MemoryController, cpu: Cpu, va: bigint, dst: Uint8Array): AccessResult {
  return pageChunks(va, dst.length, (v, off, n) => {
    const w = translate(mc, cpu, v);
    if (!w.ok) return { ok: false, va: v, fault: w };
    mc.read(w.pa, dst.subarray(off, off + n), { keyId: w.encrypted ? HOST_KEY_SLOT : 0 });
    return { ok: true };
  });
}

/** For kernel code paths where a fault is a kernel bug: throws with the walk's detail. */
export function mustSucceed(r: AccessResult, what: string): void {
  if (!r.ok) throw new Error(`BUG: ${what} faulted at 0x${r.va.toString(16)}: ${r.fault.detail}`);
}
