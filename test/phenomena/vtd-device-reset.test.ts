// Seed 004, issue 8: a device whose capture-kernel driver resets it, one that
// has no capture-kernel driver, and a driver that probes without
// reset_devices. The reset stops the DMA; the driver's first DMA map is the
// deferred attach that tears the copied context entry down. Each test
// follows the chain in the hardware trace and the memory controller's writes.
import { describe, expect, it } from 'vitest';
import { runScenario } from '../../src/scenario/run.js';
import type { Machine } from '../../src/platform/machine.js';
import type { FirstKernel } from '../../src/kernel/first-kernel.js';
import type { TraceEvent } from '../../src/platform/trace.js';
import { RX_DESC_SIZE } from '../../src/platform/pci/rx-nic.js';
import { intelIommuOf, type IntelIommuDriver } from '../../src/kernel/drivers/intel-iommu/intel-iommu-driver.js';
import { decodeContextEntry } from '../../src/platform/vtd/context-entry.js';
import { bytesToWords } from '../../src/platform/vtd/entry-bytes.js';
import { FR_READ } from '../../src/platform/vtd/fault-reasons.js';
import { smallScenario } from '../helpers/small-scenario.js';
import type { ScenarioInput } from '../../src/scenario/schema.js';

const NIC = '00:03.0';
const NIC_SID = 0x18;
const BUF_BYTES = 2048;
const PACKET_BYTES = 1514;

interface Watched {
  m: Machine;
  fk: FirstKernel;
  /** Trace events from the capture kernel's start on. */
  after: TraceEvent[];
  /** Times of the NIC's DMA writes to memory after the capture kernel started. */
  nicWrites: number[];
  /** Ring index of the NIC at the jump to purgatory and at its reset. */
  rdhAtHandoff: number;
  rdhAtReset: number | undefined;
  /** Ring index when /proc/vmcore is set up (before the kdump service reads a page). */
  rdhAtVmcore: number;
}

function run(captureDriver: 'reset' | 'none', cmdline = 'root=/dev/vda1 irqpoll nr_cpus=1 reset_devices') {
  const s = smallScenario({
    machine: {
      memory: '1G', cpus: 2, cpu: { vendor: 'intel' }, iommu: { kind: 'intel' },
      // A packet every 1 ms from a 4096-entry ring: DMA lasts about 4 s after the panic, past the driver's probe.
      devices: [{ kind: 'rx-nic', name: 'nic0', bdf: NIC, packetInterval: '1ms', ringEntries: 4096, captureDriver }],
    },
    firstKernel: { profile: 'linux-6.12', cmdline: 'root=/dev/vda1 ro crashkernel=160M' },
    crashKernel: { profile: 'linux-6.12', cmdline, initrdSize: '8M', minMemory: '96M' },
  } as Partial<ScenarioInput>);
  const w: Partial<Watched> = { after: [], nicWrites: [] };
  let capturing = false;
  const r = runScenario(s, {
    onMachine: (m, fk) => {
      w.m = m;
      w.fk = fk;
      m.mc.addWriteObserver((_pa, _len, who) => {
        if (capturing && who.kind === 'device' && who.name === NIC) w.nicWrites!.push(m.clock.now);
      });
      m.trace.subscribe((ev) => {
        if (ev.source === 'crash-kernel' && ev.kind === 'step' && ev.detail.startsWith('capture kernel')) capturing = true;
        if (capturing && (ev.source === 'dmar0' || ev.source === 'nic0' || ev.source === 'crash-kernel')) w.after!.push(ev);
        if (ev.kind === 'jump' && ev.detail.includes('purgatory')) w.rdhAtHandoff = m.nics[0]!.rdh;
        // Traced before the registers go back to power-on values.
        if (ev.source === 'nic0' && ev.kind === 'reset') w.rdhAtReset = m.nics[0]!.rdh;
        if (ev.kind === 'step' && ev.detail.startsWith('/proc/vmcore:')) w.rdhAtVmcore = m.nics[0]!.rdh;
      });
    },
  });
  return { r, w: w as Watched, ck: intelIommuOf(w.m!)!, first: w.fk!.iommu as IntelIommuDriver };
}

const kinds = (evs: TraceEvent[], kind: string): TraceEvent[] => evs.filter((e) => e.kind === kind);
const stepAt = (evs: TraceEvent[], text: string): TraceEvent => {
  const e = evs.find((x) => x.kind === 'step' && x.detail.includes(text));
  if (e === undefined) throw new Error(`no step "${text}"`);
  return e;
};

/** Pages of the old ring and buffers that descriptors [from, to) touch. */
function ringPages(fk: FirstKernel, from: number, to: number): Set<number> {
  const drv = fk.drivers[0]!;
  const pages = new Set<number>();
  for (let i = from; i !== to; i = (i + 1) % 4096) {
    const buf = drv.buffersPa + i * BUF_BYTES;
    pages.add(Math.floor(buf / 4096));
    pages.add(Math.floor((buf + PACKET_BYTES - 1) / 4096));
    pages.add(Math.floor((drv.ringPa + i * RX_DESC_SIZE) / 4096));
  }
  return pages;
}

describe('VT-d kdump: a capture-kernel driver resets the NIC under reset_devices, then attaches it', () => {
  const { r, w, ck, first } = run('reset');
  const reset = kinds(w.after, 'reset')[0]!;

  it('the NIC DMAs through the copied entry until the reset, and not at all after it', () => {
    expect(ck.path).toBe('copied');
    expect(reset).toBeDefined();
    const before = w.nicWrites.filter((t) => t < reset.t);
    expect(before.length).toBeGreaterThan(0);
    expect(w.nicWrites.filter((t) => t >= reset.t)).toHaveLength(0);
    expect(w.m.nics[0]!.ctrl).toBe(0);
    expect(r.logs.crashKernel.some((l) => l.endsWith('rxnic 00:03.0: reset_devices: resetting the device'))).toBe(true);
  });

  it('the driver\'s first DMA map, after the reset, tears the copied entry down, flushes the old domain and uses a new domain id', () => {
    const oldDid = first.domains.get(NIC_SID)!.did;
    const tear = stepAt(w.after, 'copied context entry of 00:03.0');
    const cc = kinds(w.after, 'vtd-cc-inval').find((e) => e.data?.['sid'] === NIC_SID)!;
    const tlb = kinds(w.after, 'vtd-iotlb-inval').find((e) => e.data?.['did'] === oldDid)!;
    const attach = stepAt(w.after, '00:03.0 attached to domain');
    expect(reset.t).toBeLessThan(tear.t);
    expect(cc.data).toMatchObject({ granularity: 3, did: oldDid });
    expect(w.after.indexOf(tear)).toBeLessThan(w.after.indexOf(attach));
    expect(tlb.t).toBeGreaterThanOrEqual(reset.t);
    expect(ck.copied.has(NIC_SID)).toBe(false);
    const newDid = Number(attach.data?.['did']);
    expect(ck.reservedDids.has(newDid)).toBe(false);
    expect(newDid).not.toBe(oldDid);
    // The context entry the unit reads now names the new domain and its tables.
    const root = new Uint8Array(16);
    w.m.mc.read(ck.rootPa, root);
    const ce = new Uint8Array(16);
    w.m.mc.read(Number(bytesToWords(root)[0]! & ~0xfffn) + NIC_SID * 16, ce);
    const [lo, hi] = bytesToWords(ce);
    expect(decodeContextEntry(lo!, hi!)).toMatchObject({ present: true, domainId: newDid, slptptr: ck.domains.get(NIC_SID)!.root });
    // The ring the driver programmed is an IOVA in that domain.
    expect(w.m.nics[0]!.rdba).toBe(0xffff_f000);
  });

  it('the oracle counts exactly the pages the ring advanced over between the handoff and the reset', () => {
    expect(w.rdhAtReset).toBeDefined();
    const predicted = ringPages(w.fk, w.rdhAtHandoff, w.rdhAtReset!);
    expect(predicted.size).toBeGreaterThan(0);
    expect(r.oracle.pagesChangedAfterPanic).toBe(predicted.size);
    expect(r.oracle.pagesWrong).toBe(0);
    expect(r.verdict).toBe('dump-complete');
  });
});

describe('VT-d kdump: no capture-kernel driver for the NIC', () => {
  const { r, w, ck } = run('none');

  it('nothing resets or attaches it: it keeps DMAing through the old translation for the whole dump', () => {
    expect(ck.path).toBe('copied');
    expect(kinds(w.after, 'reset')).toHaveLength(0);
    expect(ck.copied.has(NIC_SID)).toBe(true);
    expect(w.after.some((e) => e.kind === 'step' && e.detail.includes('attached to domain'))).toBe(false);
    const vmcore = stepAt(w.after, '/proc/vmcore:');
    expect(w.nicWrites.some((t) => t > vmcore.t)).toBe(true);
    expect(kinds(w.after, 'vtd-dma-fault')).toHaveLength(0);
    // Every change lands in the NIC's own old buffers. Pages changed before the dump starts are all served
    // changed; a page the service read before the NIC reached it counts as correct.
    const atStart = ringPages(w.fk, w.rdhAtHandoff, w.rdhAtVmcore).size;
    const atEnd = ringPages(w.fk, w.rdhAtHandoff, w.m.nics[0]!.rdh).size;
    expect(atEnd).toBeGreaterThan(atStart);
    expect(r.oracle.pagesChangedAfterPanic).toBeGreaterThanOrEqual(atStart);
    expect(r.oracle.pagesChangedAfterPanic).toBeLessThanOrEqual(atEnd);
    expect(r.oracle.pagesWrong).toBe(0);
  });
});

describe('VT-d kdump: the NIC\'s driver probes without reset_devices', () => {
  const { r, w, ck } = run('reset', 'root=/dev/vda1 irqpoll nr_cpus=1');

  it('the attach happens while the NIC still DMAs: its old IOVAs fault in the new domain until the ring is reprogrammed', () => {
    expect(kinds(w.after, 'reset')).toHaveLength(0);
    const attach = stepAt(w.after, '00:03.0 attached to domain');
    const faults = kinds(w.after, 'vtd-dma-fault').filter((f) => f.t >= attach.t);
    expect(faults.length).toBeGreaterThan(0);
    expect(faults.every((f) => f.data?.['reason'] === FR_READ && f.data?.['sid'] === NIC_SID)).toBe(true);
    expect(w.nicWrites.filter((t) => t >= attach.t)).toHaveLength(0);
    expect(ck.copied.has(NIC_SID)).toBe(false);
    expect(r.logs.crashKernel.some((l) => l.includes('DMAR: [DMA Read NO_PASID] Request device [00:03.0] fault addr ') && l.endsWith('[fault reason 0x06] PTE Read access is not set'))).toBe(true);
    expect(r.oracle.pagesWrong).toBe(0);
  });
});
