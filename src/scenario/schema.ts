// The scenario language: one zod schema is the source of truth; the JSON
// Schema in schema/scenario.schema.json is generated from it.

import { z } from 'zod';
import { parseDuration, parseSize } from '../util/units.js';
import { KERNEL_PROFILES } from '../kernel/profile.js';

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

export const VERDICTS = ['dump-complete', 'dump-partial', 'no-dump', 'crash-kernel-panic', 'crash-kernel-hang', 'kexec-refused', 'first-kernel-failed'] as const;
export type Verdict = (typeof VERDICTS)[number];

const nic = z.strictObject({
  kind: z.literal('rx-nic'),
  name: z.string().regex(/^[a-z][a-z0-9-]*$/).default('nic0'),
  bdf: z.string().regex(/^[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/, { message: 'Expected a PCI address such as "00:03.0"' }).default('00:03.0'),
  packetInterval: duration.default('100us').describe('Time between received packets'),
  packetBytes: z.number().int().min(64).max(2048).default(1514),
  ringEntries: z.number().int().min(8).max(4096).default(256).describe('RX descriptors the first kernel hands the device'),
});

const fault = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('segment-overwrite'),
    segment: z.enum(['elfcorehdr', 'boot_params', 'kernel', 'initrd']).describe('kexec segment a stray DMA write lands in after kexec load'),
    offset: size.default(0),
  }),
]);

export const scenarioSchema = z.strictObject({
  $schema: z.string().optional(),
  name: z.string().min(1),
  description: z.string().optional(),
  seed: z.number().int().nonnegative().default(1),
  machine: z.strictObject({
    memory: size.describe('DRAM size'),
    cpus: z.number().int().min(1).max(1024).default(4),
    devices: z.array(nic).default([]),
  }),
  firstKernel: z.strictObject({
    profile: profileId.default('linux-6.1'),
    cmdline: z.string().default('root=/dev/vda1 ro crashkernel=256M'),
  }),
  crashKernel: z.strictObject({
    profile: profileId.default('linux-6.1'),
    cmdline: z.string().default('root=/dev/vda1 irqpoll nr_cpus=1 reset_devices'),
    kernelSize: size.default('4M').describe('Size of the capture kernel image (bzImage) segment'),
    initrdSize: size.default('16M').describe('Size of the capture initramfs segment'),
    minMemory: size.default('96M').describe('Memory the capture kernel and its initramfs need to save the dump'),
  }).default({ profile: 'linux-6.1', cmdline: 'root=/dev/vda1 irqpoll nr_cpus=1 reset_devices', kernelSize: '4M', initrdSize: '16M', minMemory: '96M' }),
  workload: z.strictObject({
    pages: z.number().int().min(0).max(4_000_000).default(16384).describe('Pages the workload allocates and fills'),
  }).default({ pages: 16384 }),
  panic: z.strictObject({
    after: duration.default('1s').describe('Time from the end of the workload to the panic'),
    cpu: z.number().int().nonnegative().default(1),
    trigger: z.enum(['sysrq', 'oops']).default('sysrq'),
  }).default({ after: '1s', cpu: 1, trigger: 'sysrq' }),
  faults: z.array(fault).default([]),
  expect: z.strictObject({
    verdict: z.enum(VERDICTS).optional(),
  }).optional(),
});

export type ScenarioInput = z.input<typeof scenarioSchema>;
export type Scenario = z.output<typeof scenarioSchema>;

/** The published JSON Schema (draft 2020-12), describing what a file may contain. */
export function scenarioJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(scenarioSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}
