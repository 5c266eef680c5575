// DMA through VT-d translation: a NIC-sized write every transaction, through
// root, context and a 3-level second-level table with the IOTLB warm,
// against the same writes on a machine without an IOMMU. Prints simulated
// DMA transactions per second for both and their ratio, measured in one run.
import { Machine } from '../dist/platform/machine.js';
import { rootEntryAddress, rootEntryBytes, encodeRootEntry } from '../dist/platform/vtd/root-table.js';
import { contextEntryBytes, EMPTY_CONTEXT } from '../dist/platform/vtd/context-entry.js';
import { slIndex, slTableEntry, slLeaf } from '../dist/platform/vtd/second-level-table.js';
import { GCMD_SRTP, GCMD_TE, REG_GCMD, REG_RTADDR, rtaddrValue } from '../dist/platform/vtd/registers.js';
import { REPEAT, median } from './measure.mjs';

const MiB = 2 ** 20;
const TRANSACTIONS = 200_000;
const PAGES = 4096; // 16 MiB of IOVA space: every page fits the IOTLB
const IOVA_BASE = 0x1000_0000;
const PA_BASE = 0x2000_0000;
const DEVICE = '03:00.0';
const host = { kind: 'cpu', id: 0 };
const nic = { name: 'nic0', bdf: DEVICE, mmioBase: 0xfe00_0000, packetIntervalNs: 1e12, packetBytes: 1514 };

function machine(vtd) {
  return new Machine({ memoryBytes: 1024 * MiB, cpus: 1, seed: 1, nics: [nic], cpuVendor: 'GenuineIntel', ...(vtd ? { intelIommu: {} } : {}) });
}

/** Root, context and second-level tables mapping IOVA_BASE.. to PA_BASE.., then SRTP and TE. */
function translate(m) {
  let next = 0x100_0000;
  const table = () => { const t = next; next += 4096; m.mc.zero(t, 4096, host); return t; };
  const q = (pa, v) => { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, v, true); m.mc.write(pa, b, host); };
  const r = (pa) => { const b = new Uint8Array(8); m.mc.read(pa, b); return new DataView(b.buffer).getBigUint64(0, true); };
  const root = table();
  const ctx = table();
  const sl = table();
  m.mc.write(rootEntryAddress(root, 3), rootEntryBytes(encodeRootEntry({ present: true, contextTable: ctx })), host);
  m.mc.write(ctx, contextEntryBytes({ ...EMPTY_CONTEXT, present: true, translationType: 0, slptptr: sl, addressWidth: 1, domainId: 1 }), host);
  for (let p = 0; p < PAGES; p++) {
    const iova = IOVA_BASE + p * 4096;
    let t = sl;
    for (let level = 3; level > 1; level--) {
      const at = t + 8 * slIndex(iova, level);
      const e = r(at);
      if ((e & 3n) === 0n) { const n = table(); q(at, slTableEntry(n)); t = n; } else t = Number(e & 0x000f_ffff_ffff_f000n);
    }
    q(t + 8 * slIndex(iova, 1), slLeaf(PA_BASE + p * 4096));
  }
  const base = m.vtdMmio;
  m.mmio.write(base + REG_RTADDR, rtaddrValue(root, false), 8);
  m.mmio.write(base + REG_GCMD, BigInt(GCMD_SRTP >>> 0), 4);
  m.mmio.write(base + REG_GCMD, BigInt(GCMD_TE >>> 0), 4);
}

function run(vtd) {
  const m = machine(vtd);
  if (vtd) translate(m);
  const packet = new Uint8Array(1514).fill(0x5a);
  const base = vtd ? IOVA_BASE : PA_BASE;
  // Warm the IOTLB (and the frames) once, then time.
  for (let p = 0; p < PAGES; p++) if (!m.dma.write(DEVICE, base + p * 4096, packet).ok) throw new Error(`DMA failed at page ${p}`);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < TRANSACTIONS; i++) m.dma.write(DEVICE, base + (i % PAGES) * 4096 + ((i * 64) % 2048), packet);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

const direct = median(Array.from({ length: REPEAT }, () => run(false)));
const translated = median(Array.from({ length: REPEAT }, () => run(true)));
const rate = (ms) => Math.round(TRANSACTIONS / (ms / 1000));
console.log(`DMA without an IOMMU:                 ${rate(direct)} transactions/s (${TRANSACTIONS} writes of 1514 bytes, median of ${REPEAT})`);
console.log(`DMA through VT-d translation:         ${rate(translated)} transactions/s`);
console.log(`VT-d translation cost ratio time(VT-d)/time(direct): ${(translated / direct).toFixed(2)}`);
