// YAML sources of scenario and matrix files: parsing with positions, and
// turning a schema issue into "file:line:col: what was expected".

import { LineCounter, parseDocument, isAlias, isMap, isNode, isPair, isScalar, isSeq, type Document } from 'yaml';
import type { z } from 'zod';
import { ScenarioError } from '../util/errors.js';

/** Parses one YAML document with positions; syntax errors become ScenarioErrors. */
export function parseYaml(text: string, file: string): { doc: Document.Parsed; lc: LineCounter; data: unknown } {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const err = doc.errors[0];
  if (err !== undefined) {
    const pos = lc.linePos(err.pos[0]);
    throw new ScenarioError(`YAML syntax error: ${err.message.split('\n')[0]}`, { file, line: pos.line, col: pos.col });
  }
  let data: unknown;
  try {
    data = doc.toJS();
  } catch (e) {
    // Semantic YAML errors surface only when building values (an alias with no anchor, for one).
    const node = firstAlias(doc.contents);
    const pos = node?.range ? lc.linePos(node.range[0]) : { line: 1, col: 1 };
    throw new ScenarioError(`YAML error: ${(e as Error).message}`, { file, line: pos.line, col: pos.col });
  }
  return { doc, lc, data: data ?? {} };
}

/** The first alias node in document order, where an unresolved alias most likely is. */
function firstAlias(node: unknown): { range?: [number, number, number] | null } | undefined {
  if (isAlias(node)) return node;
  if (isMap(node) || isSeq(node)) {
    for (const it of node.items as unknown[]) {
      const found = isPair(it) ? firstAlias(it.key) ?? firstAlias(it.value) : firstAlias(it);
      if (found) return found;
    }
  }
  return undefined;
}

/**
 * Where a path points in a YAML document: the node itself (or, for an
 * unknown key, the key), else its deepest existing ancestor. `depth` says
 * how many path segments were found, so callers can pick among documents.
 */
export function locateInDocument(doc: Document, lc: LineCounter, path: readonly (string | number)[], unknownKey?: string): { line: number; col: number; depth: number } {
  // Walk by hand: map keys compare by their string form, so a label written 64 matches "64".
  const chain: unknown[] = [doc.contents];
  for (const seg of path) {
    const cur = chain[chain.length - 1];
    let next: unknown;
    if (isMap(cur)) next = cur.items.find((it) => isScalar(it.key) && String(it.key.value) === String(seg))?.value;
    else if (isSeq(cur) && typeof seg === 'number') next = cur.items[seg];
    if (next === undefined || next === null) break;
    chain.push(next);
  }
  const last = chain[chain.length - 1];
  if (unknownKey !== undefined && chain.length === path.length + 1 && isMap(last)) {
    const it = last.items.find((x) => isScalar(x.key) && String(x.key.value) === unknownKey);
    if (it && isNode(it.key) && it.key.range) return { ...lc.linePos(it.key.range[0]), depth: path.length + 1 };
  }
  for (let i = chain.length - 1; i >= 0; i--) {
    const node = chain[i];
    if (isNode(node) && node.range) return { ...lc.linePos(node.range[0]), depth: i };
  }
  return { line: 1, col: 1, depth: 0 };
}


/** One line saying what a schema issue expected. */
export function describeIssue(issue: z.core.$ZodIssue): string {
  if ((issue.code === 'invalid_type' || issue.code === 'invalid_union') && 'input' in issue && issue.input === undefined) {
    return issue.code === 'invalid_type' ? `is required (expected ${issue.expected})` : `is required (${issue.message})`;
  }
  switch (issue.code) {
    case 'unrecognized_keys':
      return `unknown key "${issue.keys.join('", "')}"`;
    case 'invalid_type':
      return `expected ${issue.expected}${'input' in issue && issue.input !== undefined ? `, received ${JSON.stringify(issue.input)}` : ''}`;
    default:
      return issue.message;
  }
}
