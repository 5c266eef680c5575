// Seed 004: devices keep doing DMA through VT-d after the panic. A capture
// kernel that turns translation off or installs empty tables sends it to
// the wrong place or floods DMAR faults; one that copies the old context
// tables (4.2 on) lets it land where the old kernel mapped it, and moves a
// device to a fresh domain only when its driver first maps DMA. Each test
// follows the chain in the hardware trace.
import { describe, expect, it } from 'vitest';
import { runScenario } from '../../src/scenario/run.js';
import type { Machine } from '../../src/platform/machine.js';
import type { FirstKernel } from '../../src/kernel/first-kernel.js';
import type { TraceEvent } from '../../src/platform/trace.js';
import { RX_DESC_SIZE } from '../../src/platform/pci/rx-nic.js';
import { intelIommuOf, type IntelIommuDriver } from '../../src/kernel/drivers/intel-iommu/intel-iommu-driver.js';
import { decodeContextEntry } from '../../src/platform/vtd/context-entry.js';
import { bytesToWords } from '../../src/platform/vtd/entry-bytes.js';
import { FR_CONTEXT_NOT_PRESENT, FR_ROOT_NOT_PRESENT, FR_WRITE } from '../../src/platform/vtd/fault-reasons.js';
import { smallScenario } from '../helpers/small-scenario.js';
import type { ScenarioInput } from '../../src/scenario/schema.js';

const NIC = '00:03.0';
const NIC_SID = 0x18;

interface Watched {
  m: Machine;
  fk: FirstKernel;
  /** VT-d events from the capture kernel's start on. */
  after: TraceEvent[];
  /** NIC descriptor and buffer pages the ring says DMA may still change at the jump to purgatory. */
  predicted: Set<number>;
}

function run(over: { crashProfile?: string; crashCmdline?: string; firstCmdline?: string; scalable?: boolean; firstProfile?: string }) {
  const s = smallScenario({
    machine: {
      memory: '1G', cpus: 2, cpu: { vendor: 'intel' },
      iommu: { kind: 'intel', ...(over.scalable === true ? { scalableMode: true } : {}) },
      // A deep ring: about 400 ms of DMA after the panic, well into the capture kernel.
      devices: [{ kind: 'rx-nic', name: 'nic0', bdf: NIC, packetInterval: '100us', ringEntries: 4096 }],
    },
    firstKernel: { profile: over.firstProfile ?? 'linux-6.12', cmdline: over.firstCmdline ?? 'root=/dev/vda1 ro crashkernel=160M' },
    crashKernel: {
      profile: over.crashProfile ?? 'linux-6.12', cmdline: over.crashCmdline ?? 'root=/dev/vda1 irqpoll nr_cpus=1 reset_devices',
      initrdSize: '8M', minMemory: '96M',
    },
  } as Partial<ScenarioInput>);
  const w: Partial<Watched> = { after: [], predicted: new Set() };
  let capturing = false;
  const r = runScenario(s, {
    onMachine: (m, fk) => {
      w.m = m;
      w.fk = fk;
      m.trace.subscribe((ev) => {
        if (ev.source === 'crash-kernel' && ev.kind === 'step' && ev.detail.startsWith('capture kernel')) capturing = true;
        if (capturing && (ev.source === 'dmar0' || ev.source === 'nic0' || ev.source === 'crash-kernel')) w.after!.push(ev);
        if (ev.kind !== 'jump' || !ev.detail.includes('purgatory')) return;
        const nic = m.nics[0]!;
        const drv = fk.drivers[0]!;
        for (let i = nic.rdh; i !== nic.rdt; i = (i + 1) % nic.ringEntries) {
          const buf = drv.buffersPa + i * 2048;
          w.predicted!.add(Math.floor(buf / 4096));
          w.predicted!.add(Math.floor((buf + 1513) / 4096));
          w.predicted!.add(Math.floor((drv.ringPa + i * RX_DESC_SIZE) / 4096));
        }
      });
    },
  });
  return { r, w: w as Watched, ck: intelIommuOf(w.m!)!, first: w.fk!.iommu as IntelIommuDriver };
}

const kinds = (evs: TraceEvent[], kind: string): TraceEvent[] => evs.filter((e) => e.kind === kind);

describe('VT-d kdump, 4.2 on: the capture kernel copies the old context tables', () => {
  const { r, w, ck, first } = run({});
  const srtp = kinds(w.after, 'vtd-srtp').at(-1)!;
  const sinceSrtp = w.after.filter((e) => e.t >= srtp.t && w.after.indexOf(e) > w.after.indexOf(srtp));

  it('keeps translation on and latches its own root table, whose bus 0 entry leads to a copy of the NIC\'s context entry', () => {
    expect(ck.path).toBe('copied');
    expect(srtp.data).toMatchObject({ rootTable: ck.rootPa, translationEnabled: true });
    expect(kinds(w.after, 'vtd-gcmd').some((e) => e.data?.['teChanged'] === true)).toBe(false);
    expect(ck.reservedDids.has(first.domains.get(NIC_SID)!.did)).toBe(true);
  });

  it('after the copy the NIC\'s DMA still resolves through the old second-level tables into its old buffers', () => {
    const fetch = kinds(sinceSrtp, 'vtd-context-fetch').find((e) => e.data?.['sid'] === NIC_SID)!;
    const oldDom = first.domains.get(NIC_SID)!;
    expect(fetch.data).toMatchObject({ did: oldDom.did, slptptr: oldDom.root });
    // The entry read is the copy in the capture kernel's memory, not the old kernel's table.
    const root = new Uint8Array(16);
    w.m.mc.read(ck.rootPa, root);
    const table = Number(bytesToWords(root)[0]! & ~0xfffn);
    expect(fetch.data?.['contextEntry']).toBe(table + NIC_SID * 16);
    const drv = w.fk.drivers[0]!;
    const fills = kinds(sinceSrtp, 'vtd-iotlb-fill');
    expect(fills.length).toBeGreaterThan(0);
    for (const f of fills) {
      const frame = Number(f.data?.['frame']);
      const inBuffers = frame >= drv.buffersPa && frame < drv.buffersPa + 4096 * 2048;
      const inRing = frame >= drv.ringPa && frame < drv.ringPa + 4096 * RX_DESC_SIZE;
      expect(inBuffers || inRing).toBe(true);
    }
    expect(kinds(sinceSrtp, 'vtd-dma-fault')).toHaveLength(0);
    expect(r.verdict).toBe('dump-complete');
    expect(r.oracle.pagesWrong).toBe(0);
  });

  it('the oracle\'s DMA accounting is exact: the changed pages are the ones the ring predicts', () => {
    expect(w.predicted.size).toBeGreaterThan(0);
    expect(r.oracle.pagesChangedAfterPanic).toBe(w.predicted.size);
  });

  it('when a driver attaches the NIC, the copied entry is torn down, the old domain flushed, and a new domain id used', () => {
    const oldDid = first.domains.get(NIC_SID)!.did;
    const oldIova = w.m.nics[0]!.rdba;
    const seen: TraceEvent[] = [];
    const stop = w.m.trace.subscribe((ev) => seen.push(ev));
    ck.attachDevice(NIC);
    const buf = 0x100_0000;
    const iova = ck.mapDma(NIC, buf, 4096)!;
    stop();
    const cc = kinds(seen, 'vtd-cc-inval')[0]!;
    expect(cc.data).toMatchObject({ granularity: 3, did: oldDid, sid: NIC_SID });
    expect(Number(cc.data?.['dropped'])).toBe(1); // the NIC's cached context entry
    const tlb = kinds(seen, 'vtd-iotlb-inval')[0]!;
    expect(tlb.data).toMatchObject({ done: 2, did: oldDid });
    expect(Number(tlb.data?.['dropped'])).toBeGreaterThan(0);
    expect(ck.copied.has(NIC_SID)).toBe(false);
    // The entry now names a fresh domain id, none of the reserved old ones.
    const root = new Uint8Array(16);
    w.m.mc.read(ck.rootPa, root);
    const ce = new Uint8Array(16);
    w.m.mc.read(Number(bytesToWords(root)[0]! & ~0xfffn) + NIC_SID * 16, ce);
    const [lo, hi] = bytesToWords(ce);
    const entry = decodeContextEntry(lo!, hi!);
    expect(entry.present).toBe(true);
    expect(ck.reservedDids.has(entry.domainId)).toBe(false);
    expect(entry.domainId).not.toBe(oldDid);
    expect(entry.slptptr).toBe(ck.domains.get(NIC_SID)!.root);
    // The device's old IOVAs now lead nowhere; the new mapping works.
    const old = w.m.dma.write(NIC, oldIova, new Uint8Array(16));
    expect(old).toMatchObject({ ok: false, fault: 'dmar-fault' });
    expect(kinds(w.m.trace.find('vtd-dma-fault'), 'vtd-dma-fault').at(-1)!.data).toMatchObject({ reason: FR_WRITE, sid: NIC_SID });
    expect(w.m.dma.write(NIC, iova, new Uint8Array(16))).toMatchObject({ ok: true, pa: buf });
  });
});

describe('VT-d kdump before 4.2: the GCMD shadow starts at zero, then tables are new and empty', () => {
  const { r, w, ck } = run({ crashProfile: 'linux-4.1' });

  it('the first GCMD write (IR off) clears TE too; the NIC\'s IOVAs then reach no memory and master-abort', () => {
    const g = kinds(w.after, 'vtd-gcmd')[0]!;
    expect(g.data).toMatchObject({ gcmd: '0x0', te: false, teChanged: true, ireChanged: true });
    // This 1 GiB machine has nothing at 0xffff_0000 (an 8 GiB one has its PCI hole there).
    const abort = kinds(w.after, 'dma-fault').find((e) => e.detail.includes('no memory at 0xffff'))!;
    expect(abort.t).toBeGreaterThan(g.t);
  });

  it('translation comes back over an empty root table and every NIC DMA faults with reason 1, printed in 4.1\'s format', () => {
    expect(ck.path).toBe('new-tables');
    const te = kinds(w.after, 'vtd-gcmd').filter((e) => e.data?.['teChanged'] === true);
    expect(te.map((e) => e.data?.['te'])).toEqual([false, true]);
    const faults = kinds(w.after, 'vtd-dma-fault');
    expect(faults.length).toBeGreaterThan(0);
    expect(faults.every((f) => f.data?.['reason'] === FR_ROOT_NOT_PRESENT && f.data?.['sid'] === NIC_SID)).toBe(true);
    expect(r.logs.crashKernel.some((l) => l.includes('dmar: DMAR:[DMA Read] Request device [00:03.0] fault addr '))).toBe(true);
    expect(r.logs.crashKernel.some((l) => l.endsWith('DMAR:[fault reason 01] Present bit in root entry is clear'))).toBe(true);
    expect(r.oracle.pagesWrong).toBe(0);
  });
});

describe('VT-d kdump with a scalable-mode first kernel', () => {
  const sm = { scalable: true, firstCmdline: 'root=/dev/vda1 ro crashkernel=160M intel_iommu=sm_on' };

  it('a pre-2022 capture kernel copies the scalable table as legacy, reports success, and the NIC faults on an empty context slot', () => {
    const { r, w, ck } = run({ ...sm, crashProfile: 'linux-4.19' });
    expect(ck.path).toBe('copied');
    expect(ck.scalable).toBe(false);
    const copyStep = w.after.find((e) => e.kind === 'step' && e.detail.includes('context entries'))!;
    expect(copyStep.data).toMatchObject({ ext: false });
    expect(r.logs.crashKernel.some((l) => l.endsWith('DMAR: Copied translation tables from previous kernel for dmar0'))).toBe(true);
    // The unit reads legacy slot 0x18: the first half of the scalable entry for devfn 0x0c, which is empty.
    const root = new Uint8Array(16);
    w.m.mc.read(ck.rootPa, root);
    const table = Number(bytesToWords(root)[0]! & ~0xfffn);
    const faults = kinds(w.after, 'vtd-dma-fault');
    expect(faults.length).toBeGreaterThan(0);
    expect(faults[0]!.data).toMatchObject({ reason: FR_CONTEXT_NOT_PRESENT, sid: NIC_SID });
    expect(faults[0]!.detail).toContain(`at 0x${(table + NIC_SID * 16).toString(16)} is not present`);
    // The NIC's real entry was copied too, but into slots 0x30 and 0x31, where the unit never looks for it.
    const slot = new Uint8Array(16);
    w.m.mc.read(table + 2 * NIC_SID * 16, slot);
    expect(bytesToWords(slot)[0]! & 1n).toBe(1n);
    expect(r.logs.crashKernel.some((l) => l.includes('DMAR: [DMA Read] Request device [00:03.0] fault addr') && l.endsWith('[fault reason 02] Present bit in context entry is clear'))).toBe(true);
  });

  it('a current capture kernel in legacy mode refuses the copy and falls back to empty tables', () => {
    const { r, w, ck } = run({ ...sm });
    expect(ck.path).toBe('copy-failed');
    expect(r.logs.crashKernel.some((l) => l.endsWith('DMAR: Failed to copy translation tables from previous kernel for dmar0'))).toBe(true);
    const te = kinds(w.after, 'vtd-gcmd').filter((e) => e.data?.['teChanged'] === true).map((e) => e.data?.['te']);
    expect(te).toEqual([false, true]);
    expect(kinds(w.after, 'vtd-dma-fault').every((f) => f.data?.['reason'] === FR_ROOT_NOT_PRESENT)).toBe(true);
  });

  it('a current capture kernel in scalable mode copies the scalable tables and the NIC keeps its buffers', () => {
    const { r, w, ck } = run({ ...sm, crashCmdline: 'root=/dev/vda1 irqpoll nr_cpus=1 reset_devices intel_iommu=sm_on' });
    expect(ck.path).toBe('copied');
    expect(ck.scalable).toBe(true);
    expect(kinds(w.after, 'vtd-dma-fault')).toHaveLength(0);
    expect(kinds(w.after, 'vtd-pasid-fetch').length).toBeGreaterThan(0);
    expect(r.verdict).toBe('dump-complete');
    expect(r.oracle.pagesChangedAfterPanic).toBe(w.predicted.size);
  });
});
