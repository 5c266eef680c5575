// What `kdumpsim doctor` learned about a real host, each fact with where it
// came from. A fact that could not be read is `known: false` with the reason;
// the doctor never fills a gap with a guess.

/** Where a fact was read: a host path (as on the host, e.g. "/proc/cmdline") and, for text files, a 1-based line. */
export interface Evidence {
  file: string;
  line?: number;
  /** The line (or value) as read, trimmed. */
  text?: string;
}

export type Fact<T> =
  | { known: true; value: T; evidence: Evidence[] }
  | { known: false; reason: string; evidence: Evidence[] };

/** How one host file or command output fared. */
export interface SourceStatus {
  /** Host path ("/proc/cpuinfo") or command ("uname -r", "journalctl -k -b"). */
  path: string;
  status: 'read' | 'missing' | 'unreadable' | 'empty' | 'unparsed';
  /** Why not read, or what was odd about it. */
  reason?: string;
  /** Optional sources (a tool's config that is not installed) do not make the doctor's answer "could not tell". */
  optional: boolean;
}

/** One kernel log line the doctor recognised. */
export type LogEvent =
  /** "Memory Encryption Features active: AMD SME" and the older wordings; features: SME, SEV, SEV-ES, SEV-SNP, TDX. */
  | { kind: 'mem-encrypt-active'; features: string[] }
  /** "SEV-SNP: RMP table physical range [...]" and the out-of-tree wordings. */
  | { kind: 'rmp-table'; start: bigint; end: bigint }
  /** The RMP refusals: not reserved by BIOS, configuration not valid, does not cover RAM. */
  | { kind: 'rmp-refused'; why: 'not-reserved' | 'invalid' | 'too-small' }
  /** "ccp <bdf>: sev enabled" */
  | { kind: 'psp-sev-enabled'; bdf: string }
  /** "SEV: memory encryption not enabled by BIOS" */
  | { kind: 'sev-not-enabled-by-bios' }
  /** "SEV API:1.55 build:7", "SEV-SNP API:1.55 build:7" */
  | { kind: 'sev-api'; major: number; minor: number; build: number; snp: boolean }
  /** "SEV firmware updated from a.b.c to x.y.z" or "SEV firmware update successful" */
  | { kind: 'sev-firmware-updated' }
  /** "SEV-SNP support requires firmware version >= 1:51" */
  | { kind: 'snp-firmware-too-old'; major: number; minor: number }
  /** "SEV-SNP: failed to INIT rc -5, error 0x3" and "SEV-SNP: SNP_INIT_EX failed rc .., error .." */
  | { kind: 'snp-init-failed'; error: number }
  /** "SEV: failed to INIT error 0x1, rc -5" */
  | { kind: 'sev-init-failed'; error: number }
  /** "SEV-SNP DF_FLUSH failed with error 14", "SEV-SNP firmware shutdown failed", "SNP IOMMU shutdown failed" */
  | { kind: 'snp-shutdown-failed'; what: 'df-flush' | 'firmware-shutdown' | 'iommu-shutdown'; error?: number }
  /** kvm_amd lines: "SEV supported: 509 ASIDs", "kvm_amd: SEV-SNP enabled (ASIDs 1 - 99)", "SEV-ES and SEV-SNP supported: 99 ASIDs" */
  | { kind: 'kvm-sev'; features: string[]; state: 'supported' | 'enabled' | 'disabled' | 'unusable' }
  /** "AMD-Vi: IOMMU SNP support enabled." */
  | { kind: 'iommu-snp-enabled' }
  /** The three "SNP cannot be supported" lines (and the 5.14/5.19 out-of-tree wordings). */
  | { kind: 'iommu-snp-refused'; why: 'passthrough' | 'v2-page-table' | 'feature-off' }
  /** "AMD-Vi: Extended features (0x..., 0x...):" or "Using global IVHD EFR:0x..., EFR2:0x..." */
  | { kind: 'amd-vi-efr'; efr: bigint }
  /** "AMD-Vi: IOMMU not currently supported when SME is active" */
  | { kind: 'amd-vi-sme-unsupported' }
  /** AMD-Vi capture-kernel lines: trying to copy / copied / failed to copy / trying to reuse / reused. */
  | { kind: 'amd-vi-kdump'; action: 'copy' | 'copied' | 'copy-failed' | 'reuse' | 'reused' }
  /** "AMD-Vi: Completion-Wait loop timed out" */
  | { kind: 'completion-wait-timeout' }
  /** "..TIMER: vector=0x30 apic1=0 pin1=2 apic2=-1 pin2=-1" */
  | { kind: 'timer-check' }
  /** "Kernel panic - not syncing: <message>" */
  | { kind: 'panic'; message: string }
  /** "DMAR: Intel(R) Virtualization Technology for Directed I/O" */
  | { kind: 'dmar-enabled' }
  /** DMAR copy lines in a capture kernel */
  | { kind: 'dmar-kdump'; action: 'copy' | 'copied' | 'copy-failed' }
  /** A DMA remapping fault report with its reason number ("[fault reason 01]", "[fault reason 0x01]") */
  | { kind: 'dmar-fault'; reason: number; device?: string }
  /** An interrupt remapping fault ("INTR-REMAP:[fault reason 34] ...") */
  | { kind: 'ir-fault'; reason: number }
  /** "iommu: Default domain type: Passthrough (set via kernel command line)" */
  | { kind: 'iommu-default-domain'; type: string; viaCmdline: boolean }
  /** "crashkernel reserved: 0x... - 0x... (320 MB)" or "Reserving 256MB of memory at 640MB for crashkernel (System RAM: 262030MB)" */
  | { kind: 'crashkernel-reserved'; bytes: number; start?: bigint; /** The ",low" area ("crashkernel low memory reserved", "Reserving ..MB of low memory"). */ low?: boolean }
  /** A reservation failure or parse error ("crashkernel reservation failed - ...", "cannot allocate crashkernel ...", "crashkernel: ...") */
  | { kind: 'crashkernel-failed'; message: string }
  /** "Command line: ..." (the kernel's own echo of its command line) */
  | { kind: 'command-line'; cmdline: string }
  /** "Linux version 6.9.0 (...)" */
  | { kind: 'linux-version'; release: string }
  /** kdump service messages: "Memory for crashkernel is not reserved", "kdump: No memory reserved for crash kernel", "No crashkernel memory reserved, Kdump cannot start." */
  | { kind: 'kdump-service-no-memory' }
  /** "kdump: kexec: failed to load kdump kernel", "kdump: Starting kdump: [FAILED]" */
  | { kind: 'kdump-service-load-failed' };

export type LogEventKind = LogEvent['kind'];

/** A recognised log line: the event and where it was read. */
export type LogHit = LogEvent & { evidence: Evidence };

export interface IommuUnit {
  /** sysfs name: "ivhd0", "dmar0". */
  name: string;
  kind: 'amd' | 'intel';
  /** AMD: Extended Feature Register (features file, first field). */
  efr?: bigint;
  /** AMD: EFR bit 63 (SNPSup). */
  snpSup?: boolean;
  /** Intel: ECAP register. */
  ecap?: bigint;
  /** Intel: ECAP bit 43 (SMTS). */
  scalableModeSupported?: boolean;
}

/** Which kdump tooling the host runs, and what it is set to load. */
export interface CaptureSetup {
  tool: 'kdump-utils' | 'kdump-tools' | 'opensuse-kdump';
  /** The config file the settings came from. */
  config: string;
  /** The capture kernel's release (KDUMP_KERNELVER, KDUMP_KERNEL's target, the recorded kexec command), if set; else the running kernel's. */
  kernelRelease?: string;
  /** The capture kernel's command line as the tool builds it, if it could be worked out. */
  cmdline?: string;
}

export interface HostFacts {
  /** What was read: "live host" or the bundle path. */
  origin: string;
  sources: SourceStatus[];
  /** uname -r of the running (crashing) kernel. */
  kernelRelease: Fact<string>;
  /** /proc/cmdline */
  cmdline: Fact<string>;
  cpuVendor: Fact<'amd' | 'intel' | 'other'>;
  cpuCount: Fact<number>;
  /** Flags of the first CPU in /proc/cpuinfo. */
  cpuFlags: Fact<string[]>;
  /** Bytes of RAM: MemTotal from /proc/meminfo, or the System RAM ranges of /proc/iomem. */
  memoryBytes: Fact<number>;
  /** "Crash kernel" ranges in /proc/iomem (unknown when addresses read as zero: not root). */
  crashKernelRanges: Fact<{ start: bigint; end: bigint }[]>;
  /** /sys/kernel/kexec_crash_loaded */
  kexecCrashLoaded: Fact<boolean>;
  /** /sys/kernel/kexec_crash_size (bytes) */
  kexecCrashSize: Fact<number>;
  /** /sys/module/kvm_amd/parameters/{sev,sev_es,sev_snp} ("Y"/"N" or "1"/"0") */
  kvmAmd: { sev: Fact<boolean>; sevEs: Fact<boolean>; sevSnp: Fact<boolean> };
  /** /sys/module/kernel/parameters/crash_kexec_post_notifiers */
  crashKexecPostNotifiers: Fact<boolean>;
  /** /sys/class/iommu/* */
  iommus: Fact<IommuUnit[]>;
  /** /boot/config-<release>, the symbols that matter (CONFIG_X -> "y" | "m" | "n" | value). */
  kernelConfig: Fact<Record<string, string>>;
  /** Recognised lines of the running kernel's log (dmesg / journalctl -k -b). */
  log: LogHit[];
  /** Recognised lines of a console log of an earlier capture-kernel boot, if the bundle has one. */
  captureLog: LogHit[];
  capture: Fact<CaptureSetup>;
  /** SNP guests running now: QEMU processes whose command line asks for an sev-snp-guest object. */
  snpGuests: Fact<number>;
}
