import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadScenarioFile } from '../../src/scenario/load.js';
import { checkExpectation } from '../../src/scenario/expect.js';
import { ScenarioError } from '../../src/util/errors.js';
import { firstKernelConfig } from '../../src/scenario/build.js';
import { runScenario } from '../../src/scenario/run.js';
import { smallScenario } from '../helpers/small-scenario.js';

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kdumpsim-ext-'));
  writeFileSync(join(dir, 'base.yaml'), 'name: base\nmachine:\n  preset: small-host\nfirstKernel:\n  cmdline: root=/dev/vda1 crashkernel=160M\nworkload:\n  pages: 500\n');
  writeFileSync(join(dir, 'child.yaml'), 'extends: base.yaml\nname: child\nmachine:\n  cpus: 3\nfirstKernel:\n  crashkernel: 192M\n');
  writeFileSync(join(dir, 'badparent.yaml'), 'name: bp\nmachine:\n  memory: 2G\nworkload:\n  pages: lots\n');
  writeFileSync(join(dir, 'badchild.yaml'), 'extends: badparent.yaml\nname: bc\n');
  writeFileSync(join(dir, 'loop-a.yaml'), 'extends: loop-b.yaml\nname: a\n');
  writeFileSync(join(dir, 'loop-b.yaml'), 'extends: loop-a.yaml\nname: b\nmachine:\n  memory: 1G\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('extends and presets', () => {
  it('a child refines its parent; maps merge, the preset fills the machine', () => {
    const s = loadScenarioFile(join(dir, 'child.yaml'));
    expect(s.name).toBe('child');
    expect(s.machine.memory).toBe('1G'); // from the small-host preset
    expect(s.machine.cpus).toBe(3); // the child's own
    expect(s.machine.devices).toHaveLength(1);
    expect(s.workload.pages).toBe(500); // the parent's
    expect(firstKernelConfig(s, 1).cmdline).toBe('root=/dev/vda1 crashkernel=192M');
  });

  it('an error in the parent is located in the parent file', () => {
    try {
      loadScenarioFile(join(dir, 'badchild.yaml'));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ScenarioError);
      const se = e as ScenarioError;
      expect([se.file, se.line, se.col]).toEqual([join(dir, 'badparent.yaml'), 5, 10]);
    }
  });

  it('an extends cycle is an error at the extends key', () => {
    expect(() => loadScenarioFile(join(dir, 'loop-a.yaml'))).toThrow(/cycle/);
  });

  it('a missing machine.memory without a preset is reported', () => {
    writeFileSync(join(dir, 'nomem.yaml'), 'name: x\nmachine:\n  cpus: 2\n');
    expect(() => loadScenarioFile(join(dir, 'nomem.yaml'))).toThrow(/machine.memory is required/);
  });
});

describe('expect', () => {
  const r = runScenario(smallScenario());
  it('holds when every clause matches', () => {
    expect(checkExpectation({
      verdict: 'dump-complete',
      logs: { firstKernel: ['Reserving 160MB'], crashKernel: ['elfcorehdr='] },
      chain: ['panic on CPU', 'purgatory: SHA-256', 'kdump service copied'],
      oracle: { pagesMissing: 0, pagesChangedAfterPanic: '>0', pagesWrong: '==0' },
    }, r)).toEqual([]);
  });
  it('names each clause that fails', () => {
    const d = checkExpectation({
      verdict: 'no-dump',
      logs: { crashKernel: ['no such line'] },
      chain: ['kdump service copied', 'panic on CPU'],
      oracle: { pagesMissing: '>5', pagesCorrect: 3 },
    }, r);
    expect(d).toEqual([
      'verdict: expected no-dump, got dump-complete',
      'logs.crashKernel: no line contains "no such line"',
      'chain: "panic on CPU" appears, but not after the previous expected step',
      'oracle.pagesMissing: expected >5, got 0',
      `oracle.pagesCorrect: expected 3, got ${r.oracle.pagesCorrect}`,
    ]);
  });
});
