"""Fixes for onnx2tf behaviours that cost speed without changing results, applied only while we convert.

Add's "rescue guard" (onnx2tf 1.29.24, ops/Add.py) compares the ONNX output shape, which is channels-first,
with the TF output shape, which onnx2tf itself made channels-last. For every 4-D residual addition the two
differ, so it "rescues" the add by transposing both inputs to NCHW and the result back:

    before:  Conv2D -> Transpose -> AddV2 -> Transpose -> Conv2D     (26 extra Transposes in mobilenet_v2)
    after:   Conv2D -> AddV2 -> Conv2D

The fix lets the guard accept the channels-last form of the expected shape as a match; genuinely wrong
broadcasts still trigger it. The numbers are unchanged (the pipeline's parity checks every conversion);
TF.js and TFLite get a graph without the transposes.
"""

from __future__ import annotations

import contextlib

_GUARD = "            and not _shape_match_with_none(expected_shape, output_shape) \\\n"
_FIXED = _GUARD + (
    "            and not _shape_match_with_none(\n"
    "                _perm_shape(expected_shape, [0, *range(2, len(expected_shape)), 1]), output_shape) \\\n"
)


@contextlib.contextmanager
def channels_last_add():
    """Swap in a copy of onnx2tf's Add.make_node with the fixed guard; a no-op if the source has moved on."""
    import inspect

    import onnx2tf.ops.Add as add_module

    source = inspect.getsource(add_module)
    if source.count(_GUARD) != 1:
        yield False
        return
    namespace = dict(vars(add_module))
    exec(compile(source.replace(_GUARD, _FIXED), add_module.__file__, "exec"), namespace)  # noqa: S102
    original = add_module.make_node
    add_module.make_node = namespace["make_node"]
    try:
        yield True
    finally:
        add_module.make_node = original
