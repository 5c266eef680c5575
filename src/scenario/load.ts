// Reading a scenario file: YAML syntax errors and schema violations both
// become a ScenarioError naming file:line:col and what was expected. A file
// may `extends:` another (maps merge, lists are replaced) and start its
// machine from a preset; an error is located in whichever file holds the
// offending value.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';
import type { z } from 'zod';
import { ScenarioError, InputError } from '../util/errors.js';
import { deepMerge, isPlainObject } from '../util/deep-merge.js';
import { scenarioSchema, type Scenario } from './schema.js';
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

/** Parses one YAML document with positions; syntax errors become ScenarioErrors. */
export function parseYaml(text: string, file: string): { doc: Document.Parsed; lc: LineCounter; data: unknown } {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const err = doc.errors[0];
  if (err !== undefined) {
    const pos = lc.linePos(err.pos[0]);
    throw new ScenarioError(`YAML syntax error: ${err.message.split('\n')[0]}`, { file, line: pos.line, col: pos.col });
  }
  return { doc, lc, data: doc.toJS() ?? {} };
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

function applyPreset(data: unknown): unknown {
  if (!isPlainObject(data) || !isPlainObject(data['machine'])) return data;
  const name = data['machine']['preset'];
  if (typeof name !== 'string' || !(name in MACHINE_PRESETS)) return data; // the schema reports unknown presets
  const preset = MACHINE_PRESETS[name as keyof typeof MACHINE_PRESETS];
  return { ...data, machine: deepMerge(structuredClone(preset), data['machine']) };
}

function locateIssue(sources: readonly Source[], issue: z.core.$ZodIssue): { file: string; line: number; col: number } {
  const path = [...issue.path] as (string | number)[];
  const unknownKey = issue.code === 'unrecognized_keys' ? issue.keys[0] : undefined;
  // The deepest path prefix that some file spells out wins; among files, the child first.
  for (let n = path.length; n >= 0; n--) {
    const sub = path.slice(0, n);
    for (const src of sources) {
      if (unknownKey !== undefined && n === path.length) {
        const parent = sub.length > 0 ? src.doc.getIn(sub, true) : src.doc.contents;
        const key = findKeyNode(parent, unknownKey);
        if (key?.range) return { file: src.file, ...src.lc.linePos(key.range[0]) };
        continue;
      }
      const node = n === 0 ? src.doc.contents : src.doc.getIn(sub, true);
      if (isNode(node) && node.range) return { file: src.file, ...src.lc.linePos(node.range[0]) };
    }
  }
  const first = sources[0];
  return { file: first?.file ?? '(scenario)', line: 1, col: 1 };
}

function findKeyNode(parent: unknown, key: string): { range?: [number, number, number] | null } | undefined {
  if (parent === null || typeof parent !== 'object' || !('items' in parent)) return undefined;
  const items = (parent as { items: { key: unknown }[] }).items;
  for (const it of items) {
    const k = it.key as { value?: unknown; range?: [number, number, number] | null } | undefined;
    if (k && k.value === key) return k;
  }
  return undefined;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'unrecognized_keys':
      return `unknown key "${issue.keys.join('", "')}"`;
    case 'invalid_type':
      if ('input' in issue && issue.input === undefined) return `is required (expected ${issue.expected})`;
      return `expected ${issue.expected}${'input' in issue && issue.input !== undefined ? `, received ${JSON.stringify(issue.input)}` : ''}`;
    default:
      return issue.message;
  }
}
