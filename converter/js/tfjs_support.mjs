// Derives what each TF.js backend can execute from the installed @tensorflow packages, and prints it as
// JSON: per backend, its registered kernels and, per fused kernel, the fused activations it implements;
// per fused graph op, the attributes TF.js's converter reads from it; the graph ops whose inputs it reads to the
// end of the input list (control inputs included).
// The converter audits every TF.js graph against the committed output (converter/js/tfjs_support.json);
// tests/test_tfjs_audit.py re-derives it and fails when the pinned packages change it.
//
//   node converter/js/tfjs_support.mjs > converter/js/tfjs_support.json
//
// Kernels come from TF.js's own registry (each backend registers its kernels when imported, without a
// device). Fused activations come from the code each backend runs to pick one: cpu and wasm run a tiny
// fused op for real; webgl's and webgpu's shader builders (mapActivationToShaderProgram,
// activationFnSnippet) are called directly, since Node.js has no GPU. A builder that throws means the
// backend has no such activation.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const root = process.env.CONVERTER_NODE_MODULES
  ? path.dirname(process.env.CONVERTER_NODE_MODULES) : path.resolve(import.meta.dirname, '../..');
const require = createRequire(path.join(root, 'noop.js'));
const tf = require('@tensorflow/tfjs');
require('@tensorflow/tfjs-backend-wasm').setThreadsCount?.(1);
require('@tensorflow/tfjs-backend-webgl');
require('@tensorflow/tfjs-backend-webgpu');

export const BACKENDS = ['cpu', 'wasm', 'webgl', 'webgpu'];
// The activation names a TF graph can carry in a fused op's fused_ops (lowercased, as TF.js's converter
// reads them): TensorFlow's remapper fuses the first group everywhere, oneDNN builds add the second.
export const CANDIDATES = ['linear', 'relu', 'relu6', 'elu', 'leakyrelu', 'sigmoid', 'prelu', 'tanh',
  'selu', 'softplus', 'gelu', 'geluexact', 'geluapproximate', 'swish', '_mklswish', '_fusedswish',
  '_fusedhardswish', 'hardswish', 'mish'];
export const FUSED_KERNELS = ['FusedConv2D', 'FusedDepthwiseConv2D', '_FusedMatMul'];
const FUSED_OPS = ['_FusedConv2D', 'FusedDepthwiseConv2dNative', '_FusedMatMul'];

// The backends' internal shader builders and the converter's op lists, bundled from the installed dist files (they are not exported).
function shaderBuilders() {
  const esbuild = require('esbuild');
  const opLists = path.join(root, 'node_modules/@tensorflow/tfjs-converter/dist/operations/op_list');
  const lists = fs.readdirSync(opLists).filter((f) => f.endsWith('.js')).map((f) => f.slice(0, -3));
  const entry = [
    "export { mapActivationToShaderProgram } from '@tensorflow/tfjs-backend-webgl/dist/kernel_utils/kernel_funcs_utils';",
    "export { activationFnSnippet } from '@tensorflow/tfjs-backend-webgpu/dist/activation_util';",
    ...lists.map((l) => `export { json as ${l} } from '@tensorflow/tfjs-converter/dist/operations/op_list/${l}';`),
    `export const opLists = ${JSON.stringify(lists)};`,
  ].join('\n');
  const built = esbuild.buildSync({
    stdin: { contents: entry, resolveDir: root, loader: 'js' }, bundle: true, write: false,
    format: 'cjs', platform: 'node', logLevel: 'silent', external: ['@tensorflow/tfjs-core'],
  });
  // Beside node_modules, so that the bundle's require('@tensorflow/tfjs-core') finds the same package.
  const file = path.join(fs.mkdtempSync(path.join(root, 'node_modules', '.tfjs-support-')), 'builders.cjs');
  fs.writeFileSync(file, built.outputFiles[0].text);
  try {
    return createRequire(path.join(root, 'noop.js'))(file);
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
}

function accepts(fn) {
  try {
    fn();
    return true;
  } catch {
    return false;
  }
}

// Runs the fused op on the current backend with `activation`; the backends check the name when they
// build or dispatch the kernel.
function runFused(kernel, activation) {
  const extra = { activation, leakyreluAlpha: 0.1 };
  if (activation === 'prelu') extra.preluActivationWeights = tf.ones([2]);
  return tf.tidy(() => {
    if (kernel === '_FusedMatMul') {
      return tf.fused.matMul({ a: tf.ones([1, 2]), b: tf.ones([2, 2]), bias: tf.ones([2]), ...extra }).dataSync();
    }
    const x = tf.ones([1, 3, 3, 2]);
    if (kernel === 'FusedConv2D') {
      return tf.fused.conv2d({ x, filter: tf.ones([1, 1, 2, 2]), strides: 1, pad: 'same', bias: tf.ones([2]), ...extra }).dataSync();
    }
    return tf.fused.depthwiseConv2d({ x, filter: tf.ones([1, 1, 2, 1]), strides: 1, pad: 'same', bias: tf.ones([2]), ...extra }).dataSync();
  });
}

async function main() {
  const builders = shaderBuilders();
  // The TF attributes TF.js's converter reads for each fused graph op: an activation whose parameter it does
  // not read (leakyrelu_alpha on FusedDepthwiseConv2dNative) runs with the parameter undefined.
  const attrs = {};
  for (const op of [...builders.convolution, ...builders.matrices]) {
    if (FUSED_OPS.includes(op.tfOpName)) attrs[op.tfOpName] = (op.attrs || []).map((a) => a.tfName).sort();
  }
  // The graph ops whose inputs TF.js's converter reads to the end of the node's input list, or counted from its
  // end. It reads a control input ("^name") as one more input, so on these ops it becomes data: an AddN's
  // extra operand, a ConcatV2's axis (tfjs-converter operation_mapper.ts keeps control inputs; only NoOp
  // producers are dropped, and only from 'tensors' lists).
  const fromEnd = new Set();
  for (const list of builders.opLists) {
    for (const op of builders[list]) {
      if ((op.inputs || []).some((i) => i.end === 0 || i.start < 0 || i.end < 0)) fromEnd.add(op.tfOpName);
    }
  }
  const support = { tfjs: tf.version.tfjs, converter_attrs: attrs, inputs_to_the_end: [...fromEnd].sort(), backends: {} };
  for (const backend of BACKENDS) {
    const kernels = tf.getKernelsForBackend(backend).map((k) => k.kernelName);
    const fused = {};
    for (const kernel of FUSED_KERNELS) {
      let ok;
      if (backend === 'webgl') {
        ok = (a) => accepts(() => builders.mapActivationToShaderProgram(a, false))
          && accepts(() => builders.mapActivationToShaderProgram(a, true));
      } else if (backend === 'webgpu') {
        ok = (a) => accepts(() => builders.activationFnSnippet(a, a === 'prelu', false, 4))
          && accepts(() => builders.activationFnSnippet(a, a === 'prelu', true, 4));
      } else {
        if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} does not start in Node.js`);
        await tf.ready();
        ok = (a) => accepts(() => runFused(kernel, a));
      }
      fused[kernel] = kernels.includes(kernel.replace(/^_/, '')) || kernels.includes(kernel)
        ? CANDIDATES.filter(ok) : [];
    }
    support.backends[backend] = { kernels: [...new Set(kernels)].sort(), fused };
  }
  process.stdout.write(JSON.stringify(support, null, 1) + '\n');
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
