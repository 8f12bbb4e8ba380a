"""Ops a converter cannot handle: every such op is listed in one error, with the stage, the exit code is 4,
the report (with the list) goes to DIR.failed/, and DIR keeps its previous contents. NaN or Inf coming out
of an artifact is a parity failure (exit 3) that says so."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnx.helper as oh
import pytest

from converter.errors import ConversionError
from converter.loading import LoadedModel
from converter.samples import Cases
from converter.spec import Options, TensorSpec
from converter.stages.base import Artifact, Context
from faults import MODELS, assert_error, assert_intact, convert_cli, convert_here, litter, make_previous


def _context(work: Path, artifacts: dict) -> Context:
    spec = TensorSpec("x", (1, 3, 3))
    return Context(work, LoadedModel(None, "test", "python", ["x"]), [spec], [TensorSpec("y", (1, 3, 3))],
                   Cases(["random_0"], [{"x": np.zeros((1, 3, 3), np.float32)}], [None]),
                   Options([(1, 3, 3)], work), artifacts)


def test_onnx2tf_lists_every_unknown_op(tmp_path):
    """onnx2tf stops at the first op it has no module for; the stage names them all before it starts."""
    nodes = [oh.make_node("Relu", ["x"], ["a"]), oh.make_node("Frobnicate", ["a"], ["b"], domain="com.example"),
             oh.make_node("Relu", ["b"], ["c"]), oh.make_node("Zork", ["c"], ["y"], domain="com.example")]
    graph = oh.make_graph(nodes, "g", [oh.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 3])],
                          [oh.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3, 3])])
    onnx.save(oh.make_model(graph), tmp_path / "model.onnx")
    ctx = _context(tmp_path, {"onnx": Artifact(Path("model.onnx"), "fp32", [], [])})
    from converter.stages.saved_model import SavedModelStage

    with pytest.raises(ConversionError) as error:
        SavedModelStage().convert(ctx)
    assert error.value.stage == "saved_model" and error.value.exit_code == 4
    assert error.value.unsupported_ops == ["Frobnicate", "Zork"]
    assert "Frobnicate, Zork" in str(error.value) and "try:" in str(error.value)


@pytest.mark.slow
def test_onnx_export_lists_every_unsupported_op(tmp_path):
    out = tmp_path / "out"
    before = make_previous(out)
    outcome = convert_cli(f"{MODELS}:no_onnx", "--input-shape", "1,3,3", "--targets", "onnx", "--cases", "1",
                          "--out", out, "--force")
    assert_error(outcome, 4, "onnx", "prims.digamma.default", "prims.lgamma.default", "unsupported ops")
    assert_intact(out, before)
    report = json.loads((tmp_path / "out.failed" / "report.json").read_text())
    onnx_stage = next(s for s in report["stages"] if s["name"] == "onnx")
    assert onnx_stage["error"]["unsupported_ops"] == ["prims.digamma.default", "prims.lgamma.default"]


@pytest.mark.slow
def test_tfjs_lists_every_unsupported_op(tmp_path):
    """A SavedModel with two ops that TF.js has no kernel for (determinant and inverse)."""
    from converter.stages.saved_model import import_tensorflow
    from converter.stages.tfjs import TfjsStage

    tf = import_tensorflow()
    module = tf.Module()
    module.f = tf.function(lambda x: {"y": tf.linalg.inv(x) * tf.reshape(tf.linalg.det(x), [1, 1, 1])},
                           input_signature=[tf.TensorSpec([1, 3, 3], tf.float32, name="x")])
    tf.saved_model.save(module, str(tmp_path / "saved_model"), signatures={"serving_default": module.f})
    ctx = _context(tmp_path, {"saved_model": Artifact(Path("saved_model"), "fp32", [], [])})
    with pytest.raises(ConversionError) as error:
        TfjsStage().convert(ctx)
    assert error.value.stage == "tfjs"
    assert error.value.unsupported_ops == ["MatrixDeterminant", "MatrixInverse"], str(error.value)
    assert "MatrixDeterminant, MatrixInverse" in str(error.value) and "try:" in str(error.value)


@pytest.mark.slow
def test_nan_from_an_artifact_is_a_parity_failure(tmp_path, capsys, monkeypatch):
    """PyTorch's outputs are finite, ONNX Runtime's (simulated) are NaN: exit 3, said plainly."""
    from converter.stages.onnx import OnnxStage

    real = OnnxStage.run

    def nan_run(self, ctx, artifact, cases):
        return [{k: np.full_like(v, np.nan) for k, v in case.items()} for case in real(self, ctx, artifact, cases)]

    monkeypatch.setattr(OnnxStage, "run", nan_run)
    out = tmp_path / "out"
    before = make_previous(out)
    outcome = convert_here(capsys, f"{MODELS}:mlp", "--input-shape", "1,16", "--targets", "onnx", "--cases", "1",
                           "--out", out, "--force")
    assert_error(outcome, 3, "onnx", "output: the artifact holds NaN or Inf")
    assert_intact(out, before)
    report = json.loads((tmp_path / "out.failed" / "report.json").read_text())  # NaN is written as null
    assert report["stages"][0]["status"] == "failed" and report["stages"][0]["max_abs_err"] is None
    assert litter(out) == []
