// Drives the demo page in headless Chromium and prints what it saw as one JSON line.
//
//   node tests/web/browser.mjs '{"scenario": "golden", "url": "http://127.0.0.1:PORT/?model=model/", ...}'
//
// The pytest files in this folder start the server, call this once per scenario and assert on the JSON;
// every number comes from the real page running the real converted model.
import { TIMEOUT_MS, withPage } from '../../web-demo/headless.mjs';

const scenarios = {
  // Golden check per backend, as a user would get it from the parity badge.
  async golden(page, { backends }) {
    const results = [];
    for (const backend of backends) {
      try {
        await page.evaluate((name) => window.demo.setBackend(name), backend);
        const result = await page.evaluate(() => window.demo.checkGolden());
        results.push({
          backend,
          ...result,
          badge: await text(page, 'parity'),
          note: await page.getByTestId('tolerance-note').isVisible() ? await text(page, 'tolerance-note') : '',
        });
      } catch (err) {
        results.push({ backend, error: err.message });
      }
    }
    return { results };
  },

  // predict() on inputs chosen by the test, on one backend.
  async predict(page, { backend, inputs }) {
    await page.evaluate((name) => window.demo.setBackend(name), backend);
    return { outputs: await page.evaluate((xs) => Promise.all(xs.map((x) => window.demo.predict(x))), inputs) };
  },

  // Draws strokes (canvas-relative fractions) with a mouse or a finger, then reports what the page shows.
  async draw(page, { strokes, pointer, screenshot }) {
    const canvas = page.getByTestId('canvas');
    const box = await canvas.boundingBox();
    const at = ([fx, fy]) => [box.x + fx * box.width, box.y + fy * box.height];
    const touch = pointer === 'touch' ? await page.context().newCDPSession(page) : null;
    for (const stroke of strokes) {
      const points = stroke.map(at);
      if (touch) await touchStroke(touch, points);
      else await mouseStroke(page.mouse, points);
    }
    // predict() queues behind the update the drawing started, so the page is settled once it answers.
    const input = await page.evaluate(() => window.demo.currentInput);
    const output = await page.evaluate((x) => window.demo.predict(x), input);
    const shown = {
      input,
      output,
      source: await text(page, 'input-source'),
      parity: await text(page, 'parity'),
    };
    for (const runtime of ['tfjs', 'ort', 'litert']) {
      shown[runtime] = {
        top3: await labels(page, `${runtime}-output`),
        latency: await text(page, `${runtime}-latency`),
        size: await text(page, `${runtime}-size`),
        ...(runtime === 'tfjs' ? {} : { agreement: await text(page, `${runtime}-agreement`) }),
      };
    }
    if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
    await page.getByTestId('clear').click();
    await page.evaluate(() => window.demo.predict(window.demo.currentInput));
    shown.afterClear = { source: await text(page, 'input-source'), input: await page.evaluate(() => window.demo.currentInput) };
    return shown;
  },

  // How many wasm threads each runtime runs with, as the page reports and shows it.
  async threads(page) {
    return {
      ...(await page.evaluate(() => window.demo.threads)),
      shown: await text(page, 'wasm-threads'),
      golden: await page.evaluate(() => window.demo.checkGolden()),
    };
  },

  // A page that cannot load its model must say why, visibly.
  async error(page, { screenshot }) {
    const box = page.getByTestId('error');
    await box.waitFor({ state: 'visible', timeout: TIMEOUT_MS });
    if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
    return { error: await box.textContent(), status: await text(page, 'status'), appVisible: await page.locator('#app').isVisible() };
  },
};

async function text(page, testId) {
  return (await page.getByTestId(testId).textContent()).trim();
}

async function labels(page, testId) {
  return page.getByTestId(testId).locator('li').evaluateAll((items) => items.map((li) => li.dataset.label));
}

async function mouseStroke(mouse, points) {
  await mouse.move(...points[0]);
  await mouse.down();
  for (const point of points.slice(1)) await mouse.move(...point, { steps: 4 });
  await mouse.up();
}

async function touchStroke(cdp, points) {
  const send = (type, point) => cdp.send('Input.dispatchTouchEvent', {
    type, touchPoints: point ? [{ x: point[0], y: point[1] }] : [],
  });
  await send('touchStart', points[0]);
  for (const point of points.slice(1)) await send('touchMove', point);
  await send('touchEnd');
}

async function main() {
  const { scenario, url, waitReady = scenario !== 'error', hardwareConcurrency = null, ...args } = JSON.parse(process.argv[2]);
  const { result, problems } = await withPage(url, async (page) => {
    if (waitReady) await page.evaluate(() => window.demo.ready);
    return scenarios[scenario](page, args);
  }, { hardwareConcurrency });
  console.log(JSON.stringify({ ...result, problems }));
}

await main();
