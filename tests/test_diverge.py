"""converter/diverge.py: a saved_model parity failure names the first ONNX op whose TF output diverges.

onnx2tf converts these small models correctly, so the tests plant a bug in one of its op converters (Tanh
gets an offset) and check that exactly that node is named, in the module's result and in the pipeline's
report.json and report.html.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from converter import Options, convert
from converter.loading import LoadedModel


class TanhNet(nn.Module):
    """Linear -> ReLU -> Linear -> Tanh -> Linear: the Tanh is preceded by ops that stay correct."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(8, 16), nn.Linear(16, 16), nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(torch.tanh(self.b(torch.relu(self.a(x)))))


@pytest.fixture
def broken_tanh(monkeypatch):
    """onnx2tf's Tanh converter, off by 0.25 (as a real converter bug would be)."""
    import onnx2tf.ops.Tanh as tanh_op

    original = tanh_op.make_node

    def make_node(*, graph_node, tf_layers_dict, **kwargs):
        original(graph_node=graph_node, tf_layers_dict=tf_layers_dict, **kwargs)
        out = tf_layers_dict[graph_node.outputs[0].name]
        out["tf_node"] = out["tf_node"] + 0.25

    monkeypatch.setattr(tanh_op, "make_node", make_node)


def _model() -> LoadedModel:
    torch.manual_seed(0)
    return LoadedModel(TanhNet().eval(), "tests/test_diverge.py:TanhNet", "python", ["x"])


def test_pipeline_names_the_first_diverging_op(tmp_path, broken_tanh):
    out = tmp_path / "tanh"
    # workers=False: the planted bug lives in this process.
    result = convert(_model(), Options([(2, 8)], out, targets=("saved_model",), random_cases=1, verbosity=0,
                                       workers=False))
    assert result.exit_code == 3
    report = json.loads((tmp_path / "tanh.failed" / "report.json").read_text())
    stage = next(s for s in report["stages"] if s["name"] == "saved_model")
    assert stage["status"] == "failed"
    # PyTorch's own fp32 rounding explains nothing of an offset of 0.25: the tolerance stays.
    floor = stage["rounding_floor"]
    assert floor["precision"] == "fp32" and floor["rel_err"] < 1e-6 and floor["tolerance"] == 1e-4
    assert "the conversion adds error" in " ".join(stage["notes"])
    found = stage["first_diverging_op"]
    assert found["op_type"] == "Tanh"
    assert found["max_abs_err"] == pytest.approx(0.25, rel=1e-3)
    assert found["max_rel_err"] > 1e-4
    assert found["node"] and found["output"]
    assert any("first diverging op: Tanh" in n for n in stage["notes"])
    assert "first diverging op: Tanh" in (tmp_path / "tanh.failed" / "report.html").read_text()


def test_no_divergence_when_onnx2tf_is_right(tmp_path):
    """Without the planted bug every op agrees: the module says so (None) instead of naming an op."""
    from converter.diverge import find_first_diverging_op

    model = _model()
    onnx_path = tmp_path / "m.onnx"
    x = torch.randn(2, 8)
    torch.onnx.export(model.module, (x,), str(onnx_path), dynamo=True, opset_version=18, input_names=["x"])
    feeds = {"x": x.numpy()}
    assert find_first_diverging_op(onnx_path, feeds, feeds, tmp_path / "work", 1e-4) is None
    assert not (tmp_path / "work").exists()
