// DMA remapping: from a requester id and a bus address to a physical
// address, through the root table SRTP latched, the context entry (legacy),
// or the context, PASID-directory and PASID-table entries (scalable mode,
// requests without PASID, which use the context entry's RID_PASID), then the
// second-level page table. Every structure is read through the unit's own
// memory path; results are kept in the context cache, PASID cache and IOTLB
// until software invalidates them. Faults come back as values with the
// reference's reason numbers; the caller records them.

import type { TraceEvent } from '../trace.js';
import {
  ContextCache, PasidCache, type CachedContext, type CachedPasidEntry,
} from './context-cache.js';
import {
  decodeContextEntry, decodeScalableContextEntry, contextEntryAddress, pasidDirectoryEntries,
  LEGACY_CONTEXT_RESERVED_HI, LEGACY_CONTEXT_RESERVED_LO, SM_CONTEXT_RESERVED_HI, SM_CONTEXT_RESERVED_LO,
  TT_MULTI_LEVEL, TT_MULTI_LEVEL_DEVTLB, TT_PASS_THROUGH,
} from './context-entry.js';
import { pageField } from './entry-bytes.js';
import {
  FR_BEYOND_MGAW, FR_CONTEXT_INVALID, FR_CONTEXT_NOT_PRESENT, FR_CONTEXT_RESERVED, FR_CONTEXT_TABLE_INVALID,
  FR_PAGING_ENTRY_INVALID, FR_PTE_RESERVED, FR_READ, FR_ROOT_NOT_PRESENT, FR_ROOT_RESERVED, FR_ROOT_TABLE_INVALID, FR_WRITE,
  FR_SM_BEYOND_MAX, FR_SM_CONTEXT_ACCESS, FR_SM_CONTEXT_NOT_PRESENT, FR_SM_CONTEXT_RESERVED, FR_SM_PASID_DIR_ACCESS,
  FR_SM_PASID_DIR_NOT_PRESENT, FR_SM_PASID_DIR_RESERVED, FR_SM_PASID_ENTRY_ACCESS, FR_SM_PASID_ENTRY_INVALID,
  FR_SM_PASID_ENTRY_NOT_PRESENT, FR_SM_RID_PASID, FR_SM_ROOT_ACCESS, FR_SM_ROOT_NOT_PRESENT, FR_SM_ROOT_RESERVED,
  FR_SM_SL_ACCESS, FR_SM_SL_PERMISSION, FR_SM_SL_RESERVED,
} from './fault-reasons.js';
import { VtdIotlb } from './iotlb.js';
import {
  decodePasidDirEntry, decodePasidEntry, pasidDirEntryAddress, pasidEntryAddress, PASID_DIR_RESERVED, PASIDS_PER_TABLE,
  PGTT_PASS_THROUGH, PGTT_SECOND_LEVEL,
} from './pasid-table.js';
import { capMgaw, capSagaw, capSps, ECAP_DT, ECAP_PT, ECAP_SLTS } from './registers.js';
import { LEGACY_ROOT_RESERVED_LO, SM_ROOT_RESERVED, rootEntryAddress } from './root-table.js';
import { levelShift, levelsForAw, walkSecondLevel, widthForAw } from './second-level-table.js';
import type { IommuMemory } from '../iommu-memory.js';

export type VtdTranslation =
  | { readonly ok: true; /** System address (may carry the C-bit). */ readonly addr: number; readonly translated: boolean }
  | {
    readonly ok: false;
    readonly reason: number;
    readonly detail: string;
    /** FPD was set in an entry on the way: a qualified fault is not recorded. */
    readonly fpd: boolean;
  };

type Fault = Extract<VtdTranslation, { ok: false }>;
type Found<T> = { ok: true; value: T } | Fault;

/** The translation one request resolves to before the page walk. */
interface Target {
  readonly did: number;
  readonly passThrough: boolean;
  readonly slptptr: number;
  readonly addressWidth: number;
  readonly fpd: boolean;
  readonly scalable: boolean;
}

export interface DmaRemapperHost {
  readonly memory: IommuMemory;
  readonly cap: bigint;
  readonly ecap: bigint;
  /** The root table SRTP latched (not RTADDR as written since). */
  latchedRoot(): { readonly addr: number; readonly scalable: boolean };
  record(kind: string, detail: string, data?: TraceEvent['data']): void;
}

const fault = (reason: number, detail: string, fpd = false): Fault => ({ ok: false, reason, detail, fpd });
const hex = (n: number | bigint): string => `0x${n.toString(16)}`;
export const bdfName = (sid: number): string =>
  `${((sid >> 8) & 0xff).toString(16).padStart(2, '0')}:${((sid >> 3) & 0x1f).toString(16).padStart(2, '0')}.${sid & 7}`;

export class DmaRemapper {
  readonly contexts = new ContextCache();
  readonly pasids = new PasidCache();
  readonly iotlb: VtdIotlb;
  readonly #host: DmaRemapperHost;
  translations = 0;
  iotlbHits = 0;

  constructor(host: DmaRemapperHost, iotlbCapacity?: number) {
    this.#host = host;
    this.iotlb = new VtdIotlb(iotlbCapacity);
  }

  /** Every cache dropped (SRTP on an ESRTPS part). */
  dropAll(): number {
    return this.contexts.clear() + this.pasids.invalidate(undefined) + this.iotlb.clear();
  }

  /** Translates the 4 KiB page holding `iova` for requester `sid` (translation is on). */
  translate(sid: number, iova: number, write: boolean): VtdTranslation {
    this.translations++;
    const t = this.#target(sid);
    if (!t.ok) return t;
    const target = t.value;
    if (target.passThrough) return { ok: true, addr: iova, translated: false };
    const width = Math.min(widthForAw(target.addressWidth), capMgaw(this.#host.cap));
    if (!(iova >= 0 && iova < 2 ** width)) {
      return fault(target.scalable ? FR_SM_BEYOND_MAX : FR_BEYOND_MGAW, `IOVA ${hex(iova)} is beyond the ${width}-bit address width`, target.fpd);
    }
    const permFault = (): number => (target.scalable ? FR_SM_SL_PERMISSION : write ? FR_WRITE : FR_READ);
    let e = this.iotlb.lookup(target.did, iova);
    if (e !== undefined) {
      this.iotlbHits++;
    } else {
      const levels = levelsForAw(target.addressWidth);
      const w = walkSecondLevel((a) => this.#host.memory.readQword(a), target.slptptr, levels, iova, write, capSps(this.#host.cap));
      if (!w.ok) {
        const reason = w.fault === 'access'
          ? (target.scalable ? FR_SM_SL_ACCESS : FR_PAGING_ENTRY_INVALID)
          : w.fault === 'reserved' ? (target.scalable ? FR_SM_SL_RESERVED : FR_PTE_RESERVED) : permFault();
        return fault(reason, w.detail, target.fpd);
      }
      const span = 2 ** levelShift(w.leafLevel);
      const within = iova % span;
      const pageOff = within - (within % 4096);
      e = { did: target.did, level: w.leafLevel, iova: iova - within, frame: w.page - pageOff, read: w.read, write: w.write };
      this.iotlb.fill(e);
      this.#host.record('vtd-iotlb-fill', `domain ${target.did} IOVA ${hex(e.iova)} -> ${hex(e.frame)} (level ${e.level})`, {
        sid, did: target.did, iova: e.iova, frame: e.frame, level: e.level, read: e.read, write: e.write,
      });
    }
    if (!(write ? e.write : e.read)) {
      return fault(permFault(), `IOVA ${hex(iova)} is mapped without ${write ? 'write' : 'read'} permission`, target.fpd);
    }
    return { ok: true, addr: e.frame + (iova - e.iova), translated: true };
  }

  #target(sid: number): Found<Target> {
    const c = this.#context(sid);
    if (!c.ok) return c;
    const ctx = c.value;
    if (ctx.mode === 'legacy') {
      return {
        ok: true,
        value: {
          did: ctx.did, passThrough: ctx.translationType === TT_PASS_THROUGH, slptptr: ctx.slptptr,
          addressWidth: ctx.addressWidth, fpd: ctx.fpd, scalable: false,
        },
      };
    }
    const p = this.#pasidEntry(sid, ctx);
    if (!p.ok) return p;
    const pe = p.value;
    return {
      ok: true,
      value: { did: pe.did, passThrough: pe.pgtt === PGTT_PASS_THROUGH, slptptr: pe.slptptr, addressWidth: pe.addressWidth, fpd: pe.fpd, scalable: true },
    };
  }

  #context(sid: number): Found<CachedContext> {
    const cached = this.contexts.get(sid);
    if (cached !== undefined) return { ok: true, value: cached };
    const root = this.#host.latchedRoot();
    const r = root.scalable ? this.#scalableContext(sid, root.addr) : this.#legacyContext(sid, root.addr);
    if (r.ok) this.contexts.fill(sid, r.value);
    return r;
  }

  #legacyContext(sid: number, rootTable: number): Found<CachedContext> {
    const mem = this.#host.memory;
    const bus = (sid >> 8) & 0xff;
    const devfn = sid & 0xff;
    const reAddr = rootEntryAddress(rootTable, bus);
    const re = mem.readWords(reAddr, 2);
    if (re === undefined) return fault(FR_ROOT_TABLE_INVALID, `root entry for bus ${hex(bus)} at ${hex(reAddr)} is outside memory`);
    const [lo = 0n, hi = 0n] = re;
    if ((lo & 1n) === 0n) return fault(FR_ROOT_NOT_PRESENT, `root entry for bus ${hex(bus)} at ${hex(reAddr)} is not present`);
    if ((lo & LEGACY_ROOT_RESERVED_LO) !== 0n || hi !== 0n) {
      return fault(FR_ROOT_RESERVED, `root entry for bus ${hex(bus)} has reserved bits set (${hex(hi)}:${hex(lo)})`);
    }
    const ceAddr = contextEntryAddress(pageField(lo), devfn, false);
    const cw = mem.readWords(ceAddr, 2);
    if (cw === undefined) return fault(FR_CONTEXT_TABLE_INVALID, `context entry for ${bdfName(sid)} at ${hex(ceAddr)} is outside memory`);
    const [clo = 0n, chi = 0n] = cw;
    const ce = decodeContextEntry(clo, chi);
    if (!ce.present) return fault(FR_CONTEXT_NOT_PRESENT, `context entry for ${bdfName(sid)} at ${hex(ceAddr)} is not present`, ce.fpd);
    if ((clo & LEGACY_CONTEXT_RESERVED_LO) !== 0n || (chi & LEGACY_CONTEXT_RESERVED_HI) !== 0n) {
      return fault(FR_CONTEXT_RESERVED, `context entry for ${bdfName(sid)} has reserved bits set (${hex(chi)}:${hex(clo)})`);
    }
    const ecap = this.#host.ecap;
    const ttOk = ce.translationType === TT_MULTI_LEVEL
      || (ce.translationType === TT_MULTI_LEVEL_DEVTLB && (ecap & ECAP_DT) !== 0n)
      || (ce.translationType === TT_PASS_THROUGH && (ecap & ECAP_PT) !== 0n);
    if (!ttOk) return fault(FR_CONTEXT_INVALID, `context entry for ${bdfName(sid)} has unsupported translation type ${ce.translationType}`, ce.fpd);
    if (ce.translationType !== TT_PASS_THROUGH && ((capSagaw(this.#host.cap) >> ce.addressWidth) & 1) === 0) {
      return fault(FR_CONTEXT_INVALID, `context entry for ${bdfName(sid)} has unsupported address width ${ce.addressWidth}`, ce.fpd);
    }
    const value: CachedContext = {
      mode: 'legacy', did: ce.domainId, fpd: ce.fpd, translationType: ce.translationType, slptptr: ce.slptptr, addressWidth: ce.addressWidth,
    };
    this.#host.record('vtd-context-fetch', `context entry for ${bdfName(sid)} read from ${hex(ceAddr)}: domain ${ce.domainId}`, {
      sid, mode: 'legacy', rootEntry: reAddr, contextEntry: ceAddr, did: ce.domainId, tt: ce.translationType, aw: ce.addressWidth, slptptr: ce.slptptr, fpd: ce.fpd,
    });
    return { ok: true, value };
  }

  #scalableContext(sid: number, rootTable: number): Found<CachedContext> {
    const mem = this.#host.memory;
    const bus = (sid >> 8) & 0xff;
    const devfn = sid & 0xff;
    const reAddr = rootEntryAddress(rootTable, bus);
    const re = mem.readWords(reAddr, 2);
    if (re === undefined) return fault(FR_SM_ROOT_ACCESS, `root entry for bus ${hex(bus)} at ${hex(reAddr)} is outside memory`);
    const upper = devfn >= 0x80;
    const half = re[upper ? 1 : 0] ?? 0n;
    const which = upper ? 'UCTP' : 'LCTP';
    if ((half & 1n) === 0n) return fault(FR_SM_ROOT_NOT_PRESENT, `root entry for bus ${hex(bus)} at ${hex(reAddr)}: ${which} is not present`);
    if ((half & SM_ROOT_RESERVED) !== 0n) return fault(FR_SM_ROOT_RESERVED, `root entry for bus ${hex(bus)}: ${which} has reserved bits set (${hex(half)})`);
    const ceAddr = contextEntryAddress(pageField(half), devfn, true);
    const w = mem.readWords(ceAddr, 4);
    if (w === undefined) return fault(FR_SM_CONTEXT_ACCESS, `context entry for ${bdfName(sid)} at ${hex(ceAddr)} is outside memory`);
    const ce = decodeScalableContextEntry(w);
    if (!ce.present) return fault(FR_SM_CONTEXT_NOT_PRESENT, `context entry for ${bdfName(sid)} at ${hex(ceAddr)} is not present`, ce.fpd);
    const [w0 = 0n, w1 = 0n, w2 = 0n, w3 = 0n] = w;
    if ((w0 & SM_CONTEXT_RESERVED_LO) !== 0n || (w1 & SM_CONTEXT_RESERVED_HI) !== 0n || w2 !== 0n || w3 !== 0n) {
      return fault(FR_SM_CONTEXT_RESERVED, `context entry for ${bdfName(sid)} has reserved bits set`);
    }
    const value: CachedContext = { mode: 'scalable', fpd: ce.fpd, pasidDirectory: ce.pasidDirectory, pdts: ce.pdts, ridPasid: ce.ridPasid };
    this.#host.record('vtd-context-fetch', `scalable-mode context entry for ${bdfName(sid)} read from ${hex(ceAddr)}: RID_PASID ${hex(ce.ridPasid)}`, {
      sid, mode: 'scalable', rootEntry: reAddr, contextEntry: ceAddr, pasidDirectory: ce.pasidDirectory, pdts: ce.pdts, ridPasid: ce.ridPasid, fpd: ce.fpd,
    });
    return { ok: true, value };
  }

  #pasidEntry(sid: number, ctx: Extract<CachedContext, { mode: 'scalable' }>): Found<CachedPasidEntry> {
    const pasid = ctx.ridPasid;
    const cached = this.pasids.get(sid, pasid);
    if (cached !== undefined) return { ok: true, value: cached };
    const mem = this.#host.memory;
    if (Math.floor(pasid / PASIDS_PER_TABLE) >= pasidDirectoryEntries(ctx.pdts)) {
      return fault(FR_SM_RID_PASID, `RID_PASID ${hex(pasid)} is beyond the ${pasidDirectoryEntries(ctx.pdts)}-entry PASID directory`, ctx.fpd);
    }
    const pdeAddr = pasidDirEntryAddress(ctx.pasidDirectory, pasid);
    const raw = mem.readQword(pdeAddr);
    if (raw === undefined) return fault(FR_SM_PASID_DIR_ACCESS, `PASID directory entry at ${hex(pdeAddr)} is outside memory`);
    const pde = decodePasidDirEntry(raw);
    let fpd = ctx.fpd || pde.fpd;
    if (!pde.present) return fault(FR_SM_PASID_DIR_NOT_PRESENT, `PASID directory entry for PASID ${hex(pasid)} at ${hex(pdeAddr)} is not present`, fpd);
    if ((raw & PASID_DIR_RESERVED) !== 0n) return fault(FR_SM_PASID_DIR_RESERVED, `PASID directory entry at ${hex(pdeAddr)} has reserved bits set`, fpd);
    const peAddr = pasidEntryAddress(pde.pasidTable, pasid);
    const w = mem.readWords(peAddr, 8);
    if (w === undefined) return fault(FR_SM_PASID_ENTRY_ACCESS, `PASID table entry at ${hex(peAddr)} is outside memory`);
    const pe = decodePasidEntry(w);
    fpd ||= pe.fpd;
    if (!pe.present) return fault(FR_SM_PASID_ENTRY_NOT_PRESENT, `PASID table entry for PASID ${hex(pasid)} at ${hex(peAddr)} is not present`, fpd);
    const ecap = this.#host.ecap;
    const pgttOk = (pe.pgtt === PGTT_SECOND_LEVEL && (ecap & ECAP_SLTS) !== 0n) || (pe.pgtt === PGTT_PASS_THROUGH && (ecap & ECAP_PT) !== 0n);
    if (!pgttOk) return fault(FR_SM_PASID_ENTRY_INVALID, `PASID table entry for PASID ${hex(pasid)} has PGTT ${pe.pgtt}, which the unit does not do`, fpd);
    if (pe.pgtt === PGTT_SECOND_LEVEL && ((capSagaw(this.#host.cap) >> pe.addressWidth) & 1) === 0) {
      return fault(FR_SM_PASID_ENTRY_INVALID, `PASID table entry for PASID ${hex(pasid)} has unsupported address width ${pe.addressWidth}`, fpd);
    }
    const value: CachedPasidEntry = { sid, pasid, did: pe.domainId, fpd, pgtt: pe.pgtt, slptptr: pe.slptptr, addressWidth: pe.addressWidth };
    this.pasids.fill(value);
    this.#host.record('vtd-pasid-fetch', `PASID ${hex(pasid)} entry for ${bdfName(sid)} read from ${hex(peAddr)}: domain ${pe.domainId} PGTT ${pe.pgtt}`, {
      sid, pasid, dirEntry: pdeAddr, pasidEntry: peAddr, did: pe.domainId, pgtt: pe.pgtt, aw: pe.addressWidth, slptptr: pe.slptptr, fpd,
    });
    return { ok: true, value };
  }
}
