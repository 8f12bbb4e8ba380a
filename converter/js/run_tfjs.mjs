// Runs a TF.js graph model in Node.js for the converter's parity check.
// Usage: node run_tfjs.mjs request.json
// The request names the model.json, the backends to run on in order, and per case the input tensors as raw
// little-endian files; outputs are written next to them and described in one JSON line on stdout, with
// the kernels the first backend's run dispatched. The outputs may be any nodes of the graph ("name:0"): the
// converter's diagnosis of a parity failure (converter/tfjs_diverge.py) asks for every node's, `batch` at a time.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

// Packages come from the project's node_modules; CONVERTER_NODE_MODULES points elsewhere when installed apart.
const require = createRequire(process.env.CONVERTER_NODE_MODULES
  ? path.join(process.env.CONVERTER_NODE_MODULES, 'noop.js') : import.meta.url);
const tf = require('@tensorflow/tfjs');

const ARRAY = { float32: Float32Array, int32: Int32Array };

function fileHandler(modelJsonPath) {
  // tfjs' own file:// loader lives in tfjs-node; this reads model.json and its shards from disk.
  return {
    async load() {
      const json = JSON.parse(fs.readFileSync(modelJsonPath, 'utf8'));
      const dir = path.dirname(modelJsonPath);
      const weightSpecs = [];
      const buffers = [];
      for (const group of json.weightsManifest) {
        weightSpecs.push(...group.weights);
        for (const p of group.paths) buffers.push(fs.readFileSync(path.join(dir, p)));
      }
      const all = Buffer.concat(buffers);
      return {
        modelTopology: json.modelTopology,
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy,
        signature: json.signature,
        userDefinedMetadata: json.userDefinedMetadata,
        weightSpecs,
        weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
      };
    },
  };
}

async function setBackend(name) {
  if (name === 'wasm') {
    require('@tensorflow/tfjs-backend-wasm');
    // Single-threaded: the numbers must not depend on the machine's core count.
    require('@tensorflow/tfjs-backend-wasm').setThreadsCount?.(1);
  }
  if (!(await tf.setBackend(name))) throw new Error(`backend ${name} is not available`);
  await tf.ready();
}

// Records the name of every kernel the graph dispatches, for the converter's audit of the backends that
// cannot run here (webgl, webgpu): ops reach their backend through the engine's runKernel.
function recordKernels(kernels) {
  const engine = tf.engine();
  const runKernel = engine.runKernel.bind(engine);
  engine.runKernel = (name, inputs, attrs) => {
    kernels.add(name);
    return runKernel(name, inputs, attrs);
  };
  return () => { engine.runKernel = runKernel; };
}

// [[offset within names, tensors]]. Tolerant (diagnosis requests): a group that fails is retried name by name,
// and a name that fails alone becomes {error}.
async function execute(model, feeds, names, tolerant) {
  try {
    const outs = await model.executeAsync(feeds, names);
    return [[0, Array.isArray(outs) ? outs : [outs]]];
  } catch (err) {
    if (!tolerant) throw err;
    if (names.length === 1) {
      return [[0, [{ error: String(err && err.message ? err.message : err).split('\n')[0] }]]];
    }
    const parts = [];
    for (const [i, name] of names.entries()) parts.push([i, (await execute(model, feeds, [name], true))[0][1]]);
    return parts;
  }
}

async function runCases(request) {
  const model = await tf.loadGraphModel(fileHandler(request.model));
  const cases = [];
  for (const [index, c] of request.cases.entries()) {
    const feeds = {};
    for (const input of c.inputs) {
      const bytes = fs.readFileSync(input.file);
      const data = new ARRAY[input.dtype](bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      feeds[input.name] = tf.tensor(data, input.shape, input.dtype);
    }
    const described = [];
    // request.batch (the converter's diagnosis: every node's output) fetches that many tensors per execution and
    // reports a tensor TF.js cannot compute as {error} instead of failing the backend.
    const size = request.batch || request.outputs.length;
    for (let start = 0; start < request.outputs.length; start += size) {
      const names = request.outputs.slice(start, start + size);
      for (const [offset, outs] of await execute(model, feeds, names, Boolean(request.batch))) {
        for (let i = 0; i < outs.length; i++) {
          if (outs[i].error) { described.push(outs[i]); continue; }
          const file = `${c.out_prefix}_${tf.getBackend()}_${index}_${start + offset + i}.bin`;
          // The cpu backend casts int32 to float32 without copying: data() is then an Int32Array of the values.
          const values = await outs[i].data();
          const data = values instanceof ARRAY[outs[i].dtype] ? values : ARRAY[outs[i].dtype].from(values);
          fs.writeFileSync(file, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
          described.push({ file, shape: outs[i].shape, dtype: outs[i].dtype });
        }
        tf.dispose(outs.filter((t) => !t.error));
      }
    }
    tf.dispose(Object.values(feeds));
    cases.push({ outputs: described });
  }
  model.dispose();
  return cases;
}

async function main() {
  const request = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const reply = { tfjs: tf.version.tfjs, kernels: [], backends: {} };
  const kernels = new Set();
  // A backend's failure (a kernel it lacks) is reported, and the other backends still run.
  for (const [i, backend] of request.backends.entries()) {
    const stop = i === 0 ? recordKernels(kernels) : () => {};
    try {
      await setBackend(backend);
      reply.backends[backend] = { cases: await runCases(request) };
    } catch (err) {
      console.error(err && err.stack ? err.stack : String(err));
      reply.backends[backend] = { error: String(err && err.message ? err.message : err).split('\n')[0] };
    } finally {
      stop();
    }
  }
  reply.kernels = [...kernels].sort();
  process.stdout.write(JSON.stringify(reply) + '\n');
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
