// The doctor's answer: run the host's scenario (once per value an unknown
// fact could have), judge each run by what the model did, then re-run with
// each candidate change to find the ones that give a complete dump.

import { scenarioSchema, type ScenarioInput, type Verdict } from '../scenario/schema.js';
import { runScenario } from '../scenario/run.js';
import type { RunResult } from '../scenario/result.js';
import type { Evidence, HostFacts, LogHit } from './host-facts.js';
import { buildHostModel, type HostModel } from './host-scenario.js';
import { candidateFixes, type Fix } from './fixes.js';
import { likelyChanges } from './what-ifs.js';
import { parseSize } from '../util/units.js';

export type Readiness = 'ready' | 'not-ready' | 'unknown';

/** One run of the host's scenario, reduced to what the report shows. */
export interface RunSummary {
  /** Which values of the unknown facts this run took ("firmware 1.52, no SNP guests"), or "" when none were unknown. */
  variant: string;
  verdict: Verdict;
  ready: boolean;
  /** Capture-kernel log lines reporting DMA or interrupt remapping faults. */
  captureFaults: number;
  /** The causal chain's last steps: why. */
  why: string[];
  /** The capture kernel's last log lines. */
  captureLogTail: string[];
}

export interface ConfirmedFix {
  /** The changes, applied together (one or two). */
  fixes: Pick<Fix, 'id' | 'title' | 'lines' | 'drawback'>[];
  cost: number;
  /** The verdict of every re-run with the change (one per variant). */
  verdicts: Verdict[];
}

export interface Diagnosis {
  kind: 'kdumpsim-doctor-report';
  origin: string;
  readiness: Readiness;
  /** One sentence: the answer. */
  headline: string;
  /** Why not (or why the doctor cannot tell). */
  reasons: string[];
  facts: HostFacts;
  model: Pick<HostModel, 'lines' | 'notes' | 'blocking'> & { unknowns: { fact: string; reason: string; alternatives: string[] }[]; scenario: ScenarioInput };
  runs: RunSummary[];
  /** Lines of the host's earlier capture-kernel console log that the model's run printed too. */
  reproduced: Evidence[];
  fixes: ConfirmedFix[];
  /** Changes tried that did not give a complete dump, with the verdict they gave. */
  rejected: { id: string; title: string; verdicts: Verdict[] }[];
  /** For a ready host: likely next changes that would break kdump, each with the fixes a re-run confirmed for that state. */
  hazards: { id: string; title: string; outcome: string; verdicts: Verdict[]; fixes: ConfirmedFix[] }[];
  runsMade: number;
}

export interface DiagnoseOptions {
  /** Called before each run, for progress output. */
  onRun?: (what: string, n: number) => void;
  /** Upper bound on runs spent on fixes (default 40). */
  maxFixRuns?: number;
}

/** Verdicts ordered by how far the handoff got; a fix that moves a run up the scale is worth combining with another. */
const PROGRESS: Record<Verdict, number> = {
  'first-kernel-failed': 0, 'no-crash-kernel': 1, 'kexec-refused': 1.5, 'crash-kernel-hang': 2, 'crash-kernel-panic': 3,
  'no-dump': 4, 'dump-partial': 5, 'dump-complete': 6,
};

/** Chain steps that name a cause rather than routine progress. */
const CAUSE = /fail|refus|ignored|timed out|timeout|panics|out of memory|fault|ciphertext|unencrypted|wrong|missing|none from|none to|no crash|not reserved|cannot|off:/i;

const FAULT_LINE = /DMAR:.*fault|fault reason|IO_PAGE_FAULT|INTR-REMAP/;

export function diagnose(facts: HostFacts, opts: DiagnoseOptions = {}): Diagnosis {
  const model = buildHostModel(facts);
  const base: Diagnosis = {
    kind: 'kdumpsim-doctor-report', origin: facts.origin, readiness: 'unknown', headline: '', reasons: [], facts,
    model: {
      lines: model.lines, notes: model.notes, ...(model.blocking === undefined ? {} : { blocking: model.blocking }),
      unknowns: model.unknowns.map((u) => ({ fact: u.fact, reason: u.reason, alternatives: u.alternatives.map((a) => a.label) })),
      scenario: model.scenario,
    },
    runs: [], reproduced: [], fixes: [], rejected: [], hazards: [], runsMade: 0,
  };
  if (model.blocking !== undefined) {
    base.headline = 'Could not tell whether a crash now would give a complete dump.';
    base.reasons.push(model.blocking);
    return base;
  }

  const variants = expandUnknowns(model);
  let runs = 0;
  const run = (s: ScenarioInput, what: string): RunResult => {
    runs++;
    opts.onRun?.(what, runs);
    return runScenario(scenarioSchema.parse(s));
  };
  let results: { v: Variant; r: RunResult }[];
  try {
    results = variants.map((v) => ({ v, r: run(v.scenario, `the host as read${v.label ? ` (${v.label})` : ''}`) }));
  } catch (e) {
    base.headline = 'Could not tell whether a crash now would give a complete dump.';
    base.reasons.push(`the model failed on this host's scenario (a kdumpsim bug; --json has the scenario to report it with): ${(e as Error).message}`);
    base.runsMade = runs;
    return base;
  }
  base.runs = results.map(({ v, r }) => summarize(v.label, r));
  const headroom = captureMemoryNote(results[0]!.r);
  if (headroom !== undefined) base.model.notes.push(headroom);
  base.reproduced = reproducedLines(facts.captureLog, results[0]!.r);
  const readyCount = base.runs.filter((r) => r.ready).length;

  if (readyCount > 0 && readyCount < base.runs.length) {
    base.readiness = 'unknown';
    base.headline = 'Could not tell: the answer depends on facts this host did not give up.';
    base.reasons.push(...model.unknowns.map((u) => `${u.fact} is unknown (${u.reason}): with ${u.alternatives.map((a) => a.label).join(' / ')} the outcomes differ`));
    for (const r of base.runs) base.reasons.push(`${r.variant}: ${describe(r)}`);
  } else if (readyCount === base.runs.length) {
    base.readiness = 'ready';
    base.headline = 'Ready: a crash now would give a complete dump.';
  } else {
    base.readiness = 'not-ready';
    const r0 = base.runs[0]!;
    base.headline = `Not ready: a crash now would end in ${describe(r0)}.`;
    base.reasons.push(...r0.why);
  }

  const missing = facts.sources.filter((x) => !x.optional && x.status !== 'read');
  base.reasons.push(...missing.map((x) => `not read: ${x.path} (${x.reason ?? x.status})`));
  if (base.readiness !== 'ready') {
    const found = searchFixes(model, model.scenario, variants.map((v) => v.scenario), results.map((x) => x.r), run, opts.maxFixRuns ?? 40);
    base.fixes = found.confirmed;
    base.rejected = found.rejected;
    base.model.notes.push(...found.failed);
  } else {
    for (const w of likelyChanges(model)) {
      const start = structuredClone(model.scenario);
      w.apply(start);
      const scenarios = variants.map((v) => {
        const x = structuredClone(v.scenario);
        w.apply(x);
        return x;
      });
      const rs = scenarios.map((x) => run(x, `if ${w.id}`));
      if (rs.every(isReady)) continue;
      const found = searchFixes(model, start, scenarios, rs, run, 16);
      base.hazards.push({ id: w.id, title: w.title, outcome: describe(summarize('', rs[0]!)), verdicts: rs.map((r) => r.verdict), fixes: found.confirmed });
    }
  }
  base.runsMade = runs;
  return base;
}

interface Variant { label: string; scenario: ScenarioInput }

/** The host's scenario once per combination of unknown facts (at most 8). */
function expandUnknowns(m: HostModel): Variant[] {
  let out: Variant[] = [{ label: '', scenario: m.scenario }];
  for (const u of m.unknowns) {
    if (out.length * u.alternatives.length > 8) break;
    out = out.flatMap((v) => u.alternatives.map((a) => {
      const s = structuredClone(v.scenario);
      a.apply(s);
      return { label: v.label ? `${v.label}, ${a.label}` : a.label, scenario: s };
    }));
  }
  return out;
}

function isReady(r: RunResult): boolean {
  return r.verdict === 'dump-complete' && captureFaults(r) === 0;
}

function captureFaults(r: RunResult): number {
  return r.logs.crashKernel.filter((l) => FAULT_LINE.test(l)).length;
}

function progress(r: RunResult): number {
  return PROGRESS[r.verdict] + (isReady(r) ? 1 : 0);
}

function summarize(variant: string, r: RunResult): RunSummary {
  const faults = captureFaults(r);
  // The steps that carry the cause (a refusal, a failure, a fault, what the hardware ignored), then how it ended.
  // Timestamps off, and a source named twice ("nic0: nic0: ...") once.
  const steps = r.chain.map((c) => c.replace(/^\[\s*\d+\.\d+\]\s*/, '').replace(/^(\S+): \1: /, '$1: '));
  const last = steps.length - 4;
  const why = steps.filter((c, i) => i >= last || CAUSE.test(c)).slice(-14);
  if (r.verdict === 'dump-complete' && faults > 0) {
    why.push(`the capture kernel reported ${faults} DMA or interrupt remapping faults: its devices (the disk or NIC the dump goes to) cannot work through the IOMMU`);
  }
  return { variant, verdict: r.verdict, ready: isReady(r), captureFaults: faults, why, captureLogTail: r.logs.crashKernel.slice(-6) };
}

function describe(r: RunSummary): string {
  if (r.verdict === 'dump-complete' && r.captureFaults > 0) return `a dump with ${r.captureFaults} DMA fault reports in the capture kernel`;
  const words: Record<Verdict, string> = {
    'dump-complete': 'a complete dump', 'dump-partial': 'a dump with missing or wrong pages', 'no-dump': 'no dump saved',
    'crash-kernel-panic': 'a capture kernel panic (no dump)', 'crash-kernel-hang': 'a hang after the panic (no dump)',
    'kexec-refused': 'no dump: the capture kernel cannot be loaded', 'no-crash-kernel': 'no dump: no capture kernel is loaded',
    'first-kernel-failed': 'a first kernel that does not boot as modelled',
  };
  return words[r.verdict];
}

/** How much memory the capture kernel had left (its "Memory:" line), and what SWIOTLB took, against what its initramfs needs. */
function captureMemoryNote(r: RunResult): string | undefined {
  const minMemory = r.input.crashKernel.minMemory;
  const mem = r.logs.crashKernel.map((l) => /Memory: (\d+)K\/(\d+)K available/.exec(l)).find((x) => x !== null);
  if (mem === undefined || mem === null) return undefined;
  const freeMiB = Math.floor(Number(mem[1]) / 1024);
  const need = (parseSize(minMemory) ?? 0) / 2 ** 20;
  const swiotlb = r.logs.crashKernel.some((l) => l.includes('software IO TLB: mapped'));
  return `the capture kernel had ${freeMiB} MiB free for its initramfs and the dump (it needs ${need} MiB)${swiotlb ? ', after the 64 MiB SWIOTLB that SME forces' : ''}`;
}

/** The host's own console lines that the model's capture kernel printed too (timestamps and prefixes aside). */
function reproducedLines(captureLog: readonly LogHit[], r: RunResult): Evidence[] {
  const model = r.logs.crashKernel.map(stripPrefix);
  const out: Evidence[] = [];
  for (const h of captureLog) {
    const text = stripPrefix(h.evidence.text ?? '');
    if (text.length > 0 && model.some((l) => l === text || l.endsWith(text) || text.endsWith(l))) out.push(h.evidence);
  }
  return out;
}

function stripPrefix(line: string): string {
  return line
    .replace(/^[A-Z]+ +/, '')
    .replace(/^\[\s*\d+\.\d+\]\s*/, '')
    .replace(/^[A-Z][a-z]{2} +\d+ [\d:]+ \S+ [^:]+: /, '')
    .trim();
}

/**
 * Single changes first, family by family; a change that moves every variant
 * further along (a reservation that lets the capture kernel load, say) is
 * then combined with each other change. Confirmed means every variant gives
 * a complete dump.
 */
function searchFixes(
  m: HostModel, start: ScenarioInput, scenarios: ScenarioInput[], baseRuns: RunResult[], run: (s: ScenarioInput, what: string) => RunResult, budget: number,
): { confirmed: ConfirmedFix[]; rejected: Diagnosis['rejected']; failed: string[] } {
  const failed: string[] = [];
  const confirmed: ConfirmedFix[] = [];
  const rejected: Diagnosis['rejected'] = [];
  let spent = 0;
  const tryFixes = (fixes: Fix[]): RunResult[] | undefined => {
    if (spent + scenarios.length > budget) return undefined;
    spent += scenarios.length;
    try {
      return scenarios.map((s) => {
        const x = structuredClone(s);
        for (const f of fixes) f.apply(x);
        return run(x, `with ${fixes.map((f) => f.id).join(' + ')}`);
      });
    } catch (e) {
      // A model that cannot run a change is a kdumpsim bug; the change is reported as not checked, the rest go on.
      failed.push(`${fixes.map((f) => f.title).join(' + ')}: not checked, the model failed (${(e as Error).message})`);
      return [];
    }
  };
  const stepping: { fix: Fix; after: ScenarioInput }[] = [];
  const single = (fixes: Fix[], from: RunResult[], first?: Fix): void => {
    const basePro = Math.min(...from.map(progress));
    for (const { key, list: family } of families(fixes, from)) {
      const downward = key.endsWith('-kernel');
      let best: { list: Fix[]; rs: RunResult[] } | undefined;
      for (const f of family) {
        const list = first === undefined ? [f] : [first, f];
        const rs = tryFixes(list);
        if (rs === undefined) break;
        if (rs.length === 0) continue;
        if (rs.every(isReady)) {
          best = { list, rs };
          // Upgrades walk down to the oldest release that still works; anything else stops at the first that works.
          if (downward) continue;
          break;
        }
        if (best !== undefined) break;
        if (first === undefined) {
          rejected.push({ id: f.id, title: f.title, verdicts: rs.map((r) => r.verdict) });
          if (Math.min(...rs.map(progress)) > basePro) {
            const after = structuredClone(start);
            f.apply(after);
            stepping.push({ fix: f, after });
          }
        }
        // The newest release did not help: no older one will. A larger reservation is worth a run only while the last was too small.
        if (downward || (f.id.startsWith('crashkernel=') && !rs.some(tooSmall))) break;
      }
      if (best !== undefined) confirmed.push({ fixes: best.list.map(pick), cost: best.list.reduce((n, x) => n + x.cost, 0), verdicts: best.rs.map((r) => r.verdict) });
    }
  };
  single(candidateFixes(m, start), baseRuns);
  // Pairs: a change that got further, then what that state still needs.
  for (const st of stepping) {
    if (confirmed.some((c) => c.fixes.some((x) => sameFamily(x.id, st.fix.id)))) continue;
    const next = candidateFixes(m, st.after).filter((g) => !sameFamily(g.id, st.fix.id) && !confirmed.some((c) => c.fixes.length === 1 && sameFamily(c.fixes[0]!.id, g.id)));
    single(next, [], st.fix);
  }
  confirmed.sort((a, b) => a.cost - b.cost);
  return { confirmed, rejected: rejected.filter((r) => !confirmed.some((c) => c.fixes.some((x) => x.id === r.id))), failed };
}

/**
 * Candidate changes grouped by family, cheapest family first. Reservations
 * grow from the smallest, and only when a run showed the reservation too
 * small. Kernel upgrades are tried newest first: mechanisms accumulate, so if
 * the newest does not help no older one does, and when it does the walk
 * down finds the oldest that still works (reported instead).
 */
function families(fixes: Fix[], from: RunResult[]): { key: string; list: Fix[] }[] {
  const groups = new Map<string, Fix[]>();
  for (const f of [...fixes].sort((a, b) => a.cost - b.cost)) {
    const key = familyOf(f.id);
    if (key === 'crashkernel' && from.length > 0 && !from.some(tooSmall)) continue;
    groups.set(key, [...(groups.get(key) ?? []), f]);
  }
  return [...groups.entries()].map(([key, list]) => ({ key, list: key.endsWith('-kernel') ? newestDown(list) : list }));
}

/** Newest first, then the rest from newest down, so the last working one tried is the oldest. */
function newestDown(list: Fix[]): Fix[] {
  return [...list].sort((a, b) => b.cost - a.cost);
}

/** The reservation did not hold the capture kernel: kexec -p refused it, or the capture kernel ran out of memory. */
function tooSmall(r: RunResult): boolean {
  return (r.verdict === 'kexec-refused' && r.chain.some((c) => /crash|reserv/i.test(c))) || r.chain.some((c) => c.includes('out of memory'));
}

/** The family a change belongs to: sizes of one reservation, versions of one kernel. */
function familyOf(id: string): string {
  return id.replace(/=\d+M$/, '').replace(/-linux-.*$/, '');
}

function sameFamily(a: string, b: string): boolean {
  return familyOf(a) === familyOf(b);
}

function pick(f: Fix): ConfirmedFix['fixes'][number] {
  return { id: f.id, title: f.title, lines: f.lines, ...(f.drawback === undefined ? {} : { drawback: f.drawback }) };
}

/** Exit code: 0 ready, 1 not ready, 2 could not tell. */
export function doctorExitCode(d: Diagnosis): number {
  return d.readiness === 'ready' ? 0 : d.readiness === 'not-ready' ? 1 : 2;
}
