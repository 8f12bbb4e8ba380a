// How many threads the wasm runtimes (TF.js wasm, ONNX Runtime Web, LiteRT.js) use on this page.
//
// Threads need SharedArrayBuffer, which browsers give only to cross-origin-isolated pages: the server must
// send `Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy: require-corp` (our
// `python -m converter serve` does; docs/artifacts.md says what a static host must send). Elsewhere the
// page runs on one thread and says why.

// ?threads=N asks for N (1 forces one thread); otherwise an isolated page uses every logical core.
export function requestedThreads(location = globalThis.location) {
  if (!location) return null; // a worker of a runtime imports this module too
  const asked = Number(new URL(location.href).searchParams.get('threads'));
  return Number.isInteger(asked) && asked > 0 ? asked : null;
}

export function isolated() {
  return globalThis.crossOriginIsolated === true && typeof SharedArrayBuffer === 'function';
}

// The thread count the wasm runtimes are configured with before they start.
export function wasmThreadCount(fallback = null) {
  if (!isolated()) return 1;
  return requestedThreads() ?? fallback ?? Math.max(1, navigator.hardwareConcurrency || 1);
}

// One line for the page: how many threads each runtime runs with, and why not more. TF.js's wasm backend
// caps its XNNPACK pool at half of navigator.hardwareConcurrency (it assumes two hyper-threads per core).
// The second argument holds ONNX Runtime Web's and LiteRT.js's counts, each left out until that runtime loaded.
export function describeThreads(tfjs, { ort = null, litert = null } = {}) {
  const counts = `TF.js ${tfjs ?? '?'}` + (ort === null ? '' : `, ONNX Runtime Web ${ort}`) +
    (litert === null ? '' : `, LiteRT.js ${litert}`);
  if (isolated()) return `wasm threads: ${counts} (cross-origin isolated; TF.js uses at most half the logical cores)`;
  return `wasm threads: ${counts}: this page is not cross-origin isolated (its server sends no COOP/COEP headers)`;
}
