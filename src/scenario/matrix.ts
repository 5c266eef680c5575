// Matrix sweeps: a base scenario plus axes, expanded into one scenario per
// combination of axis values. Reading a matrix file gives file:line:col for
// every mistake, including a combination that is not a valid scenario.
//
// Expansion is row-major over the axes in file order (the last axis varies
// fastest), so a cell's index, id and coordinates depend only on the file.

import { dirname, resolve } from 'node:path';
import { isMap, isScalar } from 'yaml';
import { z } from 'zod';
import { InputError, ScenarioError } from '../util/errors.js';
import { deepMerge, isPlainObject, put } from '../util/deep-merge.js';
import { applyPreset, loadScenarioFile, readText } from './load.js';
import { describeIssue, locateInDocument, parseYaml } from './yaml-source.js';
import { scenarioSchema, VERDICTS, type Scenario, type Verdict } from './schema.js';
import type { MatrixAxisResult, MatrixCell, MatrixResult } from './matrix-result.js';

const axisName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, { error: 'Expected an axis name of letters, digits, "_", "." or "-" (no "=" or ",")' });

const dottedPath = z
  .string()
  .regex(/^[A-Za-z$][\w$]*(\.([A-Za-z$][\w$]*|\d+))*$/, { error: 'Expected a dotted scenario path such as "firstKernel.profile" or "machine.devices.0.packetInterval"' });

const axisSchema = z
  .strictObject({
    name: axisName,
    path: dottedPath.optional().describe('The scenario field each value sets; without it, each value is a partial scenario merged into the base'),
    values: z.union([z.array(z.unknown()), z.record(z.string(), z.unknown())], {
      error: 'Expected a list of values, or a map of label: value',
    }),
  })
  .superRefine((a, ctx) => {
    const entries = Array.isArray(a.values) ? a.values : Object.values(a.values);
    if (entries.length === 0) ctx.addIssue({ code: 'custom', path: ['values'], message: `Axis "${a.name}" has no values` });
    if (a.path === undefined) {
      if (Array.isArray(a.values)) {
        ctx.addIssue({ code: 'custom', path: ['values'], message: 'An axis without "path" takes a map of label: partial scenario' });
        return;
      }
      for (const [label, v] of Object.entries(a.values)) {
        if (!isPlainObject(v)) ctx.addIssue({ code: 'custom', path: ['values', label], message: `Expected a partial scenario (a map) for label "${label}"` });
      }
    } else if (Array.isArray(a.values)) {
      const seen = new Map<string, number>();
      a.values.forEach((v, i) => {
        const l = valueLabel(v);
        if (seen.has(l)) ctx.addIssue({ code: 'custom', path: ['values', i], message: `Duplicate value label "${l}" (also value ${seen.get(l)})` });
        seen.set(l, i);
      });
    }
  });

export const matrixFileSchema = z
  .strictObject({
    $schema: z.string().optional(),
    name: z.string().min(1),
    description: z.string().optional(),
    base: z.union([z.string().min(1), z.record(z.string(), z.unknown())], {
      error: 'Expected a scenario file path (relative to the matrix file) or an inline scenario',
    }),
    axes: z.array(axisSchema).min(1, { error: 'Expected at least one axis' }),
    table: z
      .strictObject({
        rows: z.array(z.string()).optional().describe('Axis names shown as rows (default: all but the last axis)'),
        columns: z.array(z.string()).optional().describe('Axis names shown as columns (default: the last axis)'),
      })
      .optional(),
    seed: z.number().int().nonnegative().optional().describe('Seed for every cell (an axis may still set "seed")'),
  })
  .superRefine((m, ctx) => {
    const names = new Map<string, number>();
    m.axes.forEach((a, i) => {
      if (names.has(a.name)) ctx.addIssue({ code: 'custom', path: ['axes', i, 'name'], message: `Duplicate axis name "${a.name}"` });
      names.set(a.name, i);
    });
    if (m.table === undefined) return;
    const used = new Set<string>();
    for (const part of ['rows', 'columns'] as const) {
      (m.table[part] ?? []).forEach((n, i) => {
        if (!names.has(n)) ctx.addIssue({ code: 'custom', path: ['table', part, i], message: `Unknown axis "${n}" (axes: ${[...names.keys()].join(', ')})` });
        else if (used.has(n)) ctx.addIssue({ code: 'custom', path: ['table', part, i], message: `Axis "${n}" appears twice in the table` });
        used.add(n);
      });
    }
    if (m.table.rows !== undefined && m.table.columns !== undefined) {
      const missing = [...names.keys()].filter((n) => !used.has(n));
      if (missing.length > 0) ctx.addIssue({ code: 'custom', path: ['table'], message: `Axis "${missing.join('", "')}" is neither a row nor a column` });
    }
  });

export type MatrixFileInput = z.input<typeof matrixFileSchema>;
type MatrixFile = z.output<typeof matrixFileSchema>;

/** Every cell is expanded and validated before any runs; this keeps that bounded. */
const MAX_CELLS = 1_000_000;

/** One combination of axis values, ready to run. */
export interface MatrixCellSpec {
  index: number;
  id: string;
  coords: Record<string, string>;
  scenario: Scenario;
}

/** A matrix file, expanded: every cell validated. */
export interface MatrixPlan {
  name: string;
  axes: MatrixAxisResult[];
  rows: string[];
  columns: string[];
  total: number;
  cells: MatrixCellSpec[];
}

export interface ShardSpec {
  /** 1-based. */
  index: number;
  count: number;
}

interface Axis {
  name: string;
  path: string | undefined;
  labels: string[];
  values: unknown[];
  /** Values given as a list (errors point at value positions) rather than a label map. */
  fromList: boolean;
}

/** Points at the source of a problem: the node at a path in the matrix document. */
type Locate = (path: readonly (string | number)[], unknownKey?: string) => { line: number; col: number } | undefined;

export function loadMatrixFile(file: string): MatrixPlan {
  return parseMatrix(readText(file, 'matrix'), file);
}

/** Parses matrix YAML; a file `base` is resolved relative to `file`'s folder. */
export function parseMatrix(text: string, file: string): MatrixPlan {
  const { doc, lc, data } = parseYaml(text, file);
  const locate: Locate = (path, unknownKey) => locateInDocument(doc, lc, path, unknownKey);
  // A map's JS object reorders integer-like keys; labels keep the file's order.
  const labelOrder = (axisIndex: number): string[] | undefined => {
    const node = doc.getIn(['axes', axisIndex, 'values'], true);
    return isMap(node) ? node.items.map((it) => String(isScalar(it.key) ? it.key.value : it.key)) : undefined;
  };
  return expandMatrixInternal(data, { file, baseDir: dirname(resolve(file)), locate, labelOrder });
}

/**
 * Expands a matrix given as a plain object (the file's shape). A `base` path
 * is resolved against `baseDir` (default: the current folder).
 */
export function expandMatrix(input: MatrixFileInput | Record<string, unknown>, opts: { baseDir?: string; file?: string } = {}): MatrixPlan {
  return expandMatrixInternal(input, { file: opts.file, baseDir: resolve(opts.baseDir ?? '.'), locate: () => undefined, labelOrder: () => undefined });
}

function expandMatrixInternal(
  data: unknown,
  ctx: { file: string | undefined; baseDir: string; locate: Locate; labelOrder: (i: number) => string[] | undefined },
): MatrixPlan {
  const fail = (message: string, path: readonly (string | number)[], unknownKey?: string): never => {
    const at = ctx.locate(path, unknownKey);
    if (ctx.file !== undefined) throw new ScenarioError(message, { file: ctx.file, ...(at ?? { line: 1, col: 1 }) });
    throw new InputError(`Cannot use matrix: ${message}`);
  };

  const r = matrixFileSchema.safeParse(data, { reportInput: true });
  if (!r.success) {
    // A misspelt key also makes the right one missing: report the spelling.
    const issue = r.error.issues.find((i) => i.code === 'unrecognized_keys') ?? r.error.issues[0]!;
    const unknownKey = issue.code === 'unrecognized_keys' ? issue.keys[0] : undefined;
    const p = issue.path.map(String).join('.');
    return fail(`${p === '' ? 'matrix' : p}: ${describeIssue(issue)}`, issue.path as (string | number)[], unknownKey);
  }
  const m: MatrixFile = r.data;

  const axes: Axis[] = m.axes.map((a, i) => {
    if (Array.isArray(a.values)) return { name: a.name, path: a.path, labels: a.values.map(valueLabel), values: a.values, fromList: true };
    const rec = a.values;
    const order = ctx.labelOrder(i) ?? Object.keys(rec);
    return { name: a.name, path: a.path, labels: order, values: order.map((l) => rec[l]), fromList: false };
  });
  const { rows, columns } = tableLayout(m, axes);

  // The base: a scenario file (resolved, validated on its own) or an inline object.
  let base: Record<string, unknown>;
  if (typeof m.base === 'string') {
    base = loadBaseFile(resolve(ctx.baseDir, m.base), (msg) => fail(`base: ${msg}`, ['base']));
  } else {
    base = structuredClone(m.base);
    const ext = base['extends'];
    if (ext !== undefined) {
      if (typeof ext !== 'string') return fail('base.extends: expected a scenario file path', ['base', 'extends']);
      delete base['extends'];
      base = deepMerge(loadBaseFile(resolve(ctx.baseDir, ext), (msg) => fail(`base.extends: ${msg}`, ['base', 'extends'])), base) as Record<string, unknown>;
    }
  }
  if (m.seed !== undefined) base['seed'] = m.seed;

  const total = axes.reduce((n, a) => n * a.labels.length, 1);
  if (total > MAX_CELLS) fail(`The axes make ${total} cells; a matrix may have at most ${MAX_CELLS} (split it into several files)`, ['axes']);
  const cells: MatrixCellSpec[] = [];
  const ids = new Map<string, number>();
  for (let index = 0; index < total; index++) {
    const picks = axisPicks(index, axes);
    const coords: Record<string, string> = {};
    axes.forEach((a, k) => (coords[a.name] = a.labels[picks[k]!]!));
    const id = cellId(axes.map((a) => a.name), coords);
    if (ids.has(id)) fail(`Cells ${ids.get(id)} and ${index} both have the id "${id}": make the value labels distinct`, ['axes']);
    ids.set(id, index);

    let obj: unknown = structuredClone(base);
    axes.forEach((a, k) => {
      const v = a.values[picks[k]!];
      if (a.path === undefined) {
        obj = deepMerge(obj, v);
      } else {
        const problem = setPath(obj as Record<string, unknown>, a.path, v);
        if (problem !== undefined) fail(`axes.${k}.path: cannot set "${a.path}" in cell "${id}": ${problem}`, ['axes', k, 'path']);
      }
    });
    const o = obj as Record<string, unknown>;
    o['name'] = `${m.name} [${id}]`;

    const parsed = scenarioSchema.safeParse(applyPreset(o), { reportInput: true });
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const unknownKey = issue.code === 'unrecognized_keys' ? issue.keys[0] : undefined;
      const ipath = issue.path.map((x) => (typeof x === 'number' ? x : String(x)));
      const where = blame(axes, picks, ipath, unknownKey, typeof m.base === 'string');
      const p = ipath.join('.');
      fail(`cell "${id}" is not a valid scenario: ${p === '' ? 'scenario' : p}: ${describeIssue(issue)}`, where.path, where.unknownKey);
    }
    cells.push({ index, id, coords, scenario: (parsed as { data: Scenario }).data });
  }
  return { name: m.name, axes: axes.map((a) => ({ name: a.name, labels: a.labels })), rows, columns, total, cells };
}

function loadBaseFile(path: string, fail: (msg: string) => never): Record<string, unknown> {
  let s: Scenario;
  try {
    s = loadScenarioFile(path);
  } catch (e) {
    if (e instanceof ScenarioError) throw e; // already names the base file, line and column
    if (e instanceof InputError) fail(e.message);
    throw e;
  }
  const o = structuredClone(s) as Record<string, unknown>;
  delete o['$schema'];
  delete o['extends'];
  return o;
}

/** Which axis value (or base node) a cell's schema problem comes from: the last axis that set the field. */
function blame(
  axes: Axis[], picks: number[], issuePath: (string | number)[], unknownKey: string | undefined, baseIsFile: boolean,
): { path: (string | number)[]; unknownKey?: string } {
  const full = unknownKey === undefined ? issuePath : [...issuePath, unknownKey];
  const withKey = (path: (string | number)[]): { path: (string | number)[]; unknownKey?: string } =>
    unknownKey === undefined ? { path } : { path, unknownKey };
  for (let k = axes.length - 1; k >= 0; k--) {
    const a = axes[k]!;
    const at: (string | number)[] = ['axes', k, 'values', a.fromList ? picks[k]! : a.labels[picks[k]!]!];
    if (a.path !== undefined) {
      const ap = a.path.split('.');
      const n = Math.min(ap.length, full.length);
      if (!ap.slice(0, n).every((seg, i) => seg === String(full[i]))) continue;
      if (full.length <= ap.length) return { path: at };
      return withKey([...at, ...issuePath.slice(ap.length)]);
    }
    if (hasPathPrefix(a.values[picks[k]!], full)) return withKey([...at, ...issuePath]);
  }
  if (baseIsFile) return { path: ['base'] };
  return withKey(['base', ...issuePath]);
}

/** Whether a partial scenario sets anything at (a prefix of) the path. */
function hasPathPrefix(v: unknown, path: (string | number)[]): boolean {
  let cur = v;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return false;
    if (!Object.prototype.hasOwnProperty.call(cur, seg)) return false;
    cur = (cur as Record<string, unknown>)[String(seg)];
  }
  return true;
}

function tableLayout(m: MatrixFile, axes: Axis[]): { rows: string[]; columns: string[] } {
  const names = axes.map((a) => a.name);
  const t = m.table;
  if (t === undefined || (t.rows === undefined && t.columns === undefined)) {
    return { rows: names.slice(0, -1), columns: names.slice(-1) };
  }
  if (t.rows !== undefined && t.columns !== undefined) return { rows: t.rows, columns: t.columns };
  if (t.rows !== undefined) return { rows: t.rows, columns: names.filter((n) => !t.rows!.includes(n)) };
  return { rows: names.filter((n) => !t.columns!.includes(n)), columns: t.columns! };
}

/** Axis value positions of a cell, row-major: the last axis varies fastest. */
function axisPicks(index: number, axes: readonly { labels: readonly string[] }[]): number[] {
  const picks = new Array<number>(axes.length);
  let rest = index;
  for (let k = axes.length - 1; k >= 0; k--) {
    const n = axes[k]!.labels.length;
    picks[k] = rest % n;
    rest = Math.floor(rest / n);
  }
  return picks;
}

export function cellId(axisNames: string[], coords: Record<string, string>): string {
  return axisNames.map((n) => `${n}=${coords[n]}`).join(',');
}

/** A value's label: strings as they are, other scalars as written, objects as JSON. */
export function valueLabel(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return JSON.stringify(v);
}

/** Sets one field by dotted path (numeric segments index lists); returns a problem, or undefined. */
export function setPath(obj: Record<string, unknown>, path: string, value: unknown): string | undefined {
  const segs = path.split('.');
  let cur: Record<string, unknown> | unknown[] = obj;
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i]!;
    const key: string | number = Array.isArray(cur) ? Number(seg) : seg;
    if (Array.isArray(cur) && !/^\d+$/.test(seg)) return `"${segs.slice(0, i).join('.')}" is a list, "${seg}" is not an index`;
    if (Array.isArray(cur) && (key as number) > cur.length) return `"${segs.slice(0, i).join('.')}" has ${cur.length} entries, index ${seg} is past the end`;
    if (i === segs.length - 1) {
      put(cur, key, structuredClone(value));
      return undefined;
    }
    const next: unknown = (cur as Record<string | number, unknown>)[key];
    if (next === undefined || next === null) {
      const made: Record<string, unknown> | unknown[] = /^\d+$/.test(segs[i + 1]!) ? [] : {};
      put(cur, key, made);
      cur = made;
    } else if (typeof next === 'object') {
      cur = next as Record<string, unknown> | unknown[];
    } else {
      return `"${segs.slice(0, i + 1).join('.')}" is ${JSON.stringify(next)}, not a map`;
    }
  }
  return undefined;
}

/** The cells of a 1-based shard I/N: those whose index % N === I - 1. */
export function shardCells<T extends { index: number }>(cells: readonly T[], shard: ShardSpec | undefined): T[] {
  if (shard === undefined) return [...cells];
  return cells.filter((c) => c.index % shard.count === shard.index - 1);
}

/** Parses "I/N" (1 <= I <= N). */
export function parseShard(v: string): ShardSpec {
  const m = /^(\d+)\/(\d+)$/.exec(v.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) {
    throw new InputError(`Cannot use shard "${v}": expected I/N with 1 <= I <= N, e.g. "2/4"`);
  }
  return { index, count };
}

export function summarize(cells: readonly MatrixCell[]): Partial<Record<Verdict, number>> {
  const counts = new Map<Verdict, number>();
  for (const c of cells) counts.set(c.verdict, (counts.get(c.verdict) ?? 0) + 1);
  const out: Partial<Record<Verdict, number>> = {};
  for (const v of VERDICTS) {
    const n = counts.get(v);
    if (n !== undefined) out[v] = n;
  }
  return out;
}

/** The one place a MatrixResult is put together, so runs and merges serialise identically. */
export function assembleMatrixResult(
  meta: Pick<MatrixPlan, 'name' | 'axes' | 'rows' | 'columns' | 'total'>, cells: MatrixCell[], shard?: ShardSpec,
): MatrixResult {
  const sorted = [...cells].sort((a, b) => a.index - b.index);
  return {
    kind: 'kdumpsim-matrix-result',
    name: meta.name,
    axes: meta.axes.map((a) => ({ name: a.name, labels: [...a.labels] })),
    rows: [...meta.rows],
    columns: [...meta.columns],
    total: meta.total,
    ...(shard === undefined ? {} : { shard: { index: shard.index, count: shard.count } }),
    cells: sorted,
    summary: summarize(sorted),
  };
}

/** Exit status a sweep earns: 0 when every cell with an expectation met it. */
export function matrixPassed(m: MatrixResult): boolean {
  return m.cells.every((c) => c.expectationMet !== false);
}

const resultShape = z.looseObject({
  kind: z.literal('kdumpsim-matrix-result', { error: 'Expected kind "kdumpsim-matrix-result"' }),
  name: z.string(),
  axes: z.array(z.strictObject({ name: z.string(), labels: z.array(z.string()) })),
  rows: z.array(z.string()),
  columns: z.array(z.string()),
  total: z.number().int().nonnegative(),
  shard: z.strictObject({ index: z.number().int(), count: z.number().int() }).optional(),
  cells: z.array(z.looseObject({ index: z.number().int().nonnegative(), id: z.string(), verdict: z.enum(VERDICTS) })),
});

/** Checks that parsed JSON is a matrix result; `source` names it in errors. */
export function asMatrixResult(data: unknown, source: string): MatrixResult {
  const r = resultShape.safeParse(data);
  if (!r.success) {
    // A misspelt key also makes the right one missing: report the spelling.
    const issue = r.error.issues.find((i) => i.code === 'unrecognized_keys') ?? r.error.issues[0]!;
    throw new InputError(`Cannot read matrix result "${source}": ${issue.path.map(String).join('.') || 'result'}: ${issue.message}`);
  }
  return data as MatrixResult;
}

/**
 * Joins shard results of one sweep into the result the unsharded run gives.
 * They must share name, axes, table and total, and together hold every cell
 * exactly once.
 */
export function mergeMatrixResults(parts: readonly MatrixResult[], sources: readonly string[] = parts.map((_, i) => `result ${i + 1}`)): MatrixResult {
  if (parts.length === 0) throw new InputError('Cannot merge matrix results: none given');
  const first = parts[0]!;
  const shape = (m: MatrixResult): string => JSON.stringify([m.name, m.axes, m.rows, m.columns, m.total]);
  const byIndex = new Map<number, { cell: MatrixCell; source: string }>();
  const axisNames = first.axes.map((a) => a.name);
  parts.forEach((p, i) => {
    const src = sources[i] ?? `result ${i + 1}`;
    if (shape(p) !== shape(first)) {
      const what = p.name !== first.name ? `matrix "${p.name}", not "${first.name}"`
        : p.total !== first.total ? `${p.total} cells in all, not ${first.total}`
          : 'different axes or table';
      throw new InputError(`Cannot merge "${src}" with "${sources[0]}": it is a shard of another sweep (${what})`);
    }
    for (const c of p.cells) {
      if (c.index >= first.total) throw new InputError(`Cannot merge "${src}": cell ${c.index} is past the sweep's ${first.total} cells`);
      const expected = cellId(axisNames, coordsOf(first.axes, c.index));
      if (c.id !== expected) throw new InputError(`Cannot merge "${src}": cell ${c.index} has id "${c.id}", the sweep's axes give "${expected}"`);
      const prior = byIndex.get(c.index);
      if (prior !== undefined) throw new InputError(`Cannot merge "${src}": cell "${c.id}" is also in "${prior.source}"`);
      byIndex.set(c.index, { cell: c, source: src });
    }
  });
  if (byIndex.size !== first.total) {
    const missing: string[] = [];
    for (let i = 0; i < first.total && missing.length < 5; i++) {
      if (!byIndex.has(i)) missing.push(cellId(axisNames, coordsOf(first.axes, i)));
    }
    throw new InputError(
      `Cannot merge matrix results: ${first.total - byIndex.size} of ${first.total} cells missing, e.g. "${missing.join('", "')}" (is a shard left out?)`,
    );
  }
  return assembleMatrixResult(first, [...byIndex.values()].map((x) => x.cell));
}

function coordsOf(axes: readonly MatrixAxisResult[], index: number): Record<string, string> {
  const picks = axisPicks(index, axes);
  const coords: Record<string, string> = {};
  axes.forEach((a, k) => (coords[a.name] = a.labels[picks[k]!]!));
  return coords;
}

