// A storage controller keeps working through its queue after the panic. On
// the 4.2-on copy path its reads still land in the old kernel's buffers
// through the old second-level tables; a firmware-owned RMRR keeps its
// identity map through the copied context entry.
import { describe, expect, it } from 'vitest';
import { runScenario } from '../../src/scenario/run.js';
import type { Machine } from '../../src/platform/machine.js';
import type { FirstKernel } from '../../src/kernel/first-kernel.js';
import type { TraceEvent } from '../../src/platform/trace.js';
import { storageDriversOf } from '../../src/kernel/drivers/storage-driver.js';
import { intelIommuOf, type IntelIommuDriver } from '../../src/kernel/drivers/intel-iommu/intel-iommu-driver.js';
import { smallScenario } from '../helpers/small-scenario.js';
import type { ScenarioInput } from '../../src/scenario/schema.js';

const DISK = '00:04.0';
const DISK_SID = 0x20;

function run(crashProfile: string, rmrr: boolean) {
  const s = smallScenario({
    machine: {
      memory: '1G', cpus: 2, cpu: { vendor: 'intel' }, iommu: { kind: 'intel' },
      devices: [{ kind: 'storage', name: 'disk0', bdf: DISK, queueEntries: 512, ioBytes: 16384, rate: '16M', ...(rmrr ? { rmrr: { base: 0xe8000, size: '4K', interval: '1ms' } } : {}) }],
    },
    firstKernel: { profile: 'linux-4.19', cmdline: 'root=/dev/vda1 ro crashkernel=160M' },
    crashKernel: { profile: crashProfile, cmdline: 'root=/dev/vda1 irqpoll nr_cpus=1 reset_devices', initrdSize: '8M', minMemory: '96M' },
  } as Partial<ScenarioInput>);
  const after: TraceEvent[] = [];
  let m: Machine | undefined;
  let fk: FirstKernel | undefined;
  let capturing = false;
  const r = runScenario(s, {
    onMachine: (mm, k) => {
      m = mm;
      fk = k;
      mm.trace.subscribe((ev) => {
        if (ev.source === 'crash-kernel' && ev.kind === 'step' && ev.detail.startsWith('capture kernel')) capturing = true;
        if (capturing && (ev.source === 'dmar0' || ev.source === 'disk0' || ev.source === 'crash-kernel')) after.push(ev);
      });
    },
  });
  return { r, after, m: m!, fk: fk!, ck: intelIommuOf(m!)!, first: fk!.iommu as IntelIommuDriver };
}

const kinds = (evs: TraceEvent[], kind: string): TraceEvent[] => evs.filter((e) => e.kind === kind);
const sinceSrtp = (after: TraceEvent[]): TraceEvent[] => after.slice(after.indexOf(kinds(after, 'vtd-srtp').at(-1)!) + 1);

describe('VT-d kdump, storage controller, copy path: queued reads land in the old buffers through the old tables', () => {
  const { r, after, fk, ck, first } = run('linux-4.19', false);
  const drv = storageDriversOf(fk)[0]!;
  const since = sinceSrtp(after);

  it('the capture kernel copied the controller\'s context entry and still resolves it to the old domain and tables', () => {
    expect(ck.path).toBe('copied');
    const old = first.domains.get(DISK_SID)!;
    expect(ck.reservedDids.has(old.did)).toBe(true);
    const fetch = kinds(since, 'vtd-context-fetch').find((e) => e.data?.['sid'] === DISK_SID)!;
    expect(fetch.data).toMatchObject({ did: old.did, slptptr: old.root });
  });

  it('after the copy every read DMAs disk data into one of the old kernel\'s buffers, at the IOVA its driver gave', () => {
    const reads = kinds(since, 'storage-io').filter((e) => e.data?.['op'] === 'read');
    expect(reads.length).toBeGreaterThan(100);
    for (const e of reads) {
      const pa = Number(e.data?.['pa']);
      const bus = Number(e.data?.['bus']);
      expect(pa).toBeGreaterThanOrEqual(drv.buffersPa);
      expect(pa + 16384).toBeLessThanOrEqual(drv.buffersPa + drv.entries * drv.ioBytes);
      // The old mapping: bus - buffersBus == pa - buffersPa.
      expect(bus - drv.buffersBus).toBe(pa - drv.buffersPa);
    }
    expect(kinds(since, 'vtd-dma-fault')).toHaveLength(0);
    expect(kinds(since, 'dma-fault')).toHaveLength(0);
  });

  it('the oracle counts the changed buffer pages as the device\'s own: dump-complete, none wrong', () => {
    expect(r.verdict).toBe('dump-complete');
    expect(r.oracle.pagesWrong).toBe(0);
    expect(r.oracle.pagesChangedAfterPanic).toBeGreaterThan(0);
  });
});

describe('VT-d kdump, storage controller, 4.1 capture kernel: translation off, then empty tables', () => {
  const { r, after, ck } = run('linux-4.1', false);
  it('the queue IOVAs master-abort untranslated, then fault in the new tables, and no read completes after the switch', () => {
    expect(ck.path).toBe('new-tables');
    const faults = kinds(after, 'dma-fault');
    expect(faults.some((e) => e.detail.includes('no memory at'))).toBe(true); // untranslated IOVAs near 4 GiB: nothing answers
    expect(kinds(sinceSrtp(after), 'storage-io')).toHaveLength(0);
    expect(kinds(sinceSrtp(after), 'vtd-dma-fault').length).toBeGreaterThan(0);
    expect(r.oracle.pagesWrong).toBe(0);
  });
});

describe('VT-d kdump, RMRR: the firmware\'s identity-mapped writes across the capture kernel', () => {
  it('4.19 first kernel identity-maps the RMRR at init; the copy keeps it, so firmware writes land at 0xe8000 with no fault', () => {
    const { r, after, m, ck, first } = run('linux-4.19', true);
    expect(r.logs.firstKernel.some((l) => l.includes('DMAR: Setting identity map for device 0000:00:04.0 [0xe8000 - 0xe8fff]'))).toBe(true);
    expect(first.domains.get(DISK_SID)).toBeDefined();
    // The capture kernel made no RMRR map of its own: the device is still on the copied entry.
    expect(r.logs.crashKernel.some((l) => l.includes('Setting identity map'))).toBe(false);
    expect(ck.copied.has(DISK_SID)).toBe(true);
    const fw = kinds(sinceSrtp(after), 'firmware-dma');
    expect(fw.length).toBeGreaterThan(100);
    for (const e of fw) expect(e.data).toMatchObject({ bus: 0xe8000, pa: 0xe8000 });
    expect(m.storage[0]!.firmwareFaults).toBe(0);
    expect(r.oracle.pagesWrong).toBe(0);
  });

  it('4.1 capture kernel: translation off is harmless to an identity map, and its new tables map the RMRR before TE goes on', () => {
    const { r, after, m, ck } = run('linux-4.1', true);
    expect(ck.path).toBe('new-tables');
    expect(r.logs.crashKernel.some((l) => l.includes('dmar: Setting identity map for device 0000:00:04.0 [0xe8000 - 0xe8fff]'))).toBe(true);
    expect(m.storage[0]!.firmwareFaults).toBe(0);
    const fw = kinds(after, 'firmware-dma');
    expect(fw.length).toBeGreaterThan(100);
    for (const e of fw) expect(e.data?.['pa']).toBe(0xe8000);
    // The queue IOVAs hit the new domain's empty page tables instead: reason 06, not 01.
    const reasons = kinds(sinceSrtp(after), 'vtd-dma-fault').map((e) => e.data?.['reason']);
    expect(reasons.length).toBeGreaterThan(0);
    expect(r.logs.crashKernel.some((l) => l.includes('[fault reason 06] PTE Read access is not set'))).toBe(true);
  });
});
