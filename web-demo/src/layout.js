// Tensor layout helpers on flat row-major arrays.
//
// metadata.json gives, per artifact tensor, `perm` with NumPy semantics:
// artifact_tensor = transpose(torch_tensor, perm). Transposing in plain JS (instead of on a TF.js backend)
// lets the TF.js and ONNX Runtime paths share one implementation and keeps the timed region to the model.

export function inversePerm(perm) {
  const inv = new Array(perm.length);
  perm.forEach((axis, i) => { inv[axis] = i; });
  return inv;
}

export function sizeOf(shape) {
  return shape.reduce((a, b) => a * b, 1);
}

function stridesOf(shape) {
  const strides = new Array(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) strides[i] = strides[i + 1] * shape[i + 1];
  return strides;
}

function isIdentity(perm) {
  return perm.every((axis, i) => axis === i);
}

// Returns {data, shape} of np.transpose(data.reshape(shape), perm), in a typed array of the same kind.
export function transposeFlat(data, shape, perm) {
  const outShape = perm.map((axis) => shape[axis]);
  if (isIdentity(perm)) return { data, shape: outShape };
  const inStrides = stridesOf(shape);
  // Stride in the input for each output axis, so the loop walks the output in order.
  const gather = perm.map((axis) => inStrides[axis]);
  const out = new data.constructor(data.length);
  const index = new Array(outShape.length).fill(0);
  let src = 0;
  for (let dst = 0; dst < out.length; dst++) {
    out[dst] = data[src];
    for (let axis = outShape.length - 1; axis >= 0; axis--) {
      index[axis]++;
      src += gather[axis];
      if (index[axis] < outShape[axis]) break;
      src -= gather[axis] * outShape[axis];
      index[axis] = 0;
    }
  }
  return { data: out, shape: outShape };
}
