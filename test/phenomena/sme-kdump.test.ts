// Seed 002: kdump with SME. Old memory is ciphertext in DRAM; a capture
// kernel must map it encrypted (ioremap_encrypted, 4.20) with SME active
// itself, and the first kernel must load the crash segments decrypted. The
// seed's support table (on/on and off/off dump; on/off and off/on do not)
// must arise from those mechanisms.
import { describe, expect, it } from 'vitest';
import { runScenario } from '../../src/scenario/run.js';
import type { Machine } from '../../src/platform/machine.js';
import type { FirstKernel } from '../../src/kernel/first-kernel.js';
import { HOST_KEY_SLOT } from '../../src/platform/machine.js';
import { walk, mmuEncryption } from '../../src/platform/cpu/paging.js';
import { PAGE_OFFSET } from '../../src/kernel/layout.js';
import { decodeNotes } from '../../src/dump/elf-note.js';
import { VmcoreInfo } from '../../src/dump/vmcoreinfo.js';
import { VMCOREINFO_NOTE_SIZE } from '../../src/kernel/vmcoreinfo-export.js';
import { smallScenario } from '../helpers/small-scenario.js';

function sme(first: 'on' | 'off', capture: 'on' | 'off', profiles: [string, string] = ['linux-6.1', 'linux-6.1'], crashkernel = '224M') {
  const s = smallScenario({
    machine: { memory: '1G', cpus: 2, cpu: { vendor: 'amd', memoryEncryption: 'enabled', cbit: 47 }, devices: [{ kind: 'rx-nic', name: 'nic0', bdf: '00:03.0', packetInterval: '100us', ringEntries: 64 }] },
    firstKernel: { profile: profiles[0], cmdline: `root=/dev/vda1 ro mem_encrypt=${first} crashkernel=${crashkernel}` },
    crashKernel: { profile: profiles[1], cmdline: `root=/dev/vda1 mem_encrypt=${capture} irqpoll nr_cpus=1 reset_devices`, initrdSize: '8M', minMemory: '96M' },
  });
  let m: Machine | undefined;
  let k: FirstKernel | undefined;
  const r = runScenario(s, { onMachine: (mm, kk) => { m = mm; k = kk; } });
  return { r, m: m!, k: k! };
}
const step = (chain: string[], s: string): number => chain.findIndex((c) => c.includes(s));

describe('SME and the capture kernel\'s memory', () => {
  it('SWIOTLB forced by SME takes 64 MiB of the reservation: 160M is enough without SME, not with it', () => {
    const plain = sme('off', 'off', undefined, '160M').r;
    expect(plain.verdict).toBe('dump-complete');
    expect(plain.logs.crashKernel.some((l) => l.includes('software IO TLB'))).toBe(false);
    const { r } = sme('on', 'on', undefined, '160M');
    expect(r.verdict).toBe('crash-kernel-panic');
    const c = r.chain;
    expect(step(c, 'capture kernel SME active')).toBeGreaterThanOrEqual(0);
    expect(step(c, 'SWIOTLB (forced by SME) takes 64 MiB')).toBeGreaterThan(step(c, 'capture kernel SME active'));
    expect(step(c, 'out of memory')).toBeGreaterThan(step(c, 'SWIOTLB (forced by SME)'));
    expect(r.logs.crashKernel.some((l) => /software IO TLB: mapped \[mem 0x[0-9a-f]{16}-0x[0-9a-f]{16}\] \(64MB\)$/.test(l))).toBe(true);
  });
});

describe('SME kdump support table, 4.20+ kernels', () => {
  const onOn = sme('on', 'on');
  it('on/on: ciphertext in DRAM, C-bit page tables, capture maps old memory encrypted, every page correct', () => {
    const { r, m, k } = onOn;
    expect(r.verdict).toBe('dump-complete');
    expect(r.oracle.pagesCorrect).toBe(r.oracle.pagesExpected);
    // The first kernel's memory is ciphertext: a workload page read raw differs from the kernel's view.
    const pa = k.image.pa('init_uts_ns') - (k.image.pa('init_uts_ns') % 4096);
    const raw = new Uint8Array(4096);
    const view = new Uint8Array(4096);
    m.mc.read(pa, raw);
    m.mc.read(pa, view, { keyId: HOST_KEY_SLOT });
    expect(k.keyFor(pa)).toBe(HOST_KEY_SLOT);
    expect(new TextDecoder().decode(view)).toContain('6.1.0-kdumpsim');
    expect(new TextDecoder().decode(raw)).not.toContain('6.1.0-kdumpsim');
    // The direct-map entry carries the C-bit and the walk reports it.
    const w = walk(m.mc, k.cr3, PAGE_OFFSET + BigInt(pa), mmuEncryption(m.bsp, HOST_KEY_SLOT));
    expect(w.ok && w.encrypted).toBe(true);
    expect(k.cr3).toBe(k.image.pa('init_top_pgt') + 2 ** 47);
    // The chain: SME in both kernels, decrypted segments verified by purgatory, an encrypted old-memory mapping.
    const c = r.chain;
    expect(step(c, 'SME active: sme_me_mask 0x800000000000')).toBeGreaterThanOrEqual(0);
    expect(step(c, 'purgatory: SHA-256')).toBeGreaterThan(step(c, 'machine_kexec'));
    expect(step(c, 'capture kernel SME active')).toBeGreaterThan(step(c, 'purgatory: SHA-256'));
    expect(step(c, 'old memory mapped encrypted (ioremap_encrypted')).toBeGreaterThan(step(c, 'capture kernel SME active'));
    expect(m.trace.find('wbinvd')).toHaveLength(1);
    expect(r.logs.firstKernel.some((l) => l.endsWith('Memory Encryption Features active: AMD SME'))).toBe(true);
  });

  it('on/on: VMCOREINFO carries NUMBER(sme_mask) in decimal', () => {
    const { m, k } = onOn;
    const note = new Uint8Array(VMCOREINFO_NOTE_SIZE);
    m.mc.read(k.image.pa('vmcoreinfo_note'), note, { keyId: HOST_KEY_SLOT });
    const vi = VmcoreInfo.parse(new TextDecoder().decode(decodeNotes(note, { file: 'memory', offset: 0 })[0]!.desc));
    expect(vi.get('NUMBER(sme_mask)')).toBe('140737488355328');
  });

  it('off/off dumps completely with no encryption anywhere', () => {
    const { r, k } = sme('off', 'off');
    expect(r.verdict).toBe('dump-complete');
    expect(k.keyFor(0x1000000)).toBe(0);
    expect(r.chain.some((c) => c.includes('SME not active: mem_encrypt=off'))).toBe(true);
  });

  it('on/off: the capture kernel reads old memory in the clear and captures ciphertext; the notes are garbage', () => {
    const { r } = sme('on', 'off');
    expect(r.verdict).toBe('dump-partial');
    expect(r.oracle.pagesCiphertext).toBeGreaterThan(0);
    expect(r.oracle.pagesWrong).toBe(0);
    expect(r.chain.some((c) => c.includes('old memory mapped unencrypted (ioremap_cache: SME is not active in this kernel)'))).toBe(true);
    expect(r.logs.crashKernel.some((l) => l.includes('Warning: Exceeded p_memsz, dropping PT_NOTE entry'))).toBe(true);
    expect(r.oracle.errors[0]!.cause).toBe('captured as ciphertext: read without the key the first kernel wrote it with');
  });

  it('off/on: the capture kernel decrypts plaintext into garbage', () => {
    const { r } = sme('off', 'on');
    expect(r.verdict).toBe('dump-partial');
    expect(r.oracle.pagesWrong).toBeGreaterThan(0);
    expect(r.oracle.pagesCiphertext).toBe(0);
    expect(r.oracle.errors[0]!.cause).toBe('decrypted with the host key, but the first kernel had written it in the clear');
  });
});

describe('SME kdump before 4.20', () => {
  it('a 4.19 first kernel loads the crash segments through its encrypted mapping: purgatory is ciphertext when the CPU jumps there', () => {
    const { r, m, k } = sme('on', 'on', ['linux-4.19', 'linux-4.19']);
    expect(r.verdict).toBe('crash-kernel-hang');
    expect(k.keyFor(k.crashRegion!.start + 0x1000)).toBe(HOST_KEY_SLOT); // never marked decrypted
    const tf = m.trace.find('triple-fault');
    expect(tf).toHaveLength(1);
    expect(tf[0]!.detail).toContain('purgatory');
    expect(m.trace.find('digest-ok')).toHaveLength(0);
    expect(r.logs.firstKernel.some((l) => l.endsWith('AMD Secure Memory Encryption (SME) active'))).toBe(true);
  });

  it('a 4.19 capture kernel under a 6.1 first kernel maps old memory with plain ioremap: ciphertext', () => {
    const { r } = sme('on', 'on', ['linux-6.1', 'linux-4.19']);
    expect(r.verdict).toBe('dump-partial');
    expect(r.oracle.pagesCiphertext).toBeGreaterThan(0);
    expect(r.oracle.pagesCorrect).toBeLessThan(r.oracle.pagesExpected);
    expect(r.chain.some((c) => c.includes('unencrypted (ioremap: this kernel predates ioremap_encrypted)'))).toBe(true);
  });

  it('a 4.19 first kernel exports no sme_mask', () => {
    const { m, k } = sme('off', 'off', ['linux-4.19', 'linux-4.19']);
    const note = new Uint8Array(VMCOREINFO_NOTE_SIZE);
    m.mc.read(k.image.pa('vmcoreinfo_note'), note);
    const vi = VmcoreInfo.parse(new TextDecoder().decode(decodeNotes(note, { file: 'memory', offset: 0 })[0]!.desc));
    expect(vi.get('NUMBER(sme_mask)')).toBeUndefined();
  });
});
