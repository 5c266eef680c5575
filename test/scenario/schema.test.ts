import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { scenarioJsonSchema } from '../../src/scenario/schema.js';
import { loadScenarioFile, parseScenario } from '../../src/scenario/load.js';
import { ScenarioError } from '../../src/util/errors.js';

const root = join(import.meta.dirname, '..', '..');

describe('scenario schema', () => {
  it('schema/scenario.schema.json is what the validator generates (run `kdumpsim schema > schema/scenario.schema.json`)', () => {
    const onDisk: unknown = JSON.parse(readFileSync(join(root, 'schema', 'scenario.schema.json'), 'utf8'));
    expect(onDisk).toEqual(scenarioJsonSchema());
  });

  it('every file in scenarios/ validates', () => {
    const files = readdirSync(join(root, 'scenarios')).filter((f) => f.endsWith('.yaml') && !f.startsWith('matrix-'));
    expect(files.length).toBeGreaterThanOrEqual(2);
    for (const f of files) expect(() => loadScenarioFile(join(root, 'scenarios', f)), f).not.toThrow();
  });
});

function errorOf(text: string): ScenarioError {
  try {
    parseScenario(text, 'bad.yaml');
  } catch (e) {
    if (e instanceof ScenarioError) return e;
    throw e;
  }
  throw new Error('expected a ScenarioError');
}

describe('malformed scenarios name file, line and column', () => {
  it('wrong type', () => {
    const e = errorOf('name: x\nmachine:\n  memory: 8G\n  cpus: four\n');
    expect([e.file, e.line, e.col]).toEqual(['bad.yaml', 4, 9]);
    expect(e.message).toContain('machine.cpus: expected number, received "four"');
  });
  it('unknown key points at the key', () => {
    const e = errorOf('name: x\nmachine:\n  memory: 8G\n  colour: red\n');
    expect([e.line, e.col]).toEqual([4, 3]);
    expect(e.message).toContain('unknown key "colour"');
  });
  it('bad size string', () => {
    const e = errorOf('name: x\nmachine:\n  memory: 8X\n');
    expect([e.line, e.col]).toEqual([3, 11]);
    expect(e.message).toContain('Expected a size such as "256M"');
  });
  it('YAML syntax error', () => {
    const e = errorOf('name: x\nmachine: [\n');
    expect(e.line).toBeGreaterThanOrEqual(2);
    expect(e.message).toContain('YAML syntax error');
  });
  it('an alias without an anchor (found by the fuzz test below)', () => {
    const e = errorOf('name: x\nseed: *1\nmachine:\n  memory: 8G\n');
    expect([e.line, e.col]).toEqual([2, 7]);
    expect(e.message).toContain('Unresolved alias');
  });
  it('unknown kernel profile lists the known ones', () => {
    const e = errorOf('name: x\nmachine:\n  memory: 8G\nfirstKernel:\n  profile: linux-9\n');
    expect([e.line, e.col]).toEqual([5, 12]);
    expect(e.message).toContain('linux-6.1');
  });
  it('random edits of a valid file give a scenario or a ScenarioError, nothing else', () => {
    const good = readFileSync(join(root, 'scenarios', 'plain-host.yaml'), 'utf8');
    fc.assert(
      fc.property(fc.nat(good.length - 1), fc.string({ maxLength: 6 }), fc.nat(5), (at, insert, del) => {
        const text = good.slice(0, at) + insert + good.slice(at + del);
        try {
          parseScenario(text, 'fuzz.yaml');
        } catch (e) {
          expect(e).toBeInstanceOf(ScenarioError);
          const se = e as ScenarioError;
          expect(se.line).toBeGreaterThanOrEqual(1);
          expect(se.col).toBeGreaterThanOrEqual(1);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
