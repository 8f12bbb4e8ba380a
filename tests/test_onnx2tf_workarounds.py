"""Workarounds in the ONNX and saved_model stages for limits of torch.export and onnx2tf (found by the zoo)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from converter.stages.onnx import _root_cause, _static_causal_check
from converter.stages.onnx_rewrites import onnx_for_onnx2tf


def _square_weight_model() -> onnx.ModelProto:
    """x @ Transpose(Split(W)[0]): a square weight transposed in the graph, as nn.MultiheadAttention's
    cross-attention exports (onnx2tf turned that Transpose into the identity)."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((8, 4)).astype(np.float32), "W")
    sizes = numpy_helper.from_array(np.array([4, 4], dtype=np.int64), "sizes")
    nodes = [helper.make_node("Split", ["W", "sizes"], ["w0", "w1"], axis=0, name="split"),
             helper.make_node("Transpose", ["w0"], ["w0t"], perm=[1, 0], name="transpose"),
             helper.make_node("MatMul", ["x", "w0t"], ["y"], name="matmul")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])], [weight, sizes])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


def test_constant_subgraphs_become_initializers_with_the_same_values(tmp_path):
    import onnxruntime as ort

    source = tmp_path / "m.onnx"
    onnx.save(_square_weight_model(), source)
    folded = onnx.load(onnx_for_onnx2tf(source, tmp_path / "folded.onnx"))
    assert [n.op_type for n in folded.graph.node] == ["MatMul"]
    assert folded.ir_version == 10  # ONNX Runtime 1.23 reads IR <= 11
    x = np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32)
    run = lambda path: ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]  # noqa: E731
    np.testing.assert_array_equal(run(source), run(tmp_path / "folded.onnx"))


def test_graph_without_constant_subgraphs_is_unchanged(tmp_path):
    model = _square_weight_model()
    del model.graph.node[:2]
    model.graph.node[0].input[1] = "W2"
    model.graph.initializer.append(numpy_helper.from_array(np.eye(4, dtype=np.float32), "W2"))
    onnx.save(model, tmp_path / "m.onnx")
    folded = onnx.load(onnx_for_onnx2tf(tmp_path / "m.onnx", tmp_path / "out.onnx"))
    assert [n.op_type for n in folded.graph.node] == ["MatMul"]
    assert {i.name for i in folded.graph.initializer} >= {"W2"}


def test_causal_check_is_static_only_while_exporting():
    import torch
    from torch.nn.modules import transformer

    causal = torch.nn.Transformer.generate_square_subsequent_mask(4)
    assert transformer._detect_is_causal_mask(causal) is True
    with _static_causal_check():
        assert transformer._detect_is_causal_mask(causal) is False  # the mask is still applied
        assert transformer._detect_is_causal_mask(causal, True) is True
    assert transformer._detect_is_causal_mask(causal) is True


def test_root_cause_is_the_innermost_exception_without_colour_codes():
    try:
        try:
            raise RuntimeError("Could not guard on data-dependent expression Eq(u0, 1)\nmore")
        except RuntimeError as inner:
            raise ValueError("Failed to export the model. \x1b[96mThis is step 1/3\x1b[0m") from inner
    except ValueError as exc:
        assert _root_cause(exc) == "RuntimeError: Could not guard on data-dependent expression Eq(u0, 1)"


def test_tflite_gets_erf_from_elementary_ops_without_a_second_onnx2tf_run(tmp_path, monkeypatch):
    import json
    import math
    import sys

    import torch
    from ai_edge_litert.interpreter import Interpreter

    from converter import Options, convert
    from converter.loading import LoadedModel
    from converter.stages import saved_model
    from converter.stages.tflite import _replacements
    sys.path.insert(0, str(Path(__file__).parent / "models"))
    from small import MlpLayerNormGelu

    x = np.linspace(-6, 6, 4001, dtype=np.float32)  # A&S's 1.5e-7, plus float32's rounding
    assert np.max(np.abs(_replacements()["math.erf"](x).numpy() - np.array([math.erf(v) for v in x.astype(np.float64)]))) < 6e-7

    real, calls = saved_model.run_onnx2tf, []
    monkeypatch.setattr(saved_model, "run_onnx2tf", lambda *args: calls.append(1) or real(*args))
    torch.manual_seed(0)
    model = LoadedModel(MlpLayerNormGelu().eval(), "tests/models/small.py:mlp_layernorm_gelu", "python", ["x"])
    # workers=False: the test counts onnx2tf's runs in this process.
    result = convert(model, Options([(2, 32)], tmp_path / "mlp", targets=("tflite",), random_cases=2, verbosity=0,
                                    workers=False))
    assert result.exit_code == 0, result.error
    assert len(calls) == 1
    stages = {s["name"]: s for s in json.loads((tmp_path / "mlp" / "report.json").read_text())["stages"]}
    for name in ("tflite_fp32", "tflite_fp16"):
        assert stages[name]["status"] == "passed"
        assert any(n.startswith("Erf built from elementary ops") for n in stages[name]["notes"])
    assert stages["tflite_fp32"]["max_rel_err"] < 1e-5
    interpreter = Interpreter(model_path=str(tmp_path / "mlp" / "tflite" / "model_float32.tflite"))
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert "EXP" in ops and not any("ERF" in op or "FLEX" in op or "CUSTOM" in op for op in ops)


def test_an_output_whose_shape_cannot_tell_its_layout_is_placed_by_its_values(tmp_path, monkeypatch):
    """Without equal_dims_channels_last, onnx2tf leaves the 1x8x8x8 map as N,W,C,H; the binding must not
    trust the shape (both NCHW and NHWC fit) but PyTorch's values."""
    import contextlib
    import json

    from converter import Options, convert
    from converter.loading import LoadedModel
    from converter.stages import saved_model
    sys.path.insert(0, str(Path(__file__).parent / "models"))
    from small import equal_dims_map

    monkeypatch.setattr(saved_model, "equal_dims_channels_last", contextlib.nullcontext)
    model = LoadedModel(equal_dims_map().eval(), "tests/models/small.py:equal_dims_map", "python", ["x"])
    # workers=False: the fix is switched off in this process only.
    result = convert(model, Options([(1, 3, 8, 8)], tmp_path / "map", targets=("tflite",), random_cases=2,
                                    verbosity=0, workers=False))
    assert result.exit_code == 0, result.error
    report = json.loads((tmp_path / "map" / "report.json").read_text())
    stage = next(s for s in report["stages"] if s["name"] == "saved_model")
    assert stage["status"] == "passed" and stage["max_rel_err"] < 1e-5
    assert any("onnx2tf left it as NWCH" in n and "transposed to NHWC" in n for n in stage["notes"])
    assert report["artifacts"]["tflite_fp32"]["outputs"][0]["perm"] == [0, 2, 3, 1]


def test_batched_matmul_einsums_become_matmul(tmp_path):
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    q, k = rng.standard_normal((2, 3, 4, 5)).astype(np.float32), rng.standard_normal((2, 3, 6, 5)).astype(np.float32)
    v = rng.standard_normal((2, 3, 6, 5)).astype(np.float32)
    nodes = [helper.make_node("Einsum", ["q", "k"], ["s"], equation="B H I D, B H J D -> B H I J", name="qk"),
             helper.make_node("Einsum", ["s", "v"], ["o"], equation="bhij,bhjd->bhid", name="sv"),
             helper.make_node("Einsum", ["o"], ["t"], equation="bhid->bhdi", name="one_operand")]
    tensor = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    graph = helper.make_graph(nodes, "g", [tensor("q", q.shape), tensor("k", k.shape), tensor("v", v.shape)],
                              [tensor("t", [2, 3, 5, 4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10), tmp_path / "e.onnx")
    out = onnx_for_onnx2tf(tmp_path / "e.onnx", tmp_path / "out.onnx")
    assert [n.op_type for n in onnx.load(out).graph.node] == ["Transpose", "MatMul", "MatMul", "Einsum"]
    feeds = {"q": q, "k": k, "v": v}
    run = lambda path: ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]  # noqa: E731
    np.testing.assert_allclose(run(out), run(tmp_path / "e.onnx"), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("equation, shapes", [
    ("byhwc,hkc->byhwk", [(2, 3, 4, 5, 6), (4, 7, 6)]),  # mvitv2's relative positions: h a batch axis of both
    ("bnd,d->bn", [(2, 3, 4), (4,)]),  # nothing kept of the second operand
    ("ij,bjk->bki", [(3, 4), (2, 4, 5)]),  # the batch axis only in the second operand's kept part
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),  # attention's scores, as before
    ("...hij,hjk->...hik", [(2, 4, 3, 5, 6), (3, 6, 7)]),  # an ellipsis in one operand: per-head weights
    ("...ij,...jk->...ik", [(2, 3, 4, 5), (3, 5, 6)]),  # ellipses of two ranks, right-aligned
])
def test_two_operand_einsums_become_transposes_reshapes_and_a_matmul(tmp_path, equation, shapes):
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    arrays = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in zip("xy", shapes)}
    tensor = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    expected = np.einsum(equation, arrays["x"], arrays["y"])
    graph = helper.make_graph([helper.make_node("Einsum", ["x", "y"], ["z"], equation=equation, name="e")], "g",
                              [tensor(n, a.shape) for n, a in arrays.items()], [tensor("z", expected.shape)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10), tmp_path / "e.onnx")
    out = onnx_for_onnx2tf(tmp_path / "e.onnx", tmp_path / "out.onnx")
    ops = [n.op_type for n in onnx.load(out).graph.node]
    assert "Einsum" not in ops and ops.count("MatMul") == 1
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, arrays)[0]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_slices_of_six_axes_run_on_five_or_fewer(tmp_path):
    """Slice (with and without its axes input), Split and Gather of a 6-axis tensor: each runs on the tensor with
    the axes it takes whole merged (TFLite's kernels take at most 5 axes), with the same values."""
    import onnxruntime as ort

    c = lambda name, values: numpy_helper.from_array(np.array(values, dtype=np.int64), name)  # noqa: E731
    constants = [c("zero", [0]), c("one", [1]), c("two", [2]), c("sizes", [1, 2]), c("idx", [1, 0]),
                 c("starts6", [0, 0, 1, 0, 0, 0]), c("ends6", [3, 1, 2, 3, 5, 4])]
    nodes = [helper.make_node("Slice", ["x", "zero", "one", "zero"], ["sliced"], name="slice"),
             helper.make_node("Slice", ["x", "starts6", "ends6"], ["every_axis"], name="slice_no_axes"),
             helper.make_node("Split", ["x", "sizes"], ["first", "rest"], axis=0, name="split"),
             helper.make_node("Gather", ["x", "idx"], ["gathered"], axis=2, name="gather"),
             helper.make_node("Slice", ["x", "one", "two", "two"], ["inner"], name="slice_axis_2")]
    tensor = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    outputs = [tensor("sliced", [1, 1, 2, 3, 5, 4]), tensor("every_axis", [3, 1, 1, 3, 5, 4]),
               tensor("first", [1, 1, 2, 3, 5, 4]), tensor("rest", [2, 1, 2, 3, 5, 4]),
               tensor("gathered", [3, 1, 2, 3, 5, 4]), tensor("inner", [3, 1, 1, 3, 5, 4])]
    graph = helper.make_graph(nodes, "g", [tensor("x", [3, 1, 2, 3, 5, 4])], outputs, constants)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10), tmp_path / "s.onnx")
    out = onnx.load(onnx_for_onnx2tf(tmp_path / "s.onnx", tmp_path / "out.onnx"))
    inferred = onnx.shape_inference.infer_shapes(out).graph
    shapes = {v.name: len(v.type.tensor_type.shape.dim) for v in [*inferred.value_info, *inferred.input]}
    ranks = {n.name: shapes[n.input[0]] for n in out.graph.node if n.op_type in ("Slice", "Split", "Gather")}
    # slice_no_axes takes every axis: no run to merge, so it stays (and is the one left over rank 5).
    assert ranks == {"slice": 2, "slice_no_axes": 6, "split": 2, "gather": 3, "slice_axis_2": 3}
    feeds = {"x": np.random.default_rng(0).standard_normal((3, 1, 2, 3, 5, 4)).astype(np.float32)}
    run = lambda model: ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feeds)  # noqa: E731
    for got, expected in zip(run(out.SerializeToString()), run(str(tmp_path / "s.onnx"))):
        np.testing.assert_array_equal(got, expected)


def _rewritten_and_run(tmp_path: Path, graph, feeds: dict, opset: int = 18):
    """`graph` saved, rewritten by onnx_for_onnx2tf, and both run in ONNX Runtime on `feeds`: (the rewritten
    model, its first output, the original's first output)."""
    import onnxruntime as ort

    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10),
              tmp_path / "in.onnx")
    out = onnx.load(onnx_for_onnx2tf(tmp_path / "in.onnx", tmp_path / "out.onnx"))
    outputs = [ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
               for model in (out.SerializeToString(), str(tmp_path / "in.onnx"))]
    return out, *outputs


@pytest.mark.parametrize("starts, ends, axes, steps", [
    ([-1], [np.iinfo(np.int64).min], [2], [-1]),  # torch.flip
    ([-1, -1], [np.iinfo(np.int64).min] * 2, [2, 3], [-1, -1]),  # flip of two axes
    ([5, 1], [0, 7], [3, 1], [-2, 2]),  # a reversed range with a stride, beside a forward one
    ([100, -100], [-100, 100], [-1, 0], [-3, 1]),  # out-of-range starts and ends, clamped as ONNX clamps them
    ([0, 3], [2, -8], None, [1, -1]),  # no axes input: the leading axes
])
def test_slices_with_negative_steps_become_gathers(tmp_path, starts, ends, axes, steps):
    """onnx2tf builds a Slice with a negative step as the identity (torch.flip came out unflipped): each axis
    it steps back along becomes a Gather of the indices it takes, with ONNX Runtime's values."""
    c = lambda name, values: numpy_helper.from_array(np.array(values, dtype=np.int64), name)  # noqa: E731
    constants = [c("starts", starts), c("ends", ends), c("steps", steps)] + ([c("axes", axes)] if axes else [])
    node = helper.make_node("Slice", ["x", "starts", "ends", "axes" if axes else "", "steps"], ["y"], name="flip")
    tensor = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    graph = helper.make_graph([node], "g", [tensor("x", [2, 3, 6, 7])], [tensor("y", None)], constants)
    feeds = {"x": np.random.default_rng(0).standard_normal((2, 3, 6, 7)).astype(np.float32)}
    out, got, expected = _rewritten_and_run(tmp_path, graph, feeds)
    values = {t.name: numpy_helper.to_array(t) for t in out.graph.initializer}
    assert not any(n.op_type == "Slice" and (values[n.input[4]] < 0).any() for n in out.graph.node)
    assert sum(n.op_type == "Gather" for n in out.graph.node) == sum(step < 0 for step in steps)
    assert got.shape == expected.shape and expected.size > 0
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("axis, bias", [(-2, True), (1, False)])
def test_layer_norms_over_several_axes_run_over_one(tmp_path, axis, bias):
    """nn.LayerNorm([5, 8]) as a LayerNormalization over the two axes merged into one, scale and bias
    flattened, with ONNX Runtime's values, at a batch size the graph leaves open."""
    rng = np.random.default_rng(0)
    parameters = [numpy_helper.from_array(rng.standard_normal((4, 5, 8)[axis % 4 - 1:]).astype(np.float32), name)
                  for name in ("scale", "bias")[:1 + bias]]
    node = helper.make_node("LayerNormalization", ["x", *(t.name for t in parameters)], ["y"], axis=axis,
                            epsilon=1e-5, name="norm")
    tensor = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    graph = helper.make_graph([node], "g", [tensor("x", ["batch", 4, 5, 8])], [tensor("y", None)], parameters)
    feeds = {"x": rng.standard_normal((3, 4, 5, 8)).astype(np.float32)}
    out, got, expected = _rewritten_and_run(tmp_path, graph, feeds)
    norms = [n for n in out.graph.node if n.op_type == "LayerNormalization"]
    assert len(norms) == 1 and helper.get_attribute_value(norms[0].attribute[0]) == -1
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("pads, axes", [([0, 0, 1, 2, 0, 0, 2, 0], None), ([3, 1, 0, 2], [2, -1])])
def test_wrapped_pads_become_concatenated_slices(tmp_path, pads, axes):
    """padding_mode="circular" exports as Pad in wrap mode, which tf.pad lacks: each padded axis becomes the
    tensor between slices of its own ends, with ONNX Runtime's values."""
    c = lambda name, values: numpy_helper.from_array(np.array(values, dtype=np.int64), name)  # noqa: E731
    constants = [c("pads", pads)] + ([c("axes", axes)] if axes else [])
    node = helper.make_node("Pad", ["x", "pads", "", "axes" if axes else ""], ["y"], mode="wrap", name="pad")
    tensor = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    graph = helper.make_graph([node], "g", [tensor("x", [1, 2, 4, 5])], [tensor("y", None)], constants)
    feeds = {"x": np.random.default_rng(0).standard_normal((1, 2, 4, 5)).astype(np.float32)}
    out, got, expected = _rewritten_and_run(tmp_path, graph, feeds, opset=19)
    assert "Pad" not in {n.op_type for n in out.graph.node}
    assert got.shape == expected.shape and expected.shape[2:] != (4, 5)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("shape, strides, dilations, pads", [
    ([1, 2, 11, 12], [2, 2], [2, 2], [2, 2, 2, 2]),  # skresnet's downsampling dilated path
    ([2, 2, 9, 10], [1, 3], [2, 1], [0, 1, 2, 0]),  # a stride on one axis, a dilation on the other
    ([1, 2, 13], [2], [3], [3, 3]),  # Conv1d
])
def test_strided_dilated_convs_run_at_stride_one(tmp_path, shape, strides, dilations, pads):
    """TensorFlow refuses a convolution with both a stride and a dilation above 1: it becomes the convolution at
    stride 1 and a Slice that steps by the stride, with ONNX Runtime's values."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal([3, 2] + [3] * (len(shape) - 2)).astype(np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], strides=strides, dilations=dilations, pads=pads, name="conv")
    tensor = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    graph = helper.make_graph([node], "g", [tensor("x", shape)], [tensor("y", None)], [weight])
    out, got, expected = _rewritten_and_run(tmp_path, graph, {"x": rng.standard_normal(shape).astype(np.float32)})
    conv = next(n for n in out.graph.node if n.op_type == "Conv")
    assert helper.get_attribute_value(next(a for a in conv.attribute if a.name == "strides")) == [1] * len(strides)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("strides, dilations, pads, output_padding", [
    ([2, 2], [2, 2], [0, 0, 0, 0], [0, 0]),
    ([1, 2], [3, 1], [1, 0, 2, 1], [0, 1]),
])
def test_dilated_transposed_convs_spread_their_weights(tmp_path, strides, dilations, pads, output_padding):
    """TensorFlow's CPU kernel refuses a dilated transposed convolution: its weight is spread out by the
    dilation instead, with ONNX Runtime's values."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal([2, 3, 3, 2]).astype(np.float32), "w")
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=strides, dilations=dilations, pads=pads,
                            output_padding=output_padding, name="deconv")
    tensor = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    graph = helper.make_graph([node], "g", [tensor("x", [1, 2, 5, 6])], [tensor("y", None)], [weight])
    out, got, expected = _rewritten_and_run(tmp_path, graph, {"x": rng.standard_normal((1, 2, 5, 6)).astype(np.float32)})
    deconv = next(n for n in out.graph.node if n.op_type == "ConvTranspose")
    assert helper.get_attribute_value(next(a for a in deconv.attribute if a.name == "dilations")) == [1, 1]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel, strides, dilations, pads", [
    ([3, 3], [1, 1], [2, 2], [1, 1, 1, 1]),
    ([2, 3], [2, 1], [3, 2], [0, 2, 1, 0]),
    ([3], [2], [2], [2, 1]),  # 1-D
])
def test_dilated_max_pools_become_maxima_of_slices(tmp_path, kernel, strides, dilations, pads):
    """onnx2tf builds a dilated max pool with Dilation2D, which TFLite lacks and TF.js wasm gets wrong: it
    becomes the Max of one strided slice per window tap of the padded input, with ONNX Runtime's values."""
    shape = [2, 3, 11, 12][:2 + len(kernel)]
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=kernel, strides=strides, dilations=dilations,
                            pads=pads, name="pool")
    tensor = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    graph = helper.make_graph([node], "g", [tensor("x", shape)], [tensor("y", None)])
    feeds = {"x": np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    out, got, expected = _rewritten_and_run(tmp_path, graph, feeds)
    assert "MaxPool" not in {n.op_type for n in out.graph.node}
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("shape, kernel, strides, pads, dilations", [
    ([2, 3, 8, 8], [2, 2], [2, 2], [0, 0, 0, 0], [1, 1]),  # SegNet's
    ([1, 2, 9, 7], [3, 3], [2, 2], [1, 1, 1, 1], [1, 1]),  # overlapping windows over padding
    ([1, 2, 10, 11], [3, 2], [1, 2], [0, 1, 0, 0], [2, 1]),
    ([2, 3, 4, 5], [1, 1], [1, 1], [0, 0, 0, 0], [1, 1]),  # torch.onnx's plane offsets for max_unpool2d
])
def test_pool_indices_come_from_the_taps(tmp_path, shape, kernel, strides, pads, dilations):
    """A MaxPool that gives its indices becomes its taps, compared in order: ONNX Runtime's maxima and indices
    exactly, ties to the first tap in row-major order."""
    import onnxruntime as ort

    node = helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=kernel, strides=strides, pads=pads,
                            dilations=dilations, name="pool")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("i", TensorProto.INT64, None),
                               helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    x[..., :2, :2] = 0.0  # ties
    out, got, expected = _rewritten_and_run(tmp_path, graph, {"x": x})
    assert "MaxPool" not in {n.op_type for n in out.graph.node}
    np.testing.assert_array_equal(got, expected)
    values = [ort.InferenceSession(m, providers=["CPUExecutionProvider"]).run(["y"], {"x": x})[0]
              for m in (out.SerializeToString(), str(tmp_path / "in.onnx"))]
    np.testing.assert_array_equal(*values)


@pytest.mark.parametrize("like_is_constant", [True, False])
def test_cast_likes_become_casts(tmp_path, like_is_constant):
    """onnx2tf has no CastLike (the one op in ONNX's registry without an onnx2tf module that torch.onnx writes:
    nn.EmbeddingBag's mean): it becomes a Cast to the type of its second input, a constant or an activation."""
    like = [numpy_helper.from_array(np.array(0.5, np.float32), "like")] if like_is_constant else []
    nodes = [helper.make_node("CastLike", ["ids", "like"], ["cast"], name="cast"),
             helper.make_node("Mul", ["cast", "like"], ["y"], name="scale")]
    inputs = [helper.make_tensor_value_info("ids", TensorProto.INT64, [2, 3])]
    inputs += [] if like_is_constant else [helper.make_tensor_value_info("like", TensorProto.FLOAT, [])]
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], like)
    feeds = {"ids": np.arange(6, dtype=np.int64).reshape(2, 3)} | ({} if like_is_constant else {"like": np.array(0.5, np.float32)})
    out, got, expected = _rewritten_and_run(tmp_path, graph, feeds)
    assert [n.op_type for n in out.graph.node] == ["Cast", "Mul"]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("divisor", [1.5, -0.7, None])
def test_truncated_mods_keep_the_dividends_sign(tmp_path, divisor):
    """onnx2tf builds every Mod as a floor modulo: a floating-point Mod with fmod=1 becomes a - b * trunc(a / b),
    with ONNX Runtime's values for dividends and divisors of either sign (a constant divisor, or an input)."""
    rng = np.random.default_rng(0)
    constant = [] if divisor is None else [numpy_helper.from_array(np.array(divisor, np.float32), "b")]
    inputs = [helper.make_tensor_value_info("a", TensorProto.FLOAT, [4, 6])]
    inputs += [helper.make_tensor_value_info("b", TensorProto.FLOAT, [4, 6])] if divisor is None else []
    node = helper.make_node("Mod", ["a", "b"], ["y"], fmod=1, name="mod")
    graph = helper.make_graph([node], "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              constant)
    feeds = {"a": (rng.standard_normal((4, 6)) * 5).astype(np.float32)}
    if divisor is None:
        feeds["b"] = (rng.choice([-1, 1], (4, 6)) * rng.uniform(0.5, 2, (4, 6))).astype(np.float32)
    out, got, expected = _rewritten_and_run(tmp_path, graph, feeds)
    assert "Mod" not in {n.op_type for n in out.graph.node}
    assert (np.sign(expected) == np.sign(feeds["a"])).mean() > 0.9  # fmod's sign: a floor modulo would fail this
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_volume_pools_become_two_plane_pools(tmp_path, op):
    """TFLite has no 3-D pooling kernel: a 3-D max or average pool without padding runs as a pool over height and
    width, then one over depth, with ONNX Runtime's values (at a batch size the graph leaves open)."""
    node = helper.make_node(op, ["x"], ["y"], kernel_shape=[2, 3, 2], strides=[2, 1, 2], name="pool")
    tensor = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    graph = helper.make_graph([node], "g", [tensor("x", ["batch", 3, 6, 7, 8])], [tensor("y", None)])
    feeds = {"x": np.random.default_rng(0).standard_normal((2, 3, 6, 7, 8)).astype(np.float32)}
    out, got, expected = _rewritten_and_run(tmp_path, graph, feeds)
    pools = [n for n in out.graph.node if n.op_type == op]
    assert len(pools) == 2 and all(len(helper.get_attribute_value(a)) == 2 for n in pools for a in n.attribute
                                   if a.name == "kernel_shape")
    assert got.shape == expected.shape == (2, 3, 3, 5, 4)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shape, sizes, attributes", [
    ([2, 3, 12, 14], [2, 3, 5, 6], {"mode": "linear", "antialias": 1}),  # F.interpolate(antialias=True)
    ([1, 2, 3, 4, 5], [1, 2, 6, 8, 10], {"mode": "linear"}),  # trilinear
    ([1, 2, 3, 4, 5], [1, 2, 5, 4, 7], {"mode": "nearest", "nearest_mode": "floor",
                                        "coordinate_transformation_mode": "asymmetric"}),
])
def test_resizes_tensorflow_lacks_become_matrix_products(tmp_path, shape, sizes, attributes):
    """An antialiased resize became ScaleAndTranslate (in neither TF.js nor TFLite) and a 3-D one failed in
    onnx2tf: both run as products with their interpolation matrices (the depth with height and width folded
    into one axis), with ONNX Runtime's values."""
    sizes_tensor = numpy_helper.from_array(np.array(sizes, dtype=np.int64), "sizes")
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], name="resize", **attributes)
    tensor = lambda name, dims: helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)  # noqa: E731
    graph = helper.make_graph([node], "g", [tensor("x", shape)], [tensor("y", None)], [sizes_tensor])
    feeds = {"x": np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    out, got, expected = _rewritten_and_run(tmp_path, graph, feeds)
    assert "Resize" not in {n.op_type for n in out.graph.node}
    assert got.shape == expected.shape == tuple(sizes)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_a_resize_to_sizes_past_an_open_batch_becomes_matrix_products(tmp_path):
    """With --dynamic-batch, torch.onnx writes F.interpolate(size=...) as Resize(x, sizes=Concat(Shape(x)[:2],
    spatial)): no constant to read, so the rewrite passed it by and onnx2tf's resize failed. The sizes are read
    through that form; the values are ONNX Runtime's at batch 3."""
    spatial = numpy_helper.from_array(np.array([7, 5], dtype=np.int64), "spatial")
    nodes = [helper.make_node("Shape", ["x"], ["lead"], end=2),
             helper.make_node("Concat", ["lead", "spatial"], ["sizes"], axis=0),
             helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="cubic", name="resize")]
    tensor = lambda name, dims: helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)  # noqa: E731
    graph = helper.make_graph(nodes, "g", [tensor("x", ["batch", 2, 4, 6])], [tensor("y", None)], [spatial])
    feeds = {"x": np.random.default_rng(0).standard_normal((3, 2, 4, 6)).astype(np.float32)}
    out, got, expected = _rewritten_and_run(tmp_path, graph, feeds)
    assert "Resize" not in {n.op_type for n in out.graph.node}
    assert got.shape == expected.shape == (3, 2, 7, 5)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_a_large_bicubic_resize_becomes_two_matmuls_in_a_second(tmp_path):
    """crossvit resizes its 240-pixel input to 224 bicubically: building the interpolation matrices with onnx's
    pure-Python reference evaluator took over 45 minutes; they come from ONNX Runtime now."""
    import time

    import onnxruntime as ort

    sizes = numpy_helper.from_array(np.array([1, 3, 224, 224], dtype=np.int64), "sizes")
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="cubic", cubic_coeff_a=-0.75,
                            coordinate_transformation_mode="pytorch_half_pixel", name="resize")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 240, 240])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 224, 224])], [sizes])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10), tmp_path / "r.onnx")
    started = time.perf_counter()
    out = onnx_for_onnx2tf(tmp_path / "r.onnx", tmp_path / "out.onnx")
    assert time.perf_counter() - started < 60
    assert [n.op_type for n in onnx.load(out).graph.node] == ["MatMul", "MatMul"]
    feeds = {"x": np.random.default_rng(0).standard_normal((1, 3, 240, 240)).astype(np.float32)}
    run = lambda path: ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]  # noqa: E731
    np.testing.assert_allclose(run(out), run(tmp_path / "r.onnx"), rtol=1e-4, atol=1e-5)


def test_long_reductions_are_blocked_so_tflite_sums_them_as_tensorflow_does():
    """tf.nn.moments over 196,608 elements on an offset (mobilevitv2's GroupNorm, as onnx2tf builds it): TFLite's
    MEAN sums them into one float32, one after the other. Built under blocked_reductions, no reduction is longer
    than REDUCTION_BLOCK and TFLite's variance is as close to float64's as TensorFlow's own."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from converter.stages.onnx2tf_fixes import REDUCTION_BLOCK, blocked_reductions

    x = (np.random.default_rng(0).standard_normal((1, 196608, 1)) + 3.0).astype(np.float32)
    exact = x.astype(np.float64).var()

    def tflite_variance(blocked: bool) -> tuple[float, list]:
        with blocked_reductions() if blocked else contextlib.nullcontext():
            function = tf.function(lambda t: tf.nn.moments(t, axes=[1], keepdims=True)[1],
                                   input_signature=[tf.TensorSpec(x.shape, tf.float32)]).get_concrete_function()
        interpreter = Interpreter(model_content=tf.lite.TFLiteConverter.from_concrete_functions([function]).convert())
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        got = float(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).ravel()[0])
        tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
        lengths = [int(np.prod([tensors[op["inputs"][0]]["shape"][a] for a in interpreter.get_tensor(op["inputs"][1])
                                .ravel()])) for op in interpreter._get_ops_details() if op["op_name"] == "MEAN"]
        return abs(got - exact) / exact, lengths

    plain, plain_lengths = tflite_variance(False)
    blocked, blocked_lengths = tflite_variance(True)
    assert max(plain_lengths) == 196608 and max(blocked_lengths) <= REDUCTION_BLOCK
    assert blocked < 1e-6 < plain, (blocked, plain)
    assert tf.math.reduce_mean is not None and "blocked" not in tf.math.reduce_mean.__name__


def test_partial_models_compute_what_keras_computes_and_each_layer_once():
    """_PartialModel, which checked_once gives onnx2tf's ops: the same values as the Keras model on the same
    graph (a layer with two outputs, one reading a tensor twice, a Dense layer), each layer run once for any
    number of models over the same data, and again for other data."""
    import tensorflow as tf
    import tf_keras

    from converter.stages.onnx2tf_fixes import VALUE_BUDGET, _LayerValues, _PartialModel

    x = tf_keras.Input(shape=(6,), name="x")
    a, b = tf.split(x, 2, axis=-1)
    square = tf.multiply(a, a)
    calls = []

    class Dense(tf_keras.layers.Dense):
        def call(self, inputs):
            if tf.executing_eagerly():  # not while Keras infers the output's shape
                calls.append(1)
            return super().call(inputs)

    y = Dense(3)(tf.concat([square, b], axis=-1))
    values = _LayerValues(VALUE_BUDGET)
    rng = np.random.default_rng(0)
    first, second = (rng.standard_normal((2, 6)).astype(np.float32) for _ in range(2))

    def both(outputs, data):
        partial = _PartialModel(tf_keras, values, [x], outputs)({"x": data}, training=False)
        keras = tf_keras.Model(inputs=[x], outputs=outputs)({"x": data}, training=False)
        return [p.numpy() for p in partial], [k.numpy() for k in (keras if isinstance(keras, list) else [keras])]

    for outputs in ([square], [y], [b, y]):
        partial, keras = both(outputs, first)
        for p, k in zip(partial, keras):
            np.testing.assert_array_equal(p, k)
    assert len(calls) == 1 + 2  # the partial models ran the Dense layer once, the Keras models each time
    partial, keras = both([y], second)
    np.testing.assert_array_equal(partial[0], keras[0])
    assert len(calls) == 3 + 2  # other data: computed anew


def test_strict_mode_runs_each_layer_once_and_builds_the_same_model(tmp_path, monkeypatch):
    """onnx2tf's strict mode runs the model built so far before many ops (Reshape, MatMul, ...): with a Keras
    model from the inputs each time, the first layers of a transformer block ran dozens of times (timm's
    coat_mini and gcvit_tiny spent over 2400 s in onnx2tf). With checked_once each layer runs on the data
    once, and the TF.js graph and weights are what they were (but for the Keras model's name)."""
    import collections

    import tensorflow as tf
    import tf_keras
    import torch
    from tf_keras.src.engine import base_layer

    from converter import Options, convert
    from converter.loading import LoadedModel
    from converter.stages import saved_model
    sys.path.insert(0, str(Path(__file__).parent / "models"))
    from small import AttentionBlock

    runs = collections.Counter()
    layer_call = base_layer.Layer.__call__

    def counted(layer, *args, **kwargs):
        if tf.executing_eagerly() and args and isinstance(args[0], tf.Tensor) \
                and not isinstance(layer, tf_keras.Model):  # a run on values, not a layer added to a graph
            runs[id(layer)] += 1
        return layer_call(layer, *args, **kwargs)

    monkeypatch.setattr(base_layer.Layer, "__call__", counted)
    graphs = {}
    for how in ("checked_once", "plain"):
        if how == "plain":
            monkeypatch.setattr(saved_model, "checked_once", contextlib.nullcontext)
        runs.clear()
        torch.manual_seed(0)
        model = LoadedModel(AttentionBlock().eval(), "tests/models/small.py:attention_block", "python", ["x"])
        # workers=False: the layers run, and the fix is switched off, in this process.
        result = convert(model, Options([(1, 10, 32)], tmp_path / how, targets=("tfjs",), random_cases=2,
                                        verbosity=0, workers=False))
        assert result.exit_code == 0, result.error
        graphs[how] = _unnamed_graph(tmp_path / how / "tfjs")
        graphs[how + " runs"] = max(runs.values())
    assert graphs["checked_once"] == graphs["plain"]
    assert graphs["checked_once runs"] <= 2 < 10 <= graphs["plain runs"], graphs


def _unnamed_graph(folder: Path) -> list:
    """A TF.js model's nodes (op, attributes, inputs by position) and weight values, without the names Keras
    numbers per process (tf.reshape_6, model_28)."""
    import json

    from tensorflowjs import read_weights

    model = json.loads((folder / "model.json").read_text())
    nodes = model["modelTopology"]["node"]
    position = {n["name"]: i for i, n in enumerate(nodes)}
    values = {e["name"]: e["data"].tobytes() for group in read_weights.read_weights(model["weightsManifest"], str(folder))
              for e in group}

    def ref(name: str) -> str:
        control, name = name.startswith("^"), name.lstrip("^")
        node, _, port = name.partition(":")
        return f"{'^' * control}{position[node]}:{port}"

    return [(n["op"], json.dumps(n.get("attr", {}), sort_keys=True), [ref(i) for i in n.get("input", [])],
             values.get(n["name"])) for n in nodes]
