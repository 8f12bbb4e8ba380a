"""The memory guard: a model or input whose conversion would need more memory than is available fails at
once, clearly, before anything big is allocated; and each stage's peak memory is its own."""

from __future__ import annotations

import numpy as np
import pytest

from converter import resources
from converter.errors import ConversionError
from faults import MODELS, assert_error, assert_intact, convert_here, make_previous


def test_model_too_big_for_the_machine(tmp_path, capsys):
    """400 GB of parameters (on the meta device, so nothing is allocated to build it)."""
    out = tmp_path / "out"
    before = make_previous(out)
    outcome = convert_here(capsys, f"{MODELS}:huge_on_meta", "--input-shape", "1,1000000", "--out", out, "--force")
    assert_error(outcome, 4, "resources", "of memory", "372.5 GB of weights", "is available", "--no-memory-check")
    assert_intact(out, before)


def test_inputs_too_big_for_the_machine(tmp_path, capsys):
    out = tmp_path / "out"
    outcome = convert_here(capsys, f"{MODELS}:mlp", "--input-shape", "100000,100000,16", "--out", out)
    assert_error(outcome, 4, "resources", "of input cases")
    assert_intact(out, None)


def test_archive_too_big_is_refused_before_loading(tmp_path, capsys):
    """A 4 TB (sparse) file: judged by its size, never read."""
    model = tmp_path / "huge.pt2"
    with open(model, "wb") as f:
        f.truncate(4 * 2**40)
    outcome = convert_here(capsys, model, "--input-shape", "1,16", "--out", tmp_path / "out")
    assert_error(outcome, 4, "resources", "huge.pt2")
    assert_intact(tmp_path / "out", None)


def test_estimate():
    assert resources.needed_bytes(0) == resources.BASE_MB * 2**20
    assert resources.needed_bytes(10**9) == resources.BASE_MB * 2**20 + resources.FACTOR * 10**9
    resources.check(10**6, what="small", available=2**40)
    with pytest.raises(ConversionError) as error:
        resources.check(10**9, what="big", available=2**30)
    assert error.value.stage == "resources" and "only 1.0 GB is available" in str(error.value)
    assert 0 < resources.available_bytes()


def test_peak_is_per_stage():
    """The high-water mark resets between stages, so a big stage does not show up in the ones after it."""
    resources.reset_peak()
    block = np.ones(300 * 2**20 // 8)  # 300 MB, touched
    big = resources.peak_mb()
    del block
    resources.reset_peak()
    small = resources.peak_mb()
    assert big - small > 200, (big, small)


def test_torch_side_targets_need_less():
    """The TensorFlow stages are the hungry ones: without them the estimate is much smaller."""
    weights = 2 * 2**30
    assert resources.needed_bytes(weights, tf_side=False) < resources.needed_bytes(weights) / 3
    resources.check(weights, what="m", targets=("onnx", "ptl"), available=20 * 2**30)
    with pytest.raises(ConversionError) as error:
        resources.check(weights, what="m", targets=("tfjs",), available=20 * 2**30)
    assert "--targets onnx,torchscript,ptl needs far less" in str(error.value)
