// The latency benchmark page (bench.html): times the models listed in <folder>/bench.json on the same
// terms as the demo (single-threaded wasm unless bench.json asks for threads or an entry names another TF.js
// backend).
// scripts/bench_web.py writes bench.json and reads window.bench.result.
//
// bench.json: {"runs": 30, "threads"?: 1, "entries": [{"label", "runtime": "tfjs"|"onnx"|"litert.js", "backend"?,
//              "path", "inputs": [{"artifact_name", "shape", "dtype"}], "outputs": [{"artifact_name"}]}]}
import * as fmt from './format.js';
import { sizeOf } from './layout.js';
import { fetchJson, resolveModelUrl } from './modelSource.js';
import { LiteRtModel, liteRtThreads, setLiteRtThreads } from './litertRuntime.js';
import { OrtModel, ortThreads, setOrtThreads } from './ortRuntime.js';
import { isolated } from './threads.js';
import { median, timeRuns, warmUp, WARMUP_RUNS } from './timing.js';
import { setBackend, setWasmThreads, TfjsModel, wasmThreadsInUse } from './tfjsRuntime.js';
import { byId, setText, showError } from './view.js';

// Models sharing a TF.js backend are timed in interleaved blocks of this many runs, so that load from
// other processes on the machine spreads over all of them instead of skewing whichever ran at that moment.
// Each block starts with one untimed run: the previous model has just pushed this one's weights out of cache.
const BLOCK_RUNS = 5;

// ONNX Runtime and LiteRT.js do not use TF.js, so their entries join the wasm group.
const backendOf = (entry) => (entry.runtime === 'tfjs' ? entry.backend ?? 'wasm' : 'wasm');

// Latency does not depend on the values for these models; random data only avoids all-zero shortcuts.
function randomInputs(entry) {
  return entry.inputs.map(({ artifact_name: name, shape, dtype }) => ({
    name, shape, dtype, data: Float32Array.from({ length: sizeOf(shape) }, Math.random),
  }));
}

const LOADERS = {
  tfjs: (url, entry) => TfjsModel.load(url, entry),
  onnx: (url) => OrtModel.load(url),
  'litert.js': (url) => LiteRtModel.load(url),
};

async function load(baseUrl, entry) {
  const url = new URL(entry.path, baseUrl);
  const model = await LOADERS[entry.runtime](url, entry);
  const inputs = randomInputs(entry);
  return { entry, model, run: () => model.run(inputs), times: [] };
}

// Loads and warms up every model of one backend group, then times them block by block.
async function measureGroup(baseUrl, backend, entries, runs) {
  await setBackend(backend);
  const loaded = [];
  try {
    for (const entry of entries) {
      setText('status', `loading ${entry.label}…`);
      loaded.push(await load(baseUrl, entry));
      await warmUp(loaded.at(-1).run);
    }
    for (let done = 0; done < runs; done += BLOCK_RUNS) {
      setText('status', `${backend}: ${done} of ${runs} runs per model…`);
      for (const item of loaded) {
        await item.run();
        item.times.push(...(await timeRuns(item.run, Math.min(BLOCK_RUNS, runs - done))));
      }
    }
    return loaded.map(({ entry, model, times }) => ({
      label: entry.label, runtime: entry.runtime, backend, medianMs: median(times), bytes: model.bytes,
    }));
  } finally {
    for (const { model } of loaded) await model.dispose();
  }
}

function addRow(row) {
  const tr = document.createElement('tr');
  for (const text of [row.label, `${row.runtime} (${row.backend})`, fmt.ms(row.medianMs), fmt.bytes(row.bytes)]) {
    const td = document.createElement('td');
    td.textContent = text;
    tr.append(td);
  }
  byId('rows').append(tr);
}

async function run() {
  const baseUrl = resolveModelUrl(window.location);
  const config = await fetchJson(new URL('bench.json', baseUrl), 'bench.json');
  // The wasm runtimes get the same count (threads need the page cross-origin isolated: threads.js).
  const threads = config.threads ?? 1;
  setWasmThreads(threads);
  setOrtThreads(threads);
  setLiteRtThreads(threads);
  const backends = [...new Set(config.entries.map(backendOf))];
  const rows = [];
  for (const backend of backends) {
    const group = config.entries.filter((entry) => backendOf(entry) === backend);
    for (const row of await measureGroup(baseUrl, backend, group, config.runs)) {
      rows.push(row);
      addRow(row);
    }
  }
  setText('status', 'done');
  return {
    runs: config.runs, warmupRuns: WARMUP_RUNS, blockRuns: BLOCK_RUNS,
    // Whether TF.js's wasm backend ran on more than one thread, and each runtime's count.
    tfjsWasmThreads: (wasmThreadsInUse() ?? 1) > 1,
    threads: { crossOriginIsolated: isolated(), tfjs: wasmThreadsInUse(), ort: ortThreads(), litert: liteRtThreads() },
    userAgent: navigator.userAgent, rows,
  };
}

const result = run();
result.catch((err) => showError(err.message));
window.bench = { result };
