// Kernel log lines -> events, for every wording in the reference (§1.8 and the
// §4 fixtures), with each transport prefix a real capture carries.

import { describe, expect, it } from 'vitest';
import type { LogEvent } from '../../src/doctor/host-facts.js';
import { logMessage, parseKernelLog, parseLogLine } from '../../src/doctor/parse/kernel-log.js';

/** [line as published, the event it must give] */
const WORDINGS: [string, LogEvent][] = [
  // 1.8.1 memory encryption, every era
  ['[    0.000000] AMD Secure Memory Encryption (SME) active', { kind: 'mem-encrypt-active', features: ['SME'] }],
  ['[    0.000000] AMD Secure Encrypted Virtualization (SEV) active', { kind: 'mem-encrypt-active', features: ['SEV'] }],
  ['[    0.000000] AMD Memory Encryption Features active: SME', { kind: 'mem-encrypt-active', features: ['SME'] }],
  ['[    0.000000] AMD Memory Encryption Features active: SEV SEV-ES', { kind: 'mem-encrypt-active', features: ['SEV', 'SEV-ES'] }],
  ['[    0.000000] Memory Encryption Features active:AMD  SEV SEV-ES', { kind: 'mem-encrypt-active', features: ['SEV', 'SEV-ES'] }],
  ['[    0.000000] Memory Encryption Features active: AMD SME', { kind: 'mem-encrypt-active', features: ['SME'] }],
  ['[    0.000000] Memory Encryption Features active: AMD SEV SEV-ES SEV-SNP', { kind: 'mem-encrypt-active', features: ['SEV', 'SEV-ES', 'SEV-SNP'] }],
  ['[    0.000000] Memory Encryption Features active: Intel TDX', { kind: 'mem-encrypt-active', features: ['TDX'] }],
  ['[    0.000000] SEV: Status: SEV SEV-ES SEV-SNP DebugSwap', { kind: 'mem-encrypt-active', features: ['SEV', 'SEV-ES', 'SEV-SNP'] }],

  // 1.8.2 RMP
  ['[    0.000000] SEV-SNP: RMP table physical range [0x0000000035600000 - 0x0000000075bfffff]', { kind: 'rmp-table', start: 0x35600000n, end: 0x75bfffffn }],
  ['[    5.745904] SEV-SNP: RMP table physical address 0x0000000035600000 - 0x0000000075bfffff', { kind: 'rmp-table', start: 0x35600000n, end: 0x75bfffffn }],
  ['[    0.492094] SEV-SNP: RMP table physical address [0x000000004de00000 - 0x00000000566fffff]', { kind: 'rmp-table', start: 0x4de00000n, end: 0x566fffffn }],
  ['[    1.000000] SVM: SNP: RMP physical range 0x0000000035600000 - 0x0000000075bfffff', { kind: 'rmp-table', start: 0x35600000n, end: 0x75bfffffn }],
  ['[    0.000000] SEV-SNP: Memory for the RMP table has not been reserved by BIOS', { kind: 'rmp-refused', why: 'not-reserved' }],
  ['[    0.000000] SEV-SNP: RMP configuration not valid: base=0x35600000, end=0x75bfffff', { kind: 'rmp-refused', why: 'invalid' }],
  ['[    0.000000] SEV-SNP: Memory reserved for the RMP table does not cover full system RAM (expected 0x4000000 got 0x2000000)', { kind: 'rmp-refused', why: 'too-small' }],

  // 1.8.3 ccp / PSP
  ['[   84.049264] ccp 0000:42:00.1: sev enabled', { kind: 'psp-sev-enabled', bdf: '0000:42:00.1' }],
  ['ccp 0000:24:00.1: SEV: memory encryption not enabled by BIOS', { kind: 'sev-not-enabled-by-bios' }],
  ['[   84.094886] ccp 0000:42:00.1: SEV API:1.49 build:3', { kind: 'sev-api', major: 1, minor: 49, build: 3, snp: false }],
  ['[   11.717785] ccp 0000:42:00.1: SEV API:1.55 build:7', { kind: 'sev-api', major: 1, minor: 55, build: 7, snp: false }],
  ['[    9.000000] ccp 0000:42:00.1: SEV-SNP API:1.55 build:21', { kind: 'sev-api', major: 1, minor: 55, build: 21, snp: true }],
  ['[    1.517255] ccp 0000:47:00.1: SEV firmware update successful', { kind: 'sev-firmware-updated' }],
  ['[    1.517255] ccp 0000:47:00.1: SEV firmware updated from 1.55.21 to 1.55.37', { kind: 'sev-firmware-updated' }],
  ['[   19.720420] ccp 0000:47:00.1: SEV-SNP support requires firmware version >= 1:51', { kind: 'snp-firmware-too-old', major: 1, minor: 51 }],
  ['[   11.702131] ccp 0000:42:00.1: SEV-SNP: failed to INIT rc -5, error 0x3', { kind: 'snp-init-failed', error: 3 }],
  ['[   11.702131] ccp 0000:42:00.1: SEV-SNP: SNP_INIT_EX failed rc -5, error 0x3', { kind: 'snp-init-failed', error: 3 }],
  ['[   11.702131] ccp 0000:42:00.1: SEV-SNP: SNP_INIT failed rc -5, error 0x18', { kind: 'snp-init-failed', error: 0x18 }],
  ['[   11.702131] ccp 0000:42:00.1: SEV-SNP: SNP_DF_FLUSH failed rc -5, error 0xf', { kind: 'snp-init-failed', error: 0xf }],
  ['[   19.740503] ccp 0000:47:00.1: SEV: failed to INIT error 0x1, rc -5', { kind: 'sev-init-failed', error: 1 }],
  ['[   19.740503] ccp 0000:47:00.1: SEV: failed to INIT error 0x1', { kind: 'sev-init-failed', error: 1 }],
  ['[  564.462217] ccp 0000:23:00.1: SEV-SNP DF_FLUSH failed with error 14', { kind: 'snp-shutdown-failed', what: 'df-flush', error: 14 }],
  ['[  564.462217] ccp 0000:23:00.1: SEV-SNP DF_FLUSH failed', { kind: 'snp-shutdown-failed', what: 'df-flush' }],
  ['[  564.462217] ccp 0000:23:00.1: SEV-SNP firmware shutdown failed', { kind: 'snp-shutdown-failed', what: 'firmware-shutdown' }],
  ['[  564.462217] ccp 0000:23:00.1: SEV-SNP firmware shutdown failed, rc -5, error 0x3', { kind: 'snp-shutdown-failed', what: 'firmware-shutdown', error: 3 }],
  ['[  564.462217] ccp 0000:23:00.1: SNP IOMMU shutdown failed', { kind: 'snp-shutdown-failed', what: 'iommu-shutdown' }],

  // 1.8.4 kvm_amd
  ['[   84.188459] SEV supported: 509 ASIDs', { kind: 'kvm-sev', features: ['SEV'], state: 'supported' }],
  ['[    1.663654] SEV-ES supported: 99 ASIDs', { kind: 'kvm-sev', features: ['SEV-ES'], state: 'supported' }],
  ['[   19.839877] SEV-ES and SEV-SNP supported: 99 ASIDs', { kind: 'kvm-sev', features: ['SEV-ES', 'SEV-SNP'], state: 'supported' }],
  ['[   11.782062] kvm_amd: SEV-ES and SEV-SNP supported: 99 ASIDs', { kind: 'kvm-sev', features: ['SEV-ES', 'SEV-SNP'], state: 'supported' }],
  ['[   11.782063] kvm_amd: SEV enabled (ASIDs 100 - 509)', { kind: 'kvm-sev', features: ['SEV'], state: 'enabled' }],
  ['[   11.782063] kvm_amd: SEV-ES enabled (ASIDs 1 - 99)', { kind: 'kvm-sev', features: ['SEV-ES'], state: 'enabled' }],
  ['[   11.782063] kvm_amd: SEV-SNP enabled (ASIDs 1 - 99)', { kind: 'kvm-sev', features: ['SEV-SNP'], state: 'enabled' }],
  ['[   11.782063] kvm_amd: SEV-ES disabled (ASIDs 1 - 0)', { kind: 'kvm-sev', features: ['SEV-ES'], state: 'disabled' }],
  ['[   11.782063] kvm_amd: SEV-ES unusable (ASIDs 1 - 99)', { kind: 'kvm-sev', features: ['SEV-ES'], state: 'unusable' }],

  // 1.8.5 AMD IOMMU
  ['[    1.2] AMD-Vi: IOMMU SNP support enabled.', { kind: 'iommu-snp-enabled' }],
  ['[    1.2] AMD-Vi: SNP: IOMMU disabled or configured in passthrough mode, SNP cannot be supported.', { kind: 'iommu-snp-refused', why: 'passthrough' }],
  ['[   32.381854] AMD-Vi: SNP: IOMMU is disabled or configured in passthrough mode, SNP cannot be supported', { kind: 'iommu-snp-refused', why: 'passthrough' }],
  ['[    0.500541] AMD-Vi: SEV-SNP: IOMMU is either disabled or configured in passthrough mode.', { kind: 'iommu-snp-refused', why: 'passthrough' }],
  ['[    1.2] AMD-Vi: SNP: IOMMU is configured with V2 page table mode, SNP cannot be supported.', { kind: 'iommu-snp-refused', why: 'v2-page-table' }],
  ['[    1.2] AMD-Vi: SNP: IOMMU SNP feature not enabled, SNP cannot be supported.', { kind: 'iommu-snp-refused', why: 'feature-off' }],
  ['[    1.2] AMD-Vi: Extended features (0x841f77e022094ace, 0x0): PreF PPR X2APIC NX GT IA GA PC GA_vAPIC SNP', { kind: 'amd-vi-efr', efr: 0x841f77e022094acen }],
  ['[    1.2] AMD-Vi: Extended features (0x25bf732fa2295afe):', { kind: 'amd-vi-efr', efr: 0x25bf732fa2295afen }],
  ['[    1.671804] AMD-Vi: Using global IVHD EFR:0x841f77e022094ace, EFR2:0x0', { kind: 'amd-vi-efr', efr: 0x841f77e022094acen }],
  ['[    0.9] AMD-Vi: IOMMU not currently supported when SME is active', { kind: 'amd-vi-sme-unsupported' }],
  ['[    1.679835] AMD-Vi: Translation is already enabled - trying to copy translation structures', { kind: 'amd-vi-kdump', action: 'copy' }],
  ['INFO [    0.006403] AMD-Vi: Copied DEV table from previous kernel.', { kind: 'amd-vi-kdump', action: 'copied' }],
  ['[    1.6] AMD-Vi: Failed to copy DEV table from previous kernel.', { kind: 'amd-vi-kdump', action: 'copy-failed' }],
  ['[    1.6] AMD-Vi: The address of old device table is above 4G, not trustworthy!', { kind: 'amd-vi-kdump', action: 'copy-failed' }],
  ['[    1.6] AMD-Vi: The device table size of IOMMU:0 is not expected!', { kind: 'amd-vi-kdump', action: 'copy-failed' }],
  ['[    1.6] AMD-Vi: Translation is already enabled - trying to reuse translation structures', { kind: 'amd-vi-kdump', action: 'reuse' }],
  ['[    1.6] AMD-Vi: Reused DEV table from previous kernel.', { kind: 'amd-vi-kdump', action: 'reused' }],
  ['ALERT [    0.115337] AMD-Vi: Completion-Wait loop timed out', { kind: 'completion-wait-timeout' }],
  ['INFO [    0.988344] ..TIMER: vector=0x30 apic1=0 pin1=2 apic2=-1 pin2=-1', { kind: 'timer-check' }],
  ["EMERGENCY [    1.376701] Kernel panic - not syncing: timer doesn't work through Interrupt-remapped IO-APIC", { kind: 'panic', message: "timer doesn't work through Interrupt-remapped IO-APIC" }],

  // 1.8.6 Intel VT-d
  ['[    0.1] DMAR: Intel(R) Virtualization Technology for Directed I/O', { kind: 'dmar-enabled' }],
  ['[    0.1] DMAR: Translation already enabled - trying to copy translation structures', { kind: 'dmar-kdump', action: 'copy' }],
  ['[    0.1] DMAR: Copied translation tables from previous kernel for dmar0', { kind: 'dmar-kdump', action: 'copied' }],
  ['[    0.1] DMAR: Failed to copy translation tables from previous kernel for dmar0', { kind: 'dmar-kdump', action: 'copy-failed' }],
  ['[    5.1] DMAR: [DMA Read NO_PASID] Request device [01:00.0] fault addr 0xfff80000 [fault reason 0x01] Present bit in root entry is clear', { kind: 'dmar-fault', reason: 1, device: '01:00.0' }],
  ['DMAR:[fault reason 01] Present bit in root entry is clear', { kind: 'dmar-fault', reason: 1 }],
  ['INTR-REMAP:[fault reason 34] Present field in the IRTE entry is clear', { kind: 'ir-fault', reason: 34 }],
  ['[    5.1] DMAR: [INTR-REMAP] Request device [61:00.0] fault index 0x42 [fault reason 0x22] Present field in the IRTE entry is clear', { kind: 'ir-fault', reason: 34 }],

  // 1.8.7 generic IOMMU and crashkernel
  ['[    0.3] iommu: Default domain type: Passthrough (set via kernel command line)', { kind: 'iommu-default-domain', type: 'Passthrough', viaCmdline: true }],
  ['[    0.3] iommu: Default domain type: Translated', { kind: 'iommu-default-domain', type: 'Translated', viaCmdline: false }],
  ['[    0.004623] crashkernel reserved: 0x0000000060000000 - 0x0000000074000000 (320 MB)', { kind: 'crashkernel-reserved', bytes: 320 * 2 ** 20, start: 0x60000000n }],
  ['[    0.004623] crashkernel low memory reserved: 0x6f000000 - 0x7f000000 (256 MB)', { kind: 'crashkernel-reserved', bytes: 256 * 2 ** 20, start: 0x6f000000n, low: true }],
  ['[0.011918] Reserving 256MB of memory at 640MB for crashkernel (System RAM: 262030MB)', { kind: 'crashkernel-reserved', bytes: 256 * 2 ** 20, start: 640n * 2n ** 20n }],
  ['[0.011918] Reserving 256MB of low memory at 3056MB for crashkernel (low RAM limit: 4096MB)', { kind: 'crashkernel-reserved', bytes: 256 * 2 ** 20, start: 3056n * 2n ** 20n, low: true }],
  ['[    0.0] crashkernel reservation failed - No suitable area found.', { kind: 'crashkernel-failed', message: 'crashkernel reservation failed - No suitable area found.' }],
  ['[    0.0] crashkernel reservation failed - memory is in use.', { kind: 'crashkernel-failed', message: 'crashkernel reservation failed - memory is in use.' }],
  ['[    0.0] cannot allocate crashkernel (size:0x20000000)', { kind: 'crashkernel-failed', message: 'cannot allocate crashkernel (size:0x20000000)' }],
  ['[    0.0] Cannot reserve 256MB crashkernel low memory, please try smaller size.', { kind: 'crashkernel-failed', message: 'Cannot reserve 256MB crashkernel low memory, please try smaller size.' }],
  ['[    0.0] crashkernel: Memory value expected', { kind: 'crashkernel-failed', message: 'crashkernel: Memory value expected' }],
  ['[    0.0] crashkernel size resulted in zero bytes', { kind: 'crashkernel-failed', message: 'crashkernel size resulted in zero bytes' }],
  ['[    0.000000] Command line: BOOT_IMAGE=/boot/vmlinuz-5.14.0 root=UUID=5271 ro iommu=pt mem_encrypt=on kvm_amd.sev=1', { kind: 'command-line', cmdline: 'BOOT_IMAGE=/boot/vmlinuz-5.14.0 root=UUID=5271 ro iommu=pt mem_encrypt=on kvm_amd.sev=1' }],
  ['[    0.000000] Linux version 6.9.0 (builder@host) (gcc 13) #1 SMP', { kind: 'linux-version', release: '6.9.0' }],

  // kdump services
  ['Jan 21 06:59:11 r-vm kdump-tools[5348]: Memory for crashkernel is not reserved', { kind: 'kdump-service-no-memory' }],
  ['Jan 21 06:59:11 r-vm kdumpctl[880]: kdump: No memory reserved for crash kernel', { kind: 'kdump-service-no-memory' }],
  ['Jan 21 06:59:11 r-vm kdump[880]: No crashkernel memory reserved, Kdump cannot start.', { kind: 'kdump-service-no-memory' }],
  ['Jan 21 06:59:11 r-vm kdumpctl[880]: kdump: kexec: failed to load kdump kernel', { kind: 'kdump-service-load-failed' }],
  ['Jan 21 06:59:11 r-vm kdumpctl[880]: kdump: Starting kdump: [FAILED]', { kind: 'kdump-service-load-failed' }],
];

describe('kernel log wordings', () => {
  it.each(WORDINGS)('%s', (line, event) => {
    expect(parseLogLine(line)).toEqual(event);
  });

  it('every LogEvent kind has at least one wording', () => {
    const kinds = new Set(WORDINGS.map(([, e]) => e.kind));
    const all: LogEvent['kind'][] = [
      'mem-encrypt-active', 'rmp-table', 'rmp-refused', 'psp-sev-enabled', 'sev-not-enabled-by-bios', 'sev-api',
      'sev-firmware-updated', 'snp-firmware-too-old', 'snp-init-failed', 'sev-init-failed', 'snp-shutdown-failed',
      'kvm-sev', 'iommu-snp-enabled', 'iommu-snp-refused', 'amd-vi-efr', 'amd-vi-sme-unsupported', 'amd-vi-kdump',
      'completion-wait-timeout', 'timer-check', 'panic', 'dmar-enabled', 'dmar-kdump', 'dmar-fault', 'ir-fault',
      'iommu-default-domain', 'crashkernel-reserved', 'crashkernel-failed', 'command-line', 'linux-version',
      'kdump-service-no-memory', 'kdump-service-load-failed',
    ];
    expect(all.filter((k) => !kinds.has(k))).toEqual([]);
  });

  it.each([
    ['[    0.492094] AMD-Vi: Completion-Wait loop timed out'],
    ['INFO [    0.006403] AMD-Vi: Completion-Wait loop timed out'],
    ['ALERT [    0.115337] AMD-Vi: Completion-Wait loop timed out'],
    ['EMERGENCY [    1.376701] AMD-Vi: Completion-Wait loop timed out'],
    ['Jan 21 06:59:11 r-vm kernel: AMD-Vi: Completion-Wait loop timed out'],
    ['Jan  1 06:59:11 r-vm kernel: [    0.492094] AMD-Vi: Completion-Wait loop timed out'],
    ['2026-01-21T06:59:11+0000 r-vm kernel: AMD-Vi: Completion-Wait loop timed out'],
    ['<3>[    0.492094] AMD-Vi: Completion-Wait loop timed out'],
    ['[Wed Jan 21 06:59:11 2026] AMD-Vi: Completion-Wait loop timed out'],
  ])('transport prefix is stripped: %s', (line) => {
    expect(logMessage(line)).toBe('AMD-Vi: Completion-Wait loop timed out');
  });

  it('ccp, kvm_amd, dmar and SEV-SNP prefixes under a journal prefix', () => {
    expect(parseLogLine('Jan 21 06:59:11 r-vm kernel: ccp 0000:47:00.1: sev enabled')).toEqual({ kind: 'psp-sev-enabled', bdf: '0000:47:00.1' });
    expect(parseLogLine('Jan 21 06:59:11 r-vm kernel: kvm_amd: SEV-SNP enabled (ASIDs 1 - 99)')).toEqual({ kind: 'kvm-sev', features: ['SEV-SNP'], state: 'enabled' });
    expect(parseLogLine('Jan 21 06:59:11 r-vm kernel: SEV-SNP: RMP table physical range [0x0000000035600000 - 0x0000000075bfffff]')?.kind).toBe('rmp-table');
  });

  it('an old two-line DMAR fault carries the device from the first line (F8)', () => {
    const log = [
      'dmar: DRHD: handling fault status reg 102',
      'dmar: DMAR:[DMA Read] Request device [01:00.0] fault addr fff80000',
      'DMAR:[fault reason 01] Present bit in root entry is clear',
      '',
      'dmar: DRHD: handling fault status reg 2',
      'dmar: INTR-REMAP: Request device [[61:00.0] fault index 42',
      'INTR-REMAP:[fault reason 34] Present field in the IRTE entry is clear',
    ].join('\n');
    const hits = parseKernelLog(log, 'console.log');
    expect(hits.map(({ evidence, ...e }) => ({ ...e, line: evidence.line }))).toEqual([
      { kind: 'dmar-fault', reason: 1, device: '01:00.0', line: 3 },
      { kind: 'ir-fault', reason: 34, line: 7 },
    ]);
  });

  it('F2: the capture kernel of an SNP host with running guests, line by line', () => {
    const log = [
      '[  564.282209] in snp_shutdown_on_panic after decommision, wbinvd + df_flush required',
      '[  564.462217] ccp 0000:23:00.1: SEV-SNP DF_FLUSH failed with error 14',
      '[  564.676920] kexec: in native_machine_crash_shutdown',
      '[    0.000000] Command line: BOOT_IMAGE=/vmlinuz-6.11.0-rc3 ro console=ttyS0,115200n8 amd_iommu_dump=1 reset_devices systemd.unit=kdump-tools-dump.service nr_cpus=1 irqpoll nousb elfcorehdr=1916276K',
      '[    1.671804] AMD-Vi: Using global IVHD EFR:0x841f77e022094ace, EFR2:0x0',
      '[    1.679835] AMD-Vi: Translation is already enabled - trying to copy translation structures',
      '[    1.689363] AMD-Vi: Copied DEV table from previous kernel.',
      '[    1.864369] AMD-Vi: Completion-Wait loop timed out',
      '[    3.231083] ..TIMER: vector=0x30 apic1=0 pin1=2 apic2=-1 pin2=-1',
      "[    3.815762] Kernel panic - not syncing: timer doesn't work through Interrupt-remapped IO-APIC",
    ].join('\n');
    const hits = parseKernelLog(log, 'commands/console-log');
    expect(hits.map((h) => [h.kind, h.evidence.line])).toEqual([
      ['snp-shutdown-failed', 2],
      ['command-line', 4],
      ['amd-vi-efr', 5],
      ['amd-vi-kdump', 6],
      ['amd-vi-kdump', 7],
      ['completion-wait-timeout', 8],
      ['timer-check', 9],
      ['panic', 10],
    ]);
    expect(hits[0]!.evidence).toEqual({ file: 'commands/console-log', line: 2, text: '[  564.462217] ccp 0000:23:00.1: SEV-SNP DF_FLUSH failed with error 14' });
  });

  it('lines that only look alike are not events', () => {
    for (const line of [
      '[    0.0] Kernel command line: crashkernel=512M',
      'kdump-tools[1]: no crashkernel= parameter in the kernel cmdline',
      '[    1.0] AMD-Vi: Interrupt remapping enabled',
      '[    1.0] DMAR: DRHD: handling fault status reg 2',
      '[    1.0] ccp 0000:47:00.1: SEV: failed to get status. Error: 0x8003',
    ]) {
      expect(parseLogLine(line), line).toBeUndefined();
    }
  });
});
