"""A fast subset of the model zoo (scripts/zoo_models.py), converted with the zoo runner's own command line.

The full zoo is `python scripts/zoo.py` (results in docs/zoo.md). Here: a cross-attention decoder (the
square-weight transpose onnx2tf got wrong), nn.Transformer with masks (its causal-mask check used to stop
the export) and a small CNN. The runner's table and its helpers are checked without converting anything.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from runcli import REPO, run_cli

sys.path.insert(0, str(REPO / "scripts"))

import zoo  # noqa: E402
import zoo_models  # noqa: E402

ENTRIES = {e.name: e for e in zoo_models.ZOO}


def _convert(tmp_path, name: str) -> dict:
    out = tmp_path / name
    proc = run_cli(*zoo.cli_args(ENTRIES[name], out), timeout=600)
    folder = out if proc.returncode == 0 else out.with_name(out.name + ".failed")
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads((folder / "report.json").read_text())


def _assert_every_stage_passed(report: dict) -> None:
    assert [s["name"] for s in report["stages"]] == list(zoo.STAGES)
    for stage in report["stages"]:
        assert stage["status"] == "passed", stage
        assert stage["max_rel_err"] <= stage["tolerance"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["text_decoder", "seq2seq_transformer", "squeezenet1_1"])
def test_zoo_subset_passes_every_stage(tmp_path, name):
    _assert_every_stage_passed(_convert(tmp_path, name))


def test_zoo_has_thirty_architectures_with_builders():
    assert len(ENTRIES) == len(zoo_models.ZOO) >= 30
    families = {e.family for e in zoo_models.ZOO}
    assert {"classification", "detection", "segmentation", "transformer"} <= families
    for entry in zoo_models.ZOO:
        assert callable(getattr(zoo_models, entry.name)), entry.name
        assert len(entry.shapes) == len(entry.dtypes), entry.name


def test_cli_args_carry_dtypes_and_token_range():
    args = zoo.cli_args(ENTRIES["text_decoder"], REPO / "out")
    assert args[:2] == ["convert", "scripts/zoo_models.py:text_decoder"]
    assert args.count("--input-shape") == 2 and args.count("--input-dtype") == 2
    assert args[args.index("--int-high") + 1] == str(zoo_models.VOCAB)
    assert "--input-dtype" not in zoo.cli_args(ENTRIES["resnet18"], REPO / "out")


def test_markdown_table_shows_status_error_time_size_and_causes():
    ok = {"status": "passed", "max_rel_err": 3e-7, "seconds": 1.5, "bytes": 4_000_000}
    doc = {
        "updated": "today", "machine": "test", "versions": {"torch": "x"},
        "runs": [{"date": "today", "command": "python scripts/zoo.py", "models": ["a", "b"]}],
        "models": [
            {"model": "a", "family": "classification", "inputs": "1x3x8x8", "note": "smaller input", "status": "passed",
             "cause": "", "fix": "", "seconds": 10, "peak_rss_gb": 1.0, "stages": {s: ok for s in zoo.STAGES}},
            {"model": "b", "family": "transformer", "inputs": "1x8 int64<10", "note": "", "status": "failed",
             "cause": "saved_model: differs; first diverging op: MatMul `n` (abs 1, rel 0.5)", "fix": "fold it",
             "seconds": 20, "peak_rss_gb": 2.0,
             "stages": {"onnx": ok, "saved_model": {"status": "failed", "max_rel_err": 0.5, "seconds": 3.0,
                                                      "bytes": 10, "error": "differs"}}},
        ],
    }
    text = zoo.render_markdown(doc)
    assert "**1/2 architectures pass every stage**" in text
    assert "ok · 3.0e-07 · 1.5 s · 4.0 MB" in text
    assert "**FAIL** · 5.0e-01" in text
    assert "first diverging op: MatMul" in text and "what would fix it: fold it" in text
    assert "`python scripts/zoo.py`" in text and "smaller input" in text


def test_ssdlite_adapter_returns_tensors_for_every_anchor():
    import torch

    model = zoo_models.ssdlite320_mobilenet_v3_large()
    with torch.no_grad():
        boxes, scores = model(torch.randn(1, 3, 320, 320))
    assert boxes.shape[:2] == scores.shape[:2] and boxes.shape[2] == 4
    np.testing.assert_allclose(scores.sum(-1).numpy(), 1.0, rtol=1e-5)
