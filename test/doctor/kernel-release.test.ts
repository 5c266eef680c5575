// uname -r -> kernel profile, by the reference's version facts and stable backports.
import { describe, expect, it } from 'vitest';
import { hostProfileFor, parseRelease } from '../../src/doctor/kernel-release.js';

const profileOf = (r: string): string => hostProfileFor(parseRelease(r)!).profile;

describe('kernel releases map to profiles', () => {
  it.each([
    ['3.10.0-229.el7.x86_64', 'linux-4.1'],
    ['4.1.12', 'linux-4.1'],
    ['4.2.0', 'linux-4.9'],
    ['4.12.14', 'linux-4.9'],
    ['4.18.0-425.3.1.el8.x86_64', 'linux-4.19'],
    ['4.20.0', 'linux-5.10'],
    ['5.15.68-generic', 'linux-5.10'],
    ['5.15.69', 'linux-6.1'], // 0c5f6c0d8201 in 5.15.69 stable
    ['6.0.0', 'linux-6.1'],
    ['6.8.12', 'linux-6.1'],
    ['6.9.0', 'linux-6.9'],
    ['6.11.0-rc3-next-20240813-snp-host-f2a41ff576cc-dirty', 'linux-6.9'],
    ['6.12.65', 'linux-6.12'], // the lone backport was reverted
    ['6.17.7', 'linux-6.12'],
    ['6.17.8', 'linux-6.18'], // the reuse series in 6.17.8 stable
    ['6.18.0', 'linux-6.18'],
    ['7.0.1-1-default', 'linux-6.18'],
    ['5.19.0-rc6-snp-host-cd1599797a25', 'linux-6.5-snp-host'],
    ['6.5.0-rc2-snp-host-ad9c0bf475ec', 'linux-6.5-snp-host'],
  ])('%s -> %s', (release, profile) => {
    expect(profileOf(release)).toBe(profile);
  });

  it('flags distribution builds and refuses what is not a version', () => {
    expect(parseRelease('5.14.0-503.el9.x86_64')?.distribution).toBe(true);
    expect(parseRelease('6.18.0')?.distribution).toBe(false);
    expect(parseRelease('not-a-kernel')).toBeUndefined();
    expect(parseRelease('')).toBeUndefined();
  });
});
