// An SME vmcore for the interop tests: the interop scenario of tools.ts on an
// SME host, with mem_encrypt=on in both kernels.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse, stringify } from 'yaml';
import { parseScenario } from '../../src/scenario/load.js';
import { runScenario } from '../../src/scenario/run.js';
import type { RunResult } from '../../src/scenario/result.js';
import { readTruthManifest, type TruthManifest } from '../../src/dump/truth-manifest.js';
import { INTEROP_SCENARIO } from './tools.js';

export const CAPTURE_CMDLINE = 'root=/dev/vda1 console=ttyS0 mem_encrypt=on irqpoll nr_cpus=1 reset_devices';

export interface SmeDump {
  dir: string;
  vmcore: string;
  truthPath: string;
  truth: TruthManifest;
  result: RunResult;
}

export function makeSmeDump(prefix: string): SmeDump {
  const doc = parse(INTEROP_SCENARIO) as { name: string; machine: Record<string, unknown>; firstKernel: { cmdline: string }; crashKernel: Record<string, unknown> };
  doc.name = 'interop-sme';
  doc.machine['cpu'] = { memoryEncryption: 'enabled', cbit: 47 };
  // 64M more than the plain interop host: the SME capture kernel loses 64 MiB to SWIOTLB.
  doc.firstKernel.cmdline = doc.firstKernel.cmdline.replace(/crashkernel=\S+/, 'mem_encrypt=on crashkernel=224M');
  doc.crashKernel['cmdline'] = CAPTURE_CMDLINE;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `kdumpsim-interop-${prefix}-`));
  const vmcore = path.join(dir, 'vmcore');
  const truthPath = path.join(dir, 'truth.json');
  const result = runScenario(parseScenario(stringify(doc), 'interop-sme.yaml'), { vmcorePath: vmcore, truthPath });
  if (result.verdict !== 'dump-complete' || !fs.existsSync(vmcore)) {
    throw new Error(`SME interop scenario did not produce a complete dump: ${result.verdict}\n${result.chain.join('\n')}`);
  }
  return { dir, vmcore, truthPath, truth: readTruthManifest(truthPath), result };
}
