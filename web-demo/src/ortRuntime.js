// ONNX Runtime Web side: runs model.onnx on the wasm execution provider, the way a user picking ORT would.
import * as ort from 'onnxruntime-web/wasm';
import { wasmThreadCount } from './threads.js';

// Only the binary is located: a path prefix would also make ORT look for its JS glue there, which this
// bundle already contains.
ort.env.wasm.wasmPaths = { wasm: new URL('./ort/ort-wasm-simd-threaded.wasm', import.meta.url).href };
// Threads need a cross-origin-isolated page (COOP/COEP headers, threads.js); the page sets the same count
// as for the TF.js wasm backend, so the comparison is like for like. ONNX Runtime reads it when its first
// session starts.
ort.env.wasm.numThreads = wasmThreadCount();

export function setOrtThreads(count) {
  ort.env.wasm.numThreads = count;
}

export function ortThreads() {
  return ort.env.wasm.numThreads;
}

function ortTensor({ data, shape, dtype }) {
  if (dtype === 'int64') return new ort.Tensor('int64', BigInt64Array.from(data, (v) => BigInt(v)), shape);
  return new ort.Tensor(dtype, data, shape);
}

export class OrtModel {
  constructor(session, bytes) {
    this.session = session;
    this.bytes = bytes;
  }

  static async load(url) {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`model.onnx not found at ${url} (HTTP ${response.status})`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
    return new OrtModel(session, bytes.byteLength);
  }

  dispose() {
    return this.session.release();
  }

  // Same contract as TfjsModel.run: artifact-layout inputs in, {artifact_name: {data, shape}} out.
  async run(inputs) {
    const feeds = Object.fromEntries(inputs.map((input) => [input.name, ortTensor(input)]));
    const outputs = await this.session.run(feeds);
    const result = {};
    for (const [name, tensor] of Object.entries(outputs)) result[name] = { data: tensor.data, shape: tensor.dims };
    return result;
  }
}
