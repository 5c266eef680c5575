import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
}

/** Runs the CLI from source (tsx), as a user would run the built one. */
export function cli(args: string[], opts: { timeoutMs?: number } = {}): CliResult {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'index.ts'), ...args], {
    cwd: ROOT,
    timeout: opts.timeoutMs ?? 120_000,
    maxBuffer: 64 << 20,
    env: { ...process.env, NO_COLOR: '1' },
  });
  return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString(), stdoutBytes: r.stdout };
}

/**
 * A fresh temp directory holding small.yaml: a 1 GiB, 2-CPU host (with a
 * receive NIC when asked) whose run is quick and expects dump-complete.
 */
export function smallScenarioDir(prefix: string, opts: { name: string; seed: number; nic?: boolean }): string {
  const dir = mkdtempSync(join(tmpdir(), `kdumpsim-${prefix}-`));
  const devices = opts.nic === true ? '  devices:\n    - kind: rx-nic\n' : '';
  writeFileSync(join(dir, 'small.yaml'), `name: ${opts.name}
seed: ${opts.seed}
machine:
  memory: 1G
  cpus: 2
${devices}firstKernel:
  cmdline: root=/dev/vda1 crashkernel=160M
crashKernel:
  initrdSize: 8M
workload:
  pages: 1500
panic:
  after: 100ms
expect:
  verdict: dump-complete
`);
  return dir;
}
