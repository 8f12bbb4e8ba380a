// Runs a converted folder's artifacts in headless Chromium for the converter's `browser` stage.
// Usage: node run_browser.mjs request.json
//
// The request: {url (check.html on the converter's own server, ?model=model/), chromium, hardwareConcurrency,
// profile (Chromium's profile folder, which the caller removes), runs, software_runs (for WebGL and WebGPU on a
// software renderer), combos: [{key, runtime, backend, threads, artifact}], cases: [[{name, dtype, shape, file}] per
// case], out_prefix}. Each combo runs in a fresh page (a cold start: nothing cached, Cache-Control no-store), its
// outputs are written as raw float32 files next to out_prefix, and one JSON line on stdout describes them:
// {probe, chromium, records: {key: {outputs: [[{file, shape}]], coldMs, ..., error?}}}.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

// Packages come from the project's node_modules; CONVERTER_NODE_MODULES points elsewhere when installed apart.
const require = createRequire(process.env.CONVERTER_NODE_MODULES
  ? path.join(process.env.CONVERTER_NODE_MODULES, 'noop.js') : import.meta.url);
const { chromium } = require('playwright-core');

// The machine may have no network and no GPU: Chromium's background services stay off (web-demo/headless.mjs).
const ARGS = ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--enable-unsafe-swiftshader', '--enable-unsafe-webgpu'];
const TIMEOUT_MS = 600_000;

function readCase(inputs) {
  return inputs.map(({ name, dtype, shape, file }) => ({ name, dtype, shape, data: fs.readFileSync(file).toString('base64') }));
}

async function openPage(context, url, hardwareConcurrency, problems) {
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => { if (msg.type() === 'error') problems.push(`console: ${msg.text()}`); });
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`); });
  if (hardwareConcurrency) {
    const cdp = await context.newCDPSession(page);
    await cdp.send('Emulation.setHardwareConcurrencyOverride', { hardwareConcurrency });
  }
  await page.goto(url);
  await page.waitForFunction(() => window.check !== undefined);
  return page;
}

// Closes Chromium once, from the end of the run or from a stop: Ctrl-C reaches this process with the converter's,
// and the converter sends SIGTERM when it unwinds the stage. Chromium runs in a session of its own, so without
// this it would outlive us (until its pipe closes) and keep writing into the profile being removed.
let closing = null;
function closeOnce(context) {
  closing ??= context.close().catch(() => {});
  return closing;
}

async function main() {
  const request = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const cases = request.cases.map(readCase);
  // The profile lies in the converter's scratch folder, which it removes after this process has ended.
  const context = await chromium.launchPersistentContext(request.profile, {
    executablePath: request.chromium, headless: true, args: ARGS,
  });
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]]) {
    process.on(signal, () => closeOnce(context).then(() => process.exit(code)));
  }
  const reply = { chromium: context.browser()?.version() ?? null, records: {} };
  try {
    const problems = [];
    const probePage = await openPage(context, request.url, request.hardwareConcurrency, problems);
    reply.probe = await probePage.evaluate(() => window.check.probe());
    reply.userAgent = await probePage.evaluate(() => navigator.userAgent);
    await probePage.close();
    const software = { webgl: reply.probe.webglSoftware, webgpu: reply.probe.webgpuSoftware };
    for (const combo of request.combos) {
      if (combo.backend === 'webgpu' && !reply.probe.webgpu) continue;
      if (combo.backend === 'webgl' && !reply.probe.webgl) continue;
      const seen = [];
      const record = { runtime: combo.runtime, backend: combo.backend };
      try {
        const page = await openPage(context, request.url, request.hardwareConcurrency, seen);
        const result = await page.evaluate((req) => window.check.run(req), {
          runtime: combo.runtime, backend: combo.backend, threads: combo.threads,
          runs: software[combo.backend] ? request.software_runs : request.runs,
          artifact: combo.artifact, inputs: cases, plant: request.plant === combo.key,
        });
        await page.close();
        record.outputs = result.outputs.map((outs, i) => outs.map((data, k) => {
          const file = `${request.out_prefix}_${combo.key}_${i}_${k}.bin`;
          fs.writeFileSync(file, Buffer.from(data, 'base64'));
          return file;
        }));
        delete result.outputs;
        Object.assign(record, result);
      } catch (err) {
        record.error = String(err && err.message ? err.message : err).split('\n')[0];
      }
      if (seen.length) record.problems = seen;
      reply.records[combo.key] = record;
    }
    if (problems.length) reply.problems = problems;
  } finally {
    await closeOnce(context);
  }
  process.stdout.write(JSON.stringify(reply) + '\n');
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  // The converter quotes the log's last line: the message, not the stack's last frame.
  console.error(`error: ${String(err && err.message ? err.message : err).split('\n')[0]}`);
  process.exit(1);
});
