"""Fixes for onnx2tf behaviours, applied only while onnx2tf builds its Keras model.

channels_last_add: Add's "rescue guard" (onnx2tf 1.29.24, ops/Add.py) compares the ONNX output shape, which is channels-first,
with the TF output shape, which onnx2tf itself made channels-last. For every 4-D residual addition the two
differ, so it "rescues" the add by transposing both inputs to NCHW and the result back:

    before:  Conv2D -> Transpose -> AddV2 -> Transpose -> Conv2D     (26 extra Transposes in mobilenet_v2)
    after:   Conv2D -> AddV2 -> Conv2D

The fix lets the guard accept the channels-last form of the expected shape as a match; genuinely wrong
broadcasts still trigger it. The numbers are unchanged (the pipeline's parity checks every conversion);
TF.js and TFLite get a graph without the transposes.

blocked_reductions: TFLite's MEAN and SUM kernels (optimized and reference) and TF.js's wasm Mean add every
element into one float32 accumulator, one after the other; TensorFlow and TF.js's cpu backend do not. Over a
long reduction the rounding adds up: timm's mobilevitv2 normalises 196,608 elements at once (GroupNorm with one
group, exported as InstanceNormalization), that mean was off by rel 5.3e-4 on wasm and the model's output by
1.2e-4 in TFLite and TF.js wasm while the SavedModel was within 6e-6. Every reduce_mean and reduce_sum over more
than REDUCTION_BLOCK elements with a static shape is built instead as reductions of at most that many: one axis
at a time, and an axis longer than that split in two by a reshape. A mean of equal-sized blocks' means is the
mean, so only the rounding changes.

equal_dims_channels_last: onnx2tf decides whether a tensor is held channels-last by comparing its TF shape
with its ONNX shape. When every axis after the batch has one length (1x64x64x64) the shapes cannot tell, so
onnx2tf assumes channels-last for every such tensor (common_functions.inverted_operation_enable_disable, "all
the same value") and its ops read them that way (AveragePool skips its own transpose). A Transpose or Reshape
output is held as ONNX's layout, though; after a NCHW -> NHWC -> NCHW permute pair (timm's MaxViT blocks at
64 channels on a 64x64 map) the data was read along the wrong axes: maxvit_rmlp_nano_rw_256 off by 1.43 of its
output's scale, first diverging at an AveragePool. The fix moves such an output to channels-last, so that it is
what onnx2tf takes it for (the parameter-replacement "post_process_transpose_perm" that onnx2tf's own issues
#17 and #454 ask users to write by hand, here for every such op). Rank 3 keeps onnx2tf's handling.
"""

from __future__ import annotations

import contextlib
import math

REDUCTION_BLOCK = 1024

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


@contextlib.contextmanager
def equal_dims_channels_last():
    """Wrap onnx2tf's Transpose and Reshape converters so that an output of rank 4 or 5 whose axes after the
    batch all have one length, which onnx2tf will take for channels-last, is moved there."""
    import onnx2tf.ops.Reshape as reshape_module
    import onnx2tf.ops.Transpose as transpose_module
    import tensorflow as tf

    def wrap(make_node):
        def fixed(*, graph_node, tf_layers_dict, **kwargs):
            result = make_node(graph_node=graph_node, tf_layers_dict=tf_layers_dict, **kwargs)
            for output in graph_node.outputs:
                info = tf_layers_dict.get(output.name, {})
                node, shape = info.get("tf_node"), list(output.shape or [])
                if (len(shape) in (4, 5) and all(isinstance(d, int) and d > 1 for d in shape[1:])
                        and len(set(shape[1:])) == 1 and info.get("before_op_output_shape_trans")
                        and not info.get("nwc_nhwc_ndhwc_keep") and hasattr(node, "shape")
                        and node.shape.as_list()[1:] == shape[1:]):
                    info["tf_node"] = tf.transpose(node, perm=[0, *range(2, len(shape)), 1])
            return result

        return fixed

    modules = (transpose_module, reshape_module)
    originals = [m.make_node for m in modules]
    for m in modules:
        m.make_node = wrap(m.make_node)
    try:
        yield
    finally:
        for m, original in zip(modules, originals):
            m.make_node = original


@contextlib.contextmanager
def blocked_reductions():
    """Swap TensorFlow's reduce_mean and reduce_sum (where onnx2tf's ops and tf.nn.moments call them) for ones
    that reduce in blocks of at most REDUCTION_BLOCK elements."""
    import tensorflow as tf
    from tensorflow.python.ops import math_ops

    originals = {"reduce_mean": math_ops.reduce_mean, "reduce_sum": math_ops.reduce_sum}
    places = [math_ops, tf, tf.math]
    saved = [(place, name, getattr(place, name)) for place in places for name in originals]
    for place, name, _ in saved:
        setattr(place, name, _blocked(originals[name]))
    try:
        yield
    finally:
        for place, name, function in saved:
            setattr(place, name, function)


def _blocked(reduce):
    import numpy as np
    import tensorflow as tf

    def blocked(input_tensor, axis=None, keepdims=False, name=None, **kwargs):
        shape = getattr(input_tensor, "shape", None)  # a TensorShape on tensors, a tuple on numpy arrays
        dims = shape.as_list() if getattr(shape, "rank", None) is not None else None
        try:
            axes = (list(range(len(dims))) if axis is None else [int(a) for a in np.ravel(axis)]) if dims else None
        except TypeError:  # an axis that is a graph tensor
            axes = None
        if kwargs or axes is None or None in dims or math.prod(dims[a] for a in axes) <= REDUCTION_BLOCK:
            return reduce(input_tensor, axis=axis, keepdims=keepdims, name=name, **kwargs)
        axes = sorted({a % len(dims) for a in axes}, reverse=True)
        x = input_tensor
        for a in axes:
            x = _reduce_axis(reduce, x, a, x.shape.as_list())
        if not keepdims:
            x = tf.reshape(x, [d for i, d in enumerate(dims) if i not in axes])
        return x

    return blocked


def block_split(n: int) -> tuple[int, int] | None:
    """n as (n / b, b), b the largest divisor of n up to sqrt(n), for a reduction over n elements longer than
    REDUCTION_BLOCK; None if n is not that long or no such split leaves blocks of at most REDUCTION_BLOCK."""
    block = max((b for b in range(1, math.isqrt(n) + 1) if n % b == 0), default=1)
    if n <= REDUCTION_BLOCK or n // block > REDUCTION_BLOCK:
        return None
    return n // block, block


def _reduce_axis(reduce, x, axis: int, dims: list[int]):
    """`reduce` over one axis, keeping it; an axis longer than REDUCTION_BLOCK in two (block_split)."""
    import tensorflow as tf

    split = block_split(dims[axis])
    if split is None:
        return reduce(x, axis=axis, keepdims=True)
    split = tf.reshape(x, [*dims[:axis], *split, *dims[axis + 1:]])
    partial = reduce(split, axis=axis + 1, keepdims=True)
    return tf.reshape(reduce(partial, axis=axis, keepdims=True), [*dims[:axis], 1, *dims[axis + 1:]])
