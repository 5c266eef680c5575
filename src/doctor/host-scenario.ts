// Host facts -> a scenario of that very host. Every field the doctor sets is
// recorded with the facts that decided it; a fact the host did not give up
// becomes a set of alternatives the diagnosis runs side by side, never a guess.

import type { ScenarioInput } from '../scenario/schema.js';
import { KERNEL_PROFILES } from '../kernel/profile.js';
import { Cmdline } from '../kernel/cmdline.js';
import { parseCrashkernel } from '../kernel/crashkernel.js';
import type { Evidence, Fact, HostFacts, LogHit, LogEvent, CaptureSetup } from './host-facts.js';
import { hostProfileFor, parseRelease, type ProfileChoice } from './kernel-release.js';

/** One decision: a scenario field, its value, and why. */
export interface ModelLine {
  field: string;
  value: string;
  because: string;
  evidence: Evidence[];
}

/** A fact the host did not give up, and the values it could have. */
export interface Unknown {
  fact: string;
  reason: string;
  alternatives: { label: string; apply: (s: ScenarioInput) => void }[];
}

export interface HostModel {
  scenario: ScenarioInput;
  lines: ModelLine[];
  unknowns: Unknown[];
  /** Why this host cannot be modelled at all (the doctor then answers "could not tell"). */
  blocking?: string;
  /** What the doctor noticed that the verdict alone does not say (firmware below a line, a distribution kernel, SNP configured but not active). */
  notes: string[];
  /** What the fixes need to phrase their lines. */
  setup: {
    tool: CaptureSetup['tool'] | undefined;
    /** The capture kernel is set explicitly (not "whatever is running"). */
    captureKernelPinned: boolean;
    /** SME active in the first kernel (from the host's log or flags). */
    smeActive: boolean;
    /** Bytes the model reserves for the capture kernel (0: nothing), when the host or its command line says. */
    reservedBytes: number | undefined;
    /** The running kernel has kexec at all (false: no /sys/kernel/kexec_crash_loaded although sysfs is there). */
    kexecInKernel: boolean;
  };
}

const MiB = 2 ** 20;
/** A plain workload: the doctor asks whether a dump is saved, not how big it is. */
const WORKLOAD_PAGES = 4096;
/** The NIC every networked host has, still receiving when the machine panics (a server NIC's 4096-entry ring). */
const NIC = { kind: 'rx-nic' as const, name: 'nic0', bdf: '00:03.0', packetInterval: '100us', ringEntries: 4096 };

const known = <T>(f: Fact<T>): T | undefined => (f.known ? f.value : undefined);
const hits = <K extends LogEvent['kind']>(log: readonly LogHit[], kind: K): (Extract<LogEvent, { kind: K }> & { evidence: Evidence })[] =>
  log.filter((h) => h.kind === kind) as (Extract<LogEvent, { kind: K }> & { evidence: Evidence })[];

export function buildHostModel(facts: HostFacts): HostModel {
  const lines: ModelLine[] = [];
  const unknowns: Unknown[] = [];
  const notes: string[] = [];
  const set = (field: string, value: string, because: string, evidence: Evidence[] = []): void => {
    lines.push({ field, value, because, evidence });
  };
  const log = facts.log;
  const flags = known(facts.cpuFlags) ?? [];

  const s: ScenarioInput = {
    name: `doctor: ${facts.origin}`,
    description: `A scenario of the host read by kdumpsim doctor (${facts.origin}).`,
    seed: 1,
    machine: { memory: '1G', cpus: 4, devices: [NIC] },
    workload: { pages: WORKLOAD_PAGES },
  };
  const machine = s.machine!;
  const blockedModel = (why: string): HostModel => ({
    scenario: s, lines, unknowns, notes, blocking: why,
    setup: { tool: undefined, captureKernelPinned: false, smeActive: false, reservedBytes: undefined, kexecInKernel: true },
  });

  // The CPU.
  const vendor = known(facts.cpuVendor);
  if (vendor === undefined) return blockedModel(`the CPU vendor is unknown (${facts.cpuVendor.known ? '' : facts.cpuVendor.reason})`);
  if (vendor === 'other') return blockedModel('the CPU is neither AMD nor Intel x86: kdumpsim models x86 hosts only');
  machine.cpu = { vendor };
  set('machine.cpu.vendor', vendor, 'vendor_id in /proc/cpuinfo', facts.cpuVendor.evidence);
  const cpus = known(facts.cpuCount);
  if (cpus !== undefined) {
    machine.cpus = Math.max(1, Math.min(cpus, 1024));
    set('machine.cpus', String(machine.cpus), 'processors in /proc/cpuinfo', facts.cpuCount.evidence);
  } else {
    set('machine.cpus', '4', `not read (${reasonOf(facts.cpuCount)}); the count does not change a kdump outcome in the model`);
  }

  // Memory.
  const mem = known(facts.memoryBytes);
  if (mem === undefined) return blockedModel(`the amount of RAM is unknown (${reasonOf(facts.memoryBytes)}); crashkernel= and the RMP depend on it`);
  const memMiB = Math.max(256, Math.ceil(mem / MiB));
  machine.memory = `${memMiB}M`;
  set('machine.memory', `${memMiB} MiB`, 'System RAM in /proc/iomem (or MemTotal)', facts.memoryBytes.evidence);

  // Guests are a different model: the kernel inside an encrypted VM.
  const hypervisor = flags.includes('hypervisor');
  const encFeatures = hits(log, 'mem-encrypt-active').flatMap((h) => h.features);
  const encEvidence = hits(log, 'mem-encrypt-active').map((h) => h.evidence);

  // The kernels.
  const release = known(facts.kernelRelease);
  const firstRel = release === undefined ? undefined : parseRelease(release);
  if (firstRel === undefined) return blockedModel(`the running kernel's release is unknown (${facts.kernelRelease.known ? `"${release}" is not a kernel version` : facts.kernelRelease.reason})`);
  const firstChoice = adjustForLog(hostProfileFor(firstRel), log, 'first');
  const capture = known(facts.capture);
  const captureRelease = capture?.kernelRelease ?? release ?? '';
  const captureRel = parseRelease(captureRelease) ?? firstRel;
  const captureChoice = adjustForLog(hostProfileFor(captureRel), facts.captureLog, 'capture');
  if (firstRel.distribution) notes.push(`${firstRel.release} is a distribution kernel: backports can give it mechanisms of later versions; the profile follows its version and the log lines it printed`);

  if (hypervisor && (encFeatures.includes('SEV-ES') || encFeatures.includes('SEV-SNP'))) {
    const type = encFeatures.includes('SEV-SNP') ? 'snp' : 'sev-es';
    s.guest = { type, vcpus: Math.max(1, Math.min(cpus ?? 2, 64)), profile: guestProfile(firstRel.major, firstRel.minor), kexecProfile: guestProfile(captureRel.major, captureRel.minor) };
    set('guest.type', type, `this is an ${type === 'snp' ? 'SEV-SNP' : 'SEV-ES'} guest: the hypervisor flag and the memory encryption banner`, [...facts.cpuFlags.evidence, ...encEvidence]);
    set('guest.profile', String(s.guest.profile), `${firstRel.release}: SNP guest kexec came in 6.13 and its fixes in 2025 (6.15); SEV-ES guests refuse kexec since 2024`);
    return {
      scenario: s, lines, unknowns, notes,
      setup: { tool: capture?.tool, captureKernelPinned: capture?.kernelRelease !== undefined, smeActive: false, reservedBytes: undefined, kexecInKernel: true },
    };
  }
  if (hypervisor && encFeatures.includes('SEV')) {
    return blockedModel('this is an SEV guest without SEV-ES: its kdump needs 5.3 or later in both kernels, but kdumpsim models SEV-ES and SNP guests only');
  }

  s.firstKernel = { profile: firstChoice.profile };
  set('firstKernel.profile', firstChoice.profile, firstChoice.why, facts.kernelRelease.evidence);
  s.crashKernel = { profile: captureChoice.profile };
  set('crashKernel.profile', captureChoice.profile, capture?.kernelRelease !== undefined ? `the capture kernel ${capture.tool} loads: ${captureChoice.why}` : `the capture kernel is the running kernel (no other is configured): ${captureChoice.why}`, facts.capture.evidence);

  // The first kernel's command line, and what it reserved.
  const cmdline = known(facts.cmdline) ?? hits(log, 'command-line').at(-1)?.cmdline;
  if (cmdline === undefined) return blockedModel(`the kernel command line is unknown (${reasonOf(facts.cmdline)})`);
  const cmdEvidence = facts.cmdline.known ? facts.cmdline.evidence : hits(log, 'command-line').slice(-1).map((h) => h.evidence);
  s.firstKernel.cmdline = cmdline;
  set('firstKernel.cmdline', cmdline, 'the running kernel\'s command line', cmdEvidence);
  const reservedBytes = reservation(s, facts, mem, cmdline, set);

  // The capture kernel's command line and whether the service loaded it.
  const ckCmdline = capture?.cmdline ?? defaultCaptureCmdline(cmdline);
  s.crashKernel.cmdline = ckCmdline;
  set('crashKernel.cmdline', ckCmdline, capture?.cmdline !== undefined ? `as ${capture.tool} builds it from ${capture.config}` : 'no kdump tool configuration found: the first kernel\'s command line without crashkernel=, plus irqpoll nr_cpus=1 reset_devices as every kdump tool adds', facts.capture.evidence);
  const loaded = known(facts.kexecCrashLoaded);
  const loadedSource = facts.sources.find((x) => x.path === '/sys/kernel/kexec_crash_loaded');
  let kexecInKernel = true;
  if (loaded === false && reservedBytes === 0 && capture !== undefined) {
    // The service ran and kexec refused for want of a reservation: with one, it would load.
    s.crashKernel.loaded = true;
    set('crashKernel.loaded', 'true (the service tries)', `kexec_crash_loaded reads 0 because nothing is reserved; ${capture.tool} is configured and loads the capture kernel at boot`, [...facts.kexecCrashLoaded.evidence, ...facts.capture.evidence]);
  } else if (loaded !== undefined) {
    s.crashKernel.loaded = loaded;
    set('crashKernel.loaded', String(loaded), '/sys/kernel/kexec_crash_loaded', facts.kexecCrashLoaded.evidence);
  } else if (loadedSource?.status === 'missing' && facts.sources.some((x) => x.path.startsWith('/sys/') && x.status === 'read')) {
    // sysfs is there but the attribute is not: this kernel was built without kexec (CONFIG_KEXEC_CORE).
    s.crashKernel.loaded = false;
    kexecInKernel = false;
    set('crashKernel.loaded', 'false (no kexec in this kernel)', '/sys/kernel/kexec_crash_loaded does not exist although sysfs does: the running kernel has no kexec support, so nothing can be loaded', [{ file: '/sys/kernel/kexec_crash_loaded' }]);
    notes.push('the running kernel has no kexec support (no /sys/kernel/kexec_crash_loaded): kdump needs a kernel built with CONFIG_KEXEC_FILE and CONFIG_CRASH_DUMP');
  } else {
    unknowns.push({
      fact: 'whether a capture kernel is loaded', reason: reasonOf(facts.kexecCrashLoaded),
      alternatives: [{ label: 'loaded', apply: (x) => { x.crashKernel!.loaded = true; } }, { label: 'not loaded', apply: (x) => { x.crashKernel!.loaded = false; } }],
    });
  }

  // Memory encryption and SNP (AMD).
  let smeActive = false;
  if (vendor === 'amd') {
    const biosOff = hits(log, 'sev-not-enabled-by-bios');
    const sme = encFeatures.includes('SME') || (flags.includes('sme') && new Cmdline(cmdline).get('mem_encrypt') === 'on');
    smeActive = sme;
    // SME on without mem_encrypt=on: the build's CONFIG_AMD_MEM_ENCRYPT_ACTIVE_BY_DEFAULT (before 6.9). The model's
    // kernels take it from the command line, so both kernels of this build get mem_encrypt=on unless they say otherwise.
    if (sme && new Cmdline(s.firstKernel.cmdline ?? '').get('mem_encrypt') === undefined) {
      s.firstKernel.cmdline = `${s.firstKernel.cmdline ?? ''} mem_encrypt=on`;
      const sameBuild = captureRelease === release;
      if (sameBuild && new Cmdline(s.crashKernel.cmdline ?? '').get('mem_encrypt') === undefined) s.crashKernel.cmdline = `${s.crashKernel.cmdline ?? ''} mem_encrypt=on`;
      set('firstKernel.cmdline', '+ mem_encrypt=on', `SME is active without mem_encrypt=on on the command line: the build turns it on by default (CONFIG_AMD_MEM_ENCRYPT_ACTIVE_BY_DEFAULT), modelled as mem_encrypt=on${sameBuild ? ' for both kernels of this build' : ''}`, encEvidence);
    }
    const rmp = hits(log, 'rmp-table');
    const encEnabledEvidence = flags.some((f) => f === 'sme' || f === 'sev' || f === 'sev_es' || f === 'sev_snp') || sme || rmp.length > 0;
    if (biosOff.length > 0) {
      machine.cpu.memoryEncryption = 'supported';
      set('machine.cpu.memoryEncryption', 'supported', 'the BIOS left memory encryption off', biosOff.map((h) => h.evidence));
    } else if (encEnabledEvidence) {
      machine.cpu.memoryEncryption = 'enabled';
      set('machine.cpu.memoryEncryption', 'enabled', 'the CPU flags (sme/sev need SYSCFG[MemEncryptionModEn] set by the BIOS) or the log', [...facts.cpuFlags.evidence, ...encEvidence, ...rmp.map((h) => h.evidence)]);
    } else {
      set('machine.cpu.memoryEncryption', 'none', 'no sme/sev flags and no memory encryption lines', facts.cpuFlags.evidence);
    }
    if (machine.cpu.memoryEncryption === 'enabled') modelSnp(s, facts, set, unknowns, notes, KERNEL_PROFILES[firstChoice.profile]!.mechanisms.snpHost);
  }

  modelIommu(s, facts, set, unknowns, vendor);
  // A passthrough default domain from the build (CONFIG_IOMMU_DEFAULT_PASSTHROUGH), not the command line: modelled as iommu=pt.
  const domain = hits(log, 'iommu-default-domain').at(-1);
  if (domain !== undefined && /passthrough/i.test(domain.type) && !domain.viaCmdline && !new Cmdline(s.firstKernel.cmdline ?? '').options('iommu').includes('pt')) {
    s.firstKernel.cmdline = `${s.firstKernel.cmdline ?? ''} iommu=pt`;
    set('firstKernel.cmdline', '+ iommu=pt', 'the IOMMU default domain is passthrough by the build\'s default (CONFIG_IOMMU_DEFAULT_PASSTHROUGH), modelled as iommu=pt', [domain.evidence]);
  }

  return {
    scenario: s, lines, unknowns, notes,
    setup: {
      tool: capture?.tool, captureKernelPinned: capture?.kernelRelease !== undefined && capture.kernelRelease !== release,
      smeActive, reservedBytes, kexecInKernel,
    },
  };
}

function reasonOf<T>(f: Fact<T>): string {
  return f.known ? 'known' : f.reason;
}

/** The log can show a kernel has mechanisms its version alone does not promise (vendor backports). */
function adjustForLog(choice: ProfileChoice, log: readonly LogHit[], role: 'first' | 'capture'): ProfileChoice {
  const mech = KERNEL_PROFILES[choice.profile]!.mechanisms;
  if (role === 'capture' && log.some((h) => h.kind === 'amd-vi-kdump' && (h.action === 'reuse' || h.action === 'reused')) && mech.amdIommuKdump !== 'reuse') {
    return { profile: 'linux-6.18', why: `${choice.why}; but its console log shows the AMD IOMMU reuse path, so it carries the 2025 fix` };
  }
  if (role === 'first' && !mech.snpHost && log.some((h) => h.kind === 'rmp-table')) {
    return { profile: 'linux-6.5-snp-host', why: `${choice.why}; but its log shows SNP host support (the RMP table line), so it carries SNP host patches` };
  }
  return choice;
}

function guestProfile(major: number, minor: number): string {
  const v = major * 1000 + minor;
  if (v >= 6015) return 'linux-6.18';
  if (v >= 6013) return 'linux-6.12';
  return 'linux-6.9';
}

/** What the kdump tools all add when the host has none configured. */
function defaultCaptureCmdline(first: string): string {
  const kept = first.split(/\s+/).filter((w) => w.length > 0 && !w.startsWith('crashkernel=') && !w.startsWith('BOOT_IMAGE='));
  return [...kept, 'irqpoll', 'nr_cpus=1', 'reset_devices'].join(' ');
}

type Setter = (field: string, value: string, because: string, evidence?: Evidence[]) => void;

/**
 * The reservation: the host's own figure wins (kexec_crash_size, the iomem
 * ranges); the command line stands when the kernel's parser, run on it, gives
 * the same figure, so the model also reproduces how it came about.
 */
function reservation(s: ScenarioInput, facts: HostFacts, mem: number, cmdline: string, set: Setter): number {
  const parsed = parseCrashkernel(cmdline, mem) ?? { ok: false as const, message: 'no crashkernel= on the command line' };
  const fromCmdline = parsed.ok ? parsed.size + (parsed.high ? parsed.lowSize ?? 0 : 0) : 0;
  const size = known(facts.kexecCrashSize) ?? sumRanges(known(facts.crashKernelRanges));
  const ev = facts.kexecCrashSize.known ? facts.kexecCrashSize.evidence : facts.crashKernelRanges.evidence;
  if (size === undefined) {
    set('firstKernel.crashkernel', parsed.ok ? `${fromCmdline >> 20} MiB` : 'none', `the reservation could not be read (${reasonOf(facts.kexecCrashSize)}): the command line decides, as parsed by the kernel's own rules`);
    return fromCmdline;
  }
  if (Math.abs(size - fromCmdline) < 16 * MiB) {
    set('firstKernel.crashkernel', `${size >> 20} MiB`, parsed.ok ? 'reserved, as the command line asks' : `nothing reserved, and the command line explains it: ${parsed.message}`, ev);
    return size;
  }
  const words = cmdline.split(/\s+/).filter((w) => !w.startsWith('crashkernel='));
  s.firstKernel!.cmdline = size === 0 ? words.join(' ') : [...words, `crashkernel=${size >> 20}M`].join(' ');
  set('firstKernel.crashkernel', `${size >> 20} MiB`, `the host reserved ${size >> 20} MiB although its command line reads as ${fromCmdline >> 20} MiB to the kernel's parser (a distribution extension such as crashkernel=auto, or a failed allocation): the host's figure is used`, ev);
  return size;
}

function sumRanges(r: { start: bigint; end: bigint }[] | undefined): number | undefined {
  if (r === undefined) return undefined;
  return r.reduce((n, x) => n + Number(x.end - x.start + 1n), 0);
}

/** SNP on an AMD host with memory encryption on. */
function modelSnp(s: ScenarioInput, facts: HostFacts, set: Setter, unknowns: Unknown[], notes: string[], kernelHasSnp: boolean): void {
  const log = facts.log;
  const flags = known(facts.cpuFlags) ?? [];
  const rmp = hits(log, 'rmp-table');
  const refused = hits(log, 'rmp-refused');
  const snpEvidence = flags.includes('sev_snp') || rmp.length > 0 || refused.length > 0 || known(facts.kvmAmd.sevSnp) === true;
  if (!snpEvidence) {
    set('machine.cpu.snp', 'absent', 'no sev_snp flag, no RMP line, kvm_amd.sev_snp not Y', facts.cpuFlags.evidence);
    return;
  }
  const snp: NonNullable<NonNullable<NonNullable<ScenarioInput['machine']>['cpu']>['snp']> = {};
  s.machine!.cpu!.snp = snp;
  if (rmp.length > 0) {
    snp.rmp = 'reserved';
    set('machine.cpu.snp.rmp', 'reserved', 'the BIOS reserved an RMP that covers RAM', rmp.map((h) => h.evidence));
  } else if (refused.length > 0) {
    const why = refused.at(-1)!.why;
    snp.rmp = why === 'too-small' ? 'too-small' : 'none';
    set('machine.cpu.snp.rmp', snp.rmp, `the kernel refused the RMP (${why})`, refused.map((h) => h.evidence));
  } else if (!kernelHasSnp) {
    snp.rmp = 'reserved';
    set('machine.cpu.snp.rmp', 'reserved', 'not in the log (this kernel has no SNP host support, so it never looks); taken as reserved so that a kernel upgrade shows what SNP would do');
  } else {
    unknowns.push({
      fact: 'whether the BIOS reserved an RMP', reason: 'the log has no SEV-SNP RMP line',
      alternatives: [{ label: 'RMP reserved', apply: (x) => { x.machine!.cpu!.snp!.rmp = 'reserved'; } }, { label: 'no RMP', apply: (x) => { x.machine!.cpu!.snp!.rmp = 'none'; } }],
    });
  }

  // The SEV firmware: the last API line the CCP driver printed.
  const api = hits(log, 'sev-api').at(-1);
  const tooOld = hits(log, 'snp-firmware-too-old').at(-1);
  if (api !== undefined) {
    snp.firmware = `${api.major}.${api.minor}`;
    set('machine.cpu.snp.firmware', snp.firmware, 'the CCP driver\'s SEV API line', [api.evidence]);
  } else if (tooOld !== undefined) {
    snp.firmware = '1.49';
    set('machine.cpu.snp.firmware', 'below 1.51 (1.49 used)', 'the CCP driver refused SNP for its firmware version', [tooOld.evidence]);
  } else {
    unknowns.push({
      fact: 'the SEV firmware version', reason: 'no "SEV API" line in the log (no sysfs file carries it; `sevctl ok` or the boot log would)',
      alternatives: [{ label: 'firmware 1.52', apply: (x) => { x.machine!.cpu!.snp!.firmware = '1.52'; } }, { label: 'firmware 1.55', apply: (x) => { x.machine!.cpu!.snp!.firmware = '1.55'; } }],
    });
  }
  const fwNum = snp.firmware === undefined ? undefined : Number(snp.firmware);
  if (fwNum !== undefined && fwNum < 1.51) notes.push(`SEV firmware ${snp.firmware} is below 1.51: SNP cannot be initialised, so the SNP kdump hazard is absent today; an update to 1.51 or 1.52 would arm it without the 1.53 IOMMU page reclaim`);
  else if (fwNum !== undefined && fwNum < 1.53) notes.push(`SEV firmware ${snp.firmware} is below 1.53: "SNP Firmware version 1.53 and above are needed for kexec boot" (IOMMU pages are left firmware-owned at shutdown)`);
  const initFailed = hits(log, 'snp-init-failed').at(-1);
  if (initFailed !== undefined) notes.push('SNP is configured in the BIOS but not active: the firmware refused SNP_INIT, so the IOMMU was never locked');
  if (initFailed !== undefined && tooOld === undefined) {
    s.faults = [{ kind: 'psp-command-fails', command: 'SNP_INIT_EX', status: initFailed.error, phase: 'boot' }];
    set('faults', `SNP_INIT_EX fails with 0x${initFailed.error.toString(16)}`, 'the CCP driver logged the failure at boot', [initFailed.evidence]);
  }

  // SNP guests: KVM runs none when sev_snp=N.
  const kvmSnp = known(facts.kvmAmd.sevSnp);
  const guests = known(facts.snpGuests);
  if (kvmSnp === false) {
    snp.guests = 0;
    set('machine.cpu.snp.guests', '0', 'kvm_amd.sev_snp is N: KVM runs no SNP guests', facts.kvmAmd.sevSnp.evidence);
  } else if (guests !== undefined) {
    snp.guests = Math.min(guests, 64);
    set('machine.cpu.snp.guests', String(snp.guests), 'QEMU processes with an sev-snp-guest object', facts.snpGuests.evidence);
  } else {
    unknowns.push({
      fact: 'whether SNP guests run when the host crashes', reason: reasonOf(facts.snpGuests),
      alternatives: [{ label: 'no SNP guests', apply: (x) => { x.machine!.cpu!.snp!.guests = 0; } }, { label: '2 SNP guests', apply: (x) => { x.machine!.cpu!.snp!.guests = 2; } }],
    });
  }
}

function modelIommu(s: ScenarioInput, facts: HostFacts, set: Setter, unknowns: Unknown[], vendor: 'amd' | 'intel'): void {
  const units = known(facts.iommus);
  const log = facts.log;
  const amdLines = log.filter((h) => h.kind.startsWith('amd-vi') || h.kind === 'iommu-snp-enabled' || h.kind === 'iommu-snp-refused');
  const intelLines = log.filter((h) => h.kind.startsWith('dmar'));
  const unit = units?.[0];
  const kind = unit?.kind ?? (amdLines.length > 0 ? 'amd' : intelLines.length > 0 ? 'intel' : undefined);
  if (kind === undefined) {
    if (units !== undefined || log.length > 0) {
      set('machine.iommu', 'none', units !== undefined ? '/sys/class/iommu lists no unit and the log has no AMD-Vi or DMAR line' : 'the log has no AMD-Vi or DMAR line', facts.iommus.evidence);
      return;
    }
    unknowns.push({
      fact: 'whether an IOMMU translates DMA', reason: reasonOf(facts.iommus),
      alternatives: [{ label: 'no IOMMU', apply: () => {} }, { label: `${vendor === 'amd' ? 'an AMD' : 'an Intel'} IOMMU`, apply: (x) => { x.machine!.iommu = { kind: vendor }; } }],
    });
    return;
  }
  const ev = unit !== undefined ? facts.iommus.evidence : (kind === 'amd' ? amdLines : intelLines).slice(0, 1).map((h) => h.evidence);
  if (kind === 'amd') {
    const efr = unit?.efr ?? hits(log, 'amd-vi-efr').at(-1)?.efr;
    const snpSupport = unit?.snpSup ?? (efr === undefined ? undefined : (efr >> 63n) === 1n);
    s.machine!.iommu = { kind: 'amd', ...(snpSupport === undefined ? {} : { snpSupport }) };
    set('machine.iommu', `AMD IOMMU${snpSupport === undefined ? '' : snpSupport ? ' with SNPSup' : ' without SNPSup'}`, efr === undefined ? 'an AMD IOMMU unit' : `EFR 0x${efr.toString(16)}: bit 63 (SNPSup) ${snpSupport ? 'set' : 'clear'}`, ev);
  } else {
    const sm = unit?.scalableModeSupported;
    s.machine!.iommu = { kind: 'intel', ...(sm === undefined ? {} : { scalableMode: sm }) };
    set('machine.iommu', `Intel VT-d${sm === undefined ? '' : sm ? ' with scalable mode (ECAP.SMTS)' : ' without scalable mode'}`, unit?.ecap === undefined ? 'an Intel VT-d unit' : `ECAP 0x${unit.ecap.toString(16)}: bit 43 (SMTS) ${sm ? 'set' : 'clear'}`, ev);
  }
}
