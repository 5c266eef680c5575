// /sys/class/iommu/<unit>/: AMD units ("ivhdN") have amd-iommu/features,
// "%llx" (EFR) on older kernels and "%llx:%llx" (EFR:EFR2) on newer; Intel
// units ("dmarN") have intel-iommu/ecap, "%llx". The bits the doctor needs:
// AMD EFR bit 63 (SNPSup) and Intel ECAP bit 43 (SMTS, scalable mode).

import type { IommuUnit } from '../host-facts.js';
import { parseHex64 } from './sysfs-value.js';

export const AMD_EFR_SNPSUP = 1n << 63n;
export const INTEL_ECAP_SMTS = 1n << 43n;

/** "%llx" or "%llx:%llx"; undefined when neither. */
export function parseAmdFeatures(text: string): { efr: bigint; efr2?: bigint } | undefined {
  const t = text.trim();
  const parts = t.split(':');
  if (parts.length > 2) return undefined;
  const efr = parseHex64(parts[0]!);
  if (efr === undefined) return undefined;
  if (parts.length === 1) return { efr };
  const efr2 = parseHex64(parts[1]!);
  return efr2 === undefined ? undefined : { efr, efr2 };
}

export function parseIntelEcap(text: string): bigint | undefined {
  return parseHex64(text);
}

export function amdUnit(name: string, efr: bigint | undefined): IommuUnit {
  const u: IommuUnit = { name, kind: 'amd' };
  if (efr !== undefined) {
    u.efr = efr;
    u.snpSup = (efr & AMD_EFR_SNPSUP) !== 0n;
  }
  return u;
}

export function intelUnit(name: string, ecap: bigint | undefined): IommuUnit {
  const u: IommuUnit = { name, kind: 'intel' };
  if (ecap !== undefined) {
    u.ecap = ecap;
    u.scalableModeSupported = (ecap & INTEL_ECAP_SMTS) !== 0n;
  }
  return u;
}

/** Which driver a unit belongs to, from its sysfs group folder (or, failing that, its name). */
export function unitKind(name: string, entries: readonly string[]): 'amd' | 'intel' | undefined {
  if (entries.includes('amd-iommu')) return 'amd';
  if (entries.includes('intel-iommu')) return 'intel';
  if (/^ivhd\d+$/.test(name)) return 'amd';
  if (/^dmar\d+$/.test(name)) return 'intel';
  return undefined;
}
