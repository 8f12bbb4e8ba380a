"""converter.parity: the error measure every consumer shares (docs/artifacts.md)."""

import numpy as np

from converter.parity import accuracy, compare


def _cases(*arrays):
    return [{"y": np.asarray(a, dtype=np.float32)} for a in arrays]


def test_relative_error_is_against_the_reference_scale():
    ref = _cases([[1e-8, -2e-8, 3e-8]])
    got = _cases([[2e-8, -2e-8, 3e-8]])
    result = compare(ref, got, 1e-4, "pytorch")
    # An absolute error of 1e-8 looks tiny, but it is a third of the output's scale.
    assert result.max_abs_err < 1e-7
    assert abs(result.max_rel_err - 1 / 3) < 1e-6
    assert not result.passed


def test_passes_within_tolerance_and_reports_top1():
    ref = _cases([[0.0, 2.0, 1.0]], [[3.0, 0.0, 1.0]])
    got = _cases([[0.0, 2.0001, 1.0]], [[3.0, 0.0, 1.0001]])
    result = compare(ref, got, 1e-4, "onnx")
    assert result.passed
    out = result.outputs[0]
    assert out.top1_agreement == 1.0
    assert abs(out.max_rel_err - 1e-4 / 3.0) < 1e-6


def test_nan_or_inf_fails_and_says_which_side():
    result = compare(_cases([[1.0, 2.0]]), _cases([[np.nan, 2.0]]), 1.0, "pytorch")
    assert not result.passed
    assert result.outputs[0].nonfinite == "the artifact"
    assert "NaN or Inf" in result.outputs[0].describe()
    result = compare(_cases([[np.inf, 2.0]]), _cases([[1.0, 2.0]]), 1.0, "pytorch")
    assert result.outputs[0].nonfinite == "the reference"


def test_top1_disagreement_is_counted():
    result = compare(_cases([[1.0, 0.0]], [[0.0, 1.0]]), _cases([[1.0, 0.0]], [[1.0, 0.0]]), 10.0, "x")
    assert result.outputs[0].top1_agreement == 0.5


def test_accuracy_uses_only_labelled_cases():
    outputs = [{"y": np.array([[0.1, 0.9], [0.8, 0.2]])}, {"y": np.array([[1.0, 0.0]])}]
    assert accuracy(outputs, [np.array([1, 1]), None]) == 0.5
    assert accuracy(outputs, [None, None]) is None
