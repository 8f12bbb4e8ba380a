// Finds the converted model folder from the page URL and reads its JSON files, with errors a user can act on.

export class DemoError extends Error {}

// The folder comes from ?model=...; it must be on the page's own origin, so the page never fetches (or runs)
// code-adjacent data from elsewhere. The CSP's connect-src enforces the same; this check explains it.
export function resolveModelUrl(location) {
  const param = new URL(location.href).searchParams.get('model');
  if (!param) {
    throw new DemoError('No model given. Open this page with ?model=<converted folder>/, for example ?model=model/');
  }
  const url = new URL(param.endsWith('/') ? param : `${param}/`, location.href);
  if (url.origin !== location.origin) {
    throw new DemoError(`Refused to load a model from ${url.origin}: only models on this site (${location.origin}) are allowed.`);
  }
  return url;
}

export async function fetchJson(url, what) {
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new DemoError(`Could not fetch ${what} from ${url}: ${err.message}`);
  }
  if (!response.ok) throw new DemoError(`${what} not found at ${url} (HTTP ${response.status}).`);
  try {
    return await response.json();
  } catch (err) {
    throw new DemoError(`${what} at ${url} is not valid JSON: ${err.message}`);
  }
}

function requireField(value, path) {
  if (value === undefined || value === null) throw new DemoError(`metadata.json has no ${path}; is this a converted folder?`);
  return value;
}

function validateArtifact(meta, name) {
  const artifact = requireField(meta.artifacts?.[name], `artifacts.${name}`);
  requireField(artifact.path, `artifacts.${name}.path`);
  for (const io of ['inputs', 'outputs']) {
    requireField(artifact[io], `artifacts.${name}.${io}`).forEach((t, i) => {
      requireField(t.artifact_name, `artifacts.${name}.${io}[${i}].artifact_name`);
      requireField(t.perm, `artifacts.${name}.${io}[${i}].perm`);
    });
  }
}

// Checks the parts of the contract (docs/artifacts.md) the page relies on, before anything is loaded.
// The ONNX and TFLite models are optional: without them the page shows TF.js alone.
export function validateMetadata(meta) {
  if (meta.format !== 1) throw new DemoError(`metadata.json has format ${meta.format}; this demo reads format 1.`);
  requireField(meta.inputs, 'inputs');
  requireField(meta.outputs, 'outputs');
  validateArtifact(meta, 'tfjs');
  for (const name of ['onnx', 'tflite_fp32']) if (meta.artifacts[name]) validateArtifact(meta, name);
  return meta;
}
