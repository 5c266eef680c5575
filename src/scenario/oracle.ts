// The ground-truth oracle. When the first kernel writes its last byte, it
// records every page the dump should contain; while the capture kernel runs
// it watches device DMA, so a page a device legitimately changed after the
// panic (inside a buffer the first kernel had given it) is recognised, and a
// stray write is named with its device. Then it checks what was captured.

import type { Machine } from '../platform/machine.js';
import type { Requester } from '../platform/memory-controller.js';
import type { FirstKernel } from '../kernel/first-kernel.js';
import { subtractRanges } from '../kernel/elfcorehdr.js';
import type { Range } from '../kernel/memblock.js';
import type { DramSnapshot } from '../platform/physical-memory.js';
import type { CaptureRecord } from '../kernel/proc-vmcore.js';
import type { ElfLoadSpec } from '../dump/elf-vmcore-writer.js';
import { isZeroPage, pageDigest } from '../dump/verify.js';
import { TRUTH_FORMAT, TRUTH_VERSION, type TruthManifest } from '../dump/truth-manifest.js';
import { classifyFrames, ClassCursor, levelExcludes } from '../dump/page-class.js';
import { framePhysMemory } from '../dump/kernel-vm.js';
import type { OracleReport, PageError, PageFate, PageFateRun } from './result.js';

const MAX_LISTED_ERRORS = 50;

type ServedFate = 'correct' | 'changed' | 'ciphertext' | 'wrong';
/** Which fate wins when one frame is served twice. */
const FATE_RANK: Record<ServedFate, number> = { correct: 0, changed: 1, ciphertext: 2, wrong: 3 };

export class Oracle {
  readonly #machine: Machine;
  readonly #kernel: FirstKernel;
  /** Pages (pfn ranges) the dump must contain. */
  ranges: Range[] = [];
  /** DRAM at the handoff (copy-on-write, so it costs what changes afterwards). */
  #truth: DramSnapshot | undefined;
  /** The fate of each page /proc/vmcore served that was not simply correct. */
  readonly #served = new Map<number, ServedFate>();
  /** Every content a page took on through device writes after the handoff. */
  readonly alternatives = new Map<number, Uint8Array[]>();
  readonly strayWrites = new Map<number, string>();
  /** The same states as they sat in DRAM (ciphertext when the kernel's view of the page is encrypted). */
  readonly #alternativesRaw = new Map<number, Uint8Array[]>();
  /** The key slot each page was served through. */
  readonly #servedKey = new Map<number, number>();
  snapshotNs: number | null = null;
  dmaWritesAfterPanic = 0;
  #unwatch: (() => void) | undefined;

  constructor(machine: Machine, kernel: FirstKernel) {
    this.#machine = machine;
    this.#kernel = kernel;
  }

  get taken(): boolean {
    return this.snapshotNs !== null;
  }

  /** System RAM minus the first MiB and the crash regions, in frames. */
  expectedRanges(): Range[] {
    const ram = this.#machine.e820
      .filter((e) => e.type === 'usable')
      .map((e) => ({ start: Math.ceil(e.addr / 4096), end: Math.floor((e.addr + e.size) / 4096) }));
    const ex: Range[] = [{ start: 0, end: 256 }];
    for (const r of [this.#kernel.crashRegion, this.#kernel.crashLowRegion]) if (r) ex.push({ start: r.start / 4096, end: r.end / 4096 });
    return subtractRanges(ram, ex);
  }

  /** Records the truth and starts watching DMA. */
  snapshot(): void {
    const m = this.#machine;
    this.ranges = this.expectedRanges();
    this.#truth = m.dram.snapshot();
    this.snapshotNs = m.clock.now;
    this.#unwatch = m.mc.addWriteObserver((pa, len, who) => this.#onWrite(pa, len, who));
  }

  stop(): void {
    this.#unwatch?.();
    this.#unwatch = undefined;
  }

  /** Lets DRAM stop preserving the handoff state. */
  release(): void {
    this.stop();
    this.#truth?.close();
  }

  /**
   * Page `pfn` as the first kernel saw it when it stopped: DRAM then, seen
   * through the kernel's own mapping (decrypted with the host key under
   * SME). Undefined: DRAM held nothing there, so neither did the kernel.
   */
  truthPage(pfn: number): Uint8Array | undefined {
    const stored = this.#truth?.stored(pfn);
    if (stored === undefined) return undefined;
    const keyId = this.#kernel.keyFor(pfn * 4096);
    // Stored as plaintext under the kernel's own key: that is what the kernel saw.
    if (stored.keyId === keyId) return stored.bytes;
    const plain = this.#truth!.frame(pfn)!.slice();
    if (keyId !== 0) this.#machine.mc.keySlot(keyId)!.decrypt(pfn * 4096, plain);
    return plain;
  }

  /** Page `pfn` as it sat in DRAM at the handoff (ciphertext under SME). */
  rawTruthPage(pfn: number): Uint8Array | undefined {
    return this.#truth?.frame(pfn);
  }

  /** The tap for /proc/vmcore: classifies each page as it is served. */
  readonly onPageServed = (pfn: number, page: Uint8Array, keyId: number): void => {
    const held = this.#truth?.stored(pfn) !== undefined;
    // Frames DRAM never held carry no data the kernel cared about, whatever a read of them returns.
    if (!held && !this.alternatives.has(pfn) && !this.strayWrites.has(pfn)) return;
    // Same DRAM bytes read through the same key as the kernel's: the same plaintext, no cipher needed.
    if (keyId === this.#kernel.keyFor(pfn * 4096) && !this.alternatives.has(pfn) && this.#machine.dram.sameAsSnapshot(pfn, this.#truth!)) {
      if (!this.#served.has(pfn)) this.#served.set(pfn, 'correct');
      return;
    }
    const want = this.truthPage(pfn);
    let fate: ServedFate;
    if (samePage(page, want)) fate = 'correct';
    else if (!this.strayWrites.has(pfn) && this.alternatives.get(pfn)?.some((a) => samePage(page, a))) fate = 'changed';
    else if (held && this.#kernel.keyFor(pfn * 4096) !== 0 && samePage(page, this.rawTruthPage(pfn))) fate = 'ciphertext';
    else if (this.#alternativesRaw.get(pfn)?.some((a) => samePage(page, a))) fate = 'ciphertext';
    else fate = 'wrong';
    this.#servedKey.set(pfn, keyId);
    const before = this.#served.get(pfn);
    // A frame served twice (kernel text aliases RAM) keeps its worst fate.
    if (before !== undefined && FATE_RANK[before] >= FATE_RANK[fate]) return;
    this.#served.set(pfn, fate);
  };

  /** The dump level the kdump service filtered with: above 1, pages of the classes it drops may be left out. */
  dumpLevel = 1;
  /** Pages left out of the file because their class is one the dump level drops (counted by compare). */
  pagesLeftOutByLevel = 0;

  /** Old-kernel pages the capture kernel took over by design (reused IOMMU buffers): its writes there are expected. */
  readonly #reused = new Set<number>();

  readonly onReuseOldMemory = (pa: number, length: number): void => {
    for (let pfn = Math.floor(pa / 4096); pfn < Math.ceil((pa + length) / 4096); pfn++) this.#reused.add(pfn);
  };

  #onWrite(pa: number, len: number, who: Requester): void {
    const first = Math.floor(pa / 4096);
    const last = Math.floor((pa + len - 1) / 4096);
    if (who.kind !== 'device') {
      // A CPU write into old memory: expected only where the capture kernel reuses a buffer.
      for (let pfn = first; pfn <= last; pfn++) if (this.#reused.has(pfn)) this.#noteAlternative(pfn);
      return;
    }
    this.dmaWritesAfterPanic++;
    for (let pfn = first; pfn <= last; pfn++) {
      const allowed = this.#kernel.dmaMappings.some((d) => d.device === who.name && pfn * 4096 < d.pa + d.length && d.pa < (pfn + 1) * 4096);
      if (!allowed) this.strayWrites.set(pfn, who.name);
      this.#noteAlternative(pfn);
    }
  }

  /** Records the page's current contents as a state it may legitimately be captured in. */
  #noteAlternative(pfn: number): void {
    const m = this.#machine;
    const page = new Uint8Array(4096);
    const keyId = this.#kernel.keyFor(pfn * 4096);
    m.mc.read(pfn * 4096, page, { keyId });
    const list = this.alternatives.get(pfn) ?? [];
    if (!list.some((x) => samePage(x, page))) list.push(page.slice());
    this.alternatives.set(pfn, list);
    if (keyId !== 0) {
      m.mc.read(pfn * 4096, page);
      const raw = this.#alternativesRaw.get(pfn) ?? [];
      raw.push(page.slice());
      this.#alternativesRaw.set(pfn, raw);
    }
  }

  /** Checks what the capture kernel served against the truth. */
  compare(record: CaptureRecord | undefined, loads: readonly ElfLoadSpec[]): OracleReport {
    const expected = this.ranges.reduce((n, r) => n + (r.end - r.start), 0);
    const covered = subtractRanges(this.ranges, complement(loads.map((l) => ({ start: l.paddr / 4096, end: (l.paddr + l.memsz) / 4096 }))));
    const captured = record === undefined ? 0 : covered.reduce((n, r) => n + (r.end - r.start), 0);
    const errors: PageError[] = [];
    const special = new Map<number, PageFate>();
    let wrong = 0;
    let changed = 0;
    let ciphertext = 0;
    if (record !== undefined) {
      // Pages never served read as zero (DRAM never held them): they are wrong only if the truth had data.
      const candidates = new Set<number>([...(this.#truth?.frames ?? []), ...this.#served.keys()]);
      // Above level 1, what the first kernel's own struct pages said each page was (as makedumpfile reads them).
      const classes = this.dumpLevel > 1 ? new ClassCursor(this.#classes()) : undefined;
      for (const pfn of [...candidates].sort((a, b) => a - b)) {
        if (!inRanges(covered, pfn)) continue;
        let fate = this.#served.get(pfn);
        if (fate === undefined) {
          const want = this.truthPage(pfn);
          if (want === undefined || isZeroPage(want)) continue;
          const cls = classes?.classOf(pfn);
          if (cls !== undefined && levelExcludes(this.dumpLevel, cls)) {
            this.pagesLeftOutByLevel++;
            continue;
          }
          fate = 'wrong';
        }
        if (fate === 'correct') continue;
        if (fate === 'changed') {
          changed++;
          special.set(pfn, 'changed-by-dma');
          continue;
        }
        if (fate === 'ciphertext') {
          ciphertext++;
          special.set(pfn, 'ciphertext');
          if (errors.length < MAX_LISTED_ERRORS) errors.push({ pfn, pa: `0x${(pfn * 4096).toString(16)}`, cause: 'captured as ciphertext: read without the key the first kernel wrote it with' });
          continue;
        }
        wrong++;
        special.set(pfn, 'wrong');
        if (errors.length < MAX_LISTED_ERRORS) errors.push({ pfn, pa: `0x${(pfn * 4096).toString(16)}`, cause: this.#cause(pfn, this.#served.has(pfn)) });
      }
    }
    const missing = expected - captured;
    if (missing > 0 && errors.length < MAX_LISTED_ERRORS) {
      const gaps = subtractRanges(this.ranges, covered);
      for (const g of gaps.slice(0, MAX_LISTED_ERRORS - errors.length)) {
        errors.push({ pfn: g.start, pa: `0x${(g.start * 4096).toString(16)}`, cause: `missing: ${g.end - g.start} pages from here are not in the dump` });
      }
    }
    return {
      pagesExpected: expected,
      pagesCaptured: captured,
      pagesCorrect: captured - wrong - ciphertext,
      pagesMissing: missing,
      pagesCiphertext: ciphertext,
      pagesChangedAfterPanic: changed,
      pagesWrong: wrong,
      errors,
      pageMap: buildPageMap(Math.floor(this.#machine.dram.size / 4096), this.ranges, record === undefined ? [] : covered, special),
    };
  }

  /** The report of a run that captured nothing. */
  nothingCaptured(): OracleReport {
    const ranges = this.taken ? this.ranges : this.expectedRanges();
    const expected = ranges.reduce((n, r) => n + (r.end - r.start), 0);
    return {
      pagesExpected: expected, pagesCaptured: 0, pagesCorrect: 0, pagesMissing: expected, pagesCiphertext: 0,
      pagesChangedAfterPanic: 0, pagesWrong: 0, errors: [],
      pageMap: buildPageMap(Math.floor(this.#machine.dram.size / 4096), ranges, [], new Map()),
    };
  }

  #cause(pfn: number, served: boolean): string {
    const stray = this.strayWrites.get(pfn);
    if (stray !== undefined) return `overwritten after the panic by DMA from ${stray} outside its buffers`;
    const used = this.#servedKey.get(pfn);
    const own = this.#kernel.keyFor(pfn * 4096);
    if (used !== undefined && used !== own && own === 0) return 'decrypted with the host key, but the first kernel had written it in the clear';
    if (this.alternatives.has(pfn)) return 'changed by DMA after the panic, but the captured bytes match no state the DMA produced';
    return !served ? 'captured as zeros, but the page held data' : 'captured bytes differ from the page at the panic';
  }

  #classOfFrames: ReturnType<typeof classifyFrames> | undefined;

  /** Each page's class from the first kernel's struct pages at the panic (computed once). */
  #classes(): ReturnType<typeof classifyFrames> {
    this.#classOfFrames ??= classifyFrames(this.#kernel.vmcoreinfo, framePhysMemory((pfn) => this.truthPage(pfn)), 'the first kernel\'s memory', this.ranges.map((r) => ({ startPfn: r.start, endPfn: r.end })));
    return this.#classOfFrames;
  }

  manifest(scenario: string, seed: number): TruthManifest {
    const pages: Record<string, string> = {};
    for (const pfn of this.#truth?.frames ?? []) {
      const page = this.truthPage(pfn)!;
      if (!inRanges(this.ranges, pfn) || isZeroPage(page)) continue;
      pages[String(pfn)] = pageDigest(page);
    }
    const alternatives: Record<string, string[]> = {};
    for (const pfn of [...this.alternatives.keys()].sort((a, b) => a - b)) {
      if (this.strayWrites.has(pfn)) continue;
      alternatives[String(pfn)] = this.alternatives.get(pfn)!.map(pageDigest);
    }
    return {
      format: TRUTH_FORMAT,
      version: TRUTH_VERSION,
      pageSize: 4096,
      scenario,
      seed,
      ranges: this.ranges.map((r) => [r.start, r.end]),
      pages,
      alternatives,
      // What the kernel's own struct pages said each page was, for checking filtered dumps.
      classes: this.#classes(),
    };
  }
}

/**
 * Memory as contiguous runs: outside `expected` not-in-dump; inside, missing
 * unless `covered`, correct unless a special fate is recorded for the page.
 */
export function buildPageMap(maxPfn: number, expected: readonly Range[], covered: readonly Range[], special: ReadonlyMap<number, PageFate>): PageFateRun[] {
  const cuts = new Set<number>([0, maxPfn]);
  for (const r of [...expected, ...covered]) {
    cuts.add(Math.min(r.start, maxPfn));
    cuts.add(Math.min(r.end, maxPfn));
  }
  for (const pfn of special.keys()) {
    cuts.add(pfn);
    cuts.add(pfn + 1);
  }
  const points = [...cuts].filter((x) => x <= maxPfn).sort((a, b) => a - b);
  const out: PageFateRun[] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const a = points[i]!;
    const b = points[i + 1]!;
    if (b <= a) continue;
    let fate: PageFate;
    if (!inRanges(expected, a)) fate = 'not-in-dump';
    else if (!inRanges(covered, a)) fate = 'missing';
    else fate = special.get(a) ?? 'correct';
    const last = out[out.length - 1];
    if (last !== undefined && last.fate === fate && last.endPfn === a) last.endPfn = b;
    else out.push({ startPfn: a, endPfn: b, fate });
  }
  return out;
}

/** Byte equality of two pages; undefined stands for a zero page. */
function samePage(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined) return b === undefined || isZeroPage(b);
  if (b === undefined) return isZeroPage(a);
  return Buffer.compare(a, b) === 0;
}

function inRanges(rs: readonly Range[], pfn: number): boolean {
  let lo = 0;
  let hi = rs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const r = rs[mid]!;
    if (pfn < r.start) hi = mid;
    else if (pfn >= r.end) lo = mid + 1;
    else return true;
  }
  return false;
}

/** Everything not covered by `rs` (in frames). */
function complement(rs: readonly Range[]): Range[] {
  const sorted = [...rs].sort((a, b) => a.start - b.start);
  const out: Range[] = [];
  let at = 0;
  for (const r of sorted) {
    if (r.start > at) out.push({ start: at, end: r.start });
    at = Math.max(at, r.end);
  }
  out.push({ start: at, end: Number.MAX_SAFE_INTEGER });
  return out;
}
