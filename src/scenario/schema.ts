// The scenario language: one zod schema is the source of truth; the JSON
// Schema in schema/scenario.schema.json is generated from it.

import { z } from 'zod';
import { parseDuration, parseSize } from '../util/units.js';
import { KERNEL_PROFILES } from '../kernel/profile.js';
import { MACHINE_PRESET_NAMES } from './presets.js';

const size = z
  .union([z.string().regex(/^(0[xX][0-9a-fA-F]+|[0-9]+)[kKmMgGtTpPeE]?$/, { error: 'Expected a size such as "256M", "8G" or a byte count' }), z.number().int().nonnegative()])
  .refine((v) => parseSize(v) !== undefined, { message: 'Expected a size such as "256M", "8G" or a byte count' })
  .describe('A size: bytes, or a number with a K, M, G or T suffix ("256M", "8G")');

const duration = z
  .union([z.string().regex(/^\d+(\.\d+)?\s*(ns|us|ms|s)$/, { error: 'Expected a duration such as "100us", "5ms" or "1s"' }), z.number().nonnegative()])
  .refine((v) => parseDuration(v) !== undefined, { message: 'Expected a duration such as "100us", "5ms" or "1s"' })
  .describe('A duration: nanoseconds, or a number with ns, us, ms or s ("100us", "1.5s")');

const profileIds = Object.keys(KERNEL_PROFILES) as [string, ...string[]];
const profileId = z
  .enum(profileIds, { error: () => `Expected a kernel profile: ${profileIds.join(', ')}` })
  .describe(`Kernel profile: ${profileIds.join(', ')}`);

export const VERDICTS = ['dump-complete', 'dump-partial', 'no-dump', 'crash-kernel-panic', 'crash-kernel-hang', 'kexec-refused', 'no-crash-kernel', 'first-kernel-failed'] as const;
export type Verdict = (typeof VERDICTS)[number];

const nic = z.strictObject({
  kind: z.literal('rx-nic'),
  name: z.string().regex(/^[a-z][a-z0-9-]*$/).default('nic0'),
  bdf: z.string().regex(/^[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/, { message: 'Expected a PCI address such as "00:03.0"' }).default('00:03.0'),
  packetInterval: duration.default('100us').describe('Time between received packets'),
  packetBytes: z.number().int().min(64).max(2048).default(1514),
  ringEntries: z.number().int().min(8).max(4096).default(256).describe('RX descriptors the first kernel hands the device'),
  dmaAddressBits: z.number().int().min(24).max(64).optional()
    .describe('Address bits the device drives (its DMA mask, default 64): behind an IOMMU its IOVAs come from below 2^bits (and below 4 GiB first)'),
  captureDriver: z.enum(['reset', 'none']).default('none')
    .describe('The capture kernel\'s driver for the device: reset (it probes the device, resets it when reset_devices is on the command line, then makes its first DMA map, which attaches a new IOMMU domain); none (nothing touches it: it keeps DMAing through whatever translation it finds)'),
});

const storage = z.strictObject({
  kind: z.literal('storage'),
  name: z.string().regex(/^[a-z][a-z0-9-]*$/).default('disk0'),
  bdf: z.string().regex(/^[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/, { message: 'Expected a PCI address such as "00:04.0"' }).default('00:04.0'),
  queueEntries: z.number().int().min(4).max(4096).default(256).describe('Command slots; the first kernel keeps all but one queued'),
  ioBytes: z.number().int().min(512).max(1 << 20).multipleOf(512).default(16384).describe('Bytes per command (reads and writes in turn)'),
  rate: size.default('16M').describe('Bytes per second the controller moves between disk and memory'),
  dmaAddressBits: z.number().int().min(24).max(64).optional().describe('Address bits the device drives (its DMA mask, default 64)'),
  rmrr: z.strictObject({
    base: size.default(0xe8000).describe('Start of the range (page aligned)'),
    size: size.default(4096).describe('Its length (a multiple of 4K)'),
    interval: duration.default('1ms').describe('How often the device\'s firmware writes its status record there'),
  }).optional().describe('A firmware-declared RMRR for the device (ACPI DMAR table): memory its firmware writes by DMA at the range\'s own address, which the IOMMU driver must identity-map'),
});

/** When in the run a fault strikes. */
export const FAULT_PHASES = ['before-panic', 'nmi-shootdown', 'purgatory', 'crash-kernel-init'] as const;
export type FaultPhase = (typeof FAULT_PHASES)[number];
const phase = z.enum(FAULT_PHASES).describe(
  'before-panic: after kexec load, before the crash; nmi-shootdown: while the panicking CPU stops the others; ' +
  'purgatory: after purgatory verified the segments, before it jumps; crash-kernel-init: as the capture kernel starts',
);

export const KEXEC_SEGMENTS = ['elfcorehdr', 'purgatory', 'boot_params', 'kernel', 'initrd'] as const;
/** Out-of-tree patches a scenario can apply to its first kernel. */
export const KERNEL_PATCHES = ['snp-kdump-decommission-v1', 'snp-kdump-decommission-v2'] as const;
/** SEV commands a fault can make fail. */
export const PSP_FAULT_COMMANDS = ['SHUTDOWN', 'SNP_SHUTDOWN_EX', 'SNP_DF_FLUSH', 'SNP_INIT_EX', 'SNP_DECOMMISSION'] as const;
export const PSP_FAULT_STATUSES = ['INVALID_PLATFORM_STATE', 'INVALID_CONFIG', 'WBINVD_REQUIRED', 'DFFLUSH_REQUIRED', 'HWSEV_RET_UNSAFE', 'RESOURCE_LIMIT', 'SHUTDOWN_INCOMPLETE'] as const;

const fault = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('stray-dma').describe('A device writes where nobody pointed it (DMA ignores page protections)'),
    target: z.union([z.enum(KEXEC_SEGMENTS), z.strictObject({ pa: size })]).describe('A kexec segment, or a physical address'),
    offset: size.default(0).describe('Offset into the target'),
    length: z.number().int().min(1).max(1 << 20).default(64),
    phase: phase.default('before-panic'),
    device: z.string().default('stray-dma'),
  }),
  z.strictObject({
    kind: z.literal('cpu-ignores-nmi').describe('A CPU that does not take the crash NMI (NMIs blocked, e.g. stuck in an NMI handler)'),
    cpu: z.number().int().nonnegative(),
  }),
  z.strictObject({
    kind: z.literal('psp-command-fails').describe('The SEV firmware answers the next command of this kind with an error code and changes nothing'),
    command: z.enum(PSP_FAULT_COMMANDS).describe('The SEV command that fails'),
    status: z.union([z.enum(PSP_FAULT_STATUSES), z.number().int().min(1).max(0xffff)]).describe('The firmware status it returns: a name or a number'),
    phase: z.enum(['boot', ...FAULT_PHASES]).default('before-panic')
      .describe('As for other faults, plus boot: armed before the first kernel boots, so its SNP_INIT_EX (or any boot-time command) can fail'),
  }),
  z.strictObject({
    kind: z.literal('iommu-torn-write').describe('Half of the next write to an AMD IOMMU base register never arrives (a torn two-half 64-bit write)'),
    register: z.enum(['DevTabBase', 'CmdBufBase', 'EventLogBase', 'CompletionStoreBase', 'CompletionStoreLimit']),
    half: z.enum(['low', 'high']).default('low'),
    phase: phase.default('crash-kernel-init'),
  }),
  z.strictObject({
    kind: z.literal('crashkernel-size').describe('The crashkernel= reservation replaced by this size: too small to load, or to run the capture kernel'),
    size: z.string().regex(/^(0[xX][0-9a-fA-F]+|[0-9]+)[kKmMgGtT]?$/, { error: 'Expected a size such as "64M"' }),
  }),
]);
export type Fault = z.output<typeof fault>;

const ORACLE_FIELDS = ['pagesExpected', 'pagesCaptured', 'pagesCorrect', 'pagesMissing', 'pagesCiphertext', 'pagesChangedAfterPanic', 'pagesWrong'] as const;
export type OracleField = (typeof ORACLE_FIELDS)[number];
const figure = z.union([
  z.number().int().nonnegative(),
  z.string().regex(/^(==|!=|>=|<=|>|<)\s*\d+$/, { error: 'Expected a number or a comparison such as ">0" or "<=10"' }),
]);

const expectSchema = z.strictObject({
  verdict: z.enum(VERDICTS).optional(),
  logs: z.strictObject({
    firstKernel: z.array(z.string()).optional().describe('Substrings that must each appear in some first-kernel log line'),
    crashKernel: z.array(z.string()).optional().describe('Substrings that must each appear in some capture-kernel log line'),
  }).optional(),
  chain: z.array(z.string()).optional().describe('Substrings that must appear in the causal chain, in this order'),
  oracle: z.partialRecord(z.enum(ORACLE_FIELDS), figure).optional().describe('Page figures that must hold'),
});
export type Expect = z.output<typeof expectSchema>;

export const scenarioSchema = z.strictObject({
  $schema: z.string().optional(),
  extends: z.string().optional().describe('Another scenario file (relative to this one) this one refines; maps merge, lists are replaced'),
  name: z.string().min(1),
  description: z.string().optional(),
  seed: z.number().int().nonnegative().default(1),
  machine: z.strictObject({
    preset: z.enum(MACHINE_PRESET_NAMES).optional().describe('A machine preset whose fields fill in what this file leaves out'),
    memory: size.optional().describe('DRAM size (required unless the preset sets it)'),
    cpus: z.number().int().min(1).max(1024).default(4),
    cpu: z.strictObject({
      vendor: z.enum(['amd', 'intel']).default('amd'),
      memoryEncryption: z.enum(['none', 'supported', 'enabled']).default('none')
        .describe('AMD SME/SEV: none; supported (CPUID reports it, firmware left SYSCFG[MemEncryptionModEn] clear); enabled (firmware set it)'),
      cbit: z.number().int().min(32).max(51).default(47).describe('The page-table bit that selects encryption (CPUID Fn8000_001F EBX[5:0])'),
      snp: z.strictObject({
        firmware: z.string().regex(/^\d+\.\d+$/, { error: 'Expected a SEV firmware API version such as "1.55"' }).default('1.55')
          .describe('SEV firmware API version (SNP needs 1.51; 1.53 reclaims IOMMU pages at SNP shutdown)'),
        rmp: z.enum(['reserved', 'too-small', 'none']).default('reserved')
          .describe('What the BIOS reserved for the RMP: enough for all memory, half of that, or nothing (RMP_BASE/RMP_END left 0)'),
        guests: z.number().int().min(0).max(64).default(0).describe('SNP guests KVM runs on the host'),
        guestPages: z.number().int().min(1).max(1 << 20).default(256).describe('Pages of memory each guest has assigned in the RMP'),
        guestVcpus: z.number().int().min(1).max(64).default(2).describe('vCPUs per guest: each has a VMSA page, assigned to the guest and marked VMSA in the RMP'),
      }).optional().describe('SEV-SNP: CPUID reports it, the BIOS reserves the RMP, the PSP runs SEV firmware'),
    }).prefault({}),
    iommu: z.strictObject({
      kind: z.enum(['amd', 'intel']).describe('amd: an AMD IOMMU (AMD-Vi); intel: an Intel VT-d unit; either translates device DMA and remaps the IO-APIC\'s interrupts'),
      snpSupport: z.boolean().default(true).describe('AMD: the IOMMU reports SNPSup (EFR bit 63); SNP needs it'),
      scalableMode: z.boolean().optional().describe('Intel: the unit supports scalable-mode translation (ECAP.SMTS); a kernel uses it with intel_iommu=sm_on'),
    }).optional().describe('An IOMMU in front of the devices; absent: devices reach memory directly'),
    devices: z.array(z.discriminatedUnion('kind', [nic, storage])).default([]),
  }).superRefine((m, ctx) => {
    if (m.memory === undefined) ctx.addIssue({ code: 'custom', path: ['memory'], message: 'machine.memory is required (or a machine.preset that sets it)' });
  }),
  firstKernel: z.strictObject({
    profile: profileId.default('linux-6.1'),
    cmdline: z.string().default('root=/dev/vda1 ro crashkernel=256M'),
    crashkernel: z.string().optional().describe('Sets crashkernel= on the command line (any form the kernel accepts: "256M", "1G-4G:192M,4G-:256M", "512M,high")'),
    patches: z.array(z.enum(KERNEL_PATCHES)).default([])
      .describe('Patches that never landed upstream, applied to this kernel: snp-kdump-decommission-v1 / -v2 (the 2024 "x86/sev: Fix host kdump support for SNP" posts)'),
  }).prefault({}),
  crashKernel: z.strictObject({
    profile: profileId.default('linux-6.1'),
    cmdline: z.string().default('root=/dev/vda1 irqpoll nr_cpus=1 reset_devices'),
    kernelSize: size.default('4M').describe('Size of the capture kernel image (bzImage) segment'),
    initrdSize: size.default('16M').describe('Size of the capture initramfs segment'),
    minMemory: size.default('96M').describe('Memory the capture kernel and its initramfs need to save the dump'),
    loaded: z.boolean().default(true)
      .describe('Whether user space (the kdump service) loaded the capture kernel with kexec -p; false: the panic finds no crash image (/sys/kernel/kexec_crash_loaded reads 0)'),
  }).prefault({}),
  kexecReboot: z.strictObject({
    profile: profileId.describe('The kernel kexec -e starts'),
    cmdline: z.string().optional().describe('Its command line (default: the first kernel\'s)'),
    guests: z.enum(['stopped', 'running']).default('stopped')
      .describe('SNP guests at kexec -e: stopped by user space first (decommissioned, pages returned), or still running'),
  }).optional().describe('After the workload, kexec -e into this kernel, which then runs the workload and crashes'),
  workload: z.strictObject({
    pages: z.number().int().min(0).max(4_000_000).default(16384).describe('Pages the workload allocates and fills'),
  }).prefault({}),
  panic: z.strictObject({
    after: duration.default('1s').describe('Time from the end of the workload to the panic'),
    cpu: z.number().int().nonnegative().default(1),
    trigger: z.enum(['sysrq', 'oops']).default('sysrq'),
  }).prefault({}),
  faults: z.array(fault).default([]),
  guest: z.strictObject({
    type: z.enum(['sev-es', 'snp']).describe('The guest: SEV-ES (encrypted register state, APs parked through the AP jump table) or SEV-SNP (RMP-validated memory, AP creation)'),
    vcpus: z.number().int().min(1).max(64).default(2),
    memory: size.default('32M').describe('Guest RAM from GPA 0; the top 4 MiB is the crash kernel reservation'),
    ghcbVersion: z.number().int().min(1).max(2).default(2).describe('Highest GHCB protocol version the hypervisor offers (it offers 1..this)'),
    jumpTableAbove4G: z.boolean().default(false).describe('SEV-ES: the guest firmware puts the AP jump table at GPA 4 GiB (guest.memory must reach past it)'),
    profile: profileId.default('linux-6.18').describe('The guest kernel that boots and panics'),
    kexecProfile: profileId.optional().describe('The kernel it kexecs into: the capture kernel, and with kexecReboot also the kernel kexec -e starts (default: the same)'),
    workloadPages: z.number().int().min(0).max(2048).default(256).describe('Private pages the guest workload fills: the oracle checks each'),
    kexecReboot: z.boolean().default(false).describe('The first kernel does a plain kexec -e into a kernel of kexecProfile, which brings its APs up, runs the workload and is the one that panics and kdumps'),
  }).optional().describe('Run one SEV-ES or SNP guest instead of a host: the guest kernel boots, panics and kdumps inside the encrypted VM'),
  expect: expectSchema.optional(),
});

export type ScenarioInput = z.input<typeof scenarioSchema>;
export type Scenario = z.output<typeof scenarioSchema>;

/** The published JSON Schema (draft 2020-12), describing what a file may contain. */
export function scenarioJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(scenarioSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}
