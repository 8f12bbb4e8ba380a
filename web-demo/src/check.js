// The page behind the converter's `browser` stage (check.html, driven by converter/js/run_browser.mjs): one
// runtime and backend per page load, so that each starts cold and wasm threads are set before it starts.
//
//   window.check.probe()        -> {crossOriginIsolated, hardwareConcurrency, webgl, webglRenderer, webglSoftware,
//                                   webgpu, webgpuAdapter, webgpuSoftware}
//   window.check.run(request)   -> {outputs: [[base64 float32 per output, PyTorch layout] per case], coldMs,
//                                   warmMedianMs, warmRuns, bytes, modelBytes, threads, backend}
//
// request: {runtime: "tfjs"|"onnx"|"litert.js", backend, threads, runs, artifact (metadata.json's entry: path,
// inputs/outputs with artifact_name and perm), inputs: [[{name, dtype, shape, data (base64)}] per case]}.
// Inputs arrive in PyTorch's layout and outputs leave in it: the page transposes with the artifact's perms.
import { inversePerm, transposeFlat } from './layout.js';
import { median, timeRuns, warmUp } from './timing.js';
import { isolated } from './threads.js';
import { setText } from './view.js';

const TYPES = { float32: Float32Array, int32: Int32Array, int64: Float64Array };

function decode({ data, dtype }) {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  return new TYPES[dtype](bytes.buffer);
}

function encode(values) {
  const bytes = new Uint8Array(Float32Array.from(values, Number).buffer);
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

// PyTorch-layout case -> the runtime's inputs, in the artifact's order and layout.
function toArtifact(artifact, inputs) {
  return artifact.inputs.map((binding) => {
    const input = inputs.find((x) => x.name === binding.name);
    if (!input) throw new Error(`no input ${binding.name} in the request`);
    const { data, shape } = transposeFlat(decode(input), input.shape, binding.perm);
    return { name: binding.artifact_name, data, shape, dtype: input.dtype };
  });
}

// `plant`: the converter's tests plant a fault here (5% off every output) to see the stage name this backend.
function fromArtifact(artifact, outputs, plant = false) {
  return artifact.outputs.map((binding) => {
    const out = outputs[binding.artifact_name];
    if (!out) throw new Error(`the runtime gave no output ${binding.artifact_name}`);
    const { data } = transposeFlat(out.data, Array.from(out.shape), inversePerm(binding.perm));
    return encode(plant ? Array.from(data, (v) => v * 1.05) : data);
  });
}

// Bytes fetched since `since` (performance.now() time): everything this runtime pulled in, and its model files.
function downloaded(since, modelUrl) {
  let bytes = 0;
  let modelBytes = 0;
  for (const entry of performance.getEntriesByType('resource')) {
    if (entry.startTime < since) continue;
    const size = entry.transferSize || entry.encodedBodySize;
    bytes += size;
    if (entry.name.startsWith(modelUrl)) modelBytes += entry.encodedBodySize;
  }
  return { bytes, modelBytes };
}

async function loadTfjs(url, request) {
  const tfjs = await import('./tfjsRuntime.js');
  if (request.backend === 'webgpu') await import('@tensorflow/tfjs-backend-webgpu');
  if (request.backend === 'wasm') tfjs.setWasmThreads(request.threads);
  await tfjs.setBackend(request.backend);
  const model = await tfjs.TfjsModel.load(url, request.artifact);
  return { model, threads: () => (request.backend === 'wasm' ? tfjs.wasmThreadsInUse() : null), backend: tfjs.currentBackend() };
}

async function loadOnnx(url, request) {
  const ort = await import('./ortRuntime.js');
  ort.setOrtThreads(request.threads ?? 1);
  const model = await ort.OrtModel.load(url, request.backend);
  return { model, threads: () => (request.backend === 'wasm' ? ort.ortThreads() : null), backend: request.backend };
}

async function loadLitert(url, request) {
  const litert = await import('./litertRuntime.js');
  litert.setLiteRtThreads(request.threads ?? 1);
  const model = await litert.LiteRtModel.load(url, request.backend);
  return { model, threads: () => model.threads, backend: model.accelerator };
}

const LOADERS = { tfjs: loadTfjs, onnx: loadOnnx, 'litert.js': loadLitert };

async function run(request) {
  const base = new URL(new URL(window.location.href).searchParams.get('model') ?? 'model/', window.location.href);
  const url = new URL(request.artifact.path, base);
  const modelDir = new URL('./', url).href;
  const load = LOADERS[request.runtime];
  if (!load) throw new Error(`unknown runtime ${request.runtime}`);
  setText('status', `${request.runtime} on ${request.backend}: loading…`);
  const cases = request.inputs.map((inputs) => toArtifact(request.artifact, inputs));

  const start = performance.now();
  const { model, threads, backend } = await load(url, request);
  const first = await model.run(cases[0]);
  const coldMs = performance.now() - start;
  const sizes = downloaded(start, modelDir);

  setText('status', `${request.runtime} on ${request.backend}: ${cases.length} cases…`);
  const outputs = [fromArtifact(request.artifact, first, request.plant)];
  for (const feeds of cases.slice(1)) outputs.push(fromArtifact(request.artifact, await model.run(feeds), request.plant));

  // runs 0: parity only (a software renderer, where a mobilenet takes seconds a run and timings mean nothing).
  const once = () => model.run(cases[0]);
  if (request.runs > 0) await warmUp(once);
  const times = request.runs > 0 ? await timeRuns(once, request.runs) : [];
  const result = { outputs, coldMs, warmMedianMs: times.length ? median(times) : null, warmRuns: times.length,
    ...sizes, threads: threads(), backend };
  await model.dispose();
  setText('status', 'done');
  return result;
}

async function probe() {
  const canvas = document.createElement('canvas');
  const gl = canvas.getContext('webgl2') || canvas.getContext('webgl');
  const debug = gl && gl.getExtension('WEBGL_debug_renderer_info');
  const webglRenderer = debug ? gl.getParameter(debug.UNMASKED_RENDERER_WEBGL) : null;
  const adapter = navigator.gpu ? await navigator.gpu.requestAdapter().catch(() => null) : null;
  const webgpuAdapter = adapter ? [adapter.info?.vendor, adapter.info?.architecture].filter(Boolean).join(' ') || 'unknown' : null;
  // Without a GPU, Chromium renders both on SwiftShader, on the CPU: the kernels' numbers are checked, their
  // timings say nothing of a GPU.
  const software = (name) => /swiftshader|llvmpipe|software/i.test(name ?? '');
  return { crossOriginIsolated: isolated(), hardwareConcurrency: navigator.hardwareConcurrency, webgl: Boolean(gl),
    webglRenderer, webglSoftware: software(webglRenderer), webgpu: Boolean(adapter), webgpuAdapter,
    webgpuSoftware: software(webgpuAdapter) };
}

window.check = { probe, run };
setText('status', 'ready');
