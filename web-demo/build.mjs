// Builds the static demo into web-demo/dist: ES-module bundles for the demo page, the benchmark page and the
// browser stage's check page
// (sharing chunks; ONNX Runtime and WebGPU load lazily on the demo), the pages, and the runtimes' wasm
// binaries, all addressed by relative URLs.
import { build } from 'esbuild';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, 'dist');
const require = createRequire(import.meta.url);
// The runtimes keep their wasm files beside their main entry, LiteRT.js one folder up (onnxruntime-web exports
// no package.json).
const distDir = (name) => path.dirname(require.resolve(name));

// The wasm files each runtime fetches at start-up, and the dist sub-folder the sources point them to.
const WASM = [
  { dir: 'tfjs-wasm', from: distDir('@tensorflow/tfjs-backend-wasm'),
    files: ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'] },
  // ONNX Runtime Web: its wasm build, and the one its WebGPU build runs on.
  { dir: 'ort', from: distDir('onnxruntime-web'),
    files: ['ort-wasm-simd-threaded.wasm', 'ort-wasm-simd-threaded.asyncify.wasm'] },
  // LiteRT.js loads a build's .js loader (a classic script) and that loads its .wasm: relaxed SIMD on one
  // thread, the threaded one, and the compat one for browsers without relaxed SIMD.
  { dir: 'litert', from: path.join(distDir('@litertjs/core'), '..', 'wasm'),
    files: ['litert_wasm_internal', 'litert_wasm_threaded_internal', 'litert_wasm_compat_internal']
      .flatMap((name) => [`${name}.js`, `${name}.wasm`]) },
];

await rm(dist, { recursive: true, force: true });
await build({
  entryPoints: ['main.js', 'bench.js', 'check.js'].map((file) => path.join(here, 'src', file)),
  outdir: dist,
  bundle: true,
  splitting: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  logLevel: 'warning',
});
for (const file of ['index.html', 'bench.html', 'check.html', 'style.css']) await copyFile(path.join(here, file), path.join(dist, file));
for (const { dir, from, files } of WASM) {
  await mkdir(path.join(dist, dir), { recursive: true });
  for (const file of files) await copyFile(path.join(from, file), path.join(dist, dir, file));
}
console.log(`built ${path.relative(process.cwd(), dist)}`);
