"""ONNX -> TensorFlow SavedModel with onnx2tf, run in TensorFlow.

onnx2tf builds a Keras model in seconds, but its own SavedModel writer spends most of a minute serialising
Keras layer metadata (three times when it also writes .tflite files). The artifacts need none of it, so
onnx2tf only builds the model (disable_model_save) and we save one plain tf.function signature.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import numpy as np

from ..errors import ConversionError, first_line
from ..layout import (Binding, candidate_perms, channels_last, fitting_perms, from_artifact, identity, permute_layout,
                      to_artifact)
from ..parity import SCALE_FLOOR
from .base import IO_RECORD, Arrays, Artifact, Context, Handoff, Stage, io_record
from .onnx2tf_fixes import (blocked_reductions, channels_last_add, checked_once, computed_conv_weights,
                             constant_concats, constant_layouts_kept, cumulative_axes, equal_dims_channels_last,
                             elementwise_layouts_kept, gathers_in_onnx_layout, leading_axis_transposes, matmuls_in_onnx_layout,
                             onnx_layout_broadcasts, onnx_side_data, onnx_side_path, reductions_flagged,
                             transposed_conv_inputs, transposed_inputs_flagged, triangles_in_onnx_layout)
from .onnx_rewrites import onnx_for_onnx2tf

# onnx2tf loads this file from the working directory, or downloads it from the internet, whenever every
# input looks like an NHWC image batch; it only feeds onnx2tf's internal dummy inference.
ONNX2TF_SAMPLE_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"


# The TFLite stages convert the SavedModel's function from memory instead of reloading it from disk.
TF_MODEL = Handoff("tf_model", "(tf.Module holder, ConcreteFunction serving_default, Keras model) of the SavedModel")
ONEDNN_MAYBE_ON = False  # TensorFlow was imported before import_tensorflow, without oneDNN turned off


def import_tensorflow():
    """Import TensorFlow with its C++ start-up logs turned down (the rest goes to the stage's log file)."""
    global ONEDNN_MAYBE_ON
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # oneDNN's graph rewrites depend on the CPU that converts (AVX-512 machines get _MklLayerNorm and
    # fused activations that no TF.js backend has): the artifacts must be the same bytes on every machine.
    # TensorFlow reads this once per process; if it was imported before with oneDNN possibly on, the
    # graph-writing step that depends on it runs in a child process (tfjs.write_graph_model).
    if "tensorflow" in sys.modules and os.environ.get("TF_ENABLE_ONEDNN_OPTS") != "0":
        ONEDNN_MAYBE_ON = True
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
    # tensorflowjs imports tensorflow_decision_forests, whose welcome banner imports IPython when stdout is
    # not a terminal (as inside our log capture).
    os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")
    import tensorflow as tf

    return tf


@contextlib.contextmanager
def _offline_workdir(folder: Path, seed: int):
    """Run onnx2tf in a folder of ours that already holds its sample data, so it never reaches the network."""
    folder.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(seed).random((20, 128, 128, 3), dtype=np.float32)
    np.save(folder / ONNX2TF_SAMPLE_FILE, data)
    previous = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


def run_onnx2tf(onnx_path: Path, scratch: Path, keep: list[str], seed: int, sample: dict[str, np.ndarray]):
    """onnx2tf's Keras model of `onnx_path` (rewritten by onnx_for_onnx2tf first), built in `scratch`, which is
    removed afterwards. The one place that calls onnx2tf: the saved_model and TFLite builds and the
    first-diverging-op search must convert alike. `sample` is one input case, keyed by input name."""
    try:
        scratch.mkdir(parents=True, exist_ok=True)
        source = onnx_for_onnx2tf(onnx_path, scratch / "model.onnx2tf.onnx")
        missing = onnx2tf_unsupported_ops(source)
        if missing:
            raise ConversionError(f"onnx2tf has no conversion for these ONNX ops: {', '.join(missing)}",
                                  stage="saved_model", unsupported_ops=missing,
                                  hint="replace those ops in the model, or convert with --targets onnx,torchscript,ptl")
        import onnx2tf

        with _offline_workdir(scratch, seed), constant_layouts_kept(), channels_last_add(), blocked_reductions(), \
                leading_axis_transposes(), equal_dims_channels_last(), computed_conv_weights(), cumulative_axes(), \
                constant_concats(), onnx_layout_broadcasts(), elementwise_layouts_kept(), onnx_side_data(), \
                matmuls_in_onnx_layout(), transposed_conv_inputs(), transposed_inputs_flagged(), \
                triangles_in_onnx_layout(), reductions_flagged(), gathers_in_onnx_layout(), checked_once():
            return onnx2tf.convert(
                input_onnx_file_path=str(source),
                output_folder_path=str(scratch / "out"),
                disable_model_save=True,
                keep_ncw_or_nchw_or_ncdhw_input_names=keep or None,
                custom_input_op_name_np_data_path=_strict_mode_data(sample, keep, scratch),
                # Strict mode (the default) runs the model up to many ops to choose their transposes, which
                # keeps ambiguous shapes right; checked_once runs each layer once for all of them.
                # A grouped convolution that onnx2tf does not recognise as depthwise becomes a grouped Conv2D,
                # which TF.js cannot run ("depth of input (48) must match input depth for filter 1":
                # shufflenet, resnext, regnet): split, convolve and concatenate instead.
                disable_group_convolution=True,
                verbosity="error",
            )
    finally:
        _remove_tree(scratch)


def _strict_mode_data(sample: dict[str, np.ndarray], keep: list[str], folder: Path) -> list | None:
    """onnx2tf's per-op data for a model that is not all 3-channel images: our own input case, as .npy files in
    the layout onnx2tf gives its inputs, each beside a copy in ONNX's layout (onnx2tf_fixes.onnx_side_data).

    Strict mode chooses each op's transposes by running it on data and comparing with ONNX Runtime. Unless
    every input is a 3-channel image (then it uses its sample images, which _offline_workdir provides), that
    data is np.ones: every token the same id, a constant waveform, a constant feature map. Then a square
    attention score matrix equals its transpose, and onnx2tf may pick the transposed one: wav2vec2's scores came
    out transposed and the softmax ran over the wrong axis (relative error 0.059 there). On a constant 8-channel
    map, height and width cannot be told apart either (tests/models/small.py:square_block).
    """
    if all(a.ndim == 4 and a.dtype.kind == "f" and a.shape[1] == 3 and a.shape[0] <= 20 and name not in keep
           for name, a in sample.items()):
        return None
    data = []
    for name, array in sample.items():
        path = folder / f"strict_{len(data)}.npy"
        np.save(onnx_side_path(path), np.ascontiguousarray(array))
        if array.ndim in (4, 5) and name not in keep:  # onnx2tf makes these channels-last
            array = np.moveaxis(array, 1, -1)
        np.save(path, np.ascontiguousarray(array))
        data.append([name, str(path)])
    return data


def build_tf_model(ctx: Context):
    """onnx2tf's Keras model wrapped in one tf.function signature named after PyTorch's tensors.

    Returns (module to save, concrete function, input bindings, output bindings, Keras model, notes).
    """
    onnx_path = ctx.work / ctx.artifacts["onnx"].path
    tf = import_tensorflow()
    # Rank-3 inputs are far more often sequences (batch, length, features) than NCW signals: keep them.
    keep = [s.name for s in ctx.inputs if len(s.shape) == 3]
    try:
        keras_model = run_onnx2tf(onnx_path, ctx.work / ".onnx2tf", keep, ctx.options.seed, dict(ctx.cases.inputs[0]))
    except ConversionError:
        raise
    except (Exception, SystemExit) as exc:
        # onnx2tf reports some failures by calling sys.exit after logging the cause.
        raise ConversionError(f"onnx2tf failed: {first_line(exc) or 'see the log'}", stage="saved_model",
                              hint="see logs/saved_model.log for the failing ONNX node") from exc

    inputs = [_bind(spec, list(t.shape), spec.name) for spec, t in zip(ctx.inputs, keras_model.inputs)]
    specs = [tf.TensorSpec(_signature_shape(b, spec), spec.dtype, name=spec.name) for b, spec in zip(inputs, ctx.inputs)]
    transposes, notes = _transposes_by_data(ctx, keras_model, inputs)

    @tf.function(input_signature=specs)
    def serving_default(*args):
        result = keras_model(list(args) if len(args) > 1 else args[0], training=False)
        result = result if isinstance(result, (list, tuple)) else [result]
        return {o.name: tf.transpose(t, transposes[o.name]) if o.name in transposes else tf.identity(t)
                for o, t in zip(ctx.outputs, result)}

    concrete = serving_default.get_concrete_function()
    holder = tf.Module()
    # Tracked, so the weights are saved with the function. onnx2tf creates some variables outside its
    # layers (shufflenet's depthwise kernels): the ones the function reads come from its graph.
    known = {id(v) for v in keras_model.variables}
    holder.variables_ = list(keras_model.variables) + [v for v in concrete.graph.variables if id(v) not in known]
    holder.serving_default = serving_default
    outputs_sig = concrete.structured_outputs
    outputs = [_bind(spec, outputs_sig[spec.name].shape.as_list(), spec.name) for spec in ctx.outputs]
    return holder, concrete, inputs, outputs, keras_model, notes


def _transposes_by_data(ctx: Context, keras_model, inputs: list[Binding]) -> tuple[dict[str, list[int]], list[str]]:
    """For each output whose shape cannot tell its layout (several axes of one length), the transpose that brings
    what onnx2tf made to the layout the rule gives (channels-last for rank 4 and 5), found by comparing the
    model's output on the first case with PyTorch's under every perm that fits the shape. The shape-based rule
    trusts onnx2tf's layout tracking, which goes wrong where the axes are equal: before equal_dims_channels_last,
    timm's maxvit_rmlp_nano_rw_256 cut after its first stage (1x64x64x64) ended as N,W,C,H, off by 1.25 of the
    output's scale when read as NHWC. This check holds whatever onnx2tf does next. An output that onnx2tf
    transposed in a way its rule never does (torch.cdist's [2, 5] distances came out [5, 2]) is placed the same
    way, at the layout the rule would give it; parity then says whether the values are PyTorch's."""
    shapes = [list(t.shape) for t in keras_model.outputs]
    ambiguous = [i for i, spec in enumerate(ctx.outputs) if len(fitting_perms(spec.shape, shapes[i])) > 1
                 or not candidate_perms(spec.shape, shapes[i]) and fitting_perms(spec.shape, shapes[i])]
    if not ambiguous or not ctx.reference:
        return {}, []
    case = ctx.cases.inputs[0]
    args = [to_artifact(case[b.name], b.perm) for b in inputs]
    result = keras_model(args if len(args) > 1 else args[0], training=False)
    result = result if isinstance(result, (list, tuple)) else [result]
    transposes, notes = {}, []
    for i in ambiguous:
        spec = ctx.outputs[i]
        value, want = np.asarray(result[i], np.float64), np.asarray(ctx.reference[0][spec.name], np.float64)

        def error(perm: list[int]) -> float:
            moved = from_artifact(value, perm)
            return float(np.max(np.abs(moved - want), initial=0.0)) if moved.shape == want.shape else np.inf

        natural = channels_last(len(spec.shape)) if len(spec.shape) in (4, 5) else identity(len(spec.shape))
        rule = _bind(spec, shapes[i], spec.name).perm if candidate_perms(spec.shape, shapes[i]) else natural
        # The rule stands while it is within the fp32 tolerance (a nearly symmetric output fits several).
        found = rule
        if error(rule) > ctx.options.tolerances["fp32"] * max(float(np.max(np.abs(want), initial=0.0)), SCALE_FLOOR):
            found = min(fitting_perms(spec.shape, shapes[i]), key=error)
        if found != rule:
            transposes[spec.name] = [found.index(axis) for axis in rule]
            notes.append(f"output {spec.name!r}: onnx2tf left it as {permute_layout(spec.layout, found)} (its shape "
                         f"{'x'.join(map(str, spec.shape))} cannot tell); transposed to "
                         f"{permute_layout(spec.layout, rule)}, checked on the first case")
    return transposes, notes


class SavedModelStage(Stage):
    name = target = "saved_model"
    after = "onnx"
    gives = (TF_MODEL,)
    worker = "tf"

    def warm_up(self) -> None:
        import_tensorflow()

    def diagnose(self, ctx: Context, result) -> None:
        from ..diverge import annotate  # re-runs onnx2tf with its per-op check: only on failure
        from ..errors import ParityError

        if isinstance(result.error, ParityError):
            annotate(ctx, result)

    def convert(self, ctx: Context) -> Artifact:
        tf = import_tensorflow()
        holder, concrete, inputs, outputs, keras_model, notes = build_tf_model(ctx)
        tf.saved_model.save(holder, str(ctx.work / "saved_model"), signatures={"serving_default": concrete})
        # assets.extra/ is TensorFlow's place for files that travel with a SavedModel but are not part of it.
        extra = ctx.work / "saved_model" / "assets.extra"
        extra.mkdir(exist_ok=True)
        (extra / IO_RECORD).write_text(io_record(ctx, inputs, outputs))
        ctx.give(TF_MODEL, (holder, concrete, keras_model))
        return Artifact(Path("saved_model"), "fp32", inputs, outputs, notes)

    def run(self, ctx: Context, artifact: Artifact, cases: list[Arrays]) -> list[Arrays]:
        tf = import_tensorflow()
        function = tf.saved_model.load(str(ctx.work / artifact.path)).signatures["serving_default"]
        results = []
        for case in cases:
            out = function(**{name: tf.constant(value) for name, value in case.items()})
            results.append({o.name: out[o.name].numpy() for o in ctx.outputs})
        return results


def onnx2tf_unsupported_ops(onnx_path: Path) -> list[str]:
    """ONNX op types onnx2tf has no converter module for (it looks up `onnx2tf.ops.<OpType>` per node and stops
    at the first missing one): all of them, found before the conversion starts."""
    import importlib.util

    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    local = {f.name for f in model.functions}
    seen: set[str] = set()

    def walk(nodes) -> None:
        for node in nodes:
            if node.op_type not in local:
                seen.add(node.op_type)
            for attribute in node.attribute:  # the bodies of If, Loop and Scan
                for graph in [attribute.g, *attribute.graphs]:
                    walk(graph.node)

    walk(model.graph.node)
    for function in model.functions:
        walk(function.node)
    # Looked up as files, without importing onnx2tf (and TensorFlow with it).
    ops_dir = Path(importlib.util.find_spec("onnx2tf").origin).parent / "ops"
    return sorted(op for op in seen if not op.isidentifier() or not (ops_dir / f"{op}.py").is_file())


def _bind(spec, artifact_shape: list, artifact_name: str) -> Binding:
    perms = candidate_perms(spec.shape, artifact_shape)
    if not perms:
        raise ConversionError(f"{spec.name}: onnx2tf made shape {artifact_shape} from {list(spec.shape)}",
                              stage="saved_model", hint="report the model; the layout change is not a transpose")
    # When both the identity and channels-last fit (e.g. 1x3x3x3), onnx2tf's rule for 4-D and 5-D
    # tensors is channels-last.
    perm = perms[-1] if len(spec.shape) in (4, 5) else perms[0]
    return Binding(spec.name, artifact_name, [spec.shape[i] for i in perm], permute_layout(spec.layout, perm), perm)


def _signature_shape(binding: Binding, spec) -> list:
    """The artifact's input shape with the dynamic axes (moved by the perm) left open."""
    open_axes = {binding.perm.index(axis) for axis in spec.dynamic_axes}
    return [None if i in open_axes else int(d) for i, d in enumerate(binding.shape)]


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
