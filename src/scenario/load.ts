// Reading a scenario file: YAML syntax errors and schema violations both
// become a ScenarioError naming file:line:col and what was expected.

import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isNode } from 'yaml';
import type { z } from 'zod';
import { ScenarioError, InputError } from '../util/errors.js';
import { scenarioSchema, type Scenario } from './schema.js';

export function loadScenarioFile(file: string): Scenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new InputError(`Cannot read scenario "${file}": ${(e as Error).message}`);
  }
  return parseScenario(text, file);
}

export function parseScenario(text: string, file: string): Scenario {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const err = doc.errors[0];
  if (err !== undefined) {
    const pos = lc.linePos(err.pos[0]);
    throw new ScenarioError(`YAML syntax error: ${err.message.split('\n')[0]}`, { file, line: pos.line, col: pos.col });
  }
  const data: unknown = doc.toJS();
  const r = scenarioSchema.safeParse(data ?? {}, { reportInput: true });
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const { line, col } = locate(doc, lc, issue);
  const path = issue.path.map(String).join('.');
  throw new ScenarioError(`${path === '' ? 'scenario' : path}: ${describeIssue(issue)}`, { file, line, col });
}

function locate(doc: ReturnType<typeof parseDocument>, lc: LineCounter, issue: z.core.$ZodIssue): { line: number; col: number } {
  // For an unknown key, point at the key itself; otherwise at the deepest node on the path that exists.
  const path = [...issue.path] as (string | number)[];
  if (issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined) path.push(issue.keys[0]);
  for (let n = path.length; n >= 0; n--) {
    const sub = path.slice(0, n);
    if (issue.code === 'unrecognized_keys' && n === path.length) {
      const parent = sub.length > 1 ? doc.getIn(sub.slice(0, -1), true) : doc.contents;
      const key = findKeyNode(parent, String(sub[sub.length - 1]));
      if (key?.range) return lc.linePos(key.range[0]);
      continue;
    }
    const node = n === 0 ? doc.contents : doc.getIn(sub, true);
    if (isNode(node) && node.range) return lc.linePos(node.range[0]);
  }
  return { line: 1, col: 1 };
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
      return `expected ${issue.expected}${'input' in issue && issue.input !== undefined ? `, received ${JSON.stringify(issue.input)}` : ''}`;
    default:
      return issue.message;
  }
}
