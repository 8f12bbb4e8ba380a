// TF.js side: backends, loading the graph model, and running artifact-layout tensors.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import { getThreadsCount, setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { loadGraphModel } from '@tensorflow/tfjs-converter';

// The build copies the wasm binaries next to the bundle; resolving against the bundle keeps the site
// relocatable to any sub-path.
setWasmPaths(new URL('./tfjs-wasm/', import.meta.url).href);

const TF_DTYPES = { float32: 'float32', int32: 'int32', int64: 'int32' };

// WebGPU is listed only where the browser offers an adapter; its backend is loaded on demand because
// most visits never use it.
export async function availableBackends() {
  const names = ['wasm', 'webgl', 'cpu'];
  if (navigator.gpu && (await navigator.gpu.requestAdapter().catch(() => null))) {
    await import('@tensorflow/tfjs-backend-webgpu');
    names.splice(2, 0, 'webgpu');
  }
  return names;
}

export async function setBackend(name) {
  if (!(await tf.setBackend(name))) throw new Error(`The ${name} backend does not start in this browser.`);
  await tf.ready();
}

export function currentBackend() {
  return tf.getBackend();
}

// Threads need a cross-origin-isolated page (threads.js); benchmarks report whether they were available.
export function wasmThreads() {
  return tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT');
}

// The wasm backend reads its thread count once, when it starts: call this before setBackend('wasm').
export function setWasmThreads(count) {
  setThreadsCount(count);
}

// The threads XNNPACK actually runs with (1 without SharedArrayBuffer); null before the wasm backend started.
export function wasmThreadsInUse() {
  try {
    return getThreadsCount();
  } catch {
    return null;
  }
}

// Bytes fetched for the model files (model.json and weight shards), from the browser's resource timing.
function downloadedBytes(dirUrl) {
  const latest = new Map();
  for (const entry of performance.getEntriesByType('resource')) {
    if (entry.name.startsWith(dirUrl)) latest.set(entry.name, entry.encodedBodySize);
  }
  return [...latest.values()].reduce((a, b) => a + b, 0);
}

export class TfjsModel {
  constructor(model, outputNames, bytes) {
    this.model = model;
    this.outputNames = outputNames;
    this.bytes = bytes;
    // execute() is synchronous and cheaper; models with dynamic ops (control flow) need executeAsync().
    this.sync = true;
  }

  static async load(modelJsonUrl, artifact) {
    const model = await loadGraphModel(modelJsonUrl.href);
    const dirUrl = new URL('./', modelJsonUrl).href;
    return new TfjsModel(model, artifact.outputs.map((o) => o.artifact_name), downloadedBytes(dirUrl));
  }

  // inputs: [{name, data, shape, dtype}] in the artifact's layout. Resolves to {artifact_name: {data, shape}}
  // once the values are back on the CPU.
  async run(inputs) {
    const feeds = {};
    for (const { name, data, shape, dtype } of inputs) {
      // int64 arrives as float64 (artifactIo.js), which tf.tensor refuses: TF.js holds integers as int32.
      const values = TF_DTYPES[dtype] === 'int32' && !(data instanceof Int32Array) ? Int32Array.from(data) : data;
      feeds[name] = tf.tensor(values, shape, TF_DTYPES[dtype]);
    }
    try {
      const outputs = [].concat(await this.execute(feeds));
      const values = await Promise.all(outputs.map((t) => t.data()));
      const result = {};
      outputs.forEach((t, i) => { result[this.outputNames[i]] = { data: values[i], shape: t.shape }; });
      tf.dispose(outputs);
      return result;
    } finally {
      tf.dispose(Object.values(feeds));
    }
  }

  dispose() {
    this.model.dispose();
  }

  async execute(feeds) {
    if (this.sync) {
      try {
        return this.model.execute(feeds, this.outputNames);
      } catch (err) {
        if (!/executeAsync/.test(err.message)) throw err;
        this.sync = false;
      }
    }
    return this.model.executeAsync(feeds, this.outputNames);
  }
}
