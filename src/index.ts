// kdumpsim as a library: scenarios and runs, the platform and kernel models,
// and the dump formats that work on real files.

export * from './dump/index.js';
export { loadScenarioFile, parseScenario } from './scenario/load.js';
export { scenarioSchema, scenarioJsonSchema, VERDICTS, type Scenario, type ScenarioInput, type Verdict } from './scenario/schema.js';
export { runScenario, type RunOptions } from './scenario/run.js';
export type { RunResult, OracleReport, RunMetrics, PageError } from './scenario/result.js';
export { renderRunText } from './report/text.js';
export { Machine, type MachineConfig } from './platform/machine.js';
export { KERNEL_PROFILES, kernelProfile, type KernelProfile } from './kernel/profile.js';
export { readTruthManifest, parseTruthManifest, type TruthManifest } from './dump/truth-manifest.js';
export { verifyVmcore, type VerifyReport } from './dump/verify.js';
export { InputError, UsageError, VmcoreFormatError, ScenarioError } from './util/errors.js';
