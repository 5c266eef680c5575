// readHostFacts on the machine the tests run on (a VM without SEV): it must
// finish, read at least /proc/cpuinfo and /proc/cmdline, and report what it
// could not read instead of failing.

import { describe, expect, it } from 'vitest';
import { liveHost } from '../../src/doctor/host-source.js';
import { readHostFacts } from '../../src/doctor/read-host-facts.js';

describe('the live host', () => {
  it('reads this machine read-only and completes', () => {
    const facts = readHostFacts(liveHost(), 'live host');
    expect(facts.origin).toBe('live host');
    const status = (p: string) => facts.sources.find((s) => s.path === p)?.status;
    expect(status('/proc/cpuinfo')).toBe('read');
    expect(status('/proc/cmdline')).toBe('read');
    expect(facts.cpuFlags.known).toBe(true);
    expect(facts.cmdline.known).toBe(true);
    for (const s of facts.sources) if (s.status !== 'read') expect(s.reason, s.path).toBeTruthy();
    // A VM: the hypervisor flag is set, so host-SNP facts do not apply here.
    if (facts.cpuFlags.known && facts.cpuFlags.value.includes('hypervisor')) {
      expect(facts.snpGuests.known ? facts.snpGuests.value : 0).toBe(0);
    }
  });
});
