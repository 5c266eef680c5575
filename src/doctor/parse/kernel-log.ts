// Kernel log lines -> LogEvents. Lines come from dmesg, journalctl, or a
// serial console capture, so the transport prefixes (console level word,
// journal date/host/ident, the [seconds] stamp) are stripped first; the
// subsystem prefixes ("ccp 0000:47:00.1: ", "AMD-Vi: ", "kvm_amd: ") stay,
// because "SEV: failed to INIT" and "SEV-SNP: failed to INIT" differ only
// there. Every wording is the kernel's format string (reference §1.8) or a
// published out-of-tree variant (§4).

import type { LogEvent, LogHit } from '../host-facts.js';
import { evidence, splitLines } from './fact.js';

const LEVEL = /^(?:<\d{1,2}>|(?:EMERGENCY|EMERG|ALERT|CRITICAL|CRIT|ERROR|ERR|WARNING|WARN|NOTICE|INFO|DEBUG|DEFAULT)\s+)/;
/** "Jan 21 06:59:11 r-vm kernel: ", "2024-01-21T06:59:11+0000 r-vm kdump-tools[5348]: " */
const JOURNAL = /^(?:[A-Z][a-z]{2} [ \d]?\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?) \S+ [^\s:[]+(?:\[\d+\])?: /;
/** "[    0.492094] ", "[0.011918] ", dmesg -T "[Mon Jan 21 06:59:11 2024] " */
const STAMP = /^\[(?:\s*\d+(?:\.\d+)?|[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]?\d \d\d:\d\d:\d\d \d{4})\]\s?/;

/** The message part of a log line (transport prefixes removed, in any order they nest). */
export function logMessage(line: string): string {
  let s = line.trim();
  for (let i = 0; i < 4; i++) {
    const before = s;
    s = s.replace(LEVEL, '').replace(JOURNAL, '').replace(STAMP, '').trimStart();
    if (s === before) break;
  }
  return s;
}

/** "%#x" prints "0x1f" (or "0"), "%d" prints "14" or "-5": both read back here. */
function num(s: string): number {
  const neg = s.startsWith('-');
  const t = neg ? s.slice(1) : s;
  const v = /^0[xX]/.test(t) ? Number.parseInt(t.slice(2), 16) : Number.parseInt(t, 10);
  return neg ? -v : v;
}

const HEX = '0[xX][0-9a-fA-F]{1,16}';
const NUM = '(?:0[xX][0-9a-fA-F]+|-?\\d+)';
const BDF = '[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\\.[0-7]';
const KNOWN_FEATURES = new Set(['SME', 'SEV', 'SEV-ES', 'SEV-SNP', 'TDX']);

function features(words: string): string[] {
  return words.split(/\s+/).filter((w) => KNOWN_FEATURES.has(w));
}

type Rule = [RegExp, (m: RegExpExecArray) => LogEvent | undefined];

// Order matters only where one wording contains another; those pairs are noted.
const RULES: Rule[] = [
  // 1.8.1 memory encryption
  [/^Linux version (\S+)/, (m) => ({ kind: 'linux-version', release: m[1]! })],
  [/^Command line: ?(.*)$/, (m) => ({ kind: 'command-line', cmdline: m[1]!.trim() })],
  [/AMD Secure Memory Encryption \(SME\) active/, () => ({ kind: 'mem-encrypt-active', features: ['SME'] })],
  [/AMD Secure Encrypted Virtualization \(SEV\) active/, () => ({ kind: 'mem-encrypt-active', features: ['SEV'] })],
  [/Memory Encryption Features active:\s*(.*)$/, (m) => ({ kind: 'mem-encrypt-active', features: features(m[1]!) })],
  [/^SEV: Status:\s*(.*)$/, (m) => ({ kind: 'mem-encrypt-active', features: features(m[1]!) })],

  // 1.8.2 RMP (mainline "physical range [a - b]", out-of-tree "physical address a - b" and "SVM: SNP: RMP physical range")
  [new RegExp(`RMP (?:table )?physical (?:range|address)\\s*\\[?\\s*(${HEX})\\s*-\\s*(${HEX})\\s*\\]?`), (m) => ({ kind: 'rmp-table', start: BigInt(m[1]!), end: BigInt(m[2]!) })],
  [/Memory for the RMP table has not been reserved by BIOS/, () => ({ kind: 'rmp-refused', why: 'not-reserved' })],
  [/RMP configuration not valid/, () => ({ kind: 'rmp-refused', why: 'invalid' })],
  [/Memory reserved for the RMP table does not cover full system RAM/, () => ({ kind: 'rmp-refused', why: 'too-small' })],

  // 1.8.3 ccp / PSP
  [new RegExp(`\\S+ (${BDF}): sev enabled\\s*$`), (m) => ({ kind: 'psp-sev-enabled', bdf: m[1]!.toLowerCase() })],
  [/SEV: memory encryption not enabled by BIOS/, () => ({ kind: 'sev-not-enabled-by-bios' })],
  [/(?:^|[\s:])SEV(-SNP)? API:(\d+)\.(\d+) build:(\d+)/, (m) => ({ kind: 'sev-api', major: num(m[2]!), minor: num(m[3]!), build: num(m[4]!), snp: m[1] !== undefined })],
  [/SEV firmware update(?:d from \S+ to \S+| successful)/, () => ({ kind: 'sev-firmware-updated' })],
  [/SEV-SNP support requires firmware version >= (\d+):(\d+)/, (m) => ({ kind: 'snp-firmware-too-old', major: num(m[1]!), minor: num(m[2]!) })],
  [new RegExp(`SEV-SNP: failed to INIT rc ${NUM}, error (${NUM})`), (m) => ({ kind: 'snp-init-failed', error: num(m[1]!) })],
  [new RegExp(`SEV-SNP: [A-Z_]+ failed rc ${NUM}, error (${NUM})`), (m) => ({ kind: 'snp-init-failed', error: num(m[1]!) })],
  [new RegExp(`SEV: failed to INIT error (${NUM})`), (m) => ({ kind: 'sev-init-failed', error: num(m[1]!) })],
  // Shutdown path: "SEV-SNP DF_FLUSH failed with error 14" (no colon; the init-path "SEV-SNP: SNP_DF_FLUSH failed rc" is above).
  [new RegExp(`SEV-SNP DF_FLUSH failed(?: with error (${NUM}))?`), (m) => shutdownFailed('df-flush', m[1])],
  [new RegExp(`SEV-SNP firmware shutdown failed(?:, rc ${NUM}, error (${NUM}))?`), (m) => shutdownFailed('firmware-shutdown', m[1])],
  [new RegExp(`SNP IOMMU shutdown failed(?:.*?error (${NUM}))?`), (m) => shutdownFailed('iommu-shutdown', m[1])],

  // 1.8.4 kvm_amd ("SEV-ES and SEV-SNP supported" before the plain one, which it contains)
  [/(SEV-ES and SEV-SNP|SEV-SNP|SEV-ES|SEV) supported: \d+ ASIDs/, (m) => ({ kind: 'kvm-sev', features: m[1]!.split(' and '), state: 'supported' })],
  [/(?:kvm_amd: )?(SEV-SNP|SEV-ES|SEV) (enabled|disabled|unusable) \(ASIDs \d+ - \d+\)/, (m) => kvmState(m[1]!, m[2]!)],
  [/kvm_amd: (SEV-SNP|SEV-ES|SEV) (enabled|disabled|unusable)\b/, (m) => kvmState(m[1]!, m[2]!)],

  // 1.8.5 AMD IOMMU
  [/IOMMU SNP support enabled/, () => ({ kind: 'iommu-snp-enabled' })],
  [/SNP: IOMMU (?:is )?disabled or configured in passthrough mode/, () => ({ kind: 'iommu-snp-refused', why: 'passthrough' })],
  [/SEV-SNP: IOMMU is either disabled or configured in passthrough mode/, () => ({ kind: 'iommu-snp-refused', why: 'passthrough' })],
  [/SNP: IOMMU is configured with V2 page table mode/, () => ({ kind: 'iommu-snp-refused', why: 'v2-page-table' })],
  [/SNP: IOMMU SNP feature not enabled/, () => ({ kind: 'iommu-snp-refused', why: 'feature-off' })],
  [new RegExp(`Extended features \\((${HEX})(?:, ?${HEX})?\\)`), (m) => ({ kind: 'amd-vi-efr', efr: BigInt(m[1]!) })],
  [new RegExp(`Using global IVHD EFR:\\s*(${HEX})`), (m) => ({ kind: 'amd-vi-efr', efr: BigInt(m[1]!) })],
  [/IOMMU not currently supported when SME is active/, () => ({ kind: 'amd-vi-sme-unsupported' })],
  // AMD says "Translation is already enabled", VT-d "Translation already enabled": the "is" keeps them apart.
  [/Translation is already enabled - trying to copy translation structures/, () => ({ kind: 'amd-vi-kdump', action: 'copy' })],
  [/Translation is already enabled - trying to reuse translation structures/, () => ({ kind: 'amd-vi-kdump', action: 'reuse' })],
  [/Copied DEV table from previous kernel/, () => ({ kind: 'amd-vi-kdump', action: 'copied' })],
  [/Reused DEV table from previous kernel/, () => ({ kind: 'amd-vi-kdump', action: 'reused' })],
  [/Failed to copy DEV table from previous kernel|The address of old device table is above 4G, not trustworthy|The device table size of IOMMU:\s*\d+ is not expected/, () => ({ kind: 'amd-vi-kdump', action: 'copy-failed' })],
  [/Completion-Wait loop timed out/, () => ({ kind: 'completion-wait-timeout' })],
  [/\.\.TIMER: vector=0x[0-9a-fA-F]+ apic1=/, () => ({ kind: 'timer-check' })],
  [/Kernel panic - not syncing: ?(.*)$/, (m) => ({ kind: 'panic', message: m[1]!.trim() })],

  // 1.8.6 Intel VT-d
  [/Intel\(R\) Virtualization Technology for Directed I\/O/, () => ({ kind: 'dmar-enabled' })],
  [/Translation already enabled - trying to copy translation structures/, () => ({ kind: 'dmar-kdump', action: 'copy' })],
  [/Copied translation tables from previous kernel/, () => ({ kind: 'dmar-kdump', action: 'copied' })],
  [/Failed to copy translation tables from previous kernel/, () => ({ kind: 'dmar-kdump', action: 'copy-failed' })],

  // 1.8.7 generic IOMMU and crashkernel
  [/iommu: Default domain type: (.+?)( \(set via kernel command line\))?\s*$/, (m) => ({ kind: 'iommu-default-domain', type: m[1]!, viaCmdline: m[2] !== undefined })],
  [new RegExp(`crashkernel (low memory )?reserved: (${HEX}) - (${HEX}) \\(\\d+ MB\\)`), (m) => reserved(BigInt(m[2]!), BigInt(m[3]!) - BigInt(m[2]!), m[1] !== undefined)],
  [/Reserving (\d+)MB of (low )?memory at (\d+)MB for crashkernel/, (m) => reserved(BigInt(m[3]!) * 2n ** 20n, BigInt(m[1]!) * 2n ** 20n, m[2] !== undefined)],
  [/(crashkernel reservation failed - .*|[Cc]annot allocate crashkernel.*|Cannot reserve \d+MB crashkernel.*|crashkernel size resulted in zero bytes.*|crashkernel: .*)$/, (m) => ({ kind: 'crashkernel-failed', message: m[1]!.trim() })],

  // kdump services (kexec-tools via kdump-tools, kdumpctl, openSUSE kdump)
  [/Memory for crashkernel is not reserved|No memory reserved for crash kernel|No crashkernel memory reserved, Kdump cannot start/, () => ({ kind: 'kdump-service-no-memory' })],
  [/kexec: failed to load kdump kernel|Starting kdump: \[FAILED\]/, () => ({ kind: 'kdump-service-load-failed' })],
];

function shutdownFailed(what: 'df-flush' | 'firmware-shutdown' | 'iommu-shutdown', error: string | undefined): LogEvent {
  return error === undefined ? { kind: 'snp-shutdown-failed', what } : { kind: 'snp-shutdown-failed', what, error: num(error) };
}

function kvmState(feature: string, state: string): LogEvent {
  return { kind: 'kvm-sev', features: [feature], state: state as 'enabled' | 'disabled' | 'unusable' };
}

function reserved(start: bigint, size: bigint, low: boolean): LogEvent | undefined {
  if (size <= 0n || size > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  const e: LogEvent = { kind: 'crashkernel-reserved', bytes: Number(size), start };
  if (low) e.low = true;
  return e;
}

/** Cheap pre-filter: most lines of a real log match none of the rules. */
const MAYBE = /SEV|SME|RMP|sev enabled|SNP|AMD-Vi|IOMMU|iommu|DEV table|TIMER|panic|Directed I\/O|Translation|translation tables|fault reason|INTR-REMAP|crashkernel|crash kernel|kexec|kdump|Kdump|Command line|Linux version|Extended features|IVHD|Completion-Wait|Encryption/;

/** A DMA or interrupt-remapping fault: "[fault reason 0x01]" (hex since ~4.x) or "DMAR:[fault reason 01]" (older, decimal). */
const FAULT_REASON = /\[fault reason (0[xX][0-9a-fA-F]+|\d+)\]/;
const FAULT_DEVICE = /Request device \[+([0-9a-fA-F]{2,4}:[0-9a-fA-F]{2}\.[0-7])\]/;

/** Recognises one line on its own (an old two-line DMAR fault then has no device). */
export function parseLogLine(line: string): LogEvent | undefined {
  return parseOne(line, undefined).event;
}

/** `pendingDevice` carries the device of an old two-line DMAR fault report to its second line. */
function parseOne(line: string, pendingDevice: string | undefined): { event: LogEvent | undefined; device: string | undefined } {
  const msg = logMessage(line);
  const device = FAULT_DEVICE.exec(msg)?.[1]?.toLowerCase();
  const fault = FAULT_REASON.exec(msg);
  if (fault) {
    const reason = num(fault[1]!);
    if (/INTR-REMAP/.test(msg)) return { event: { kind: 'ir-fault', reason }, device: undefined };
    const dev = device ?? pendingDevice;
    return { event: dev === undefined ? { kind: 'dmar-fault', reason } : { kind: 'dmar-fault', reason, device: dev }, device: undefined };
  }
  // "dmar: DMAR:[DMA Read] Request device [01:00.0] fault addr ..." — the reason follows on the next line.
  const carry = device !== undefined && !/INTR-REMAP/.test(msg) ? device : undefined;
  if (!MAYBE.test(msg)) return { event: undefined, device: carry };
  for (const [re, make] of RULES) {
    const m = re.exec(msg);
    if (m) {
      const event = make(m);
      if (event) return { event, device: undefined };
    }
  }
  return { event: undefined, device: carry };
}

/** Every recognised line of a log, with 1-based line numbers. At most one event per line. */
export function parseKernelLog(text: string, file: string): LogHit[] {
  const hits: LogHit[] = [];
  let pending: string | undefined;
  const lines = splitLines(text);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const { event, device } = parseOne(line, pending);
    pending = device;
    if (event) hits.push({ ...event, evidence: evidence(file, i + 1, line) });
  }
  return hits;
}
