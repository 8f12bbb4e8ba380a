// Moves tensors between PyTorch's layout (what users and golden.json speak) and one artifact's layout,
// following metadata.artifacts.<name>.inputs/outputs. Runtimes only ever see artifact-layout tensors.
import { inversePerm, sizeOf, transposeFlat } from './layout.js';

const ARRAY_TYPES = { float32: Float32Array, int32: Int32Array, int64: Float64Array };

// Typed array for one PyTorch-layout input; int64 is held as float64 (exact below 2^53) until a runtime
// converts it to what it takes (int32 in TF.js, BigInt64 in ONNX Runtime).
export function typedInput(values, spec) {
  const Type = ARRAY_TYPES[spec.dtype];
  if (!Type) throw new Error(`input ${spec.name} has dtype ${spec.dtype}, which the demo cannot feed`);
  const expected = sizeOf(spec.shape);
  if (values.length !== expected) {
    throw new Error(`input ${spec.name} needs ${expected} values (shape ${spec.shape.join('x')}), got ${values.length}`);
  }
  return Type.from(values);
}

// torchInputs: {name: typed array}. Returns [{name (artifact's), data, shape, dtype}] in artifact order.
export function toArtifact(artifact, meta, torchInputs) {
  return artifact.inputs.map((spec) => {
    const torchSpec = meta.inputs.find((t) => t.name === spec.name);
    const { data, shape } = transposeFlat(torchInputs[spec.name], torchSpec.shape, spec.perm);
    return { name: spec.artifact_name, data, shape, dtype: torchSpec.dtype };
  });
}

// artifactOutputs: {artifact_name: {data, shape}}. Returns {torch name: Float32Array} in PyTorch layout.
export function fromArtifact(artifact, artifactOutputs) {
  const result = {};
  for (const spec of artifact.outputs) {
    const { data, shape } = artifactOutputs[spec.artifact_name];
    result[spec.name] = Float32Array.from(transposeFlat(data, shape, inversePerm(spec.perm)).data, Number);
  }
  return result;
}
