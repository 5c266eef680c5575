// `kdumpsim run --replay`: re-run exactly what a saved run (or one cell of a
// saved matrix) did, from the resolved scenario and seed it recorded.

import { InputError } from '../util/errors.js';
import { isPlainObject } from '../util/deep-merge.js';
import { scenarioSchema, type Scenario, type Verdict } from './schema.js';

export interface ReplayInput {
  scenario: Scenario;
  seed: number;
  recordedVerdict: Verdict | undefined;
  label: string;
}

export function replayInput(json: unknown, file: string, cellId?: string): ReplayInput {
  if (!isPlainObject(json)) throw new InputError(`Cannot replay "${file}": not a JSON object`);
  let rec: Record<string, unknown>;
  let label: string;
  if (json['kind'] === 'kdumpsim-run-result') {
    rec = json;
    label = String(json['scenario']);
  } else if (json['kind'] === 'kdumpsim-matrix-result') {
    const cells = Array.isArray(json['cells']) ? (json['cells'] as unknown[]).filter(isPlainObject) : [];
    const ids = cells.map((c) => String(c['id']));
    if (cellId === undefined) {
      throw new InputError(`Cannot replay "${file}": it is a matrix result; name a cell with --cell (one of: ${ids.slice(0, 20).join(', ')}${ids.length > 20 ? ', ...' : ''})`);
    }
    const cell = cells.find((c) => c['id'] === cellId);
    if (cell === undefined) throw new InputError(`Cannot replay "${file}": no cell "${cellId}" (cells: ${ids.slice(0, 20).join(', ')})`);
    rec = cell;
    label = `${String(json['name'])} [${cellId}]`;
  } else {
    throw new InputError(`Cannot replay "${file}": field "kind" is ${JSON.stringify(json['kind'])}, expected a run result (kdumpsim run --json) or a matrix result (kdumpsim matrix --json)`);
  }
  const parsed = scenarioSchema.safeParse(rec['input']);
  if (!parsed.success) throw new InputError(`Cannot replay "${file}": its "input" is not a valid scenario: ${parsed.error.issues[0]?.message ?? ''}`);
  const seed = rec['seed'];
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0) throw new InputError(`Cannot replay "${file}": field "seed" is not a non-negative integer`);
  const v = rec['verdict'];
  return { scenario: parsed.data, seed, recordedVerdict: typeof v === 'string' ? (v as Verdict) : undefined, label };
}
