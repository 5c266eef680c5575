// /boot/config-<release>: "CONFIG_X=y", "CONFIG_X=m", "CONFIG_X=\"string\"",
// "CONFIG_X=123" and "# CONFIG_X is not set" (which reads as "n"). Only the
// symbols kdump readiness depends on are kept.

import type { Evidence, Fact } from '../host-facts.js';
import { evidence, known, splitLines, unknown } from './fact.js';

export const KERNEL_CONFIG_SYMBOLS: readonly string[] = [
  'CONFIG_KEXEC',
  'CONFIG_KEXEC_FILE',
  'CONFIG_KEXEC_CORE',
  'CONFIG_CRASH_DUMP',
  'CONFIG_CRASH_RESERVE',
  'CONFIG_CRASH_HOTPLUG',
  'CONFIG_PROC_VMCORE',
  'CONFIG_RELOCATABLE',
  'CONFIG_RANDOMIZE_BASE',
  'CONFIG_AMD_MEM_ENCRYPT',
  'CONFIG_AMD_MEM_ENCRYPT_ACTIVE_BY_DEFAULT',
  'CONFIG_KVM_AMD',
  'CONFIG_KVM_AMD_SEV',
  'CONFIG_KVM_INTEL',
  'CONFIG_CRYPTO_DEV_CCP',
  'CONFIG_CRYPTO_DEV_CCP_DD',
  'CONFIG_CRYPTO_DEV_SP_PSP',
  'CONFIG_SEV_GUEST',
  'CONFIG_INTEL_TDX_GUEST',
  'CONFIG_AMD_IOMMU',
  'CONFIG_AMD_IOMMU_V2',
  'CONFIG_INTEL_IOMMU',
  'CONFIG_INTEL_IOMMU_DEFAULT_ON',
  'CONFIG_INTEL_IOMMU_SCALABLE_MODE_DEFAULT_ON',
  'CONFIG_IRQ_REMAP',
  'CONFIG_IOMMU_DEFAULT_PASSTHROUGH',
  'CONFIG_IOMMU_DEFAULT_DMA_LAZY',
  'CONFIG_IOMMU_DEFAULT_DMA_STRICT',
  'CONFIG_SWIOTLB',
];

export function parseKernelConfig(text: string, file: string, symbols: readonly string[] = KERNEL_CONFIG_SYMBOLS): Fact<Record<string, string>> {
  const wanted = new Set(symbols);
  const values: Record<string, string> = {};
  const ev: Evidence[] = [];
  let configLines = 0;
  const lines = splitLines(text);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    let sym: string | undefined;
    let value: string | undefined;
    const set = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(line);
    const unset = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/.exec(line);
    if (set) {
      sym = set[1]!;
      const raw = set[2]!;
      value = raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"') ? raw.slice(1, -1).replace(/\\(["\\])/g, '$1') : raw;
    } else if (unset) {
      sym = unset[1]!;
      value = 'n';
    }
    if (sym === undefined || value === undefined) continue;
    configLines++;
    if (!wanted.has(sym)) continue;
    // As in Kconfig, a later assignment overrides an earlier one.
    if (values[sym] === undefined) ev.push(evidence(file, i + 1, line));
    values[sym] = value;
  }
  if (configLines === 0) return unknown(`${file}: no CONFIG_ lines`);
  return known(values, ev);
}
