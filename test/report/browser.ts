// Helpers for the browser tests of the HTML reports: Debian's Chromium driven
// by playwright-core. Like the interop tools, a missing browser fails the run
// when CI=true and only skips these tests elsewhere.

import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { probeCommand, requireTool, type ProbeResult } from '../interop/tools.js';

/** Debian's Chromium; KDUMPSIM_CHROMIUM names another build. */
export const CHROMIUM = process.env['KDUMPSIM_CHROMIUM'] || '/usr/bin/chromium';
/** Flags for a sandbox-less container with no network business of its own. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function probeBrowser(): ProbeResult {
  try {
    createRequire(import.meta.url).resolve('playwright-core');
  } catch (e) {
    return { ok: false, detail: `playwright-core cannot be resolved: ${(e as Error).message.split('\n')[0]}` };
  }
  return probeCommand(CHROMIUM, ['--version']);
}

/** Whether the browser tests can run; registers a failing (CI) or skipped test when they cannot. */
export function requireBrowser(): boolean {
  return requireTool('Chromium with playwright-core', `Debian's chromium (apt-get install chromium) and playwright-core (npm ci)`, probeBrowser);
}

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

export interface OpenedReport {
  page: Page;
  url: string;
  /** Console errors and uncaught page errors. */
  errors: string[];
  /** Every URL the page requested, the report file itself included. */
  requests: string[];
  close: () => Promise<void>;
}

/** Writes `html` to `dir` and opens it from a file:// URL in a fresh context (1280×900). */
export async function openReport(browser: Browser, dir: string, name: string, html: string): Promise<OpenedReport> {
  const file = path.join(dir, name);
  fs.writeFileSync(file, html);
  const url = pathToFileURL(file).href;
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`page: ${e.message}`));
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(url, { waitUntil: 'load' });
  return { page, url, errors, requests, close: () => context.close() };
}

/** Where screenshots go: KDUMPSIM_REPORT_SHOTS to keep them for a look, else a temp dir removed afterwards. */
export function screenshotDir(): { dir: string; keep: boolean } {
  const keep = process.env['KDUMPSIM_REPORT_SHOTS'];
  if (keep) {
    fs.mkdirSync(keep, { recursive: true });
    return { dir: keep, keep: true };
  }
  return { dir: fs.mkdtempSync(path.join(os.tmpdir(), 'kdumpsim-report-')), keep: false };
}

/** Width and height from a PNG's IHDR chunk; throws unless the bytes are a PNG. */
export function pngSize(bytes: Buffer): { width: number; height: number } {
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  if (bytes.length < 24 || !bytes.subarray(0, 8).equals(sig) || bytes.toString('latin1', 12, 16) !== 'IHDR') {
    throw new Error(`Not a PNG: first bytes ${bytes.subarray(0, 16).toString('hex')}`);
  }
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}
