// A writer killed part-way (SIGKILL: no finally blocks, no cleanup) must
// never leave a half file under the final name: either the name is absent
// or it holds a complete dump whose every page is right. A second run then
// replaces whatever the killed one left behind.

import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openVmcore } from '../../src/dump/vmcore-reader.js';
import { generatedPage, SLOW_WRITER_PAGES } from './fixtures/generated-pages.js';

const WRITER = join(import.meta.dirname, 'fixtures', 'slow-writer.ts');

/** Runs the writer; kills it `killAfterMs` after it says "writing" (undefined: let it finish). */
function runWriter(out: string, format: string, killAfterMs?: number): Promise<{ code: number | null; signal: string | null; killed: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WRITER, out, format], { stdio: ['ignore', 'pipe', 'inherit'] });
    let killed = false;
    let said = '';
    child.stdout.on('data', (b: Buffer) => {
      said += b.toString();
      if (killAfterMs !== undefined && !killed && said.includes('writing')) {
        killed = true;
        setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, killed: killed && signal === 'SIGKILL' }));
  });
}

/** Every page of a finished dump equals the generator. */
function checkComplete(file: string): void {
  const r = openVmcore(file);
  try {
    const got = new Uint8Array(4096);
    const want = new Uint8Array(4096);
    for (let pfn = 0; pfn < SLOW_WRITER_PAGES; pfn++) {
      expect(r.readPage(pfn, got), `pfn ${pfn}`).toBe('present');
      generatedPage(pfn, want);
      if (!Buffer.from(got).equals(want)) expect.fail(`${file}: page ${pfn} differs from what was written`);
    }
    expect(r.vmcoreinfo?.get('OSRELEASE')).toBe('6.1.0-killed');
  } finally {
    r.close();
  }
}

describe('a vmcore writer killed part-way', () => {
  for (const format of ['elf', 'kdump']) {
    it(`${format}: the final name is absent or complete, and a second run replaces the leftovers`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'kdumpsim-killed-'));
      try {
        let killedMidway = 0;
        for (const delay of [5, 40, 150]) {
          const out = join(dir, `d${delay}.${format}`);
          const r = await runWriter(out, format, delay);
          if (r.killed) {
            // Killed: the final name may exist only if the rename beat the signal.
            if (existsSync(out)) checkComplete(out);
            else killedMidway++;
          } else {
            expect(r.code).toBe(0);
            checkComplete(out);
          }
          const again = await runWriter(out, format);
          expect(again.code).toBe(0);
          expect(existsSync(`${out}.part`)).toBe(false);
          checkComplete(out);
        }
        // The test means something only if at least one kill landed mid-write.
        expect(killedMidway).toBeGreaterThan(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
