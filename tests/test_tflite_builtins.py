"""The TFLite stages trace the ops TFLite has no builtin for from ops it has (converter/stages/tflite.py:
ELEMENTARY). Which ops need that is read from onnx2tf's op modules and TFLite's own converter, so that an onnx2tf
that calls another such op, or a TFLite that adds or drops a builtin, fails here instead of in a user's model."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from converter.stages.saved_model import import_tensorflow
from converter.stages.tflite import ELEMENTARY, _replacements

# Each replacement's reference (float64) and a grid inside its domain.
REFERENCES = {
    "math.acos": (np.arccos, np.linspace(-1, 1, 2001)),
    "math.acosh": (np.arccosh, np.linspace(1, 50, 2001)),
    "math.asin": (np.arcsin, np.linspace(-1, 1, 2001)),
    "math.asinh": (np.arcsinh, np.linspace(-50, 50, 2001)),
    "math.atan": (np.arctan, np.linspace(-50, 50, 2001)),
    "math.atanh": (np.arctanh, np.linspace(-0.999, 0.999, 2001)),
    "math.cosh": (np.cosh, np.linspace(-10, 10, 2001)),
    "math.erf": (np.vectorize(math.erf), np.linspace(-6, 6, 4001)),
    "math.sinh": (np.sinh, np.linspace(-10, 10, 2001)),
    "math.tan": (np.tan, np.linspace(-1.5, 1.5, 2001)),
}


# Ops that no graph of ours reaches onnx2tf with, and why.
NEVER_WRITTEN = {"math.cumprod": "converter/stages/onnx.py exports torch.cumprod as a signed exp(cumsum(log |x|))"}


def _builtins_only(tf, function) -> bool:
    concrete = tf.function(function, input_signature=[tf.TensorSpec([2, 3], tf.float32)]).get_concrete_function()
    try:
        tf.lite.TFLiteConverter.from_concrete_functions([concrete]).convert()
    except Exception:  # noqa: BLE001 (the converter raises ConverterError and others)
        return False
    return True


def test_every_math_op_of_onnx2tf_without_a_tflite_builtin_has_a_replacement():
    import onnx2tf

    tf = import_tensorflow()
    ops = Path(onnx2tf.__file__).parent / "ops"
    called = {name for module in ops.glob("*.py") for name in re.findall(r"\btf\.math\.(\w+)\(", module.read_text())}
    unary = []
    for name in sorted(called):
        try:
            getattr(tf.math, name)(tf.fill([2, 3], 0.5))
        except Exception:  # noqa: BLE001 (not a function of one float tensor)
            continue
        unary.append(name)
    assert len(unary) > 30, unary  # the scan found onnx2tf's elementwise math
    without = {f"math.{name}" for name in unary if not _builtins_only(tf, getattr(tf.math, name))}
    assert without - set(NEVER_WRITTEN) == set(ELEMENTARY.values())
    # Each entry is keyed by the ONNX op whose onnx2tf module calls it.
    for op, symbol in ELEMENTARY.items():
        assert f"tf.{symbol}(" in (ops / f"{op}.py").read_text(), op


@pytest.mark.parametrize("symbol", sorted(REFERENCES))
def test_replacements_compute_the_function_from_builtins(symbol):
    tf = import_tensorflow()
    function = _replacements()[symbol]
    assert _builtins_only(tf, function)
    reference, grid = REFERENCES[symbol]
    x = grid.astype(np.float32)
    got = function(tf.constant(x)).numpy()
    want = reference(x.astype(np.float64))
    # float32 rounding of the input and of a few ops, relative to the output's scale on the grid
    assert np.max(np.abs(got - want)) <= 2e-6 * max(1.0, np.max(np.abs(want)))
    outside = {"math.acos": 1.5, "math.asin": -1.5, "math.acosh": 0.5, "math.atanh": 1.5}
    if symbol in outside:
        assert np.isnan(function(tf.constant([outside[symbol]], tf.float32)).numpy()).all()
