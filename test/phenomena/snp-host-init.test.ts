// Seed 001: how a host kernel finds, sizes, clears and enables the RMP, and
// what the firmware does to it at SNP_INIT.
import { describe, expect, it } from 'vitest';
import { loadScenarioFile } from '../../src/scenario/load.js';
import { runScenario } from '../../src/scenario/run.js';
import type { Machine } from '../../src/platform/machine.js';
import { MSR_AMD64_SYSCFG, SYSCFG_SNP_EN, MSR_AMD64_RMP_BASE } from '../../src/platform/cpu/msr.js';
import { rmpEntryAddress, readRmpEntry, decodeRmpEntry } from '../../src/platform/snp/rmp.js';
import type { Scenario } from '../../src/scenario/schema.js';
import type { FirstKernel } from '../../src/kernel/first-kernel.js';
import { writeVirt } from '../../src/kernel/virtual-access.js';
import { PAGE_OFFSET } from '../../src/kernel/layout.js';
import { PF_RMP } from '../../src/platform/cpu/paging.js';
import { pspCommand } from '../../src/kernel/snp-host.js';
import { SEV_CMD_SHUTDOWN, SEV_CMD_SNP_SHUTDOWN_EX, SEV_RET_DFFLUSH_REQUIRED } from '../../src/platform/psp/sev-codes.js';

function run(file: string, tweak: (s: Scenario) => void = () => {}) {
  const s = loadScenarioFile(`scenarios/${file}`);
  s.workload.pages = 1000;
  tweak(s);
  let m: Machine | undefined;
  let k: FirstKernel | undefined;
  const r = runScenario(s, { onMachine: (mm, kk) => { m = mm; k = kk; } });
  return { r, m: m!, k: k! };
}

describe('SNP host initialisation', () => {
  const { r, m } = run('snp-host-boot.yaml');
  const loc = m.rmp!;
  const pspPfn = m.e820.filter((e) => e.type === 'reserved').reduce((a, e) => Math.max(a, e.addr), 0) / 4096;

  it('probes the RMP the BIOS reserved and enables SNP on every CPU', () => {
    expect(r.expectation?.met).toBe(true);
    expect(r.logs.firstKernel).toContainEqual(expect.stringContaining(`SEV-SNP: RMP table physical range [0x${loc.base.toString(16).padStart(16, '0')} - 0x${loc.end.toString(16).padStart(16, '0')}]`));
    for (const c of m.cpus) expect(c.rdmsr(MSR_AMD64_SYSCFG) & SYSCFG_SNP_EN).toBe(SYSCFG_SNP_EN);
    // WBINVD on every CPU before SNP_EN, as the firmware requires
    expect(m.trace.find('wbinvd').filter((e) => e.detail.includes('before SNP is enabled'))).toHaveLength(m.cpus.length);
  });

  it('the RMP entry of a firmware page, read from memory at RMP_BASE + 0x4000 + 16 * pfn, is assigned and immutable', () => {
    const at = rmpEntryAddress(loc.base, pspPfn);
    expect(at).toBe(loc.base + 0x4000 + 16 * pspPfn);
    const raw = new Uint8Array(16);
    m.mc.read(at, raw);
    const dv = new DataView(raw.buffer);
    const e = decodeRmpEntry(dv.getBigUint64(0, true), dv.getBigUint64(8, true));
    expect(e.assigned).toBe(true);
    expect(e.immutable).toBe(true);
    expect(e.asid).toBe(0);
    expect(readRmpEntry(m.mc, loc, pspPfn)).toEqual(e);
  });

  it('a host write and a DMA write to a firmware-owned page are refused and do not land', () => {
    const pa = pspPfn * 4096;
    const before = new Uint8Array(64);
    m.mc.read(pa, before);
    const w = m.mc.write(pa, new Uint8Array(64).fill(0x5a), { kind: 'cpu', id: 0 });
    expect(w.ok).toBe(false);
    const d = m.dma.write('00:03.0', pa, new Uint8Array(64).fill(0x5a));
    expect(d.ok).toBe(false);
    const after = new Uint8Array(64);
    m.mc.read(pa, after);
    expect(Buffer.compare(before, after)).toBe(0);
  });

  it('the RMP MSRs are locked once SNP_EN is set', () => {
    const cpu = m.cpus[1]!;
    const old = cpu.rdmsr(MSR_AMD64_RMP_BASE);
    cpu.wrmsr(MSR_AMD64_RMP_BASE, 0x1000_0000n);
    expect(cpu.rdmsr(MSR_AMD64_RMP_BASE)).toBe(old);
  });

  it('the PSP commands ran in order and succeeded', () => {
    const cmds = m.trace.find('psp-command').map((e) => e.detail);
    expect(cmds[0]).toMatch(/^SNP_INIT_EX -> SUCCESS/);
    expect(cmds[1]).toMatch(/^SNP_DF_FLUSH -> SUCCESS/);
  });
});

describe('SNP guests on the host', () => {
  const { m, k } = run('snp-host-boot.yaml');
  const g = k.snpGuests[0]!;

  it('the guest pages are assigned to the guest ASID in the RMP', () => {
    expect(k.snpGuests).toHaveLength(2);
    const e = readRmpEntry(m.mc, m.rmp!, g.memory / 4096 + 3);
    expect(e).toMatchObject({ assigned: true, asid: g.asid, gpa: 3 * 4096 });
  });

  it('a hypervisor write to a guest page faults with the RMP bit in the #PF error code and does not land', () => {
    const before = new Uint8Array(32);
    m.mc.read(g.memory, before);
    const w = writeVirt(m.mc, m.bsp, PAGE_OFFSET + BigInt(g.memory), new Uint8Array(32).fill(0x77));
    expect(w.ok).toBe(false);
    if (!w.ok) expect((w.fault.errorCode & PF_RMP) >>> 0).toBe(PF_RMP);
    const after = new Uint8Array(32);
    m.mc.read(g.memory, after);
    expect(Buffer.compare(before, after)).toBe(0);
    expect(m.trace.find('rmp-violation').length).toBeGreaterThan(0);
  });

  it('a DMA write into guest memory is blocked', () => {
    expect(m.dma.write('00:03.0', g.memory + 4096, new Uint8Array(64)).ok).toBe(false);
  });

  it('SNP_SHUTDOWN_EX with guests still running returns DFFLUSH_REQUIRED (after the legacy SHUTDOWN the driver issues first)', () => {
    const buf = k.allocPage();
    expect(pspCommand(k, m.bsp, SEV_CMD_SHUTDOWN, buf)).toBe(0);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setUint32(0, 8, true);
    new DataView(b.buffer).setUint32(4, 1, true); // iommu_snp_shutdown
    k.mem.write(buf, b);
    expect(pspCommand(k, m.bsp, SEV_CMD_SNP_SHUTDOWN_EX, buf)).toBe(SEV_RET_DFFLUSH_REQUIRED);
  });
});

describe('SNP refused', () => {
  it('an RMP that does not cover all memory: the kernel says so and never sets SNP_EN', () => {
    const { r, m } = run('snp-rmp-too-small.yaml');
    expect(r.expectation?.met).toBe(true);
    expect(m.bsp.rdmsr(MSR_AMD64_SYSCFG) & SYSCFG_SNP_EN).toBe(0n);
    expect(m.trace.find('psp-command')).toHaveLength(0);
  });

  it('RMP_BASE left at 0: no RMP reserved by BIOS', () => {
    const { r, m } = run('snp-rmp-base-zero.yaml');
    expect(r.expectation?.met).toBe(true);
    expect(m.rmp).toBeUndefined();
  });

  it('firmware older than 1.51 rejects SNP_INIT_EX with the code the kernel logs', () => {
    const { r } = run('snp-host-boot.yaml', (s) => {
      s.machine.cpu.snp = { firmware: '1.49', rmp: 'reserved', guests: 0, guestPages: 256, guestVcpus: 1 };
      delete s.expect;
    });
    expect(r.logs.firstKernel).toContainEqual(expect.stringContaining('ccp 0000:23:00.1: SEV-SNP: failed to INIT rc -5, error 0x11'));
  });

  it('a pre-SNP-host kernel on the same machine leaves SNP off', () => {
    const { r, m } = run('snp-host-boot.yaml', (s) => {
      s.firstKernel.profile = 'linux-6.1';
      delete s.expect;
    });
    expect(m.bsp.rdmsr(MSR_AMD64_SYSCFG) & SYSCFG_SNP_EN).toBe(0n);
    expect(r.logs.firstKernel.some((l) => l.includes('SEV-SNP'))).toBe(false);
  });
});
