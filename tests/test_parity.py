"""converter.parity: the error measure every consumer shares (docs/artifacts.md)."""

import numpy as np
import pytest

from converter.parity import SPREAD_FACTOR, accuracy, compare


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


def test_reference_that_ignores_the_input_is_degenerate():
    # The same output for two different inputs: an artifact that returns that constant matches, right or wrong.
    ref = _cases([[0.5, -1.0, 2.0]], [[0.5, -1.0, 2.0]])
    result = compare(ref, ref, 1e-4, "pytorch")
    out = result.outputs[0]
    assert result.passed and out.degenerate and result.degenerate() == [out]
    assert out.reference_spread == 0.0 and out.rel_spread == 0.0 and out.rel_to_spread is None
    assert out.degenerate_reason == "is the same across 2 input cases, under 10 x tolerance 0.0001"
    assert result.to_json()["degenerate"] == ["y"]


@pytest.mark.parametrize("value", [0.0, 0.5])
def test_a_constant_reference_is_degenerate_at_tolerance_zero_too(value):
    """A model whose output is all zeros (timm's zero-initialised head) has a rounding floor of 0, so the stage
    was judged again at tolerance 0, where 'spread < 10 x 0' is false: the constant passed as verified."""
    ref = _cases([[value, value]], [[value, value]])
    out = compare(ref, ref, 0.0, "pytorch").outputs[0]
    assert out.passed and out.degenerate and out.reference_spread == 0.0


def test_a_single_case_cannot_show_a_spread():
    result = compare(_cases([[1.0, 2.0]]), _cases([[1.0, 2.0]]), 1e-4, "pytorch")
    out = result.outputs[0]
    assert result.passed and out.degenerate and out.reference_spread is None and out.rel_to_spread is None
    assert out.degenerate_reason == "one input case, no spread to measure"


def test_spread_is_per_element_across_cases_and_relative_to_the_scale():
    ref = _cases([[1.0, 4.0, -2.0]], [[1.5, 4.0, -2.0]], [[0.75, 4.0, -2.0]])
    got = _cases([[1.0, 4.0, -2.0]], [[1.5, 4.0, -2.0]], [[0.75, 4.0, -2.0625]])
    result = compare(ref, got, 1e-2, "pytorch")
    out = result.outputs[0]
    # Element 0 moves by 1.5 - 0.75 across the cases, the others not at all; the scale is 4.
    assert out.reference_spread == 0.75 and out.rel_spread == 0.75 / 4
    assert out.rel_to_spread == 0.0625 / 0.75
    assert not out.passed and not out.degenerate  # the check could fail, and did
    assert "0.0833 of the reference's spread" in out.describe()
    saved = result.to_json()["outputs"][0]
    assert (saved["reference_spread"], saved["rel_to_spread"], saved["degenerate"]) == (0.75, 0.0625 / 0.75, False)


@pytest.mark.parametrize("tolerance, degenerate", [(1e-4, False), (1e-2, True)])
def test_degenerate_below_spread_factor_times_the_tolerance(tolerance, degenerate):
    # The output moves by 5% of its scale: plenty for fp32's 1e-4, not well beyond fp16's 1e-2.
    ref = _cases([[1.0, 0.0]], [[1.0, 0.0625]])
    out = compare(ref, ref, tolerance, "pytorch").outputs[0]
    assert out.rel_spread == 0.0625
    assert (out.rel_spread < SPREAD_FACTOR * tolerance) == degenerate == out.degenerate


def test_cases_of_another_batch_size_are_compared_on_the_rows_they_share():
    # --dynamic-batch adds a case with a larger batch: its first row lines up with the other case's only row.
    ref = [{"y": np.array([[1.0, 2.0]])}, {"y": np.array([[3.0, 2.0], [9.0, -9.0], [9.0, 9.0]])}]
    out = compare(ref, ref, 1e-4, "pytorch").outputs[0]
    assert out.reference_spread == 2.0 and out.reference_scale == 9.0 and not out.degenerate
