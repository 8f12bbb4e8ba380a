// Builds the static demo into web-demo/dist: one ES-module bundle (with lazily loaded chunks for ONNX
// Runtime and WebGPU), the page, and the runtimes' wasm binaries, all addressed by relative URLs.
import { build } from 'esbuild';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, 'dist');
const require = createRequire(import.meta.url);
// Both packages keep their wasm files beside their main entry (onnxruntime-web exports no package.json).
const distDir = (name) => path.dirname(require.resolve(name));

// The wasm files each runtime fetches at start-up, and the dist sub-folder the sources point them to.
const WASM = [
  { dir: 'tfjs-wasm', from: distDir('@tensorflow/tfjs-backend-wasm'),
    files: ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'] },
  { dir: 'ort', from: distDir('onnxruntime-web'), files: ['ort-wasm-simd-threaded.wasm'] },
];

await rm(dist, { recursive: true, force: true });
await build({
  entryPoints: [path.join(here, 'src', 'main.js')],
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
await copyFile(path.join(here, 'index.html'), path.join(dist, 'index.html'));
await copyFile(path.join(here, 'style.css'), path.join(dist, 'style.css'));
for (const { dir, from, files } of WASM) {
  await mkdir(path.join(dist, dir), { recursive: true });
  for (const file of files) await copyFile(path.join(from, file), path.join(dist, dir, file));
}
console.log(`built ${path.relative(process.cwd(), dist)}`);
