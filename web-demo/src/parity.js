// The error measure of docs/artifacts.md, shared by the golden check and the TF.js-vs-ORT agreement.

// `groups` holds one list per output of [actual, reference] flat arrays (one pair per case). Each output is
// scaled by its own reference, like converter/parity.py, and the worst output decides.
export function compareAll(groups) {
  let maxAbsErr = 0;
  let maxRelErr = 0;
  let finite = true;
  for (const pairs of groups) {
    let outputAbs = 0;
    let scale = 0;
    for (const [actual, ref] of pairs) {
      if (actual.length !== ref.length) {
        throw new Error(`output has ${actual.length} values, the reference ${ref.length}`);
      }
      for (let i = 0; i < ref.length; i++) {
        const y = Number(actual[i]);
        const r = Number(ref[i]);
        if (!Number.isFinite(y) || !Number.isFinite(r)) finite = false;
        outputAbs = Math.max(outputAbs, Math.abs(y - r));
        scale = Math.max(scale, Math.abs(r));
      }
    }
    maxAbsErr = Math.max(maxAbsErr, outputAbs);
    // Relative to the reference's scale, so models with tiny outputs cannot pass on absolute error alone.
    maxRelErr = Math.max(maxRelErr, outputAbs / Math.max(scale, 1e-12));
  }
  return { maxAbsErr, maxRelErr, finite };
}

export function passes(result, tolerance) {
  return result.finite && result.maxRelErr <= tolerance;
}

export function argmax(values) {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

export function softmax(logits) {
  const max = Math.max(...logits);
  const exps = Array.from(logits, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

// Indices and probabilities of the k largest softmax scores, best first.
export function topK(logits, k) {
  const probs = softmax(logits);
  return probs
    .map((p, index) => ({ index, p }))
    .sort((a, b) => b.p - a.p)
    .slice(0, k);
}

// For a score vector (shape [N, C], C > 1): whether every row's argmax matches. null for other shapes.
export function sameTop1(actual, ref, shape) {
  if (shape.length !== 2 || shape[1] < 2) return null;
  const [rows, cols] = shape;
  for (let r = 0; r < rows; r++) {
    const slice = (values) => values.slice(r * cols, (r + 1) * cols);
    if (argmax(slice(actual)) !== argmax(slice(ref))) return false;
  }
  return true;
}
