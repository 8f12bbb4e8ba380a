"""Where an ONNX -> TensorFlow conversion starts to compute something else: the first diverging op.

Both sides of the saved_model stage run on the same input with every intermediate tensor exposed: ONNX
Runtime with every node output added as a graph output, and onnx2tf's Keras model rebuilt with every
converted op's output as a model output (onnx2tf's own per-op check, `check_onnx_tf_outputs_elementwise_
close_full`, does the same, but only with its model writers running first and only printing a table judged
by an absolute tolerance, which random-weight models with tiny activations pass everywhere). The tensors are
compared in onnx2tf's conversion order (topological), by the error relative to the ONNX tensor's scale like
every other parity check here (docs/artifacts.md); the first op past the tolerance is the one to blame.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .parity import SCALE_FLOOR


@dataclass
class DivergingOp:
    node: str  # the ONNX node's name
    op_type: str
    output: str  # the tensor that diverged
    shape: list[int]
    max_abs_err: float
    max_rel_err: float
    reference_scale: float  # max |ONNX Runtime's tensor|
    checked: int  # how many tensors were compared, this one included

    def to_json(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        return (f"first diverging op: {self.op_type} node {self.node!r} (output {self.output!r}): "
                f"max abs {self.max_abs_err:.3g}, rel {self.max_rel_err:.3g}")


def find_first_diverging_op(onnx_path: Path, onnx_feeds: dict[str, np.ndarray], tf_feeds: dict[str, np.ndarray],
                            work: Path, tolerance: float, keep_nchw: list[str] | None = None) -> DivergingOp | None:
    """The first ONNX op whose TF output differs from ONNX Runtime's beyond `tolerance` (relative).

    `onnx_feeds` and `tf_feeds` hold one case keyed by ONNX input name, in ONNX's and in the TF model's
    layout. onnx2tf converts `onnx_path` again (in `work`, removed afterwards) with the flags the
    saved_model stage uses. None when every compared tensor agrees.
    """
    import onnx

    from .stages.onnx_rewrites import onnx_for_onnx2tf

    from .stages.saved_model import _remove_tree

    work.mkdir(parents=True, exist_ok=True)
    try:
        # The graph onnx2tf converts (run_onnx2tf rewrites it again, the same way, in its own folder).
        model = onnx.load(str(onnx_for_onnx2tf(onnx_path, work / "model.onnx2tf.onnx")))
        layers, keras_model = _convert_keeping_layers(onnx_path, work / "onnx2tf", keep_nchw, onnx_feeds)
    finally:
        _remove_tree(work)
    producers = {out: (node.name, node.op_type) for node in model.graph.node for out in node.output}
    input_names = [i.name for i in model.graph.input]
    # Tensors onnx2tf folded into constants (they have .numpy) are not in its model; its inputs agree by
    # construction. Names from its onnxsim pass that the original graph lacks cannot be fetched from ORT.
    names = [n for n, info in layers.items() if n in producers and n not in input_names
             and "tf_node" in info and not hasattr(info["tf_node"], "numpy")]
    expected = _onnx_intermediates(model, onnx_feeds, names)
    got = _tf_intermediates(keras_model, [layers[n]["tf_node"] for n in names], [tf_feeds[n] for n in input_names])
    for checked, name in enumerate(names, 1):
        want, have = expected.get(name), got.get(id(layers[name]["tf_node"]))
        if want is None or have is None or want.dtype.kind not in "fc" or want.size == 0:
            continue  # integer and boolean tensors (shapes, masks) are judged through the float ops they feed
        error = _error(want, have)
        if error is None:
            continue  # no transpose of the TF tensor has the ONNX tensor's shape
        max_abs, scale = error
        rel = max_abs / max(scale, SCALE_FLOOR)
        if not np.isfinite(max_abs) or rel > tolerance:
            node, op_type = producers[name]
            return DivergingOp(node, op_type, name, list(want.shape), float(max_abs), float(rel), float(scale),
                               checked)
    return None


def _convert_keeping_layers(onnx_path: Path, work: Path, keep_nchw: list[str] | None, sample: dict[str, np.ndarray]):
    """onnx2tf's Keras model and its per-tensor table (ONNX tensor name -> {"tf_node": ...}, in conversion
    order). onnx2tf keeps that table to itself; every graph input goes through its Input converter, which
    receives it, so a wrapper around that converter takes hold of it."""
    from .stages.saved_model import import_tensorflow, run_onnx2tf

    import_tensorflow()
    import onnx2tf.ops.Input as input_op

    seen: dict = {}
    original = input_op.make_node

    def make_node(*args, tf_layers_dict, **kwargs):
        seen["layers"] = tf_layers_dict
        return original(*args, tf_layers_dict=tf_layers_dict, **kwargs)

    input_op.make_node = make_node
    try:
        keras_model = run_onnx2tf(onnx_path, work, keep_nchw or [], 0, sample)
    finally:
        input_op.make_node = original
    if "layers" not in seen:
        raise RuntimeError("onnx2tf converted no graph input; cannot read its per-op table")
    return seen["layers"], keras_model


def _onnx_intermediates(model, feeds: dict[str, np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
    import onnx
    import onnxruntime as ort

    model = onnx.ModelProto.FromString(model.SerializeToString())
    present = {o.name for o in model.graph.output}
    model.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names if n not in present)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # Unoptimised, so that every node computes what it says (no fusions across the tensors we read).
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    wanted = [o.name for o in session.get_outputs() if o.name in set(names)]
    return dict(zip(wanted, (np.asarray(v) for v in session.run(wanted, feeds))))


def _tf_intermediates(keras_model, tensors: list, inputs: list[np.ndarray]) -> dict[int, np.ndarray]:
    """Every tensor in `tensors` (Keras tensors of onnx2tf's model), keyed by id(tensor)."""
    import tf_keras

    try:  # onnx2tf's own check builds this same model; the slow filter below is only a fallback
        tf_keras.Model(inputs=keras_model.inputs, outputs=tensors)
        reachable = list(tensors)
    except Exception:
        reachable = []
        for t in tensors:
            try:
                tf_keras.Model(inputs=keras_model.inputs, outputs=[t])
            except Exception:
                continue
            reachable.append(t)
    if not reachable:
        return {}
    probe = tf_keras.Model(inputs=keras_model.inputs, outputs=reachable)
    outputs = probe(inputs if len(inputs) > 1 else inputs[0], training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return {id(t): np.asarray(o) for t, o in zip(reachable, outputs)}


def _error(expected: np.ndarray, got: np.ndarray) -> tuple[float, float] | None:
    """(max abs error, max |expected|) under the transpose of `got` that fits best; None if none fits."""
    if got.dtype == np.bool_ or got.size != expected.size or got.ndim != expected.ndim:
        return None
    expected64 = expected.astype(np.float64)
    scale = float(np.max(np.abs(expected64))) if np.isfinite(expected64).all() else float("inf")
    best = None
    perms = itertools.permutations(range(got.ndim)) if got.ndim <= 6 else [tuple(range(got.ndim))]
    for perm in perms:
        moved = np.transpose(got, perm)
        if moved.shape != expected.shape:
            continue
        diff = np.abs(moved.astype(np.float64) - expected64)
        err = float(np.max(diff)) if diff.size else 0.0
        if np.isnan(err):
            err = float("inf")
        best = err if best is None else min(best, err)
        if best == 0.0:
            break
    return None if best is None else (best, scale)


def annotate(ctx, result) -> None:
    """Name the first diverging op in a saved_model stage result that failed parity: report key
    `first_diverging_op` and a line in its notes (report.html shows notes). Never raises: a failure to
    locate it becomes a note too."""
    from .errors import first_line
    from .layout import to_artifact

    artifact, onnx_artifact = ctx.artifacts.get("saved_model"), ctx.artifacts.get("onnx")
    if artifact is None or onnx_artifact is None:
        return
    case = ctx.cases.inputs[0]
    tf_feeds = {b.name: to_artifact(case[b.name], b.perm) for b in artifact.inputs}
    keep = [s.name for s in ctx.inputs if len(s.shape) == 3]  # as build_tf_model asks onnx2tf
    try:
        found = find_first_diverging_op(ctx.work / onnx_artifact.path, dict(case), tf_feeds, ctx.work / ".diverge",
                                        result.tolerance, keep)
    except (Exception, SystemExit) as exc:
        result.notes = [*result.notes, f"first diverging op: not located ({type(exc).__name__}: {first_line(exc)})"]
        return
    if found is None:
        result.notes = [*result.notes, "first diverging op: none; every onnx2tf op matched ONNX Runtime on the "
                                       "first case, so the difference comes after onnx2tf's model"]
        return
    result.extra = {**result.extra, "first_diverging_op": found.to_json()}
    result.notes = [*result.notes, found.describe()]
