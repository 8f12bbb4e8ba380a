// The demo page: loads a converted folder, wires the views, and exposes window.demo for tests.
import { caseInputs, checkGolden, toleranceFor } from './golden.js';
import { typedInput } from './artifactIo.js';
import { attachDrawing, drawPreview } from './drawing.js';
import * as fmt from './format.js';
import { DemoError, fetchJson, resolveModelUrl, validateMetadata } from './modelSource.js';
import { compareAll, sameTop1 } from './parity.js';
import { GRID, inkGrid } from './preprocess.js';
import { Predictor } from './predictor.js';
import { describeThreads, isolated, wasmThreadCount } from './threads.js';
import { availableBackends, currentBackend, setBackend, setWasmThreads, TfjsModel, wasmThreadsInUse } from './tfjsRuntime.js';
import * as view from './view.js';

const DEFAULT_BACKEND = 'wasm';

// The runtimes shown beside TF.js, each on its own artifact and in its own column (cells `${id}-output`,
// `${id}-latency`, `${id}-size`, `${id}-agreement`). Each is a separate chunk, fetched after the TF.js side is
// usable; load resolves to {model, threads} (its wasm thread count).
const COMPANIONS = [
  {
    id: 'ort', name: 'ONNX Runtime Web', artifact: 'onnx', what: 'ONNX model',
    async load(url) {
      const { OrtModel, ortThreads } = await import('./ortRuntime.js');
      return { model: await OrtModel.load(url), threads: ortThreads() };
    },
  },
  {
    id: 'litert', name: 'LiteRT.js', artifact: 'tflite_fp32', what: 'TFLite fp32 model',
    async load(url) {
      const { LiteRtModel, liteRtThreads } = await import('./litertRuntime.js');
      return { model: await LiteRtModel.load(url), threads: liteRtThreads() };
    },
  },
];

const state = {
  meta: null,
  golden: null,
  tfjs: null,
  // id -> Predictor, for each companion that loaded and ran its model (the TF.js side works without them).
  companions: {},
  threads: { ort: null, litert: null }, // each companion's wasm threads once it loaded
  input: null, // {name: typed array}, PyTorch layout: what the outputs and latencies are shown for
};

// Model work runs one task at a time: latencies are not disturbed and a backend never switches mid-run.
let tail = Promise.resolve();
function serial(task) {
  const run = tail.then(task);
  tail = run.catch(() => {});
  return run;
}

function report(err) {
  view.showError(err.message);
}

async function loadTfjs(baseUrl, meta) {
  const artifact = meta.artifacts.tfjs;
  try {
    return new Predictor(await TfjsModel.load(new URL(artifact.path, baseUrl), artifact), artifact, meta);
  } catch (err) {
    throw new DemoError(`Could not load the TF.js model ${artifact.path}: ${err.message}`);
  }
}

async function loadCompanion(baseUrl, meta, companion) {
  const artifact = meta.artifacts[companion.artifact];
  if (!artifact) {
    view.setText(`${companion.id}-output`, `This folder has no ${companion.what}.`);
    return;
  }
  try {
    const { model, threads } = await companion.load(new URL(artifact.path, baseUrl));
    const predictor = new Predictor(model, artifact, meta);
    // A model the runtime loads but cannot run (LiteRT.js has no int64 tensors) is said here, in its column.
    await predictor.predict(caseInputs(state.golden, meta, 0));
    state.companions[companion.id] = predictor;
    state.threads[companion.id] = threads;
    view.setText('wasm-threads', describeThreads(wasmThreadsInUse(), state.threads));
    view.setText(`${companion.id}-size`, fmt.bytes(predictor.bytes));
  } catch (err) {
    view.setText(`${companion.id}-output`, `${companion.name} could not run ${artifact.path}: ${err.message}`);
  }
}

function tolerance() {
  return toleranceFor(state.golden, state.meta.artifacts.tfjs.precision, currentBackend());
}

async function refreshParity() {
  const { tolerance: tol, loosened } = tolerance();
  const result = await checkGolden(state.tfjs, state.golden, state.meta, tol);
  view.renderParity(result, state.meta.artifacts.tfjs.precision, currentBackend(), loosened);
  return result;
}

async function showOutputs() {
  const tfjsOut = await state.tfjs.predict(state.input);
  view.renderOutputs('tfjs-output', tfjsOut, state.meta);
  const specs = state.meta.outputs;
  for (const { id, name } of COMPANIONS) {
    const predictor = state.companions[id];
    if (!predictor) continue;
    const out = await predictor.predict(state.input);
    view.renderOutputs(`${id}-output`, out, state.meta);
    const result = compareAll(specs.map((s) => [[tfjsOut[s.name], out[s.name]]]));
    const top1 = specs.length === 1 ? sameTop1(tfjsOut[specs[0].name], out[specs[0].name], specs[0].shape) : null;
    view.renderAgreement(`${id}-agreement`, name, result, tolerance().tolerance, top1);
  }
}

async function measure() {
  const runs = Math.max(1, Number(view.byId('runs').value) || 1);
  const label = (value) => `${fmt.ms(value)} (median of ${runs})`;
  view.setText('tfjs-latency', 'measuring…');
  view.setText('tfjs-latency', label(await state.tfjs.latencyMs(state.input, runs)));
  for (const { id } of COMPANIONS) {
    if (!state.companions[id]) continue;
    view.setText(`${id}-latency`, 'measuring…');
    view.setText(`${id}-latency`, label(await state.companions[id].latencyMs(state.input, runs)));
  }
}

// Everything shown for the TF.js side depends on the backend: redo parity and outputs after a switch.
async function showBackend() {
  const name = currentBackend();
  view.byId('backend').value = name;
  view.setText('tfjs-backend', name);
  await refreshParity();
  await showOutputs();
}

async function switchBackend(name) {
  await setBackend(name);
  await showBackend();
}

const GOLDEN_SOURCE = 'golden case 0';

function showInput(source, input) {
  state.input = input;
  view.setText('input-source', source);
  serial(showOutputs).catch(report);
}

function randomInputs(meta) {
  return Object.fromEntries(meta.inputs.map((spec) => {
    if (spec.dtype !== 'float32') throw new Error(`random values for ${spec.dtype} input ${spec.name} are not defined; use the golden input`);
    const values = Array.from({ length: spec.shape.reduce((a, b) => a * b, 1) }, Math.random);
    return [spec.name, typedInput(values, spec)];
  }));
}

function setupDigits() {
  view.byId('digits').hidden = false;
  const pad = attachDrawing(view.byId('canvas'), {
    grid: GRID,
    onStrokeEnd: (image) => {
      const pixels = inkGrid(image);
      drawPreview(view.byId('preview'), GRID, pixels);
      showInput('your drawing', { [state.meta.inputs[0].name]: pixels });
    },
  });
  view.byId('clear').addEventListener('click', () => {
    pad.clear();
    drawPreview(view.byId('preview'), GRID, new Float32Array(GRID * GRID));
    showInput(GOLDEN_SOURCE, caseInputs(state.golden, state.meta, 0));
  });
}

function setupGeneric() {
  view.byId('generic').hidden = false;
  const use = (source, makeInput) => {
    try {
      showInput(source, makeInput());
    } catch (err) {
      report(err);
    }
  };
  view.byId('golden-input').addEventListener('click', () => use(GOLDEN_SOURCE, () => caseInputs(state.golden, state.meta, 0)));
  view.byId('random-input').addEventListener('click', () => use('random values in [0, 1)', () => randomInputs(state.meta)));
}

function setupControls(backends) {
  const select = view.byId('backend');
  select.replaceChildren(...backends.map((name) => new Option(name, name)));
  select.addEventListener('change', () => serial(() => switchBackend(select.value)).then(() => serial(measure)).catch(report));
  view.byId('measure').addEventListener('click', () => serial(measure).catch(report));
}

async function start() {
  const baseUrl = resolveModelUrl(window.location);
  const meta = validateMetadata(await fetchJson(new URL('metadata.json', baseUrl), 'metadata.json'));
  state.meta = meta;
  state.golden = await fetchJson(new URL('golden/golden.json', baseUrl), 'golden/golden.json');
  view.setText('model-name', meta.model);

  const backends = await availableBackends();
  // The wasm runtimes start with the page's thread count (threads.js): all cores when cross-origin isolated.
  setWasmThreads(wasmThreadCount());
  await setBackend(DEFAULT_BACKEND);
  view.setText('wasm-threads', describeThreads(wasmThreadsInUse()));
  state.tfjs = await loadTfjs(baseUrl, meta);
  view.setText('tfjs-size', fmt.bytes(state.tfjs.bytes));
  setupControls(backends);

  const digits = meta.preprocessing?.kind === 'digits8x8' && meta.labels;
  if (digits) setupDigits();
  else setupGeneric();
  view.byId('app').hidden = false;

  for (const companion of COMPANIONS) await loadCompanion(baseUrl, meta, companion);
  // Outputs and latencies are for golden case 0 until the user draws or picks another input.
  state.input = caseInputs(state.golden, meta, 0);
  view.setText('input-source', GOLDEN_SOURCE);
  await showBackend();
  await measure();
  view.setText('status', `ready: TF.js ${meta.artifacts.tfjs.precision} model`);
}

const ready = serial(start);
ready.catch((err) => {
  view.setText('status', 'failed to load');
  report(err);
});

// Accepts a flat array for a single-input model, or {name: flat array}; answers in the same style.
function torchInputs(input) {
  const specs = state.meta.inputs;
  const flat = ArrayBuffer.isView(input) || Array.isArray(input);
  if (flat && specs.length > 1) throw new Error(`this model takes ${specs.length} inputs: pass {${specs.map((s) => s.name).join(', ')}}`);
  const byName = flat ? { [specs[0].name]: input } : input;
  return Object.fromEntries(specs.map((s) => [s.name, typedInput(byName[s.name] ?? [], s)]));
}

window.demo = {
  ready,
  setBackend: (name) => ready.then(() => serial(() => switchBackend(name))),
  predict: (input) => ready.then(() => serial(async () => {
    const outputs = await state.tfjs.predict(torchInputs(input));
    const plain = Object.fromEntries(Object.entries(outputs).map(([name, values]) => [name, Array.from(values)]));
    return state.meta.outputs.length === 1 ? plain[state.meta.outputs[0].name] : plain;
  })),
  checkGolden: () => ready.then(() => serial(refreshParity)),
  // The PyTorch-layout input the page's outputs are for (the 8x8 grid after drawing), so a test can
  // reproduce exactly that prediction in PyTorch.
  get currentInput() {
    return state.input && Object.fromEntries(Object.entries(state.input).map(([name, v]) => [name, Array.from(v)]));
  },
  get backend() {
    return currentBackend();
  },
  // {crossOriginIsolated, tfjs, ort, litert}: the wasm thread counts in use (ort, litert: null until loaded).
  get threads() {
    return { crossOriginIsolated: isolated(), tfjs: wasmThreadsInUse(), ...state.threads };
  },
};
