// SEV-SNP host bring-up as the kernel does it: probe the RMP the BIOS
// reserved (snp_probe_rmptable_info), keep kexec'd kernels off RMP-adjacent
// RAM (snp_fixup_e820_tables), then at initcall time clear the table and set
// SNP_EN on every CPU — or skip all that when SNP_EN is already set, which is
// what a kexec'd kernel finds (snp_rmptable_init) — and finally have the CCP
// driver initialise the firmware through the PSP mailbox.

import type { Cpu } from '../platform/cpu/cpu.js';
import { CPUID_ECX_HYPERVISOR, CPUID_MEM_ENCRYPT_LEAF, CPUID_MEM_ENCRYPT_SNP } from '../platform/cpu/cpuid.js';
import { MSR_AMD64_SYSCFG, SYSCFG_MEM_ENCRYPT, SYSCFG_MFDM, SYSCFG_SNP_EN, SYSCFG_SNP_VMPL_EN, MSR_VM_HSAVE_PA } from '../platform/cpu/msr.js';
import { wbinvd } from '../platform/cpu/wbinvd.js';
import { rmpLocationOf, RMP_BOOKKEEPING_BYTES } from '../platform/snp/rmp.js';
import { PSP_MMIO_BASE } from '../platform/psp/psp-attach.js';
import { PSP_CMDRESP, PSP_CMDBUFF_ADDR_LO, PSP_CMDBUFF_ADDR_HI, CMDRESP_RESP, CMDRESP_STS_MASK, CMDRESP_CMD_SHIFT } from '../platform/psp/psp-mailbox.js';
import { SEV_CMD_INIT, SEV_CMD_PLATFORM_STATUS, SEV_CMD_SNP_DF_FLUSH, SEV_CMD_SNP_INIT_EX, SNP_INIT_EX_INIT_RMP, SNP_INIT_EX_SIZE, sevCommandName } from '../platform/psp/sev-codes.js';
import { hexPad } from '../util/hex.js';
import type { FirstKernel } from './first-kernel.js';

const MiB2 = 2 ** 21;
/** The CCP (PSP) device's PCI address in its messages. */
export const CCP_DEV = 'ccp 0000:23:00.1';
/** psp_cmd_timeout: 100 s. */
const PSP_CMD_TIMEOUT_NS = 100e9;

export interface SnpHostState {
  /** The RMP probe passed and this kernel runs SNP (CC_ATTR_HOST_SEV_SNP). */
  active: boolean;
  /** The IOMMU driver accepted SNP (amd_iommu_snp_en): the IOMMU is on and translating. */
  iommuSnp: boolean;
  /** SNP_EN was already set: the table was kept (kexec). */
  skippedEnable: boolean;
  /** SNP_INIT_EX (and SNP_DF_FLUSH) succeeded: the driver's snp_initialized. */
  firmwareInitialized: boolean;
  /** Legacy SEV INIT succeeded: the driver's sev->state != SEV_STATE_UNINIT. */
  sevInitialized: boolean;
}

/** Early boot (setup_arch): is SNP possible, and where is the RMP? Logs per the kernel. */
export function snpProbe(k: FirstKernel): SnpHostState {
  const state: SnpHostState = { active: false, iommuSnp: false, skippedEnable: false, firmwareInitialized: false, sevInitialized: false };
  const cpu = k.machine.bsp;
  if (!k.profile.mechanisms.snpHost) return state;
  if (cpu.cpuid(0x8000_0000)[0] < CPUID_MEM_ENCRYPT_LEAF) return state;
  if ((cpu.cpuid(CPUID_MEM_ENCRYPT_LEAF)[0] & CPUID_MEM_ENCRYPT_SNP) === 0) return state;
  if ((cpu.cpuid(1)[2] & CPUID_ECX_HYPERVISOR) !== 0) return state;
  if (k.profile.mechanisms.sevNoSnpParam && k.cmdline.options('sev').includes('nosnp')) {
    k.step('SEV-SNP off: sev=nosnp on the command line (no RMP init, no SNP_INIT)');
    return state;
  }
  if ((cpu.rdmsr(MSR_AMD64_SYSCFG) & SYSCFG_MEM_ENCRYPT) === 0n) {
    k.step('SEV-SNP not available: SYSCFG[MemEncryptionModEn] is clear');
    return state;
  }
  const base = cpu.rdmsr(0xc001_0132) & RMP_ADDR_MASK;
  const end = cpu.rdmsr(0xc001_0133) & RMP_ADDR_MASK;
  if (base === 0n || end === 0n) {
    k.log.printk('SEV-SNP: Memory for the RMP table has not been reserved by BIOS');
    k.step('SEV-SNP off: RMP_BASE/RMP_END are 0');
    return state;
  }
  if (base > end) {
    k.log.printk(`SEV-SNP: RMP configuration not valid: base=0x${base.toString(16)}, end=0x${end.toString(16)}`);
    return state;
  }
  const loc = rmpLocationOf(cpu)!;
  const probed = loc.end + 1 - loc.base;
  // calc_rmp_sz: an entry per PFN up to the end of RAM and of the RMP itself, plus the bookkeeping area.
  const maxPfn = Math.max(Math.floor(k.machine.dram.size / 4096), Math.ceil((loc.end + 1) / 4096));
  const need = maxPfn * 16 + RMP_BOOKKEEPING_BYTES;
  if (need > probed) {
    k.log.printk(`SEV-SNP: Memory reserved for the RMP table does not cover full system RAM (expected 0x${need.toString(16)} got 0x${probed.toString(16)})`);
    k.step(`SEV-SNP off: the RMP covers ${Math.floor((probed - RMP_BOOKKEEPING_BYTES) / 16)} PFNs, the machine has ${maxPfn}`);
    return state;
  }
  k.log.printk(`SEV-SNP: RMP table physical range [0x${hexPad(loc.base, 16)} - 0x${hexPad(loc.end, 16)}]`);
  // snp_fixup_e820_tables(): a 2 MiB chunk holding an unaligned RMP start or end is reserved too.
  for (const edge of [loc.base, loc.end + 1]) {
    if (edge % MiB2 === 0) continue;
    const chunk = edge - (edge % MiB2);
    k.log.printk(`SEV-SNP: Reserving start/end of RMP table on a 2MB boundary [0x${hexPad(chunk, 16)}]`);
    k.memblock.reserve(chunk, MiB2);
  }
  state.active = true;
  return state;
}

const RMP_ADDR_MASK = ((1n << 52n) - 1n) & ~((1n << 13n) - 1n);

/** snp_rmptable_init() at initcall time: clear and enable, or keep what a previous kernel left. */
export function snpRmptableInit(k: FirstKernel, state: SnpHostState): void {
  if (!state.active) return;
  const m = k.machine;
  const bsp = m.bsp;
  const snpEn = (bsp.rdmsr(MSR_AMD64_SYSCFG) & SYSCFG_SNP_EN) !== 0n;
  if (!state.iommuSnp) {
    // No amd_iommu_snp_en: host SNP is dropped (CC_ATTR_HOST_SEV_SNP cleared). SNP_EN, once set, is not.
    state.active = false;
    k.step(snpEn
      ? 'host SNP off in this kernel, but SYSCFG.SNP_EN is still set from the previous kernel: the RMP stays enforced'
      : 'host SNP off: the IOMMU did not accept SNP');
    return;
  }
  if (snpEn) {
    state.skippedEnable = true;
    k.step('SNP_EN already set (kexec): RMP kept as the previous kernel left it');
    return;
  }
  const loc = rmpLocationOf(bsp)!;
  m.mc.zero(loc.base, loc.end + 1 - loc.base, k.who);
  for (const c of m.cpus) wbinvd(c, m.clock.now, m.trace, 'RMP cleared, before SNP is enabled');
  for (const c of m.cpus) c.wrmsr(MSR_AMD64_SYSCFG, c.rdmsr(MSR_AMD64_SYSCFG) | SYSCFG_MFDM);
  for (const c of m.cpus) c.wrmsr(MSR_AMD64_SYSCFG, c.rdmsr(MSR_AMD64_SYSCFG) | SYSCFG_SNP_EN | SYSCFG_SNP_VMPL_EN);
  k.step(`RMP cleared; SNP_EN set on ${m.cpus.length} CPUs`, { cpus: m.cpus.length });
}

/** The CCP driver's SNP and SEV platform init (__sev_snp_init_locked, then legacy INIT). */
export function ccpSnpInit(k: FirstKernel, state: SnpHostState): void {
  const m = k.machine;
  if (!state.active || m.psp === undefined) return;
  for (const c of m.cpus) c.wrmsr(MSR_VM_HSAVE_PA, 0n);
  for (const c of m.cpus) wbinvd(c, m.clock.now, m.trace, 'before SNP_INIT');
  const buf = k.allocPage();
  const init = new Uint8Array(SNP_INIT_EX_SIZE);
  new DataView(init.buffer).setUint32(0, SNP_INIT_EX_INIT_RMP, true);
  k.mem.write(buf, init);
  const rc = pspCommand(k, m.bsp, SEV_CMD_SNP_INIT_EX, buf);
  if (rc !== 0) {
    k.log.printk(`${CCP_DEV}: SEV-SNP: failed to INIT rc -5, error 0x${rc.toString(16)}`);
    k.step(`SNP_INIT_EX failed: firmware status 0x${rc.toString(16)}`);
    return;
  }
  for (const c of m.cpus) wbinvd(c, m.clock.now, m.trace, 'after SNP_INIT');
  const flush = pspCommand(k, m.bsp, SEV_CMD_SNP_DF_FLUSH, 0);
  if (flush !== 0) k.log.printk(`${CCP_DEV}: SEV-SNP DF_FLUSH failed, ret = -5, error = 0x${flush.toString(16)}`);
  state.firmwareInitialized = true;
  const status = new Uint8Array(16);
  k.mem.write(buf, status);
  pspCommand(k, m.bsp, SEV_CMD_PLATFORM_STATUS, buf);
  k.mem.read(buf, status);
  const api = `${status[0]}.${status[1]} build:${status[7]}`;
  k.log.printk(`${CCP_DEV}: SEV-SNP API:${api}`);
  k.mem.zero(buf, 4096);
  const legacy = pspCommand(k, m.bsp, SEV_CMD_INIT, buf);
  if (legacy === 0) {
    state.sevInitialized = true;
    k.log.printk(`${CCP_DEV}: SEV API:${api}`);
  }
  k.step(`SNP_INIT_EX and SNP_DF_FLUSH succeeded (SEV API ${status[0]}.${status[1]}); the firmware owns its pages in the RMP`);
}

/**
 * sev_do_cmd(): place the buffer, ring the doorbell, poll CMDRESP (10 µs at
 * a time, as with interrupts off) until the firmware answers or 100 s pass.
 * Returns the firmware status.
 */
export function pspCommand(k: FirstKernel, cpu: Cpu, cmd: number, bufferPa: number): number {
  const m = k.machine;
  void cpu;
  m.mmio.write(PSP_MMIO_BASE + PSP_CMDBUFF_ADDR_LO, BigInt(bufferPa % 2 ** 32));
  m.mmio.write(PSP_MMIO_BASE + PSP_CMDBUFF_ADDR_HI, BigInt(Math.floor(bufferPa / 2 ** 32)));
  m.mmio.write(PSP_MMIO_BASE + PSP_CMDRESP, BigInt(cmd << CMDRESP_CMD_SHIFT));
  const deadline = m.clock.now + PSP_CMD_TIMEOUT_NS;
  for (;;) {
    const v = Number(m.mmio.read(PSP_MMIO_BASE + PSP_CMDRESP));
    if ((v & CMDRESP_RESP) !== 0) return v & CMDRESP_STS_MASK;
    if (m.clock.now >= deadline) {
      k.log.printk(`${CCP_DEV}: sev command 0x${cmd.toString(16)} timed out, disabling PSP`);
      k.step(`PSP command ${sevCommandName(cmd)} timed out`);
      return -1;
    }
    m.clock.advance(10_000);
  }
}
