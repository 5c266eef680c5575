// Reading a scenario file: YAML syntax errors and schema violations both
// become a ScenarioError naming file:line:col and what was expected. A file
// may `extends:` another (maps merge, lists are replaced) and start its
// machine from a preset; an error is located in whichever file holds the
// offending value.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isNode, type Document, type LineCounter } from 'yaml';
import type { z } from 'zod';
import { ScenarioError, InputError } from '../util/errors.js';
import { deepMerge, isPlainObject } from '../util/deep-merge.js';
import { scenarioSchema, type Scenario } from './schema.js';
import { describeIssue, locateInDocument, parseYaml } from './yaml-source.js';
import { MACHINE_PRESETS } from './presets.js';

/** One file of an extends chain, parsed. */
interface Source {
  file: string;
  doc: Document.Parsed;
  lc: LineCounter;
}

const MAX_EXTENDS_DEPTH = 16;

export function loadScenarioFile(file: string): Scenario {
  return parseScenario(readText(file, 'scenario'), file);
}

export function readText(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new InputError(`Cannot read ${what} "${file}": ${(e as Error).message}`);
  }
}

export function parseScenario(text: string, file: string): Scenario {
  const sources: Source[] = [];
  const data = resolveExtends(text, file, sources, []);
  return validateScenario(data, sources);
}

/** Validates merged scenario data; issues are located in the given sources (child first). */
export function validateScenario(data: unknown, sources: readonly Source[]): Scenario {
  const withPreset = applyPreset(data);
  const r = scenarioSchema.safeParse(withPreset, { reportInput: true });
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const { file, line, col } = locateIssue(sources, issue);
  const path = issue.path.map(String).join('.');
  throw new ScenarioError(`${path === '' ? 'scenario' : path}: ${describeIssue(issue)}`, { file, line, col });
}

function resolveExtends(text: string, file: string, sources: Source[], seen: string[]): unknown {
  const { doc, lc, data } = parseYaml(text, file);
  sources.push({ file, doc, lc });
  if (!isPlainObject(data) || typeof data['extends'] !== 'string') return data;
  const parentFile = resolve(dirname(file), data['extends']);
  const at = (): { line: number; col: number } => {
    const node = doc.getIn(['extends'], true);
    return isNode(node) && node.range ? lc.linePos(node.range[0]) : { line: 1, col: 1 };
  };
  if (seen.includes(parentFile) || seen.length >= MAX_EXTENDS_DEPTH) {
    throw new ScenarioError(`extends: "${data['extends']}" makes a cycle (or a chain deeper than ${MAX_EXTENDS_DEPTH})`, { file, ...at() });
  }
  let parentText: string;
  try {
    parentText = readFileSync(parentFile, 'utf8');
  } catch (e) {
    throw new ScenarioError(`extends: cannot read "${parentFile}": ${(e as Error).message}`, { file, ...at() });
  }
  const parent = resolveExtends(parentText, parentFile, sources, [...seen, file]);
  const own = { ...data };
  delete own['extends'];
  return deepMerge(parent, own);
}

/** A machine preset fills in what the scenario's machine leaves out. */
export function applyPreset(data: unknown): unknown {
  if (!isPlainObject(data) || !isPlainObject(data['machine'])) return data;
  const name = data['machine']['preset'];
  if (typeof name !== 'string' || !(name in MACHINE_PRESETS)) return data; // the schema reports unknown presets
  const preset = MACHINE_PRESETS[name as keyof typeof MACHINE_PRESETS];
  return { ...data, machine: deepMerge(structuredClone(preset), data['machine']) };
}

function locateIssue(sources: readonly Source[], issue: z.core.$ZodIssue): { file: string; line: number; col: number } {
  const unknownKey = issue.code === 'unrecognized_keys' ? issue.keys[0] : undefined;
  // The file that spells out most of the path holds the problem; on a tie, the child.
  let best: { file: string; line: number; col: number; depth: number } | undefined;
  for (const src of sources) {
    const at = locateInDocument(src.doc, src.lc, issue.path as (string | number)[], unknownKey);
    if (best === undefined || at.depth > best.depth) best = { file: src.file, ...at };
  }
  return best === undefined ? { file: '(scenario)', line: 1, col: 1 } : { file: best.file, line: best.line, col: best.col };
}
