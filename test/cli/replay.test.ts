import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from '../helpers/cli.js';

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kdumpsim-replay-'));
  writeFileSync(join(dir, 's.yaml'), 'name: r\nseed: 11\nmachine:\n  preset: small-host\nfirstKernel:\n  crashkernel: 160M\nworkload:\n  pages: 400\nfaults:\n  - kind: cpu-ignores-nmi\n    cpu: 0\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('kdumpsim run --replay', () => {
  it('re-runs a saved result and reproduces it exactly', () => {
    const first = cli(['run', join(dir, 's.yaml'), '--json', '--seed', '5']);
    expect(first.status).toBe(0);
    writeFileSync(join(dir, 'r.json'), first.stdout);
    const again = cli(['run', '--replay', join(dir, 'r.json'), '--json']);
    expect(again.status).toBe(0);
    expect(again.stderr).toContain('reproduced the recorded verdict dump-complete');
    expect(again.stdout).toBe(first.stdout);
  });

  it('rejects files that are not results, and usage mistakes', () => {
    writeFileSync(join(dir, 'x.json'), '{"kind":"something"}');
    const r = cli(['run', '--replay', join(dir, 'x.json')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('field "kind"');
    expect(cli(['run', join(dir, 's.yaml'), '--replay', join(dir, 'x.json')]).status).toBe(2);
    expect(cli(['run', join(dir, 's.yaml'), '--cell', 'a=b']).status).toBe(2);
    writeFileSync(join(dir, 'bad.json'), '{not json');
    expect(cli(['run', '--replay', join(dir, 'bad.json')]).status).toBe(2);
  });
});
