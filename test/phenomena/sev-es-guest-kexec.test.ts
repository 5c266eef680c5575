import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { openVmcore } from '../../src/dump/vmcore-reader.js';
import { seededPage } from '../../src/kernel/guest/guest-kernel.js';
import { PYTHON, probePythonModules, requireTool } from '../interop/tools.js';
import { loadScenarioFile } from '../../src/scenario/load.js';
import { runGuestScenario } from '../../src/scenario/guest-run.js';
import { runScenario } from '../../src/scenario/run.js';
import type { SevGuestVm } from '../../src/platform/hv/sev-guest-vm.js';
import type { RunResult } from '../../src/scenario/result.js';
import type { TraceEvent } from '../../src/platform/trace.js';
import { readRmpEntry } from '../../src/platform/snp/rmp.js';
import { SVM_VMGEXIT_AP_JUMP_TABLE, SVM_VMGEXIT_AP_CREATION, SVM_VMGEXIT_MMIO_WRITE } from '../../src/platform/hv/ghcb-page.js';
import { VGA_TEXT_BASE } from '../../src/platform/hv/mmio-bus.js';
import { DECOMPRESSOR_BANNER } from '../../src/kernel/guest/guest-kernel.js';
import { PSC_OP_PRIVATE, PSC_OP_SHARED } from '../../src/platform/hv/ghcb-msr.js';
import { VC_EXIT_PAGE_NOT_VALIDATED, VC_EXIT_NPF } from '../../src/platform/hv/vcpu.js';
import { CRASH_REGION_BYTES, FW_JUMP_TABLE_LOW, WORKLOAD, backupGhcbOf, ghcbOf } from '../../src/kernel/guest/layout.js';

function run(file: string): { r: RunResult; vm: SevGuestVm } {
  let vm: SevGuestVm | undefined;
  const r = runGuestScenario(loadScenarioFile(`scenarios/${file}.yaml`), {}, (v) => { vm = v; });
  return { r, vm: vm! };
}

const AP = 'vm1/vcpu1';
const of = (r: RunResult, kind: string, source?: string): TraceEvent[] => r.trace.filter((e) => e.kind === kind && (source === undefined || e.source === source));
const stepIndex = (r: RunResult, text: string): number => r.trace.findIndex((e) => e.kind === 'step' && e.detail.includes(text));

describe('SEV-ES guest kexec: mainline refuses it', () => {
  it('machine_kexec_prepare returns -ENOSYS, no AP is ever stopped, kdumpsim run dispatches the guest loop', () => {
    const r = runScenario(loadScenarioFile('scenarios/sev-es-guest-kexec-mainline.yaml'));
    expect(r.verdict).toBe('kexec-refused');
    expect(r.expectation?.met).toBe(true);
    expect(r.chain.some((c) => c.includes('-ENOSYS'))).toBe(true);
    expect(of(r, 'nmi')).toHaveLength(0);
    expect(of(r, 'ap-park')).toHaveLength(0);
  });
});

describe('SEV-ES guest kexec: the RFC parks the AP on the AP jump table and the crash kernel wakes it at the reset vector', () => {
  const { r, vm } = run('sev-es-guest-kexec-rfc');

  it('the AP goes through MSR-protocol holds and wakes: 0x002, 0x006 ... 0x007 with a non-zero result, twice', () => {
    const ex = of(r, 'ghcb-msr', AP).map((e) => [e.data?.['request'], e.data?.['response'] ?? null, e.data?.['result'] ?? null]);
    expect(ex).toEqual([
      [0x002, 0x001, null], // firmware: SEV_INFO
      [0x006, null, null], [0x006, 0x007, 1], // firmware hold, woken by the first kernel's SIPI
      [0x006, null, null], [0x006, 0x007, 1], // the blob's hold on panic, woken by the crash kernel's SIPI
    ]);
  });

  it('the AP\'s state transitions: launch, firmware hold, first kernel, blob hold, crash kernel', () => {
    expect(of(r, 'vcpu-state', AP).map((e) => e.data?.['to'])).toEqual(['running', 'reset-hold', 'running', 'reset-hold', 'running']);
    expect(vm.vcpus[1]!.runState).toBe('running');
  });

  it('the woken AP reads the crash kernel\'s reset vector bytes from the jump table page and jumps there', () => {
    const reads = of(r, 'ap-jump-table-vector', AP);
    expect(reads.map((e) => e.data?.['bytes'])).toEqual(['40 00 00 08', '40 00 00 09']);
    expect(reads[1]!.data).toMatchObject({ table: FW_JUMP_TABLE_LOW, ip: 0x40, cs: 0x900, start: 0x9040, via: 'blob' });
    const jumpAfter = r.trace.slice(r.trace.indexOf(reads[1]!)).find((e) => e.kind === 'jump' && e.source === AP)!;
    expect(jumpAfter.data).toMatchObject({ gpa: 0x9040 });
    expect(stepIndex(r, 'CPU 1 called in (crash kernel')).toBeGreaterThan(r.trace.indexOf(jumpAfter));
    // Parking came before the crash kernel started; waking after it wrote its vector.
    expect(r.trace.findIndex((e) => e.kind === 'ap-park')).toBeLessThan(stepIndex(r, 'guest crash kernel'));
    expect(stepIndex(r, 'reset vector 0x900:0x40')).toBeLessThan(r.trace.indexOf(reads[1]!));
  });

  it('both kernels find the table with NAE 0x80000005 GET through their GHCB', () => {
    const gets = of(r, 'ghcb-nae').filter((e) => e.data?.['exitCode'] === SVM_VMGEXIT_AP_JUMP_TABLE);
    expect(gets.map((e) => [e.data?.['op'], e.data?.['ghcb']])).toEqual([['get', ghcbOf(0)], ['get', 32 * 2 ** 20 - CRASH_REGION_BYTES + 0x10_0000]]);
  });

  it('logs the RFC lines and dumps every page correctly', () => {
    for (const l of ['SEV: Hypervisor GHCB protocol version support: min=1 max=2', 'SEV: Using GHCB protocol version 2', 'SEV: AP jump table Blob successfully set up']) {
      expect(r.logs.firstKernel.some((x) => x.endsWith(l))).toBe(true);
    }
    expect(r.verdict).toBe('dump-complete');
    expect(r.oracle).toMatchObject({ pagesExpected: 272, pagesCorrect: 272, pagesWrong: 0, pagesMissing: 0, pagesCiphertext: 0 });
    expect(r.expectation?.met).toBe(true);
  });
});

describe('SEV-ES guest kexec: the RFC\'s run-time opt-out', () => {
  it('with GHCB protocol version 1 the blob is not installed and kexec is refused; the firmware held the AP through the GHCB page', () => {
    const { r } = run('sev-es-guest-kexec-rfc-ghcb-v1');
    expect(r.verdict).toBe('kexec-refused');
    expect(r.logs.firstKernel.some((l) => l.endsWith('SEV: AP jump table parking requires at least GHCB protocol version 2'))).toBe(true);
    expect(of(r, 'ghcb-msr', AP).map((e) => e.data?.['request'])).toEqual([0x002]);
    expect(of(r, 'ghcb-nae', AP).map((e) => e.data?.['exitCode'])).toContain(0x8000_0004);
    expect(r.expectation?.met).toBe(true);
  });

  it('with the jump table at 4 GiB the blob is not installed and kexec is refused', () => {
    const { r } = run('sev-es-guest-kexec-rfc-jump-table-high');
    expect(r.verdict).toBe('kexec-refused');
    expect(r.logs.firstKernel.some((l) => l.endsWith('SEV: AP jump table is above 4GB or address overflow - not enabling AP jump table parking'))).toBe(true);
    expect(of(r, 'ap-park')).toHaveLength(0);
    expect(r.expectation?.met).toBe(true);
  });
});

describe('SEV-ES guest kexec without parking: INIT-SIPI cannot reset an encrypted AP', () => {
  it('the AP halts in the old kernel, the hypervisor refuses INIT and both SIPIs, and the AP never comes up', () => {
    const { r, vm } = run('sev-es-guest-kexec-init-sipi');
    const start = stepIndex(r, 'guest crash kernel');
    const refused = r.trace.slice(start).filter((e) => e.kind === 'vcpu-reset-refused');
    expect(refused.map((e) => e.data?.['ipi'])).toEqual(['init', 'sipi', 'sipi']);
    expect(refused.every((e) => e.data?.['state'] === 'halted')).toBe(true);
    expect(refused[0]!.detail).toMatch(/encrypted with the guest key/);
    expect(of(r, 'vcpu-state', AP).map((e) => e.data?.['to'])).toEqual(['running', 'reset-hold', 'running', 'halted']);
    expect(vm.vcpus[1]!.runState).toBe('halted');
    expect(r.trace.some((e) => e.kind === 'step' && e.detail.startsWith('CPU 1 called in (crash kernel'))).toBe(false);
    const never = r.trace[stepIndex(r, 'CPU 1 never came up')]!;
    expect(never.t - refused[0]!.t).toBeGreaterThanOrEqual(10_000_000_000);
    expect(r.verdict).toBe('dump-complete');
    expect(r.expectation?.met).toBe(true);
  });
});

describe('SNP guest kexec', () => {
  const rmp = (vm: SevGuestVm, gpa: number) => readRmpEntry(vm.machine.mc, vm.machine.rmp!, (vm.hostBase + gpa) / 4096);

  it('6.18: every shared page is private and validated again before the crash kernel reads; GHCBs are converted last over MSR 0x014', () => {
    const { r, vm } = run('snp-guest-kexec');
    const crashBase = vm.memoryBytes - CRASH_REGION_BYTES;
    // The RMP after the run: every old page assigned to the guest and validated.
    const bad: number[] = [];
    for (let gpa = 0; gpa < crashBase; gpa += 4096) {
      const e = rmp(vm, gpa);
      if (!(e.assigned && e.validated && e.asid === vm.asid)) bad.push(gpa);
    }
    expect(bad).toEqual([]);
    // The last page-state changes of the first kernel: PSC private over the MSR protocol for each GHCB.
    const start = stepIndex(r, 'guest crash kernel');
    const msrPsc = r.trace.slice(0, start).filter((e) => e.kind === 'ghcb-msr' && e.data?.['request'] === 0x014);
    expect(msrPsc.slice(-2).map((e) => [e.data?.['response'], e.data?.['op'], e.data?.['error']])).toEqual([[0x015, PSC_OP_PRIVATE, 0], [0x015, PSC_OP_PRIVATE, 0]]);
    const ghcbPsc = r.trace.slice(0, start).filter((e) => e.kind === 'ghcb-nae' && e.data?.['exitCode'] === 0x8000_0010);
    expect(r.trace.indexOf(ghcbPsc.at(-1)!)).toBeLessThan(r.trace.indexOf(msrPsc.at(-1)!));
    // AP DESTROY (event 2) by the old kernel, AP CREATE (event 1) by both.
    const creation = of(r, 'ghcb-nae').filter((e) => e.data?.['exitCode'] === SVM_VMGEXIT_AP_CREATION).map((e) => e.data?.['event']);
    expect(creation).toEqual([1, 2, 1]);
    expect(of(r, 'vcpu-state', AP).map((e) => e.data?.['to'])).toEqual(['running', 'halted', 'no-vmsa', 'running']);
    expect(r.verdict).toBe('dump-complete');
    expect(r.oracle.pagesCorrect).toBe(272);
    expect(r.expectation?.met).toBe(true);
  });

  it('6.12: the page below CPU 1\'s GHCB stays shared; reading it with C=1 is #VC 0x404 and the guest terminates', () => {
    const { r, vm } = run('snp-guest-kexec-leaves-shared');
    const left = backupGhcbOf(0);
    expect(left + 4096).toBe(ghcbOf(1));
    const states = of(r, 'page-state').filter((e) => e.data?.['gpa'] === left).map((e) => e.data?.['op']);
    // Shared at boot; the only conversion back is the hypervisor's own on the fatal access.
    expect(states).toEqual([PSC_OP_SHARED, PSC_OP_PRIVATE]);
    const npf = of(r, 'npf')[0]!;
    expect(npf.data).toMatchObject({ gpa: left, encrypted: true, converted: 'private' });
    const vc = of(r, 'vc')[0]!;
    expect(vc.data).toMatchObject({ gpa: left, exitCode: VC_EXIT_PAGE_NOT_VALIDATED });
    expect(r.trace.indexOf(npf)).toBeLessThan(r.trace.indexOf(vc));
    expect(rmp(vm, left)).toMatchObject({ assigned: true, validated: false });
    // The other backup GHCB (above the last GHCB) was converted and validated.
    expect(rmp(vm, backupGhcbOf(1))).toMatchObject({ assigned: true, validated: true });
    expect(vm.termination).toMatchObject({ set: 0, code: 0 });
    expect(r.verdict).toBe('crash-kernel-panic');
    expect(r.expectation?.met).toBe(true);
  });
});

describe('SEV-ES guest kexec -e: the RFC parks the AP on kexec, the kexec\'d kernel wakes it at its reset vector, and its kdump is complete', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kdumpsim-guest-reboot-'));
  const path = join(dir, 'vmcore');
  let vm: SevGuestVm | undefined;
  const r = runGuestScenario(loadScenarioFile('scenarios/sev-es-guest-kexec-rfc-reboot.yaml'), { vmcorePath: path }, (v) => { vm = v; });
  const kexecAt = stepIndex(r, 'kexec -e on vCPU 0: machine_shutdown');
  const newKernelAt = stepIndex(r, 'guest kexec\'d kernel');
  const panicAt = stepIndex(r, 'panic on vCPU 0');
  const AP_MSR = of(r, 'ghcb-msr', AP);

  it('the AP is parked with MSR 0x006 during kexec -e and each kernel\'s SIPI ends a hold (0x007, result 1)', () => {
    expect(AP_MSR.map((e) => [e.data?.['request'], e.data?.['response'] ?? null, e.data?.['result'] ?? null])).toEqual([
      [0x002, 0x001, null], // firmware: SEV_INFO
      [0x006, null, null], [0x006, 0x007, 1], // firmware hold, woken by the first kernel
      [0x006, null, null], [0x006, 0x007, 1], // the blob's hold on kexec -e, woken by the kexec'd kernel
      [0x006, null, null], [0x006, 0x007, 1], // the blob's hold on panic, woken by the crash kernel
    ]);
    const parkOnKexec = AP_MSR[3]!;
    const at = r.trace.indexOf(parkOnKexec);
    expect(kexecAt).toBeGreaterThan(0);
    expect(at).toBeGreaterThan(kexecAt);
    expect(at).toBeLessThan(newKernelAt);
    const park = of(r, 'ap-park');
    expect(park).toHaveLength(2);
    expect(r.trace.indexOf(park[0]!)).toBeGreaterThan(stepIndex(r, 'stop_other_cpus: REBOOT_VECTOR IPI to CPU 1'));
    expect(r.trace.indexOf(park[0]!)).toBeLessThan(newKernelAt);
    expect(of(r, 'nmi').every((e) => r.trace.indexOf(e) > panicAt)).toBe(true);
    expect(of(r, 'vcpu-state', AP).map((e) => e.data?.['to'])).toEqual(['running', 'reset-hold', 'running', 'reset-hold', 'running', 'reset-hold', 'running']);
  });

  it('the kexec\'d kernel writes reset vector 0xa00:0x40 and the woken AP reads exactly those bytes, far-jumps to 0xa040 and calls in', () => {
    const wrote = r.trace.find((e) => e.kind === 'step' && e.source === 'guest-kexec-kernel' && e.detail.startsWith('AP jump table at GPA'))!;
    expect(wrote.data).toMatchObject({ table: FW_JUMP_TABLE_LOW, ip: 0x40, cs: 0xa00 });
    const reads = of(r, 'ap-jump-table-vector', AP);
    expect(reads.map((e) => e.data?.['bytes'])).toEqual(['40 00 00 08', '40 00 00 0a', '40 00 00 09']);
    const read = reads[1]!;
    expect(read.data).toMatchObject({ table: FW_JUMP_TABLE_LOW, ip: 0x40, cs: 0xa00, start: 0xa040, via: 'blob' });
    expect(r.trace.indexOf(wrote)).toBeLessThan(r.trace.indexOf(read));
    expect(r.trace.indexOf(read)).toBeGreaterThan(newKernelAt);
    const jumpAfter = r.trace.slice(r.trace.indexOf(read)).find((e) => e.kind === 'jump' && e.source === AP)!;
    expect(jumpAfter.data).toMatchObject({ gpa: 0xa040 });
    expect(stepIndex(r, 'CPU 1 called in (kexec\'d kernel trampoline')).toBeGreaterThan(r.trace.indexOf(jumpAfter));
  });

  it('every CPU is online in the kexec\'d kernel before it panics', () => {
    const online = r.trace.find((e) => e.kind === 'step' && e.source === 'guest-kexec-kernel' && e.detail.endsWith('CPUs online'))!;
    expect(online.data).toMatchObject({ online: 2, vcpus: 2 });
    expect(r.trace.indexOf(online)).toBeLessThan(panicAt);
    expect(r.chain).toContain('kexec -e: the kexec\'d kernel runs with 2 of 2 CPUs online');
    expect(r.logs.firstKernel.some((l) => l.endsWith('kexec_core: Starting new kernel'))).toBe(true);
  });

  it('the capture kernel reads every page of the kexec\'d kernel correctly (its own bytes, not the first kernel\'s)', () => {
    expect(r.verdict).toBe('dump-complete');
    expect(r.oracle).toMatchObject({ pagesExpected: 272, pagesCorrect: 272, pagesWrong: 0, pagesMissing: 0, pagesCiphertext: 0 });
    expect(vm!.vcpus[1]!.runState).toBe('running');
    const v = openVmcore(path);
    try {
      const got = Buffer.from(v.readPhys(WORKLOAD, 4096)).toString('hex');
      expect(got).toBe(Buffer.from(seededPage(r.seed + 2, 0)).toString('hex'));
      expect(got).not.toBe(Buffer.from(seededPage(r.seed, 0)).toString('hex'));
    } finally {
      v.close();
    }
    expect(r.expectation?.met).toBe(true);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));
});

describe('SEV-ES guest kexec -e on a refusing kernel', () => {
  it('kexec -l fails with -ENOSYS in machine_kexec_prepare, nothing is shut down and the AP keeps running', () => {
    const { r, vm } = run('sev-es-guest-kexec-mainline-reboot');
    expect(r.verdict).toBe('kexec-refused');
    expect(r.chain.some((c) => c.includes('kexec_file_load (kexec -l): machine_kexec_prepare() returns -ENOSYS'))).toBe(true);
    expect(stepIndex(r, 'kexec -e on vCPU')).toBe(-1);
    expect(of(r, 'ap-park')).toHaveLength(0);
    expect(vm.vcpus[1]!.runState).toBe('running');
    expect(r.expectation?.met).toBe(true);
  });
});

describe('SNP guest kexec -e (6.18): unshare and AP_DESTROY on kexec, AP CREATE in the kexec\'d kernel, then a complete kdump', () => {
  const { r, vm } = run('snp-guest-kexec-reboot');
  const newKernelAt = stepIndex(r, 'guest kexec\'d kernel');

  it('every page the first kernel shared is private again before the kexec\'d kernel starts, GHCBs last over MSR 0x014', () => {
    const before = r.trace.slice(0, newKernelAt);
    const shared = new Set(before.filter((e) => e.kind === 'page-state' && e.data?.['op'] === PSC_OP_SHARED).map((e) => e.data?.['gpa']));
    expect(shared.size).toBe(5);
    for (const gpa of shared) {
      const last = before.filter((e) => e.kind === 'page-state' && e.data?.['gpa'] === gpa).at(-1)!;
      expect([gpa, last.data?.['op']]).toEqual([gpa, PSC_OP_PRIVATE]);
    }
    const msrPsc = before.filter((e) => e.kind === 'ghcb-msr' && e.data?.['request'] === 0x014);
    expect(msrPsc.slice(-2).map((e) => [e.data?.['response'], e.data?.['op'], e.data?.['error']])).toEqual([[0x015, PSC_OP_PRIVATE, 0], [0x015, PSC_OP_PRIVATE, 0]]);
    expect(stepIndex(r, 'snp_kexec_begin')).toBeLessThan(stepIndex(r, 'stop_other_cpus: REBOOT_VECTOR IPI to CPU 1'));
  });

  it('the AP is destroyed on kexec -e and created again by the kexec\'d kernel, which runs with every CPU', () => {
    const creation = of(r, 'ghcb-nae').filter((e) => e.data?.['exitCode'] === SVM_VMGEXIT_AP_CREATION);
    expect(creation.map((e) => e.data?.['event'])).toEqual([1, 2, 1, 2, 1]);
    expect(r.trace.indexOf(creation[1]!)).toBeLessThan(newKernelAt);
    expect(r.trace.indexOf(creation[2]!)).toBeGreaterThan(newKernelAt);
    expect(of(r, 'vcpu-state', AP).map((e) => e.data?.['to'])).toEqual(['running', 'halted', 'no-vmsa', 'running', 'halted', 'no-vmsa', 'running']);
    expect(stepIndex(r, 'CPU 1 called in (kexec\'d kernel trampoline at GPA 0xa000)')).toBeGreaterThan(newKernelAt);
    const online = r.trace.find((e) => e.kind === 'step' && e.source === 'guest-kexec-kernel' && e.detail.endsWith('CPUs online'))!;
    expect(online.data).toMatchObject({ online: 2, vcpus: 2 });
  });

  it('the kdump after it reads every page correctly and every old page ends assigned and validated', () => {
    const crashBase = vm.memoryBytes - CRASH_REGION_BYTES;
    const bad: number[] = [];
    for (let gpa = 0; gpa < crashBase; gpa += 4096) {
      const e = readRmpEntry(vm.machine.mc, vm.machine.rmp!, (vm.hostBase + gpa) / 4096);
      if (!(e.assigned && e.validated && e.asid === vm.asid)) bad.push(gpa);
    }
    expect(bad).toEqual([]);
    expect(r.verdict).toBe('dump-complete');
    expect(r.oracle).toMatchObject({ pagesExpected: 272, pagesCorrect: 272, pagesWrong: 0, pagesMissing: 0 });
    expect(r.expectation?.met).toBe(true);
  });
});

describe('the guest capture kernel\'s vmcore', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kdumpsim-guest-'));
  const path = join(dir, 'vmcore');
  const r = runGuestScenario(loadScenarioFile('scenarios/snp-guest-kexec.yaml'), { vmcorePath: path });
  const pages = [WORKLOAD, WORKLOAD + 100 * 4096, WORKLOAD + 255 * 4096];
  const want = pages.map((_, i) => Buffer.from(seededPage(r.seed, [0, 100, 255][i]!)).toString('hex'));

  it('holds the guest\'s plaintext at guest-physical addresses (our reader)', () => {
    expect(r.vmcore).toMatchObject({ path, format: 'elf' });
    const v = openVmcore(path);
    try {
      expect(pages.map((pa) => Buffer.from(v.readPhys(pa, 4096)).toString('hex'))).toEqual(want);
    } finally {
      v.close();
    }
  });

  const haveKdumpfile = requireTool('libkdumpfile (python module kdumpfile)', 'python3-libkdumpfile', () => probePythonModules('kdumpfile'));
  it.skipIf(!haveKdumpfile)('libkdumpfile reads the same plaintext', () => {
    const script = `import kdumpfile, sys\nk = kdumpfile.kdumpfile(sys.argv[1])\nfor a in sys.argv[2:]:\n    print(bytes(k.read(kdumpfile.KDUMP_MACHPHYSADDR, int(a), 4096)).hex())\n`;
    const out = spawnSync(PYTHON, ['-B', '-c', script, path, ...pages.map(String)], { encoding: 'utf8', maxBuffer: 1 << 20, timeout: 60_000 });
    expect(out.status, out.stderr).toBe(0);
    expect(out.stdout.trim().split('\n')).toEqual(want);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));
});

describe('SEV-ES guest kexec: #VC for MMIO in the capture kernel\'s decompressor', () => {
  it('RFC: each VGA store is #VC 0x400, emulated as NAE MMIO write 0x80000002 with the GPA and the byte, and the device sees it', () => {
    const { r, vm } = run('sev-es-guest-kexec-rfc');
    expect(r.expectation?.met).toBe(true);
    const start = stepIndex(r, 'guest crash kernel 5.14.0-rc1-sev-es-kexec-rfc starts');
    const vcs = r.trace.slice(start).filter((e) => e.kind === 'vc');
    expect(vcs).toHaveLength(DECOMPRESSOR_BANNER.length);
    expect(vcs[0]!.data).toMatchObject({ exitCode: VC_EXIT_NPF, gpa: VGA_TEXT_BASE, size: 1, write: true, device: 'vga-text' });
    const mmio = of(r, 'ghcb-nae').filter((e) => e.data?.['exitCode'] === SVM_VMGEXIT_MMIO_WRITE);
    expect(mmio).toHaveLength(DECOMPRESSOR_BANNER.length);
    expect(mmio[0]!.data).toMatchObject({ gpa: VGA_TEXT_BASE, info1: '0xb8000', info2: '0x1', size: 1, data: '0x44', result1: '0x0' });
    expect(mmio[1]!.data).toMatchObject({ gpa: VGA_TEXT_BASE + 2, data: '0x65' });
    const dev = of(r, 'mmio', 'vm1/vga');
    expect(dev.map((e) => e.data?.['offset'])).toEqual([...DECOMPRESSOR_BANNER].map((_, i) => i * 2));
    expect(dev[0]!.data).toMatchObject({ op: 'write', size: 1, value: '0x44' });
    expect(vm.vga.row(0)).toBe(DECOMPRESSOR_BANNER.trimEnd());
    // #VC, then the device's write while the hypervisor serves the exit, then the traced answer.
    const i = r.trace.indexOf(vcs[0]!);
    expect(r.trace.indexOf(dev[0]!)).toBeGreaterThan(i);
    expect(r.trace.indexOf(mmio[0]!)).toBeGreaterThan(r.trace.indexOf(dev[0]!));
    expect(vm.termination).toBeUndefined();
    expect(r.verdict).toBe('dump-complete');
  });

  it('the first kernel (firmware boot, no text console) and a 6.1 loader never touch MMIO', () => {
    const { r } = run('sev-es-guest-kexec-init-sipi');
    expect(of(r, 'mmio')).toHaveLength(0);
    expect(of(r, 'vc')).toHaveLength(0);
    expect(r.verdict).toBe('dump-complete');
  });

  it('a capture kernel without the handling: #VC 0x400 on the first VGA store, no NAE MMIO event, termination set 0 code 0', () => {
    const { r, vm } = run('sev-es-guest-kexec-decompressor-no-mmio');
    expect(r.expectation?.met).toBe(true);
    expect(r.verdict).toBe('crash-kernel-panic');
    const vcs = of(r, 'vc');
    expect(vcs).toHaveLength(1);
    expect(vcs[0]!.data).toMatchObject({ exitCode: VC_EXIT_NPF, gpa: VGA_TEXT_BASE, write: true });
    expect(of(r, 'ghcb-nae').filter((e) => e.data?.['exitCode'] === SVM_VMGEXIT_MMIO_WRITE)).toHaveLength(0);
    expect(of(r, 'mmio')).toHaveLength(0);
    const term = of(r, 'ghcb-msr').find((e) => e.data?.['request'] === 0x100);
    expect(term).toBeDefined();
    expect(r.trace.indexOf(term!)).toBeGreaterThan(r.trace.indexOf(vcs[0]!));
    expect(vm.termination).toMatchObject({ set: 0, code: 0 });
    expect(vm.vga.row(0)).toBe('');
    expect(r.oracle.pagesCaptured).toBe(0);
  });
});
