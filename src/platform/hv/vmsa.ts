// The VMSA: the page where a vCPU's register state lives while the
// hypervisor runs. For SEV-ES and SNP guests the CPU writes it on every exit
// and reads it on every entry through the guest's key, so the hypervisor only
// ever sees ciphertext. The reference gives no offsets; the ones below are
// ours, laid out in the order of the architectural save area (segments
// first, then control registers, RIP, RSP, RAX, the other GPRs,
// SEV_FEATURES). A guest that prepares a VMSA for AP creation writes this
// layout.

import type { RegisterFile } from '../cpu/cpu.js';

export const VMSA_BYTES = 4096;

/** Segment records: selector u16 @+0, attributes u16 @+2, limit u32 @+4, base u64 @+8. */
export const VMSA_OFF_ES = 0x000;
export const VMSA_OFF_CS = 0x010;
export const VMSA_OFF_SS = 0x020;
export const VMSA_OFF_DS = 0x030;
export const VMSA_OFF_FS = 0x040;
export const VMSA_OFF_GS = 0x050;
export const VMSA_OFF_VMPL = 0x0ca;
export const VMSA_OFF_EFER = 0x0d0;
export const VMSA_OFF_CR4 = 0x148;
export const VMSA_OFF_CR3 = 0x150;
export const VMSA_OFF_CR0 = 0x158;
export const VMSA_OFF_RFLAGS = 0x170;
export const VMSA_OFF_RIP = 0x178;
export const VMSA_OFF_RSP = 0x1d8;
export const VMSA_OFF_RAX = 0x1f8;
export const VMSA_OFF_SEV_FEATURES = 0x3b0;

/** General registers after RAX, 8 bytes each from 0x308 (RSP and RAX sit apart, above). */
const GPR_BLOCK = 0x308;
const GPR_ORDER = ['rcx', 'rdx', 'rbx', null, 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'] as const;

/** SEV_FEATURES bit 0: SNP active. `sev_features = SEV_STATUS >> 2`. */
export const SEV_FEATURE_SNP_ACTIVE = 1n << 0n;

export interface VmsaSegment {
  selector: number;
  base: bigint;
}

/** What the model keeps of a vCPU's architectural state. */
export interface VmsaState {
  es: VmsaSegment;
  cs: VmsaSegment;
  ss: VmsaSegment;
  ds: VmsaSegment;
  fs: VmsaSegment;
  gs: VmsaSegment;
  vmpl: number;
  efer: bigint;
  cr0: bigint;
  cr3: bigint;
  cr4: bigint;
  rflags: bigint;
  rip: bigint;
  rsp: bigint;
  rax: bigint;
  gprs: Record<(typeof GPR_ORDER)[number] & string, bigint>;
  sevFeatures: bigint;
}

function seg(selector: number, base: bigint): VmsaSegment {
  return { selector, base };
}

function zeroGprs(): VmsaState['gprs'] {
  const g = {} as VmsaState['gprs'];
  for (const n of GPR_ORDER) if (n !== null) g[n] = 0n;
  return g;
}

/** Architectural INIT state: CS F000 base FFFF0000, RIP FFF0, CR0 60000010, RFLAGS 2. */
export function resetVmsaState(sevFeatures = 0n): VmsaState {
  return {
    es: seg(0, 0n), cs: seg(0xf000, 0xffff_0000n), ss: seg(0, 0n), ds: seg(0, 0n), fs: seg(0, 0n), gs: seg(0, 0n),
    vmpl: 0, efer: 0n, cr0: 0x6000_0010n, cr3: 0n, cr4: 0n, rflags: 2n, rip: 0xfff0n, rsp: 0n, rax: 0n,
    gprs: zeroGprs(), sevFeatures,
  };
}

/** State in which a vCPU starts executing at flat guest-physical `gpa`, in real mode: CS base = gpa, IP = 0 when page aligned. */
export function startVmsaState(gpa: number, sevFeatures = 0n): VmsaState {
  const s = resetVmsaState(sevFeatures);
  const base = gpa - (gpa % 16);
  s.cs = seg((base / 16) & 0xffff, BigInt(base));
  s.rip = BigInt(gpa - base);
  return s;
}

/** Flat guest-physical address of the next instruction: CS base + RIP. */
export function vmsaEntryGpa(s: VmsaState): bigint {
  return BigInt.asUintN(64, s.cs.base + s.rip);
}

export function encodeVmsa(s: VmsaState): Uint8Array {
  const b = new Uint8Array(VMSA_BYTES);
  const dv = new DataView(b.buffer);
  const u64 = (off: number, v: bigint): void => dv.setBigUint64(off, BigInt.asUintN(64, v), true);
  const putSeg = (off: number, g: VmsaSegment): void => {
    dv.setUint16(off, g.selector & 0xffff, true);
    dv.setUint32(off + 4, 0xffff, true);
    u64(off + 8, g.base);
  };
  putSeg(VMSA_OFF_ES, s.es); putSeg(VMSA_OFF_CS, s.cs); putSeg(VMSA_OFF_SS, s.ss);
  putSeg(VMSA_OFF_DS, s.ds); putSeg(VMSA_OFF_FS, s.fs); putSeg(VMSA_OFF_GS, s.gs);
  dv.setUint8(VMSA_OFF_VMPL, s.vmpl & 0xff);
  u64(VMSA_OFF_EFER, s.efer); u64(VMSA_OFF_CR4, s.cr4); u64(VMSA_OFF_CR3, s.cr3); u64(VMSA_OFF_CR0, s.cr0);
  u64(VMSA_OFF_RFLAGS, s.rflags); u64(VMSA_OFF_RIP, s.rip); u64(VMSA_OFF_RSP, s.rsp); u64(VMSA_OFF_RAX, s.rax);
  GPR_ORDER.forEach((n, i) => { if (n !== null) u64(GPR_BLOCK + i * 8, s.gprs[n]); });
  u64(VMSA_OFF_SEV_FEATURES, s.sevFeatures);
  return b;
}

export function decodeVmsa(b: Uint8Array): VmsaState {
  if (b.length < VMSA_BYTES) throw new RangeError(`Cannot decode VMSA: ${b.length} bytes, need ${VMSA_BYTES}`);
  const dv = new DataView(b.buffer, b.byteOffset, VMSA_BYTES);
  const u64 = (off: number): bigint => dv.getBigUint64(off, true);
  const getSeg = (off: number): VmsaSegment => seg(dv.getUint16(off, true), u64(off + 8));
  const gprs = zeroGprs();
  GPR_ORDER.forEach((n, i) => { if (n !== null) gprs[n] = u64(GPR_BLOCK + i * 8); });
  return {
    es: getSeg(VMSA_OFF_ES), cs: getSeg(VMSA_OFF_CS), ss: getSeg(VMSA_OFF_SS),
    ds: getSeg(VMSA_OFF_DS), fs: getSeg(VMSA_OFF_FS), gs: getSeg(VMSA_OFF_GS),
    vmpl: dv.getUint8(VMSA_OFF_VMPL), efer: u64(VMSA_OFF_EFER), cr0: u64(VMSA_OFF_CR0), cr3: u64(VMSA_OFF_CR3), cr4: u64(VMSA_OFF_CR4),
    rflags: u64(VMSA_OFF_RFLAGS), rip: u64(VMSA_OFF_RIP), rsp: u64(VMSA_OFF_RSP), rax: u64(VMSA_OFF_RAX),
    gprs, sevFeatures: u64(VMSA_OFF_SEV_FEATURES),
  };
}

/** The VMSA image of a CPU's register file (plus what RegisterFile lacks). */
export function vmsaFromRegisters(r: RegisterFile, extra: { csBase: bigint; cr0: bigint; cr3: bigint; cr4: bigint; efer: bigint; sevFeatures: bigint; vmpl: number }): VmsaState {
  const gprs = zeroGprs();
  for (const n of GPR_ORDER) if (n !== null) gprs[n] = r[n];
  const sel = (v: bigint): number => Number(v & 0xffffn);
  return {
    es: seg(sel(r.es), 0n), cs: seg(sel(r.cs), extra.csBase), ss: seg(sel(r.ss), 0n), ds: seg(sel(r.ds), 0n),
    fs: seg(sel(r.fs), r.fs_base), gs: seg(sel(r.gs), r.gs_base),
    vmpl: extra.vmpl, efer: extra.efer, cr0: extra.cr0, cr3: extra.cr3, cr4: extra.cr4,
    rflags: r.eflags, rip: r.rip, rsp: r.rsp, rax: r.rax, gprs, sevFeatures: extra.sevFeatures,
  };
}

/** Writes VMSA state into a register file (the parts it holds). */
export function applyVmsaToRegisters(s: VmsaState, r: RegisterFile): void {
  for (const n of GPR_ORDER) if (n !== null) r[n] = s.gprs[n];
  r.rax = s.rax; r.rsp = s.rsp; r.rip = s.rip; r.eflags = s.rflags;
  r.cs = BigInt(s.cs.selector); r.ss = BigInt(s.ss.selector); r.ds = BigInt(s.ds.selector);
  r.es = BigInt(s.es.selector); r.fs = BigInt(s.fs.selector); r.gs = BigInt(s.gs.selector);
  r.fs_base = s.fs.base; r.gs_base = s.gs.base;
}
