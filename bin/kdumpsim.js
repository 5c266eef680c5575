#!/usr/bin/env node
// Entry point: runs the compiled CLI (npm install/ci builds it through "prepare").
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/cli/index.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('kdumpsim: the CLI is not built yet; run `npm install` (or `npm run build`) in the project folder first\n');
  process.exit(2);
}
await import(entry.href);
