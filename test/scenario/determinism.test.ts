import { describe, expect, it } from 'vitest';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { runScenario } from '../../src/scenario/run.js';
import { smallScenario } from '../helpers/small-scenario.js';
import { renderRunHtml } from '../../src/report/html.js';

function sha(file: string): string {
  const h = createHash('sha256');
  const fd = openSync(file, 'r');
  const buf = Buffer.alloc(4 << 20);
  try {
    for (let pos = 0; ; ) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

describe('same scenario and seed give the same bytes', () => {
  it('two runs produce byte-identical vmcores, truth manifests, JSON results and HTML reports; another seed differs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kdumpsim-det-'));
    try {
      const run = (tag: string, seed?: number) => {
        const r = runScenario(smallScenario(), { vmcorePath: join(dir, `${tag}.vmcore`), truthPath: join(dir, `${tag}.truth`), ...(seed === undefined ? {} : { seed }) });
        const json = JSON.stringify({ ...r, vmcore: null });
        const html = renderRunHtml({ ...r, vmcore: null });
        return { json, html, core: sha(join(dir, `${tag}.vmcore`)), truth: createHash('sha256').update(readFileSync(join(dir, `${tag}.truth`))).digest('hex') };
      };
      const a = run('a');
      const b = run('b');
      expect(b.core).toBe(a.core);
      expect(b.truth).toBe(a.truth);
      expect(b.json).toBe(a.json);
      expect(b.html).toBe(a.html);
      const c = run('c', 99);
      expect(c.core).not.toBe(a.core);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
