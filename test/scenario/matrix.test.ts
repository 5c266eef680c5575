import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  expandMatrix, loadMatrixFile, mergeMatrixResults, parseMatrix, parseShard, setPath, shardCells, type MatrixFileInput,
} from '../../src/scenario/matrix.js';
import { deepMerge } from '../../src/util/deep-merge.js';
import { runMatrix } from '../../src/scenario/matrix-run.js';
import type { MatrixResult } from '../../src/scenario/matrix-result.js';
import { InputError, ScenarioError } from '../../src/util/errors.js';

/** A 1 GiB host with a quiet NIC and a tiny workload: about 0.1 s per cell. */
const tinyBase = {
  name: 'tiny',
  machine: { preset: 'small-host', devices: [{ kind: 'rx-nic', packetInterval: '1ms', ringEntries: 64 }] },
  crashKernel: { initrdSize: '8M' },
  workload: { pages: 300 },
  panic: { after: '50ms' },
};

/** 2 x 2 x 2 cells: a merge axis, a path axis and a seed axis. */
const tiny: MatrixFileInput = {
  name: 'tiny',
  base: tinyBase,
  axes: [
    {
      name: 'crashkernel',
      values: {
        '64M': { firstKernel: { crashkernel: '64M' }, expect: { verdict: 'crash-kernel-panic' } },
        '160M': { firstKernel: { crashkernel: '160M' }, expect: { verdict: 'dump-complete' } },
      },
    },
    { name: 'profile', path: 'crashKernel.profile', values: ['linux-6.1', 'linux-6.12'] },
    { name: 'seed', path: 'seed', values: [1, 2] },
  ],
};

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kdumpsim-matrix-'));
  writeFileSync(join(dir, 'base.yaml'), 'name: base\nmachine:\n  preset: small-host\nworkload:\n  pages: 300\n');
  writeFileSync(join(dir, 'badbase.yaml'), 'name: badbase\nmachine:\n  memory: 1G\nworkload:\n  pages: many\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes a matrix file and returns the error it gets. */
function errorOf(name: string, text: string): ScenarioError {
  const file = join(dir, name);
  writeFileSync(file, text);
  try {
    loadMatrixFile(file);
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    return e as ScenarioError;
  }
  throw new Error(`${name} loaded without an error`);
}

describe('matrix expansion', () => {
  it('is row-major over the axes in file order: the last axis varies fastest', () => {
    const plan = expandMatrix(tiny);
    expect(plan.total).toBe(8);
    expect(plan.cells.map((c) => c.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(plan.cells.map((c) => c.id)).toEqual([
      'crashkernel=64M,profile=linux-6.1,seed=1',
      'crashkernel=64M,profile=linux-6.1,seed=2',
      'crashkernel=64M,profile=linux-6.12,seed=1',
      'crashkernel=64M,profile=linux-6.12,seed=2',
      'crashkernel=160M,profile=linux-6.1,seed=1',
      'crashkernel=160M,profile=linux-6.1,seed=2',
      'crashkernel=160M,profile=linux-6.12,seed=1',
      'crashkernel=160M,profile=linux-6.12,seed=2',
    ]);
    expect(plan.cells[6]!.coords).toEqual({ crashkernel: '160M', profile: 'linux-6.12', seed: '1' });
    expect(plan.axes).toEqual([
      { name: 'crashkernel', labels: ['64M', '160M'] },
      { name: 'profile', labels: ['linux-6.1', 'linux-6.12'] },
      { name: 'seed', labels: ['1', '2'] },
    ]);
    // Default table: all axes but the last as rows, the last as columns.
    expect(plan.rows).toEqual(['crashkernel', 'profile']);
    expect(plan.columns).toEqual(['seed']);
  });

  it('each cell is a resolved scenario with its axis values applied and its id in the name', () => {
    const c = expandMatrix(tiny).cells[6]!;
    expect(c.scenario.name).toBe('tiny [crashkernel=160M,profile=linux-6.12,seed=1]');
    expect(c.scenario.firstKernel.crashkernel).toBe('160M');
    expect(c.scenario.crashKernel.profile).toBe('linux-6.12');
    expect(c.scenario.crashKernel.initrdSize).toBe('8M'); // base kept beside the merged key
    expect(c.scenario.seed).toBe(1);
    expect(c.scenario.machine.memory).toBe('1G'); // the preset filled the machine
    expect(c.scenario.expect).toEqual({ verdict: 'dump-complete' });
  });

  it('a matrix seed applies to every cell unless an axis sets it', () => {
    const plan = expandMatrix({ ...tiny, seed: 42, axes: tiny.axes.slice(0, 2) });
    expect(plan.cells.every((c) => c.scenario.seed === 42)).toBe(true);
  });

  it('keeps label order as written, even for integer-like map keys, and labels scalars by their string form', () => {
    const plan = parseMatrix([
      'name: order',
      'base: base.yaml',
      'axes:',
      '  - name: pages',
      '    values:',
      '      "300": { workload: { pages: 300 } }',
      '      20: { workload: { pages: 20 } }',
      '      1: { workload: { pages: 1 } }',
      '  - name: cpus',
      '    path: machine.cpus',
      '    values: [2, 1]',
    ].join('\n'), join(dir, 'order.yaml'));
    expect(plan.axes[0]!.labels).toEqual(['300', '20', '1']);
    expect(plan.cells.map((c) => c.scenario.workload.pages)).toEqual([300, 300, 20, 20, 1, 1]);
    expect(plan.cells.map((c) => c.scenario.machine.cpus)).toEqual([2, 1, 2, 1, 2, 1]);
  });

  it('a path axis may label its values with a map, and index into lists', () => {
    const plan = expandMatrix({
      name: 'labelled',
      base: tinyBase,
      axes: [
        { name: 'nic', path: 'machine.devices.0.packetInterval', values: { slow: '1ms', fast: '50us' } },
        { name: 'trigger', path: 'panic.trigger', values: ['sysrq', 'oops'] },
      ],
      table: { columns: ['nic'] },
    });
    expect(plan.cells.map((c) => c.id)).toEqual(['nic=slow,trigger=sysrq', 'nic=slow,trigger=oops', 'nic=fast,trigger=sysrq', 'nic=fast,trigger=oops']);
    const nic = plan.cells[2]!.scenario.machine.devices[0]!;
    expect(nic.kind).toBe('rx-nic');
    if (nic.kind !== 'rx-nic') return;
    expect(nic.packetInterval).toBe('50us');
    expect(nic.ringEntries).toBe(64); // the rest of the device kept
    // Only columns given: the other axes become rows.
    expect(plan.rows).toEqual(['trigger']);
    expect(plan.columns).toEqual(['nic']);
  });

  it('a file base is read relative to the matrix file; an inline base may extend a file', () => {
    const a = parseMatrix('name: a\nbase: base.yaml\naxes:\n  - name: cpus\n    path: machine.cpus\n    values: [1]\n', join(dir, 'a.yaml'));
    const b = parseMatrix('name: b\nbase:\n  extends: base.yaml\n  workload: { pages: 7 }\naxes:\n  - name: cpus\n    path: machine.cpus\n    values: [1]\n', join(dir, 'b.yaml'));
    expect(a.cells[0]!.scenario.workload.pages).toBe(300);
    expect(b.cells[0]!.scenario.workload.pages).toBe(7);
    expect(b.cells[0]!.scenario.machine.memory).toBe('1G');
  });
});

describe('shipped sweeps', () => {
  it('every scenarios/matrix-*.yaml expands; matrix-plain sweeps crashkernel x NIC DMA rate x capture kernel on the plain host', () => {
    const root = join(import.meta.dirname, '..', '..', 'scenarios');
    const files = readdirSync(root).filter((f) => /^matrix-.*\.yaml$/.test(f));
    expect(files).toContain('matrix-plain.yaml');
    for (const f of files) expect(loadMatrixFile(join(root, f)).cells.length, f).toBeGreaterThan(1);
    const plan = loadMatrixFile(join(root, 'matrix-plain.yaml'));
    expect(plan.axes.map((a) => a.name)).toEqual(['crashkernel', 'nic-rx', 'crash-kernel']);
    expect(plan.rows).toContain('crashkernel');
    expect(plan.axes[0]!.labels).toEqual(['64M', '160M', '256M']);
    const c = plan.cells.find((x) => x.id === 'crashkernel=64M,nic-rx=50us,crash-kernel=linux-6.12')!;
    expect(c.scenario.firstKernel.crashkernel).toBe('64M');
    expect(c.scenario.machine.devices[0]).toMatchObject({ kind: 'rx-nic', packetInterval: '50us' });
    expect(c.scenario.crashKernel.profile).toBe('linux-6.12');
    expect(c.scenario.machine.cpus).toBe(4); // the rest from plain-host.yaml
  });
});

describe('deep merge and paths', () => {
  it('maps merge key by key, lists and scalars are replaced, null removes a key', () => {
    const base = { a: { b: 1, c: [1, 2, 3], d: { e: 'x' } }, f: 'keep', g: 5 };
    const merged = deepMerge(base, { a: { c: [9], d: { z: true } }, g: null, h: [{ k: 1 }] });
    expect(merged).toEqual({ a: { b: 1, c: [9], d: { e: 'x', z: true } }, f: 'keep', h: [{ k: 1 }] });
    // Inputs untouched, results not aliased to them.
    expect(base.a.c).toEqual([1, 2, 3]);
    const patch = { a: { list: [1] } };
    const m2 = deepMerge({}, patch) as { a: { list: number[] } };
    m2.a.list.push(2);
    expect(patch.a.list).toEqual([1]);
  });

  it('a "__proto__" key is data, never a prototype change', () => {
    const merged = deepMerge({}, JSON.parse('{"__proto__": {"polluted": true}}')) as Record<string, unknown>;
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(Object.getPrototypeOf(merged)).toBe(Object.prototype);
  });

  it('setPath creates missing maps, indexes lists, and refuses to descend into scalars', () => {
    const o: Record<string, unknown> = { machine: { devices: [{ kind: 'rx-nic' }] }, name: 'n' };
    expect(setPath(o, 'machine.devices.0.packetInterval', '5us')).toBeUndefined();
    expect(setPath(o, 'panic.after', '1s')).toBeUndefined();
    expect(o).toEqual({ machine: { devices: [{ kind: 'rx-nic', packetInterval: '5us' }] }, name: 'n', panic: { after: '1s' } });
    expect(setPath(o, 'name.first', 'x')).toMatch(/"name" is "n", not a map/);
    expect(setPath(o, 'machine.devices.x', 1)).toMatch(/is a list/);
    expect(setPath(o, 'machine.devices.5.kind', 1)).toMatch(/past the end/);
  });
});

describe('matrix file errors give file:line:col', () => {
  it('YAML syntax', () => {
    const e = errorOf('syntax.yaml', 'name: x\naxes: [\n');
    expect(e.message).toMatch(/syntax\.yaml:\d+:\d+: YAML syntax error/);
  });

  it('an unknown key points at the key', () => {
    const e = errorOf('unknown.yaml', 'name: x\nbase: base.yaml\naxes:\n  - name: a\n    path: seed\n    valuez: [1]\n');
    expect(e.message).toContain('unknown.yaml:6:5: axes.0: unknown key "valuez"');
    const missing = errorOf('nobase.yaml', 'name: x\naxes:\n  - { name: a, path: seed, values: [1] }\n');
    expect(missing.message).toMatch(/nobase\.yaml:1:1: base: is required/);
  });

  it('an axis without a path needs a map of partial scenarios', () => {
    const e = errorOf('merge-list.yaml', 'name: x\nbase: base.yaml\naxes:\n  - name: a\n    values: [1, 2]\n');
    expect(e.message).toMatch(/merge-list\.yaml:5:13: axes\.0\.values: An axis without "path" takes a map/);
  });

  it('duplicate axis names and unknown table axes', () => {
    const dup = errorOf('dup.yaml', 'name: x\nbase: base.yaml\naxes:\n  - { name: a, path: seed, values: [1] }\n  - { name: a, path: machine.cpus, values: [1] }\n');
    expect(dup.message).toMatch(/dup\.yaml:5:\d+: axes\.1\.name: Duplicate axis name "a"/);
    const table = errorOf('table.yaml', 'name: x\nbase: base.yaml\naxes:\n  - { name: a, path: seed, values: [1] }\ntable:\n  rows: [a]\n  columns: [b]\n');
    expect(table.message).toMatch(/table\.yaml:7:13: table\.columns\.0: Unknown axis "b"/);
  });

  it('an invalid combination names the cell and points at the axis value that made it', () => {
    const e = errorOf('badcell.yaml', [
      'name: x',
      'base: base.yaml',
      'axes:',
      '  - name: pages',
      '    values:',
      '      ok: { workload: { pages: 10 } }',
      '      bad: { workload: { pages: -1 } }',
      '  - name: cpus',
      '    path: machine.cpus',
      '    values: [1, 2]',
    ].join('\n'));
    expect(e.message).toContain('badcell.yaml:7:');
    expect(e.message).toContain('cell "pages=bad,cpus=1" is not a valid scenario: workload.pages:');
    const p = errorOf('badpath.yaml', 'name: x\nbase: base.yaml\naxes:\n  - name: cpus\n    path: machine.cpus\n    values: [1, "four"]\n');
    expect(p.message).toMatch(/badpath\.yaml:6:17: cell "cpus=four" is not a valid scenario: machine\.cpus: expected number/);
    const k = errorOf('badkey.yaml', 'name: x\nbase: base.yaml\naxes:\n  - name: k\n    values:\n      a:\n        workload: { pagez: 1 }\n');
    expect(k.message).toMatch(/badkey\.yaml:7:21: cell "k=a" is not a valid scenario: workload: unknown key "pagez"/);
  });

  it('an inline base problem points into the base', () => {
    const e = errorOf('inline.yaml', 'name: x\nbase:\n  name: b\n  machine: { memory: 1G }\n  panic: { trigger: kick }\naxes:\n  - { name: s, path: seed, values: [1] }\n');
    expect(e.message).toMatch(/inline\.yaml:5:21: cell "s=1" is not a valid scenario: panic\.trigger:/);
  });

  it('a base file that is missing, or itself invalid', () => {
    const missing = errorOf('missing.yaml', 'name: x\nbase: nowhere.yaml\naxes:\n  - { name: s, path: seed, values: [1] }\n');
    expect(missing.message).toMatch(/missing\.yaml:2:7: base: Cannot read scenario ".*nowhere\.yaml"/);
    const bad = errorOf('usesbad.yaml', 'name: x\nbase: badbase.yaml\naxes:\n  - { name: s, path: seed, values: [1] }\n');
    expect(bad.message).toMatch(/badbase\.yaml:5:10: workload\.pages/);
  });

  it('a path through a scalar', () => {
    const e = errorOf('scalar.yaml', 'name: x\nbase: base.yaml\naxes:\n  - { name: s, path: name.first, values: [1] }\n');
    expect(e.message).toMatch(/scalar\.yaml:4:\d+: axes\.0\.path: cannot set "name\.first" in cell "s=1": "name" is "base", not a map/);
  });

  it('without a file, errors are InputErrors naming the problem', () => {
    expect(() => expandMatrix({ name: 'x', base: tinyBase, axes: [] })).toThrow(InputError);
    expect(() => expandMatrix({ name: 'x', base: tinyBase, axes: [{ name: 'c', path: 'machine.cpus', values: [0] }] })).toThrow(/cell "c=0" is not a valid scenario: machine\.cpus/);
  });
});

describe('shards', () => {
  it('I/N takes the cells whose index % N is I-1; the shards partition the sweep', () => {
    const cells = expandMatrix(tiny).cells;
    const parts = [1, 2, 3].map((i) => shardCells(cells, { index: i, count: 3 }).map((c) => c.index));
    expect(parts).toEqual([[0, 3, 6], [1, 4, 7], [2, 5]]);
    expect(shardCells(cells, { index: 1, count: 20 }).map((c) => c.index)).toEqual([0]);
    expect(shardCells(cells, { index: 20, count: 20 })).toEqual([]);
  });

  it('parses I/N and rejects the rest', () => {
    expect(parseShard('2/3')).toEqual({ index: 2, count: 3 });
    for (const bad of ['0/3', '4/3', '1/0', '1', 'a/b', '1/2/3', '-1/2']) expect(() => parseShard(bad)).toThrow(InputError);
  });
});

describe('running a sweep', () => {
  let whole: MatrixResult;
  beforeAll(async () => {
    whole = await runMatrix(expandMatrix(tiny));
  });

  it('every cell gets a verdict, a reason, the expectation outcome and the resolved input', () => {
    expect(whole.total).toBe(8);
    expect(whole.shard).toBeUndefined();
    expect(whole.summary).toEqual({ 'dump-complete': 4, 'crash-kernel-panic': 4 });
    for (const c of whole.cells) {
      expect(c.expectationMet).toBe(true);
      expect(c.input.name).toContain(c.id);
      if (c.coords['crashkernel'] === '64M') expect(c.reason).toMatch(/out of memory/);
      else expect(c.reason).toMatch(/^(\d+)\/\1 pages correct/);
      expect(c.oracle).not.toHaveProperty('pageMap');
    }
  });

  it('shards 1/3, 2/3 and 3/3, merged, equal the unsharded result exactly', async () => {
    const plan = expandMatrix(tiny);
    const shards: MatrixResult[] = [];
    for (const i of [3, 1, 2]) shards.push(JSON.parse(JSON.stringify(await runMatrix(plan, { shard: { index: i, count: 3 } }))) as MatrixResult);
    expect(shards.map((s) => s.shard)).toEqual([{ index: 3, count: 3 }, { index: 1, count: 3 }, { index: 2, count: 3 }]);
    expect(shards.map((s) => s.cells.length)).toEqual([2, 3, 3]);
    const merged = mergeMatrixResults(shards, ['s3.json', 's1.json', 's2.json']);
    expect(JSON.stringify(merged, null, 2)).toBe(JSON.stringify(whole, null, 2));
  });

  it('--jobs 2 (worker threads) gives the same result as --jobs 1', async () => {
    const seen: number[] = [];
    const two = await runMatrix(expandMatrix(tiny), { jobs: 2, onCell: (_c, done) => seen.push(done) });
    expect(JSON.stringify(two)).toBe(JSON.stringify(whole));
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('merging refuses duplicates, gaps and shards of another sweep', async () => {
    const plan = expandMatrix(tiny);
    const s1 = JSON.parse(JSON.stringify(await runMatrix(plan, { shard: { index: 1, count: 2 } }))) as MatrixResult;
    const s2 = JSON.parse(JSON.stringify(await runMatrix(plan, { shard: { index: 2, count: 2 } }))) as MatrixResult;
    expect(JSON.stringify(mergeMatrixResults([s2, s1]))).toBe(JSON.stringify(whole));
    expect(() => mergeMatrixResults([s1, s2, s1], ['a.json', 'b.json', 'c.json'])).toThrow(/Cannot merge "c\.json": cell "crashkernel=64M,profile=linux-6.1,seed=1" is also in "a\.json"/);
    expect(() => mergeMatrixResults([s1], ['a.json'])).toThrow(/4 of 8 cells missing, e\.g\. "crashkernel=64M,profile=linux-6.1,seed=2"/);
    expect(() => mergeMatrixResults([s1, { ...s2, name: 'other' }], ['a.json', 'b.json'])).toThrow(/"b\.json" .* another sweep \(matrix "other", not "tiny"\)/);
    const relabelled = { ...s2, axes: s2.axes.map((a, i) => (i === 2 ? { ...a, labels: ['1', '3'] } : a)) };
    expect(() => mergeMatrixResults([s1, relabelled], ['a.json', 'b.json'])).toThrow(/different axes/);
    const forged = { ...s2, cells: s2.cells.map((c, i) => (i === 0 ? { ...c, id: 'x' } : c)) };
    expect(() => mergeMatrixResults([s1, forged], ['a.json', 'b.json'])).toThrow(/cell 1 has id "x"/);
  });
});
