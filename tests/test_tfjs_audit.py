"""The TF.js backend audit (converter/stages/tfjs_audit.py): the support table is what the pinned packages
do, fused activations no backend has are rewritten and then run right in TF.js, what cannot be rewritten is
one error, and the graphs do not depend on the converting machine's oneDNN."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from runcli import REPO, run_cli

from converter.errors import ConversionError
from converter.layout import Binding
from converter.stages.base import Artifact
from converter.stages.tfjs import NODE_BACKENDS, run_in_node
from converter.stages.tfjs_audit import (SUPPORT_FILE, _inferred_shapes, kernel_batch_tiles, make_runnable,
                                         missing_kernels, raise_for_missing)


def _ops(*names: str) -> dict:
    return {"list": {"s": [base64.b64encode(n.encode()).decode() for n in names]}}


def test_support_table_is_what_the_installed_packages_do():
    """Fails when a new @tensorflow version changes a backend's kernels or fused activations: re-derive the
    table (`node converter/js/tfjs_support.mjs > converter/js/tfjs_support.json`) and review the diff."""
    done = subprocess.run(["node", str(REPO / "converter" / "js" / "tfjs_support.mjs")], capture_output=True,
                          text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    derived, committed = json.loads(done.stdout), json.loads(SUPPORT_FILE.read_text())
    assert derived == committed
    for backend in ("cpu", "wasm", "webgl", "webgpu"):
        tables = derived["backends"][backend]
        assert len(tables["kernels"]) > 100
        # What the runtime errors of issue 9 showed: wasm has no fused tanh or hard-swish.
        assert "relu" in tables["fused"]["FusedConv2D"] and "tanh" not in tables["fused"]["FusedConv2D"]
    assert "Einsum" not in derived["backends"]["wasm"]["kernels"] and "Einsum" in derived["backends"]["cpu"]["kernels"]
    # Ops whose operands TF.js reads to the end of the input list, control inputs included, and some that it does not.
    assert {"AddN", "ConcatV2", "Pack", "_FusedConv2D"} <= set(derived["inputs_to_the_end"])
    assert not {"AddV2", "Conv2D", "MatMul"} & set(derived["inputs_to_the_end"])


class ConvDepthwiseLinear(nn.Module):
    """One of each fused TF.js kernel (conv, depthwise conv, matmul), each followed by `act`."""

    def __init__(self, act) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.depthwise = nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3, groups=4)
        self.linear, self.act = nn.Linear(4 * 4 * 4, 6), act

    def forward(self, x):
        x = self.act(self.depthwise(self.act(self.conv(x))))
        return self.act(self.linear(x.flatten(1)))


# TF's fused_ops name -> what PyTorch computes for it.
ACTIVATIONS = {
    "Tanh": torch.tanh, "Sigmoid": torch.sigmoid, "Elu": nn.functional.elu, "Selu": nn.functional.selu,
    "Softplus": nn.functional.softplus, "LeakyRelu": lambda x: nn.functional.leaky_relu(x, 0.2),
    "_FusedHardSwish": nn.functional.hardswish, "_MklSwish": nn.functional.silu, "Mish": nn.functional.mish,
    "GeluExact": nn.functional.gelu, "GeluApproximate": lambda x: nn.functional.gelu(x, approximate="tanh"),
}


@pytest.fixture(scope="module")
def relu_graph(tmp_path_factory):
    """The TF.js graph of ConvDepthwiseLinear(ReLU), with its three ops fused with Relu by Grappler."""
    work = tmp_path_factory.mktemp("fused")
    (work / "model.py").write_text(f"import sys; sys.path.insert(0, {str(REPO / 'tests')!r})\n"
                                   "from torch import nn\nfrom test_tfjs_audit import ConvDepthwiseLinear\n"
                                   "def build(): return ConvDepthwiseLinear(nn.ReLU())\n")
    proc = run_cli("convert", work / "model.py:build", "--input-shape", "1,3,8,8", "--targets", "tfjs",
                   "--out", work / "out")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    folder = work / "out" / "tfjs"
    fused = {n["op"]: n for n in json.loads((folder / "model.json").read_text())["modelTopology"]["node"]
             if "fused_ops" in n["attr"]}
    assert set(fused) == {"_FusedConv2D", "FusedDepthwiseConv2dNative", "_FusedMatMul"}
    assert all(n["attr"]["fused_ops"] == _ops("BiasAdd", "Relu") for n in fused.values())
    return folder


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_fused_activation_runs_in_tfjs_after_the_audit(tmp_path, relu_graph, activation):
    """The same graph with Relu swapped for each activation a TF graph can fuse: after make_runnable it runs
    on TF.js's wasm and cpu backends and matches PyTorch with that activation."""
    folder = tmp_path / "tfjs"
    shutil.copytree(relu_graph, folder)
    model_json = json.loads((folder / "model.json").read_text())
    for node in model_json["modelTopology"]["node"]:
        if "fused_ops" in node["attr"]:
            node["attr"]["fused_ops"] = _ops("BiasAdd", activation)
    rewrites = make_runnable(model_json, folder)
    (folder / "model.json").write_text(json.dumps(model_json))
    # Every backend fuses sigmoid, elu and leaky relu; TF.js's converter drops the depthwise op's leaky alpha.
    expected_rewrites = {"Sigmoid": 0, "Elu": 0, "LeakyRelu": 1}.get(activation, 3)
    assert len(rewrites) == expected_rewrites

    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)
    expected = ConvDepthwiseLinear(ACTIVATIONS[activation])(torch.from_numpy(x)).detach().numpy()
    signature = model_json["signature"]
    artifact = Artifact(folder / "model.json", "fp32",
                        [Binding("x", next(iter(signature["inputs"].values()))["name"], [1, 8, 8, 3], "NHWC", [0, 2, 3, 1])],
                        [Binding("output", signature["outputs"]["output"]["name"], [1, 6], "NC", [0, 1])])
    runs = run_in_node(folder / "model.json", artifact, [{"x": x.transpose(0, 2, 3, 1)}], log=tmp_path / "node.log")
    assert list(runs) == list(NODE_BACKENDS)
    errors = {}
    for backend, outputs in runs.items():
        error = np.abs(outputs[0]["output"] - expected).max() / np.abs(expected).max()
        errors[backend] = error
    assert max(errors.values()) < 1e-5, errors


def test_tensor_biases_are_split_back_and_per_channel_ones_stay_fused(tmp_path):
    model = {"modelTopology": {"node": [
        {"name": "res", "op": "_FusedConv2D", "input": ["x", "w", "other"],
         "attr": {"fused_ops": _ops("BiasAdd", "Relu"), "num_args": {"i": "1"}, "T": {"type": "DT_FLOAT"},
                  "strides": {"list": {"i": ["1", "1", "1", "1"]}}}},
        {"name": "ok", "op": "_FusedConv2D", "input": ["x", "w", "b"],
         "attr": {"fused_ops": _ops("BiasAdd", "Relu"), "num_args": {"i": "1"}}},
    ]}, "weightsManifest": [{"weights": [{"name": "w", "shape": [1, 1, 4, 4]}, {"name": "b", "shape": [4]}]}]}
    rewrites = make_runnable(model, tmp_path)
    assert [(r.node, r.what) for r in rewrites] == [("res", "rank-2 bias")]
    nodes = {n["name"]: n for n in model["modelTopology"]["node"]}
    assert nodes["res/unfused_op"]["op"] == "Conv2D" and nodes["res/unfused_op"]["input"] == ["x", "w"]
    assert "fused_ops" not in nodes["res/unfused_op"]["attr"] and "strides" in nodes["res/unfused_op"]["attr"]
    assert nodes["res/unfused_add"] == {"name": "res/unfused_add", "op": "AddV2",
                                        "input": ["res/unfused_op", "other"], "attr": {"T": {"type": "DT_FLOAT"}}}
    assert nodes["res"]["op"] == "Relu" and nodes["res"]["input"] == ["res/unfused_add"]
    assert nodes["ok"]["op"] == "_FusedConv2D"


def test_an_op_without_bias_keeps_noop_and_loses_the_activation(tmp_path):
    model = {"modelTopology": {"node": [{"name": "dw", "op": "FusedDepthwiseConv2dNative", "input": ["x", "w"],
                                         "attr": {"fused_ops": _ops("NoOp", "Tanh"), "T": {"type": "DT_FLOAT"}}}]},
             "weightsManifest": [{"weights": [{"name": "w", "shape": [1, 1, 4, 1]}]}]}
    assert [r.what for r in make_runnable(model, tmp_path)] == ["activation tanh"]
    nodes = {n["name"]: n for n in model["modelTopology"]["node"]}
    assert nodes["dw/unfused_op"]["attr"]["fused_ops"] == _ops("NoOp")
    assert nodes["dw"] == {"name": "dw", "op": "Tanh", "input": ["dw/unfused_op"], "attr": {"T": {"type": "DT_FLOAT"}}}


def test_host_ops_and_unknown_fusions_are_one_error_each(tmp_path):
    host = {"modelTopology": {"node": [{"name": "ln", "op": "_MklLayerNorm", "input": [], "attr": {}},
                                       {"name": "ln2", "op": "_MklFusedMish", "input": [], "attr": {}}]},
            "weightsManifest": []}
    with pytest.raises(ConversionError) as caught:
        make_runnable(host, tmp_path)
    assert "_MklLayerNorm (ln)" in caught.value.message and "_MklFusedMish (ln2)" in caught.value.message
    assert "TF_ENABLE_ONEDNN_OPTS=0" in caught.value.hint

    unknown = {"modelTopology": {"node": [
        {"name": f"n{i}", "op": "_FusedMatMul", "input": ["a", "w", "b"], "attr": {"fused_ops": _ops("BiasAdd", act)}}
        for i, act in enumerate(["Softsign", "Relu", "FancyAct"])] + [
        {"name": "nobias", "op": "FusedDepthwiseConv2dNative", "input": ["a", "w"], "attr": {"fused_ops": _ops("NoOp", "Relu")}},
        {"name": "bn", "op": "_FusedConv2D", "input": ["a", "w"], "attr": {"fused_ops": _ops("FusedBatchNorm", "Relu")}}]},
        "weightsManifest": [{"weights": [{"name": "b", "shape": [4]}]}]}
    with pytest.raises(ConversionError) as caught:
        make_runnable(unknown, tmp_path)
    message = caught.value.message
    assert "n0: activation softsign" in message and "n2: activation fancyact" in message and "n1" not in message
    assert "_FusedConv2D bn with fused_ops ['FusedBatchNorm', 'Relu']" in message and "nobias" not in message
    assert "wasm, webgl, webgpu, cpu" in message


def test_control_inputs_that_tfjs_would_read_as_operands_are_dropped(tmp_path):
    """A bidirectional nn.GRU's loop body held AddN(matmul, matmul, ^loop_body_control): TF.js added the control
    input's tensor too ("All tensors passed to tf.addN() must have the same dtype"). An op that TF.js reads by
    position (AddV2) keeps its control input; one whose data inputs are all constants cannot lose it."""
    def graph(*nodes):
        return {"modelTopology": {"node": [{"name": "x", "op": "Placeholder", "attr": {}},
                                           {"name": "c", "op": "Const", "attr": {}}, *nodes]}, "weightsManifest": []}

    model = graph({"name": "sum", "op": "AddN", "input": ["x", "x:0", "^loop"], "attr": {}},
                  {"name": "cat", "op": "ConcatV2", "input": ["c", "x", "c", "^loop", "^other"], "attr": {}},
                  {"name": "add", "op": "AddV2", "input": ["x", "c", "^loop"], "attr": {}})
    rewrites = make_runnable(model, tmp_path)
    assert [(r.node, r.what, r.fix) for r in rewrites] == [("sum", "control inputs ^loop", "dropped"),
                                                          ("cat", "control inputs ^loop, ^other", "dropped")]
    nodes = {n["name"]: n for n in model["modelTopology"]["node"]}
    assert nodes["sum"]["input"] == ["x", "x:0"] and nodes["cat"]["input"] == ["c", "x", "c"]
    assert nodes["add"]["input"] == ["x", "c", "^loop"]
    assert "dropped (TF.js would read them as operands)" in rewrites[0].describe()

    with pytest.raises(ConversionError) as caught:
        make_runnable(graph({"name": "packed", "op": "Pack", "input": ["c", "c", "^loop"], "attr": {}}), tmp_path)
    assert "Pack packed: control inputs ^loop on constant data" in caught.value.message


@pytest.mark.parametrize("operand, out, tiles", [
    ([2, 1], [2, 3], [1, 3]),  # efficientvit: [24, 1, 49, 33] against [24, 32, 1, 49]
    ([1, 3], [2, 3], []), ([3], [2, 3], []), ([], [2, 3], []), ([1, 1], [2, 3], []), ([2, 3], [2, 3], []),
    ([4, 1, 2], [4, 3, 2], [1, 3, 1]), ([1, 1, 2], [4, 3, 2], []), ([1, 2, 1], [3, 2, 4], [1, 1, 4]),
    ([-1, 1], [-1, 3], [1, 3]), ([1, 3], [-1, 3], []), ([-1, 3], [-1, 3], []),  # --dynamic-batch
    ([2, 1], [2, -1], None),
])
def test_kernel_batch_tiles_follow_the_kernels_modulo_indexing(operand, out, tiles):
    """TF.js's BatchMatMul kernels read operand X's matrix `batch % batchSizeOfX` of its flattened batch:
    right for leading broadcast axes only."""
    assert kernel_batch_tiles(operand, out) == tiles


def test_shapes_are_inferred_through_tensorflowjs_own_ops(relu_graph):
    """TensorFlow registers neither FusedDepthwiseConv2dNative nor Prelu (tensorflowjs writes them): the shape
    inference for the batched-matmul check stands shape-alike ops in, rather than skipping the check."""
    model_json = json.loads((relu_graph / "model.json").read_text())
    nodes = {n["op"]: n for n in model_json["modelTopology"]["node"]}
    depthwise, conv = nodes["FusedDepthwiseConv2dNative"], nodes["_FusedConv2D"]
    model_json["modelTopology"]["node"].append(
        {"name": "prelu", "op": "Prelu", "input": [conv["name"], conv["input"][2]], "attr": {"T": {"type": "DT_FLOAT"}}})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shapes = _inferred_shapes(model_json, relu_graph, [depthwise["name"], "prelu"])
    assert not [w for w in caught if "batched matmuls" in str(w.message)]
    assert shapes[depthwise["name"]][1] == [1, 4, 4, 4] and shapes["prelu"][1] == [1, 6, 6, 4]


def _undo_tiles(model_json: dict) -> None:
    """model.json as it was before the batched-matmul rewrite: the Tile nodes bypassed."""
    nodes = model_json["modelTopology"]["node"]
    tiles = {n["name"]: n["input"][0] for n in nodes if n["op"] == "Tile"}
    for n in nodes:
        n["input"] = [tiles.get(i, i) for i in n.get("input", [])]


@pytest.mark.parametrize("model, side", [("inner_broadcast_matmul", "b"), ("inner_broadcast_matmul_mirrored", "a")])
def test_inner_batch_broadcast_matmuls_are_tiled_and_match_in_tfjs(tmp_path, model, side):
    """[2, 3, 1, 5] @ [2, 1, 5, 4] (and mirrored) through the whole pipeline: the broadcast operand gets a Tile,
    and TF.js matches PyTorch on wasm and cpu. The same model.json without the Tile is off on both: the rewrite
    is what fixes it (when a TF.js release fixes its kernels, this says so)."""
    out = tmp_path / "out"
    proc = run_cli("convert", f"tests/models/small.py:{model}", "--input-shape", "2,3,5", "--targets", "tfjs",
                   "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stage = next(s for s in json.loads((out / "report.json").read_text())["stages"] if s["name"] == "tfjs")
    assert [(r["op"], r["fix"], r["what"].split(" [")[0]) for r in stage["rewrites"]] == \
        [("BatchMatMulV2", "tiled", f"operand {side}")]
    errors = {c["runtime"]: c["max_rel_err"] for c in stage["comparisons"] if c["against"] == "pytorch"}
    assert set(errors) == set(NODE_BACKENDS) and max(errors.values()) < 1e-5, errors

    folder = out / "tfjs"
    model_json = json.loads((folder / "model.json").read_text())
    _undo_tiles(model_json)
    (folder / "model.json").write_text(json.dumps(model_json))
    meta = json.loads((out / "metadata.json").read_text())["artifacts"]["tfjs"]
    bindings = [[Binding(b["name"], b["artifact_name"], b["shape"], b["layout"], b["perm"]) for b in meta[kind]]
                for kind in ("inputs", "outputs")]
    x = np.load(out / "golden" / "input_x_random_0.npy")
    expected = np.load(out / "golden" / "output_output_random_0.npy")
    runs = run_in_node(folder / "model.json", Artifact(folder / "model.json", "fp32", *bindings), [{"x": x}],
                       log=tmp_path / "node.log")
    for backend, outputs in runs.items():
        error = np.abs(outputs[0]["output"] - expected).max() / np.abs(expected).max()
        assert error > 0.05, (backend, error)


def test_batched_matmuls_are_checked_after_tensor_biases_are_unfused(tmp_path):
    """A fused convolution with a tensor bias (as Grappler fuses maxvit's residual conv) is one TensorFlow cannot
    import, so shape inference failed for the whole graph and no batched matmul was checked: timm's
    lambda_resnet50ts kept [1, 4, 16, 256] @ [64, 1, 16, 1] untiled, and TF.js's cpu backend computed 64 of its
    256 matrices (NaN at the output). The matmuls are checked on the graph with such biases unfused."""
    out = tmp_path / "out"
    proc = run_cli("convert", "tests/models/small.py:inner_broadcast_matmul", "--input-shape", "2,3,5", "--targets",
                   "tfjs", "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    folder = out / "tfjs"
    model_json = json.loads((folder / "model.json").read_text())
    _undo_tiles(model_json)
    text = lambda value: {"s": base64.b64encode(value.encode()).decode()}  # noqa: E731
    ints = lambda *values: {"list": {"i": [str(v) for v in values]}}  # noqa: E731
    shape = lambda *dims: {"dim": [{"size": str(d)} for d in dims]}  # noqa: E731
    const = lambda name, *dims: {"name": name, "op": "Const", "attr": {  # noqa: E731
        "dtype": {"type": "DT_FLOAT"}, "value": {"tensor": {"dtype": "DT_FLOAT", "tensorShape": shape(*dims)}}}}
    model_json["modelTopology"]["node"] += [
        {"name": "image", "op": "Placeholder", "attr": {"dtype": {"type": "DT_FLOAT"}, "shape": {"shape": shape(1, 2, 2, 1)}}},
        const("w", 1, 1, 1, 1), const("residual", 1, 2, 2, 1),
        {"name": "res", "op": "_FusedConv2D", "input": ["image", "w", "residual"], "attr": {
            "T": {"type": "DT_FLOAT"}, "fused_ops": _ops("BiasAdd"), "num_args": {"i": "1"}, "strides": ints(1, 1, 1, 1),
            "dilations": ints(1, 1, 1, 1), "padding": text("VALID"), "data_format": text("NHWC")}}]
    (folder / "extra.bin").write_bytes(np.ones(5, dtype="<f4").tobytes())
    model_json["weightsManifest"].append({"paths": ["extra.bin"], "weights": [
        {"name": "w", "shape": [1, 1, 1, 1], "dtype": "float32"}, {"name": "residual", "shape": [1, 2, 2, 1], "dtype": "float32"}]})
    rewrites = make_runnable(model_json, folder)
    assert sorted((r.fix, r.what.split(" [")[0]) for r in rewrites) == [("tiled", "operand b"), ("unfused", "rank-4 bias")]


def test_a_pad_before_a_strided_convolution_becomes_its_explicit_padding(tmp_path):
    """PyTorch's padding=1 on a strided conv, as onnx2tf writes it: Pad then a VALID conv (mobilenet_v2 has 5).
    The Pads go into the convolutions' explicit padding after Grappler's fusions, and TF.js on wasm and cpu
    computes what TensorFlow computes from the SavedModel."""
    from converter.stages.saved_model import import_tensorflow
    from converter.stages.tfjs import write_graph_model

    tf = import_tensorflow()
    rng = np.random.default_rng(0)
    w1, b1, w2, b2 = (tf.constant(rng.standard_normal(shape).astype(np.float32))
                      for shape in ((3, 3, 4, 8), (8,), (3, 3, 8, 1), (8,)))
    pad = [[0, 0], [1, 1], [1, 1], [0, 0]]

    @tf.function(input_signature=[tf.TensorSpec([1, 10, 10, 4], tf.float32, name="x")])
    def serving_default(x):
        y = tf.nn.relu6(tf.nn.bias_add(tf.nn.conv2d(tf.pad(x, pad), w1, 2, "VALID"), b1))
        return {"y": tf.nn.relu6(tf.nn.bias_add(tf.nn.depthwise_conv2d(tf.pad(y, pad), w2, [1, 2, 2, 1], "VALID"), b2))}

    holder = tf.Module()
    holder.serving_default = serving_default
    tf.saved_model.save(holder, str(tmp_path / "sm"), signatures={"serving_default": serving_default})
    write_graph_model(tmp_path / "sm", tmp_path / "tfjs", "fp32")
    model_json = json.loads((tmp_path / "tfjs" / "model.json").read_text())
    nodes = [n for n in model_json["modelTopology"]["node"] if n["op"] not in ("Const", "Placeholder", "Identity")]
    assert sorted(n["op"] for n in nodes) == ["FusedDepthwiseConv2dNative", "_FusedConv2D"], nodes
    for node in nodes:
        assert base64.b64decode(node["attr"]["padding"]["s"]) == b"EXPLICIT"
        assert node["attr"]["explicit_paddings"]["list"]["i"] == ["0", "0", "1", "1", "1", "1", "0", "0"]
    x = rng.standard_normal((1, 10, 10, 4)).astype(np.float32)
    expected = serving_default(tf.constant(x))["y"].numpy()
    signature = model_json["signature"]
    artifact = Artifact(tmp_path / "tfjs" / "model.json", "fp32",
                        [Binding("x", next(iter(signature["inputs"].values()))["name"], [1, 10, 10, 4], "NHWC",
                                 [0, 1, 2, 3])],
                        [Binding("y", next(iter(signature["outputs"].values()))["name"], [1, 3, 3, 8], "NHWC",
                                 [0, 1, 2, 3])])
    runs = run_in_node(tmp_path / "tfjs" / "model.json", artifact, [{"x": x}], log=tmp_path / "node.log")
    for backend, outputs in runs.items():
        assert np.abs(outputs[0]["y"] - expected).max() / np.abs(expected).max() < 1e-5, backend


def test_missing_kernels_name_the_nodes_and_the_backends():
    model = {"modelTopology": {"node": [{"name": "attn/einsum", "op": "Einsum"}, {"name": "a", "op": "AddV2"}]}}
    missing = missing_kernels(["Add", "Einsum"])
    assert set(missing) == {"Einsum"} and "wasm" in missing["Einsum"] and "cpu" not in missing["Einsum"]
    with pytest.raises(ConversionError) as caught:
        raise_for_missing(missing, model)
    assert "Einsum (attn/einsum): not in wasm" in caught.value.message
    assert caught.value.unsupported_ops == ["Einsum"]


ONEDNN_ON = """import os, sys
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1"
import tensorflow as tf
tf.function(lambda a: tf.nn.relu(a @ a))(tf.ones([2, 2]))  # TensorFlow decides on oneDNN here, for good
from converter.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _graph_files(folder):
    """model.onnx and the TF.js and TFLite files. saved_model.pb is left out: it names its functions with a
    per-process counter, which the first process's own tf.function moved on."""
    return {p.relative_to(folder): p.read_bytes()
            for p in [folder / "model.onnx", *(p for sub in ("tfjs", "tflite") for p in sorted((folder / sub).iterdir()))]}


@pytest.mark.slow
@pytest.mark.parametrize("model, shape", [("conv_bn_hardswish", "1,3,16,16"), ("mlp_layernorm_gelu", "2,32")])
def test_graphs_do_not_depend_on_onednn(tmp_path, model, shape):
    """The same conversion in a process whose TensorFlow has oneDNN on (the default on x86; on AVX-512 it
    fuses LayerNorm into _MklLayerNorm, and the hard-swish into the conv) and in a plain one: the same ONNX,
    TF.js and TFLite files, byte for byte, and no host-specific op in any graph."""
    (tmp_path / "onednn_on.py").write_text(ONEDNN_ON)
    folders = {}
    for how, prefix in (("plain", ["-m", "converter"]), ("onednn", [str(tmp_path / "onednn_on.py")])):
        folders[how] = tmp_path / how
        proc = subprocess.run([sys.executable, *prefix, "convert", f"tests/models/small.py:{model}",
                               "--input-shape", shape, "--targets", "tfjs,tflite", "--out", folders[how]],
                              cwd=REPO, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _graph_files(folders["plain"]) == _graph_files(folders["onednn"])
    for folder in folders.values():
        graphs = [folder / "tfjs" / "model.json", folder / "saved_model" / "saved_model.pb",
                  *sorted((folder / "tflite").glob("*.tflite"))]
        for graph in graphs:
            assert b"_Mkl" not in graph.read_bytes(), graph


# One conversion in this process (workers=False: a worker would be a process of its own, outside the emulator).
CONVERT_HERE = """import sys
from pathlib import Path
import torch
from converter.pipeline import convert
from converter.spec import Options
print("capability", torch.backends.cpu.get_cpu_capability(), flush=True)
model, shape, out = sys.argv[1:]
options = Options([tuple(map(int, shape.split(",")))], Path(out), targets=("tfjs", "tflite"), verbosity=0,
                  workers=False)
sys.exit(convert(model, options).exit_code)
"""


# The variables that size the thread pools of PyTorch (and OpenBLAS, which falls back to OMP_NUM_THREADS) and
# TensorFlow.
THREAD_POOLS = ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


@pytest.fixture(scope="session")
def qemu() -> list[str]:
    """QEMU's command with the emulated CPU that scripts/test_without_avx512.sh defines."""
    path = shutil.which("qemu-x86_64")
    if path is None:
        pytest.skip("qemu-x86_64 is missing (scripts/setup.sh installs qemu-user)")
    cpu = re.search(r"^cpu=(\S+)$", (REPO / "scripts" / "test_without_avx512.sh").read_text(), re.M).group(1)
    return [path, "-cpu", cpu]


@pytest.mark.slow
def test_a_cpu_without_avx512_and_one_thread_write_the_same_files(tmp_path, qemu):
    """The conversion on an emulated Haswell CPU (QEMU's user mode: AVX2 and FMA, no AVX-512) with one thread
    writes the same ONNX, TF.js and TFLite bytes as on this machine's CPU with 16 threads in each pool. Every
    library in the emulated process sees that CPU: PyTorch's kernels, oneDNN, XNNPACK, ONNX Runtime's MLAS,
    Eigen. The thread counts are a 1-core and a 16-core machine's: PyTorch's, OpenBLAS's and TensorFlow's pools
    split their work by them, and constant folding must not depend on the split. LayerNorm is what
    TensorFlow's oneDNN fused into _MklLayerNorm on AVX-512 only, and exact GELU what the TFLite stage builds
    from elementary ops."""
    (tmp_path / "convert_here.py").write_text(CONVERT_HERE)
    args = [str(tmp_path / "convert_here.py"), "tests/models/small.py:mlp_layernorm_gelu", "2,32"]
    python = os.path.abspath(sys.executable)  # QEMU resolves /proc/self/exe (TensorFlow reads it) from this path
    said = {}
    for how, prefix, threads in (("here", [python], 16), ("haswell", [*qemu, python], 1)):
        env = {**os.environ, **{name: str(threads) for name in THREAD_POOLS}}
        proc = subprocess.run([*prefix, *args, str(tmp_path / how)], cwd=REPO, capture_output=True, text=True,
                              timeout=1500, env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        said[how] = proc.stdout.split("capability ")[1].split()[0]
    assert said["haswell"] == "AVX2", said  # PyTorch found no AVX-512 there
    assert _graph_files(tmp_path / "here") == _graph_files(tmp_path / "haswell")


def test_a_conv_bias_before_a_residual_add_stays_fused(tmp_path):
    """conv + bias + residual, as onnx2tf writes it (tf.add for the bias): Grappler's arithmetic pass used to
    regroup it as AddN(conv, residual) + bias, leaving an unfused Conv2D and two passes over the tensor
    (mobilenet_v2's 10 residual blocks). The bias goes in as a BiasAdd now, and TF.js gets one fused conv."""
    from converter.stages.saved_model import import_tensorflow
    from converter.stages.tfjs import write_graph_model

    tf = import_tensorflow()
    rng = np.random.default_rng(0)
    variables = [tf.Variable(rng.standard_normal(shape).astype(np.float32))
                 for shape in ((1, 1, 8, 8), (8,), (3, 3, 8, 8), (8,))]
    holder = tf.Module()
    holder.variables_ = variables

    @tf.function(input_signature=[tf.TensorSpec([1, 6, 6, 8], tf.float32, name="x")])
    def serving_default(x):
        w1, b1, w2, b2 = variables
        residual = tf.nn.relu6(tf.add(tf.nn.convolution(x, w1, padding="SAME"), b1))  # not a graph input
        return {"y": tf.add(tf.nn.convolution(residual, w2, padding="SAME"), b2) + residual}

    holder.serving_default = serving_default
    tf.saved_model.save(holder, str(tmp_path / "sm"), signatures={"serving_default": serving_default})
    write_graph_model(tmp_path / "sm", tmp_path / "tfjs", "fp32")
    nodes = json.loads((tmp_path / "tfjs" / "model.json").read_text())["modelTopology"]["node"]
    ops = sorted(n["op"] for n in nodes if n["op"] not in ("Const", "Placeholder", "Identity"))
    assert ops == ["AddV2", "_FusedConv2D", "_FusedConv2D"], ops  # was AddN, AddV2, Conv2D, _FusedConv2D
