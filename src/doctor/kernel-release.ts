// A real kernel's `uname -r` mapped to the kernel profile whose mechanisms it
// has. The versions are the reference's version facts (kdump-doctor-facts.md
// §3), including the stable backports that move a release across a line.

export interface KernelRelease {
  release: string;
  major: number;
  minor: number;
  /** The stable sublevel (the 8 of 6.17.8); 0 for -rc kernels. */
  sub: number;
  /** AMD's out-of-tree SNP host trees name themselves "...-snp-host-<sha>". */
  snpHostTree: boolean;
  /** A distribution's build (el9, fc40, Ubuntu "-generic", Debian "+deb12", SUSE "-default"): backports make the version a first guess. */
  distribution: boolean;
}

export function parseRelease(release: string): KernelRelease | undefined {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(release.trim());
  if (m === null) return undefined;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  if (major < 2 || major > 99 || minor > 999) return undefined;
  return {
    release: release.trim(),
    major,
    minor,
    sub: m[3] === undefined ? 0 : Number(m[3]),
    snpHostTree: /snp-host/.test(release),
    distribution: /\.el\d|\.fc\d|-generic|-amd64|\+deb|-default|-azure|-aws|-gcp|-oracle|\.uek/.test(release),
  };
}

/** Orders releases: 6.17.8 -> 6_017_008. */
export function versionKey(major: number, minor: number, sub = 0): number {
  return major * 1_000_000 + minor * 1_000 + sub;
}

export interface ProfileChoice {
  profile: string;
  /** Why this profile: the version line the release falls behind. */
  why: string;
}

/**
 * The profile for a host kernel (the one that crashes, or its capture kernel).
 * The first matching line wins; each line is a fact from the reference.
 */
export function hostProfileFor(r: KernelRelease): ProfileChoice {
  const v = versionKey(r.major, r.minor, r.sub);
  const at = (major: number, minor: number, sub = 0): boolean => v >= versionKey(major, minor, sub);
  if (r.snpHostTree && !at(6, 9)) {
    return { profile: 'linux-6.5-snp-host', why: `${r.release} is an AMD SNP host tree from before the 6.9 merge: SNP host support without the CCP panic notifier (8ef979584ea8, 6.9)` };
  }
  if (!at(4, 2)) return { profile: 'linux-4.1', why: `${r.release} predates 4.2: intel-iommu does not copy the old translation tables in a capture kernel` };
  if (!at(4, 13)) return { profile: 'linux-4.9', why: `${r.release} predates 4.13: the AMD IOMMU driver does not copy the old device table; no SME (4.14)` };
  if (!at(4, 20)) return { profile: 'linux-4.19', why: `${r.release} predates 4.20: no kdump under SME (decrypted crash segments, ioremap_encrypted)` };
  if (!at(6, 0)) {
    if (r.major === 5 && r.minor === 15 && r.sub >= 69) {
      return { profile: 'linux-6.1', why: `${r.release}: 5.15.69 stable carries 0c5f6c0d8201 (VT-d kdump after a scalable-mode first kernel), as 6.0 does` };
    }
    return { profile: 'linux-5.10', why: `${r.release} is a 5.x kernel without 0c5f6c0d8201 (6.0; 5.15.69 stable): its VT-d copy misreads scalable-mode tables` };
  }
  if (!at(6, 9)) return { profile: 'linux-6.1', why: `${r.release} predates 6.9: no SEV-SNP host support` };
  if (!at(6, 12)) return { profile: 'linux-6.9', why: `${r.release}: SNP host with the CCP panic notifier (6.9); the capture kernel copies the AMD IOMMU device table` };
  if (!at(6, 18)) {
    if (r.major === 6 && r.minor === 17 && r.sub >= 8) {
      return { profile: 'linux-6.18', why: `${r.release}: 6.17.8 stable carries the 2025 AMD IOMMU reuse series (38e5f33ee359 and its companions), as 6.18 does` };
    }
    return {
      profile: 'linux-6.12',
      why: `${r.release} predates 6.18 (and 6.17.8): the capture kernel copies the AMD IOMMU device table and programs new buffers` +
        (r.minor <= 12 ? '; the lone stable backport of the 2025 fix to 6.12.y and older was reverted in January 2026' : ''),
    };
  }
  return { profile: 'linux-6.18', why: `${r.release}: 6.18 or later, the capture kernel reuses the old AMD IOMMU buffers in place` };
}

/**
 * Upstream profiles in version order, each labelled with the first release
 * that has all of its kdump mechanisms: the upgrades a fix may propose.
 */
export const UPGRADE_PATH: readonly { profile: string; version: string }[] = [
  { profile: 'linux-4.9', version: '4.2' }, // intel-iommu copies the old tables
  { profile: 'linux-4.19', version: '4.13' }, // the AMD IOMMU driver copies the old device table
  { profile: 'linux-5.10', version: '4.20' }, // kdump under SME
  { profile: 'linux-6.1', version: '6.0' }, // VT-d kdump after a scalable-mode first kernel (0c5f6c0d8201)
  { profile: 'linux-6.9', version: '6.9' }, // SNP host, the CCP panic notifier
  { profile: 'linux-6.12', version: '6.12' },
  { profile: 'linux-6.18', version: '6.18 (or 6.17.8)' }, // the AMD IOMMU reuse path
];

/** The version a profile stands for in the upgrade path, for ordering. */
export function upgradeRank(profile: string): number {
  const i = UPGRADE_PATH.findIndex((u) => u.profile === profile);
  if (i >= 0) return i;
  // Profiles off the path sit just after the upstream release they branch from.
  const rank: Record<string, number> = { 'linux-4.1': -1, 'linux-6.5-snp-host': 3.5 };
  return rank[profile] ?? -3;
}
