import { describe, it, expect } from 'vitest';
import { rmpupdate, type RmpState } from '../../../src/platform/snp/rmp-instructions.js';
import { makePte, PTE_P, PTE_RW, PTE_PS, PF_RMP, PF_WRITE, PF_PRESENT } from '../../../src/platform/cpu/paging.js';
import { writeVirt, readVirt } from '../../../src/kernel/virtual-access.js';
import type { Machine } from '../../../src/platform/machine.js';
import { snpMachine, enableSnp } from './helpers.js';

const GUEST_PA = 0x10_0000;
const host = { kind: 'cpu', id: 0 } as const;
const private4k = (asid: number): RmpState => ({ gpa: 0x1000, assigned: true, pageSize: 0, immutable: false, asid });

function fill(n: number, v: number): Uint8Array {
  return new Uint8Array(n).fill(v);
}

function bytesAt(m: Machine, pa: number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  m.mc.read(pa, b);
  return b;
}

/** Identity-maps the first 64 MiB with 2 MiB pages: PML4 0x1000, PDPT 0x2000, PD 0x3000. */
function identityMap(m: Machine): void {
  const put = (pa: number, e: { lo: number; hi: number }): void => {
    const b = new Uint8Array(8);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, e.lo, true);
    dv.setUint32(4, e.hi, true);
    m.mc.write(pa, b, host);
  };
  put(0x1000, makePte(0x2000, PTE_P | PTE_RW));
  put(0x2000, makePte(0x3000, PTE_P | PTE_RW));
  for (let i = 0; i < 32; i++) put(0x3000 + i * 8, makePte(i * 2 ** 21, PTE_P | PTE_RW | PTE_PS));
  m.bsp.cr3 = 0x1000;
}

/** A machine with SNP on and one 4 KiB page assigned to guest ASID 1, holding 0x5a bytes. */
function withGuestPage(): Machine {
  const m = snpMachine({ cpus: 1 });
  identityMap(m);
  m.mc.write(GUEST_PA, fill(4096, 0x5a), host);
  enableSnp(m);
  expect(rmpupdate(m, m.bsp, GUEST_PA, private4k(1))).toEqual({ ok: true, rc: 0 });
  return m;
}

describe('RMP check on writes once SNP is enabled', () => {
  it('a hypervisor write to a guest-assigned page is refused and the bytes do not land', () => {
    const m = withGuestPage();
    const r = m.mc.write(GUEST_PA + 0x10, fill(8, 0xee), host);
    expect(r).toMatchObject({ ok: false, fault: 'rmp-violation', pa: GUEST_PA + 0x10 });
    expect(bytesAt(m, GUEST_PA, 4096).every((b) => b === 0x5a)).toBe(true);
    expect(m.mc.writesRefused).toBe(1);
    const ev = m.trace.find('rmp-violation', 'cpu0');
    expect(ev).toHaveLength(1);
    expect(ev[0]!.detail).toContain('PFN 0x100');
    // The neighbouring hypervisor page is still writable.
    expect(m.mc.write(GUEST_PA + 4096, fill(8, 1), host)).toEqual({ ok: true });
  });

  it('a write spanning a hypervisor page and a guest page is refused whole', () => {
    const m = withGuestPage();
    expect(m.mc.write(GUEST_PA - 4, fill(8, 0xee), host).ok).toBe(false);
    expect(bytesAt(m, GUEST_PA - 4, 4)).toEqual(new Uint8Array(4));
  });

  it('zero() is checked too', () => {
    const m = withGuestPage();
    expect(m.mc.zero(GUEST_PA, 4096, host)).toMatchObject({ ok: false, fault: 'rmp-violation' });
    expect(bytesAt(m, GUEST_PA, 4096).every((b) => b === 0x5a)).toBe(true);
  });

  it('writeVirt reports #PF with the RMP bit in the error code, naming the PFN', () => {
    const m = withGuestPage();
    const r = writeVirt(m.mc, m.bsp, BigInt(GUEST_PA + 0x20), fill(16, 0xee));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.va).toBe(BigInt(GUEST_PA + 0x20));
    expect(r.fault.fault).toBe('rmp-violation');
    expect(r.fault.errorCode).toBe((PF_RMP | PF_WRITE | PF_PRESENT) >>> 0);
    expect(r.fault.errorCode & PF_RMP).not.toBe(0);
    expect(r.fault.detail).toContain('PFN 0x100');
    const back = new Uint8Array(16);
    expect(readVirt(m.mc, m.bsp, BigInt(GUEST_PA + 0x20), back)).toEqual({ ok: true });
    expect(back.every((b) => b === 0x5a)).toBe(true);
  });

  it('a DMA write to a guest-assigned page is blocked', () => {
    const m = withGuestPage();
    const r = m.dma.write('nic0', GUEST_PA, fill(64, 0xdd));
    expect(r).toMatchObject({ ok: false, fault: 'rmp-violation' });
    expect(bytesAt(m, GUEST_PA, 64).every((b) => b === 0x5a)).toBe(true);
    expect(m.trace.find('rmp-violation', 'nic0')).toHaveLength(1);
  });

  it('firmware-owned (immutable) pages and assigned 2 MiB pages are refused as well', () => {
    const m = withGuestPage();
    rmpupdate(m, m.bsp, 0x30_0000, { gpa: 0, assigned: true, pageSize: 0, immutable: true, asid: 0 });
    rmpupdate(m, m.bsp, 0x40_0000, { gpa: 0, assigned: true, pageSize: 1, immutable: false, asid: 2 });
    const fw = m.mc.write(0x30_0000, fill(4, 1), host);
    expect(!fw.ok && fw.detail).toContain('firmware-owned');
    expect(m.mc.write(0x40_0000 + 0x1f_f000, fill(4, 1), { kind: 'device', name: 'nic0' }).ok).toBe(false);
  });

  it('a guest may write its own pages but not another guest\'s', () => {
    const m = withGuestPage();
    expect(m.mc.write(GUEST_PA, fill(4, 1), { kind: 'cpu', id: 0, asid: 1 })).toEqual({ ok: true });
    expect(m.mc.write(GUEST_PA, fill(4, 1), { kind: 'cpu', id: 0, asid: 2 }).ok).toBe(false);
  });

  it('pages made shared again are writable', () => {
    const m = withGuestPage();
    rmpupdate(m, m.bsp, GUEST_PA, { gpa: 0, assigned: false, pageSize: 0, immutable: false, asid: 0 });
    expect(m.mc.write(GUEST_PA, fill(4, 1), host)).toEqual({ ok: true });
  });
});

describe('with SNP off nothing is checked', () => {
  it('writes to pages whose RMP entries say assigned land, and the controller has no guard', () => {
    const m = snpMachine({ cpus: 1 });
    identityMap(m);
    // Entries written as they would be left by a previous boot; SNP_EN is clear on this one.
    enableSnp(m);
    rmpupdate(m, m.bsp, GUEST_PA, private4k(1));
    const fresh = snpMachine({ cpus: 1 });
    identityMap(fresh);
    fresh.dram.write(fresh.rmp!.base, bytesAt(m, m.rmp!.base, 0x4000 + 16 * 0x101));
    expect(fresh.snpEnabled).toBe(false);
    expect(fresh.mc.writeGuarded).toBe(false);
    expect(fresh.mc.write(GUEST_PA, fill(4, 0xee), host)).toEqual({ ok: true });
    expect(writeVirt(fresh.mc, fresh.bsp, BigInt(GUEST_PA + 4), fill(4, 0xee))).toEqual({ ok: true });
    expect(fresh.dma.write('nic0', GUEST_PA + 8, fill(4, 0xee)).ok).toBe(true);
    expect(bytesAt(fresh, GUEST_PA, 12)).toEqual(fill(12, 0xee));
  });
});
