// Runs one scenario in this process and prints wall time and peak RSS as JSON
// (a child process per measurement, so RSS belongs to that run alone).
import { loadScenarioFile, runScenario } from '../dist/index.js';

const [file, vmcore] = process.argv.slice(2);
const s = loadScenarioFile(file);
const t0 = process.hrtime.bigint();
const r = runScenario(s, vmcore ? { vmcorePath: vmcore } : {});
const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
process.stdout.write(JSON.stringify({ verdict: r.verdict, wallMs, maxRssKb: process.resourceUsage().maxRSS }) + '\n');
