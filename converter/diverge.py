"""Where an ONNX -> TensorFlow conversion starts to compute something else: the first diverging op.

onnx2tf's own per-op check (`check_onnx_tf_outputs_elementwise_close_full`) runs ONNX Runtime with every
intermediate tensor exposed as a graph output, and the Keras model it built with every op's output exposed,
on the same input. It only prints a table judged by an absolute tolerance, which random-weight models (with
tiny activations) pass everywhere. So we take the tensor pairs it compares, in its conversion (topological)
order, and judge them ourselves by the error relative to the ONNX tensor's scale, like every other parity
check here (docs/artifacts.md). The first op past the tolerance, in graph order, is the one to blame: all
the ops that feed it were still within tolerance.
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
    checked: int  # how many tensors were compared before and including this one

    def to_json(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        return (f"first diverging op: {self.op_type} node {self.node!r} (output {self.output!r}): "
                f"max abs {self.max_abs_err:.3g}, rel {self.max_rel_err:.3g}")


def find_first_diverging_op(onnx_path: Path, feeds: dict[str, np.ndarray], work: Path, tolerance: float,
                            keep_nchw: list[str] | None = None) -> DivergingOp | None:
    """Convert `onnx_path` again with onnx2tf's full per-op check on `feeds` (one case, in the TF model's
    layout, keyed by ONNX input name) and return the first op whose output differs beyond `tolerance`.

    None when every compared tensor agrees (the divergence is then in what follows onnx2tf's model, e.g.
    the SavedModel wrapper). Runs onnx2tf in `work` (created, and removed afterwards).
    """
    from .stages.saved_model import _offline_workdir, _remove_tree, import_tensorflow

    import_tensorflow()
    import onnx
    import onnx2tf
    import onnx2tf.onnx2tf as onnx2tf_main

    captured: dict = {}
    validate = onnx2tf_main.onnx_tf_tensor_validation
    passthrough = onnx2tf_main.apply_nonzero_passthrough_tf

    def record_pairs(*, output_pairs, **kwargs):
        captured["pairs"] = output_pairs
        return validate(output_pairs=output_pairs, **kwargs)

    def record_graph(*, graph, tf_layers_dict, **kwargs):
        captured["graph"] = graph
        return passthrough(graph=graph, tf_layers_dict=tf_layers_dict, **kwargs)

    data = []
    for i, (name, value) in enumerate(feeds.items()):
        path = work / f"diverge_input_{i}.npy"
        data.append([name, str(path), value])
    onnx2tf_main.onnx_tf_tensor_validation = record_pairs
    onnx2tf_main.apply_nonzero_passthrough_tf = record_graph
    try:
        with _offline_workdir(work, 0):
            for name, path, value in data:
                np.save(path, value)
            onnx2tf.convert(
                input_onnx_file_path=str(onnx_path), output_folder_path=str(work / "out"),
                disable_model_save=True, keep_ncw_or_nchw_or_ncdhw_input_names=keep_nchw or None,
                custom_input_op_name_np_data_path=[[name, path] for name, path, _ in data],
                check_onnx_tf_outputs_elementwise_close_full=True, verbosity="error",
            )
    finally:
        onnx2tf_main.onnx_tf_tensor_validation = validate
        onnx2tf_main.apply_nonzero_passthrough_tf = passthrough
        _remove_tree(work)
    pairs = captured.get("pairs")
    if not pairs:
        raise RuntimeError("onnx2tf's per-op check did not run (see the log)")
    producers = _producers(captured.get("graph"), onnx.load(str(onnx_path), load_external_data=False))
    for checked, ((onnx_name, _tf_name), (expected, got)) in enumerate(pairs.items(), 1):
        expected = np.asarray(expected)
        if expected.dtype.kind not in "fc" or expected.size == 0:
            continue  # integer and boolean tensors (shapes, masks) are judged through the float ops they feed
        error = _error(expected, np.asarray(got))
        if error is None:
            continue  # removed by onnx2tf's optimisations, or a shape with no transpose in common
        max_abs, scale = error
        rel = max_abs / max(scale, SCALE_FLOOR)
        if not np.isfinite(max_abs) or rel > tolerance:
            node, op_type = producers.get(onnx_name, (onnx_name, "?"))
            return DivergingOp(node, op_type, onnx_name, list(expected.shape), float(max_abs), float(rel),
                               float(scale), checked)
    return None


def _error(expected: np.ndarray, got: np.ndarray) -> tuple[float, float] | None:
    """(max abs error, max |expected|) under the transpose of `got` that fits best; None if none fits."""
    if got.dtype == np.bool_ or got.size != expected.size:
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


def _producers(graph, model) -> dict[str, tuple[str, str]]:
    """Tensor name -> (node name, op type), from the graph onnx2tf converted (after its simplifications),
    falling back to the original ONNX file."""
    found: dict[str, tuple[str, str]] = {}
    for node in model.graph.node:
        for out in node.output:
            found[out] = (node.name, node.op_type)
    if graph is not None:
        for node in graph.nodes:
            for out in node.outputs:
                found.setdefault(out.name, (node.name, node.op))
    return found


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
    feeds = {b.name: to_artifact(case[b.name], b.perm) for b in artifact.inputs}
    keep = [s.name for s in ctx.inputs if len(s.shape) == 3]  # as build_tf_model asks onnx2tf
    try:
        found = find_first_diverging_op(ctx.work / onnx_artifact.path, feeds, ctx.work / ".diverge",
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
