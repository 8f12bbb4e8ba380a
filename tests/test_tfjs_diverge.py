"""converter/tfjs_diverge.py: a tfjs parity failure names the first TF.js node whose output differs from
TensorFlow's run of the same model.json, and the backends on which it does.

TF.js runs these small graphs right, so the tests plant a bug: a cpu Tanh kernel off by 0.25 (registered by a
Node.js preload, as a real kernel bug would be), a fused LeakyRelu on the depthwise conv (whose alpha TF.js's
converter drops), and, through the whole pipeline, the batched-matmul Tile rewrite left out (TF.js's
BatchMatMul kernels broadcast an inner batch axis wrong: tests/test_tfjs_audit.py). A correct graph yields none.
"""

from __future__ import annotations

import base64
import json
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from runcli import REPO, run_cli

from converter import Options, convert
from converter.stages.tfjs import NODE_BACKENDS
from converter.tfjs_diverge import find_first_diverging_node, search, topological


class ConvPreluDepthwiseTanh(nn.Module):
    """Conv + PReLU (tensorflowjs fuses them into _FusedConv2D [BiasAdd, Prelu]), a depthwise conv
    (FusedDepthwiseConv2dNative, tensorflowjs's own op), hard-swish, a linear layer and a Tanh."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.prelu = nn.Conv2d(3, 4, 3), nn.PReLU(4)
        self.depthwise, self.linear = nn.Conv2d(4, 4, 3, groups=4), nn.Linear(4 * 4 * 4, 6)

    def forward(self, x):
        x = nn.functional.hardswish(self.depthwise(self.prelu(self.conv(x))))
        return torch.tanh(self.linear(x.flatten(1)))


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """ConvPreluDepthwiseTanh through the CLI (--targets tfjs): the output folder."""
    work = tmp_path_factory.mktemp("tfjs_diverge")
    (work / "model.py").write_text(f"import sys; sys.path.insert(0, {str(REPO / 'tests')!r})\n"
                                   "from test_tfjs_diverge import ConvPreluDepthwiseTanh as build\n")
    proc = run_cli("convert", work / "model.py:build", "--input-shape", "1,3,8,8", "--targets", "tfjs",
                   "--out", work / "out")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ops = {n["op"] for n in _nodes(work / "out" / "tfjs")}
    assert {"_FusedConv2D", "FusedDepthwiseConv2dNative", "Tanh"} <= ops
    return work / "out"


def _nodes(folder) -> list[dict]:
    return json.loads((folder / "model.json").read_text())["modelTopology"]["node"]


def _feeds(out) -> dict[str, np.ndarray]:
    x = np.load(out / "golden" / "input_x_random_0.npy")
    binding = json.loads((out / "metadata.json").read_text())["artifacts"]["tfjs"]["inputs"][0]
    return {binding["artifact_name"]: np.transpose(x, binding["perm"])}


def test_a_correct_graph_has_no_diverging_node(converted, tmp_path):
    """Every node's output agrees on wasm and cpu, and TensorFlow's run of model.json (its fused and
    tensorflowjs-only ops expanded) is PyTorch's model: the expansions compute the same math."""
    found = search(converted / "tfjs" / "model.json", _feeds(converted), 1e-4, tmp_path / "node.log",
                   also=["Identity:0"])
    assert found.first is None and found.backends == list(NODE_BACKENDS) and not found.failed
    assert not found.unfetched
    computed = [n for n in _nodes(converted / "tfjs") if n["op"] not in ("Const", "Placeholder")]
    assert found.checked == len(computed)
    expected = np.load(converted / "golden" / "output_output_random_0.npy")
    assert np.abs(found.tf_values["Identity:0"] - expected).max() / np.abs(expected).max() < 1e-5


BROKEN_TANH = """
const path = require('node:path');
const tf = require(path.join(%r, 'node_modules', '@tensorflow', 'tfjs'));
// The cpu backend's Tanh, off by 0.25 (wasm keeps its own).
tf.unregisterKernel('Tanh', 'cpu');
tf.registerKernel({kernelName: 'Tanh', backendName: 'cpu', kernelFunc: ({inputs, backend}) => {
  const values = backend.data.get(inputs.x.dataId).values.map((v) => Math.tanh(v) + 0.25);
  return backend.makeTensorInfo(inputs.x.shape, 'float32', values);
}});
"""


def test_a_broken_kernel_is_named_with_its_backend(converted, tmp_path, monkeypatch):
    preload = tmp_path / "broken_tanh.cjs"
    preload.write_text(BROKEN_TANH % str(REPO))
    monkeypatch.setenv("NODE_OPTIONS", f"--require {preload}")
    found = find_first_diverging_node(converted / "tfjs" / "model.json", _feeds(converted), 1e-4,
                                      tmp_path / "node.log")
    tanh = next(n for n in _nodes(converted / "tfjs") if n["op"] == "Tanh")
    assert (found.node, found.op, found.output, found.backends) == (tanh["name"], "Tanh", f"{tanh['name']}:0", ["cpu"])
    assert found.max_abs_err == pytest.approx(0.25, rel=1e-5) and found.shape == [1, 6]
    assert found.errors["wasm"]["max_rel_err"] < 1e-5
    assert found.describe().startswith(f"first diverging TF.js node: Tanh node {tanh['name']!r}")


def test_an_attribute_tfjs_drops_is_named(converted, tmp_path):
    """FusedDepthwiseConv2dNative with a fused LeakyRelu: TensorFlow's expansion applies leakyrelu_alpha, TF.js's
    converter does not read it (tfjs_support.json's converter_attrs; cpu gives NaN). When a TF.js release reads
    it, the support table test says so first."""
    folder = tmp_path / "tfjs"
    shutil.copytree(converted / "tfjs", folder)
    model_json = json.loads((folder / "model.json").read_text())
    depthwise = next(n for n in model_json["modelTopology"]["node"] if n["op"] == "FusedDepthwiseConv2dNative")
    depthwise["attr"]["fused_ops"] = {"list": {"s": [base64.b64encode(b).decode() for b in (b"BiasAdd", b"LeakyRelu")]}}
    depthwise["attr"]["leakyrelu_alpha"] = {"f": 0.2}
    (folder / "model.json").write_text(json.dumps(model_json))
    found = find_first_diverging_node(folder / "model.json", _feeds(converted), 1e-4, tmp_path / "node.log")
    assert (found.node, found.op) == (depthwise["name"], "FusedDepthwiseConv2dNative")
    assert "cpu" in found.backends and found.checked == 2  # the fused conv before it matched


def _ctx(out, tfjs):
    """What annotate reads of a run's context: the tfjs artifact, the first case and PyTorch's outputs."""
    from types import SimpleNamespace

    from converter.layout import Binding
    from converter.stages.base import Artifact

    meta = json.loads((out / "metadata.json").read_text())["artifacts"]["tfjs"]
    bindings = [[Binding(b["name"], b["artifact_name"], b["shape"], b["layout"], b["perm"]) for b in meta[kind]]
                for kind in ("inputs", "outputs")]
    case = {"x": np.load(out / "golden" / "input_x_random_0.npy")}
    reference = {"output": np.load(out / "golden" / "output_output_random_0.npy")}
    return SimpleNamespace(artifacts={"tfjs": Artifact(tfjs / "model.json", "fp32", *bindings)}, work=tfjs.parent,
                           cases=SimpleNamespace(inputs=[case]), reference=[reference])


def test_annotate_says_none_and_whether_the_graph_itself_is_off(converted, tmp_path):
    """No node diverges: report key null, and the note says how far TensorFlow's run of model.json is from
    PyTorch: within tolerance as converted, far off after a weight in the shard is scaled (both runtimes read
    the same wrong weight, so TF.js is not to blame)."""
    from converter.errors import ParityError
    from converter.report import StageResult
    from converter.tfjs_diverge import annotate

    (tmp_path / "logs").mkdir()
    shutil.copytree(converted / "tfjs", tmp_path / "tfjs")
    notes = []
    for corrupt in (False, True):
        if corrupt:
            model_json = json.loads((tmp_path / "tfjs" / "model.json").read_text())
            group = model_json["weightsManifest"][0]
            shard = tmp_path / "tfjs" / group["paths"][0]
            weights = np.fromfile(shard, dtype="<f4")
            weights[-6:] *= 3  # the last weight: the linear layer's bias, float32 [6]
            assert group["weights"][-1]["shape"] == [6]
            weights.tofile(shard)
        result = StageResult("tfjs", "saved_model", status="failed", tolerance=1e-4,
                             error=ParityError("tfjs differs", stage="tfjs"))
        annotate(_ctx(converted, tmp_path / "tfjs"), result)
        assert result.extra == {"first_diverging_node": None}
        notes.append(result.notes[-1])
    assert all(n.startswith("first diverging TF.js node: none; all ") for n in notes)
    assert "matches PyTorch there" in notes[0] and "the graph itself computes something else" in notes[1]


def test_a_tensor_tfjs_cannot_return_fails_alone_in_a_batched_request(converted, tmp_path):
    """run_tfjs.mjs with `batch` (the diagnosis) reports a tensor it cannot compute and returns the others; without
    it (the stage's parity run) the backend fails, as before."""
    from converter.stages.tfjs import start_node_request

    model, feeds = converted / "tfjs" / "model.json", [list(_feeds(converted).items())]
    names = ["Identity:0", "no_such_node:0", "Identity:0"]
    reply = start_node_request(model, feeds, names, tmp_path / "node.log", batch=3, backends=("cpu",))()
    outputs = reply["backends"]["cpu"]["cases"][0]["outputs"]
    assert [sorted(o) for o in outputs] == [["array", "dtype", "file", "shape"], ["error"], ["array", "dtype", "file", "shape"]]
    assert "no_such_node" in outputs[1]["error"] and np.array_equal(outputs[0]["array"], outputs[2]["array"])
    whole = start_node_request(model, feeds, names, tmp_path / "node.log", backends=("cpu",))()
    assert "no_such_node" in whole["backends"]["cpu"]["error"]


def test_topological_order_puts_producers_first():
    nodes = [{"name": "mm", "input": ["a", "tile"]}, {"name": "a", "input": []}, {"name": "tile", "input": ["b", "^a"]},
             {"name": "b"}, {"name": "out", "input": ["mm:0"]}]
    assert [n["name"] for n in topological(nodes)] == ["a", "b", "tile", "mm", "out"]


def test_pipeline_names_the_matmul_that_tfjs_broadcasts_wrong(tmp_path, monkeypatch):
    """Without the Tile rewrite, [2, 3, 1, 5] @ [2, 1, 5, 4] is wrong on every backend: the tfjs stage fails
    parity, and its report names the BatchMatMulV2 node, on wasm and cpu, in report.json and report.html."""
    import converter.stages.tfjs_audit as audit

    tile = audit._tile_broadcast_batches
    monkeypatch.setattr(audit, "_tile_broadcast_batches", lambda *args, **kwargs: [])
    out = tmp_path / "matmul"
    # workers=False: the patched rewrite lives in this process.
    result = convert(f"{REPO / 'tests' / 'models' / 'small.py'}:inner_broadcast_matmul",
                     Options([(2, 3, 5)], out, targets=("tfjs",), verbosity=0, workers=False))
    assert result.exit_code == 3
    failed = tmp_path / "matmul.failed"
    stage = next(s for s in json.loads((failed / "report.json").read_text())["stages"] if s["name"] == "tfjs")
    assert stage["status"] == "failed"
    found = stage["first_diverging_node"]
    assert found["op"] == "BatchMatMulV2" and found["backends"] == list(NODE_BACKENDS)
    assert found["max_rel_err"] > 0.05 and found["shape"] == [2, 3, 1, 4]
    # The matmul that the rewrite tiles (the graph's other BatchMatMulV2, a Linear on [2, 5, 3], matched).
    model_json = json.loads((failed / "tfjs" / "model.json").read_text())
    assert [r.node for r in tile(audit._Graph(model_json), failed / "tfjs", list(NODE_BACKENDS))] == [found["node"]]
    assert found["checked"] > 1
    assert any(n.startswith("first diverging TF.js node: BatchMatMulV2") for n in stage["notes"])
    assert "first diverging TF.js node: BatchMatMulV2" in (failed / "report.html").read_text()
