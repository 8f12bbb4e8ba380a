// Opens pages of the demo in Debian's headless Chromium through playwright-core; used by the browser tests
// (tests/web/browser.mjs) and the benchmark (scripts/bench_web.py).
//
// As a command, it opens URL, awaits the page's window.<PATH> (a Promise) and prints one JSON line:
//   node web-demo/headless.mjs URL PATH [CORES]   ->   {"result": ..., "problems": [...]}
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// The machine has no open network: without these, Chromium's background services stall and misbehave.
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];
export const TIMEOUT_MS = 60_000;

// Runs `use(page)` on a fresh profile and returns {result, problems}: problems lists page errors, console
// errors (Content-Security-Policy violations among them) and HTTP errors, so callers can require none.
// `hardwareConcurrency` makes the page see that many logical cores (navigator.hardwareConcurrency, through
// CDP): TF.js's wasm backend uses at most half of them, so on a 2-core machine it needs 4 to run 2 threads.
export async function withPage(url, use, { timeoutMs = TIMEOUT_MS, hardwareConcurrency = null } = {}) {
  const profile = await mkdtemp(path.join(os.tmpdir(), 'demo-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: ARGS, hasTouch: true, viewport: { width: 1100, height: 900 },
  });
  const problems = [];
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(timeoutMs);
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('response', (response) => {
      if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.url()}`);
    });
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
    });
    if (hardwareConcurrency) {
      const cdp = await context.newCDPSession(page);
      await cdp.send('Emulation.setHardwareConcurrencyOverride', { hardwareConcurrency });
    }
    await page.goto(url);
    return { result: await use(page), problems };
  } finally {
    await context.close();
    await rm(profile, { recursive: true, force: true });
  }
}

async function main([url, property, cores]) {
  const awaitProperty = (page) => page.evaluate((keys) => keys.reduce((value, key) => value[key], window), property.split('.'));
  // Benchmarks run for minutes; the page's own promise decides when it is done. CORES: hardwareConcurrency.
  const hardwareConcurrency = Number(cores) || null;
  console.log(JSON.stringify(await withPage(url, awaitProperty, { timeoutMs: 0, hardwareConcurrency })));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main(process.argv.slice(2));
