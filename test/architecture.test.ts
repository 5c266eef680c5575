// The layer arrows of docs/architecture.md, checked on every import in src/.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';

const SRC = join(import.meta.dirname, '..', 'src');
const MAY_IMPORT: Record<string, readonly string[]> = {
  util: [],
  dump: ['util'],
  platform: ['util'],
  kernel: ['platform', 'dump', 'util'],
  scenario: ['kernel', 'platform', 'dump', 'util'],
  doctor: ['scenario', 'kernel', 'util'],
  report: ['scenario', 'doctor', 'util'],
  cli: ['report', 'doctor', 'scenario', 'kernel', 'platform', 'dump', 'util'],
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('layers', () => {
  it('every import in src/ follows the arrows', () => {
    const bad: string[] = [];
    for (const f of files(SRC)) {
      const layer = relative(SRC, f).split('/')[0]!;
      const allowed = MAY_IMPORT[layer];
      if (allowed === undefined) continue; // src/index.ts re-exports the public API
      for (const m of readFileSync(f, 'utf8').matchAll(/^\s*(?:import|export)[^'"]*from\s+'(\.[^']+)'/gm)) {
        const target = relative(SRC, resolve(dirname(f), m[1]!)).split('/')[0]!;
        if (target !== layer && !allowed.includes(target)) bad.push(`${relative(SRC, f)} imports ${m[1]} (${layer} -> ${target})`);
      }
    }
    expect(bad).toEqual([]);
  });
});
