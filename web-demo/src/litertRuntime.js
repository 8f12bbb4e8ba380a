// LiteRT.js side: runs the .tflite file (the one the Android app ships) on LiteRT's wasm runtime (XNNPACK) or,
// where the browser offers an adapter, on WebGPU.
import { loadAndCompile, loadLiteRt, Tensor } from '@litertjs/core';
import { wasmThreadCount } from './threads.js';

// The build copies LiteRT's wasm builds (each a .js loader and its .wasm) next to the bundle; LiteRT.js picks
// one from this folder when it starts: the threaded one when asked for threads, else the relaxed-SIMD one, or
// the compat one where the browser lacks relaxed SIMD.
const WASM_DIR = new URL('./litert/', import.meta.url).href;

// The dtypes LiteRT.js makes tensors of; int64 inputs are the one case the pages can hand it and it cannot take.
const FEEDABLE = new Set(['float32', 'int32']);

// LiteRT's wasm writes its log to stderr, which Emscripten prints as console errors: INFO and WARNING lines at
// every start (no NPU in a browser). Emscripten reads its settings from a global Module when the loader script
// runs (@litertjs/wasm-utils passes it on); only LiteRT's errors stay console errors.
function logLine(line) {
  const level = /^(INFO|WARNING):/.exec(line)?.[1];
  (level === 'INFO' ? console.debug : level === 'WARNING' ? console.warn : console.error)(line);
}

// Threads need a cross-origin-isolated page (threads.js); the page sets the same count as for the other wasm
// runtimes. More than one loads LiteRT's threaded build, so the count is fixed once the first model loads.
let threads = wasmThreadCount();
let started = null;

export function setLiteRtThreads(count) {
  if (started) throw new Error('LiteRT.js has started: its thread count is fixed');
  threads = count;
}

export function liteRtThreads() {
  return threads;
}

function start() {
  if (!started) {
    globalThis.Module = { printErr: logLine };
    started = loadLiteRt(WASM_DIR, { threads: threads > 1 });
  }
  return started;
}

export class LiteRtModel {
  constructor(model, bytes) {
    this.model = model;
    this.bytes = bytes;
  }

  // accelerator: 'wasm' or 'webgpu'. LiteRT.js falls back to wasm when WebGPU cannot run the whole model:
  // `accelerator` says what it compiled for.
  static async load(url, accelerator = 'wasm') {
    await start();
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url.pathname.split('/').pop()} not found at ${url} (HTTP ${response.status})`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    // WebGPU in float32: the file's own precision, and the one it is held to (LiteRT.js's WebGPU default may
    // compute in float16).
    const model = await loadAndCompile(bytes, { accelerator, cpuOptions: { numThreads: threads },
      gpuOptions: { precision: 'fp32' } });
    return new LiteRtModel(model, bytes.byteLength);
  }

  get accelerator() {
    return this.model.options.accelerator;
  }

  // XNNPACK's threads on wasm; null on WebGPU.
  get threads() {
    return this.accelerator === 'wasm' ? this.model.options.cpuOptions.numThreads : null;
  }

  dispose() {
    this.model.delete();
  }

  // Same contract as TfjsModel.run: artifact-layout inputs in, {artifact_name: {data, shape}} out.
  async run(inputs) {
    const feeds = {};
    try {
      for (const { name, data, shape, dtype } of inputs) {
        if (!FEEDABLE.has(dtype)) throw new Error(`LiteRT.js takes float32 and int32 tensors, not ${dtype} (input ${name})`);
        feeds[name] = new Tensor(data, shape);
      }
      const outputs = await this.model.run(feeds);
      const result = {};
      for (const [name, tensor] of Object.entries(outputs)) {
        result[name] = { data: await tensor.data(), shape: Array.from(tensor.type.layout.dimensions) };
        tensor.delete();
      }
      return result;
    } finally {
      for (const tensor of Object.values(feeds)) tensor.delete();
    }
  }
}
