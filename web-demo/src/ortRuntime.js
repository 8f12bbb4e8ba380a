// ONNX Runtime Web side: runs model.onnx the way a user picking ORT would, on its wasm execution provider or
// on WebGPU (ORT's WebGPU build; it keeps on wasm the ops its WebGPU kernels lack). Each build loads when first
// asked for.
import { wasmThreadCount } from './threads.js';

// Only each build's binary is located: a path prefix would also make ORT look for its JS glue there, which the
// bundle already contains.
const BUILDS = {
  wasm: { load: () => import('onnxruntime-web/wasm'), binary: 'ort-wasm-simd-threaded.wasm' },
  webgpu: { load: () => import('onnxruntime-web/webgpu'), binary: 'ort-wasm-simd-threaded.asyncify.wasm' },
};

// Threads need a cross-origin-isolated page (COOP/COEP headers, threads.js); the page sets the same count as
// for the TF.js wasm backend, so the comparison is like for like. ONNX Runtime reads it when its first session
// starts.
let threads = wasmThreadCount();

export function setOrtThreads(count) {
  threads = count;
}

export function ortThreads() {
  return threads;
}

async function runtime(backend) {
  const build = BUILDS[backend];
  if (!build) throw new Error(`ONNX Runtime Web runs on ${Object.keys(BUILDS).join(' or ')} here, not ${backend}`);
  const ort = await build.load();
  ort.env.wasm.wasmPaths = { wasm: new URL(`./ort/${build.binary}`, import.meta.url).href };
  ort.env.wasm.numThreads = threads;
  return ort;
}

function ortTensor(ort, { data, shape, dtype }) {
  if (dtype === 'int64') return new ort.Tensor('int64', BigInt64Array.from(data, (v) => BigInt(v)), shape);
  return new ort.Tensor(dtype, data, shape);
}

export class OrtModel {
  constructor(ort, session, bytes) {
    this.ort = ort;
    this.session = session;
    this.bytes = bytes;
  }

  static async load(url, backend = 'wasm') {
    const ort = await runtime(backend);
    const response = await fetch(url);
    if (!response.ok) throw new Error(`model.onnx not found at ${url} (HTTP ${response.status})`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const session = await ort.InferenceSession.create(bytes, { executionProviders: [backend] });
    return new OrtModel(ort, session, bytes.byteLength);
  }

  dispose() {
    return this.session.release();
  }

  // Same contract as TfjsModel.run: artifact-layout inputs in, {artifact_name: {data, shape}} out.
  async run(inputs) {
    const feeds = Object.fromEntries(inputs.map((input) => [input.name, ortTensor(this.ort, input)]));
    const outputs = await this.session.run(feeds);
    const result = {};
    for (const [name, tensor] of Object.entries(outputs)) result[name] = { data: tensor.data, shape: tensor.dims };
    return result;
  }
}
