// The parity check against golden/golden.json (PyTorch's own outputs), with the error measure of parity.js.
import { typedInput } from './artifactIo.js';
import { compareAll, passes } from './parity.js';

// WebGL backends compute in 16-bit floats on many GPUs, so fp32 models are held to the fp16 tolerance there.
const LOOSER_BACKENDS = new Set(['webgl']);

export function toleranceFor(golden, precision, backend) {
  const base = golden.tolerances[precision];
  if (base === undefined) throw new Error(`golden.json has no tolerance for precision ${precision}`);
  if (!LOOSER_BACKENDS.has(backend)) return { tolerance: base, loosened: false };
  return { tolerance: Math.max(base, golden.tolerances.fp16), loosened: true };
}

export function caseInputs(golden, meta, index) {
  const goldenCase = golden.cases[index];
  return Object.fromEntries(meta.inputs.map((spec) => [spec.name, typedInput(goldenCase.inputs[spec.name], spec)]));
}

export async function checkGolden(predictor, golden, meta, tolerance) {
  const groups = meta.outputs.map(() => []);
  for (let i = 0; i < golden.cases.length; i++) {
    const outputs = await predictor.predict(caseInputs(golden, meta, i));
    meta.outputs.forEach((spec, k) => groups[k].push([outputs[spec.name], golden.cases[i].outputs[spec.name]]));
  }
  const result = compareAll(groups);
  return { passed: passes(result, tolerance), maxAbsErr: result.maxAbsErr, maxRelErr: result.maxRelErr, tolerance };
}
