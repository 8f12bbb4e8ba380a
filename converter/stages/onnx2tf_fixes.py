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
#17 and #454 ask users to write by hand, here for every such op). Rank 3 too: the transpose of a Conv1d's
[2, 16, 16] output, held as ONNX's but flagged NWC, handed its MatMul (a Gram matrix, y @ y.transpose(1, 2))
validation data in the wrong layout, and strict mode picked the wrong product (rel 1.03;
tests/models/small.py:gram_matrix).

transposed_inputs_flagged: onnx2tf holds an image input channels-last and a sequence input it keeps as NCW
transposed to NWC, and records that in a flag (before_op_output_shape_trans) that every op reads to convert its
axes. It sets the flag by comparing the held shape with ONNX's, which are equal when the axes after the batch have
one length: a sequence of [6, 6, 6] or a map of 8 channels on 8x8 was flagged as held in ONNX's layout, and
x[:, 1] took a feature instead of a time step (rel 1.15; a GRUCell run over 6 steps of 6 sequences of 6 features,
rel 1.24; x[:, 2] of [1, 8, 8, 8] rel 1.71; tests/models/small.py:square_steps). The fix flags such an input by
the transpose onnx2tf gave it (its ncw_nchw_ncdhw_perm).

gathers_in_onnx_layout: onnx2tf's GatherElements converts its axis to channels-last only when both its data and its
indices are flagged so, and hands the indices over as it holds them: with the data a [2, 10, 6] sequence held NWC
and indices computed in ONNX's layout (torch.gather(x, 1, order) of tokens sorted by a score), it gathered along
the wrong axis (rel 1.5; tests/models/small.py:token_sort). The fix hands it both in ONNX's layout, from the
layouts they are held in, and holds the output in ONNX's.

leading_axis_transposes: a Transpose whose perm moves the first axis (perm[0] != 0) is not converted axis by axis
as onnx2tf converts the others; onnx2tf matches the lengths of the TF input's axes with the ONNX output's, each to
the first free axis of its length (ops/Transpose.py). Where axes have one length that match is a guess: the
[seq, batch, features] transpose before an LSTM, [8, 8, 16] held as ONNX's, became the identity, and the LSTM ran
over the batch (timm's sequencer2d_s runs its bidirectional LSTMs over the rows and columns of a 32x32 map: rel
0.5; tests/models/small.py:square_lstm). The fix builds such a transpose from the layout its input is held in
(_held_layout: its shape, or strict mode's data where the shape fits several) and holds the output in ONNX's.

triangles_in_onnx_layout: onnx2tf's Trilu takes the triangle of the last two axes of the tensor as it holds it, so
on a channels-last map it took (width, channels) for ONNX's (height, width): conv(x).tril(1) on [1, 3, 8, 6] was off
by rel 0.74 (tests/models/small.py:triangles). The fix hands Trilu its input in ONNX's layout and holds the
result as the input was held.

checked_once: strict mode chooses many ops' transposes (Reshape, MatMul, Concat, Conv, ...) by running the
model built so far on data: each such op builds a Keras model from the inputs to its own input and runs it from
the start (common_functions.dummy_tf_inference), so a model of N ops took O(N^2) layer calls and graph walks.
timm's coat_mini and gcvit_tiny spent over 2400 s in onnx2tf, most of it in tf_keras's _map_graph_network and
_run_internal_graph under Reshape.make_node and acquisition_of_validation_data. The fix gives onnx2tf's ops a
Model that walks back only to the tensors it has not computed yet: every layer runs once per input data, and its
output is kept (up to VALUE_BUDGET bytes, least recently used first out; a dropped one is computed again). The
layers run as Keras's Functional runs them, one eager call each, so the values and the model onnx2tf builds
from them are the same.

computed_conv_weights: onnx2tf moves a Conv's or ConvTranspose's weight from ONNX's (O, I, kH, kW) to TF's
(kH, kW, I, O) only when it is a constant (common_functions.get_weights_constant_or_variable); a weight computed
in the graph reaches tf.nn.convolution as onnx2tf holds it. timm's CondConv (tf_efficientnet_cc_b0_4e) mixes
expert kernels per sample, MatMul -> Reshape -> Conv: TF's Conv2D got [480, 80, 1, 1] ("Depth of output (1) is
not a multiple of the number of groups (80)"). The fix transposes such a weight for the Conv that reads it, from
the layout onnx2tf holds it in: ONNX's or channels-last (O, kH, kW, I), told apart by the shape; where the shape
cannot tell (I, kH and kW one length), channels-last, as onnx2tf takes such tensors.

constant_layouts_kept: before an elementwise op (Add, Sub, Mul, Div, comparisons, ...) onnx2tf's
shape_unmatched_special_avoidance_workaround compares each input's TF shape with its "ONNX shape" and transposes
an input that matches ONNX's layout to channels-last when the other is channels-last. For a constant input it
reads the shape of the array that get_constant_or_variable already moved to channels-last, so the constant looks
like ONNX's layout and is transposed a second time: an activation of batch > 1 plus a [1, C, H, W] constant
(timm's tnt_s_patch16_224 adds its pixel positions to 196 patches: [196, 4, 4, 24] + [1, 4, 24, 4], "Dimensions
must be equal"). The fix gives that check no ONNX shape for such an array, so it leaves the constant as
onnx2tf laid it out; at batch 1 the shapes were equal and the check never ran.

constant_concats: for a Concat of an activation and a constant, onnx2tf lays the constant out as it holds the
activation (channels-last after a transpose it tracks), then tries permutations of it until tf.concat accepts them
along ONNX's own axis, and only then converts the axis to the activation's layout (ops/Concat.py). Where the
activation's axes are equal the wrong permutation passes: timm's vit_wee_patch16_reg1_gap_256 prepends its
register token to 256 tokens of 256 channels, held channels-last as [1, 256, 256]; the token was concatenated
along the channels (rel 0.73 of its output's scale; tests/models/small.py:square_tokens, rel 0.57). The fix
concatenates such a pair as onnx2tf's convention holds both inputs: the constant laid out as the activation, along
the converted axis, where that gives the output's shape in that layout; otherwise it keeps onnx2tf's result.

onnx_layout_broadcasts: onnx2tf's Add, Sub, Mul and Div expand a constant of lower rank than the other input
and may then lay it out channels-last although that input is held in ONNX's layout: F.affine_grid multiplies its
constant base grid [64, 3, 1] with the rank-4 thetas [1, 1, 3, 2] and failed ("Dimensions must be equal, but are
2 and 64 ... [1, 1, 3, 2], [1, 3, 1, 64]"; tests/models/small.py:affine_warp). And onnx2tf holds a stack of
channels-last maps on a new axis 1 (timm's skresnet: [1, 2, 64, 56, 56]) as [1, 56, 56, 64, 2], which is not the
channels-last layout its broadcasting rules then assume ([1, 64, 1, 1, 2] for the softmax weights); they search
other layouts only when no two axes have one length, so at 56x56 the Mul failed (selective_kernel). Where onnx2tf
fails on such an op, the fix moves each input to ONNX's layout, from the layout its held shape fits (where several
fit, as height and width of one length do, the one strict mode's data confirms), builds the op with ONNX's
broadcasting, and holds the result as onnx2tf holds the input of the output's shape.

elementwise_layouts_kept: after every op, onnx2tf flags an output whose axes after the batch all have one length
as channels-last when its TF shape equals its ONNX shape (common_functions.inverted_operation_enable_disable, "all
the same value"), MatMul's excepted. An elementwise op leaves its input where it is, though: after a MatMul's
[1, 16, 16] output in ONNX's layout, the bias Add's output was flagged channels-last, and a SwiGLU's chunk along
the last axis split the tokens instead (timm's gmixer_12_224, rel 1.06, first diverging op that Split;
tests/models/small.py:square_glu, rel 0.87). The fix keeps such an op's output flagged as its activation inputs
are when none of them is flagged channels-last. And where one input is held channels-last and another in ONNX's
layout with the same held shape, onnx2tf transposes neither: torch.where(mask, scores, x.abs()) over a [2, 8, 8]
sequence (held NWC) and a Linear's scores (held as ONNX's) mixed time steps with features (rel 1.7;
tests/models/small.py:gated_scores). The fix moves the ONNX-layout inputs channels-last first.

reductions_flagged: a reduction with keepdims=0 drops axes from the layout onnx2tf holds its input in: the mean
over the channels of a channels-last [N, C, H, W] map is held [N, H, W], as ONNX's, and one over the height
[N, W, C], channels-last. onnx2tf flags the output by comparing the shapes, which cannot tell when the axes left
after the batch have one length: x.var(dim=1, keepdim=True) (exported as a mean without keepdims, then a Reshape)
on a square map was flagged channels-last, and the Reshape swapped its rows and columns (rel 0.44 on
1x3x16x16; tests/models/small.py:channel_stats). And the output keeps its input's NHWC mark ("nhwc"), so the
Unsqueeze in F.one_hot of an argmax over the channels put its new axis where a channels-last tensor's would go
and the comparison with arange failed ("Dimensions must be equal"), on maps of any size. The fix flags and marks
such an output from the input's held layout and the axes dropped.

onnx_side_data: strict mode runs ONNX Runtime and the Keras model on the same input files
(saved_model._strict_mode_data writes them in the layout onnx2tf gives its inputs, channels-last). Before ONNX
Runtime reads one, onnx2tf moves it back to ONNX's layout only where the file's shape differs from the input's
ONNX shape (common_functions.dummy_onnx_inference); with as many channels as rows and columns (1x8x8x8) the shapes
agree, and ONNX Runtime read a channels-last map as channels-first, so every op checked against wrong values.
The fix gives ONNX Runtime's runs a copy of each file in ONNX's layout (onnx_side_path).

matmuls_in_onnx_layout: onnx2tf's MatMul tries transposes of its inputs and keeps the first whose product matches
ONNX Runtime's, but its check (common_functions.onnx_tf_tensor_validation) accepts the product under any
transpose of the same shape, while MatMul then holds its output in ONNX's layout, moved there by axis lengths
alone. On an 8x8 map of 8 channels held channels-last, a Linear over the channels multiplied the map with height
and width swapped and the output passed as matching (tests/models/small.py:square_block, rel 1.0 on a row read
from it). The fix checks each candidate as MatMul will hold it: its product moved to ONNX's shape by MatMul's own
rule (_shape_perm), compared with ONNX Runtime's as it is.

transposed_conv_inputs: onnx2tf's ConvTranspose hands its input to tf.nn.conv2d_transpose as onnx2tf holds it,
where its Conv searches the input's transposes in strict mode. After a view of a Linear's output (a VAE's or a
DCGAN's decoder: Linear -> view(-1, 32, 4, 4) -> ConvTranspose2d) the input is held in ONNX's layout,
[1, 32, 4, 4], and the Keras model failed when called ("input depth must be evenly divisible by filter depth";
tests/models/small.py:linear_decoder). The fix hands such an input over channels-last.

cumulative_axes: onnx2tf's CumSum and CumProd pass ONNX's axis to tf.math.cumsum / cumprod as it is, where its
other ops convert an axis to the layout they hold the tensor in (common_functions.convert_axis): over a
channels-last NWC tensor, a cumulative sum along ONNX's last axis (time) ran along the channels (rel 1.13 on
tests/models/small.py:cumulative_sum). The fix gives them the converted axis when it is a constant.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import math
import types

from ..layout import channels_last, fitting_perms, identity

REDUCTION_BLOCK = 1024
VALUE_BUDGET = 2 << 30  # bytes of layer outputs checked_once keeps

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
    """Wrap onnx2tf's Transpose and Reshape converters so that an output of rank 3 to 5 whose axes after the
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
                if (len(shape) in (3, 4, 5) and all(isinstance(d, int) and d > 1 for d in shape[1:])
                        and len(set(shape[1:])) == 1 and info.get("before_op_output_shape_trans")
                        and not info.get("nwc_nhwc_ndhwc_keep") and hasattr(node, "shape")
                        and node.shape.as_list()[1:] == shape[1:]):
                    info["tf_node"] = tf.transpose(node, perm=[0, *range(2, len(shape)), 1])
            return result

        return fixed

    with _wrapped_make_node((transpose_module, reshape_module), wrap):
        yield


@contextlib.contextmanager
def transposed_inputs_flagged():
    """Wrap onnx2tf's Input converter so that a graph input it holds transposed is flagged so (module docstring)."""
    import onnx2tf.ops.Input as input_module

    def wrap(make_node):
        def fixed(*, graph_input, tf_layers_dict, **kwargs):
            result = make_node(graph_input=graph_input, tf_layers_dict=tf_layers_dict, **kwargs)
            info = tf_layers_dict.get(graph_input.name, {})
            perm = info.get("ncw_nchw_ncdhw_perm")
            if perm is not None and list(perm) != identity(len(perm)):
                info["before_op_output_shape_trans"] = True
            return result

        return fixed

    with _wrapped_make_node((input_module,), wrap):
        yield


@contextlib.contextmanager
def triangles_in_onnx_layout():
    """Wrap onnx2tf's Trilu so that it takes the triangle of ONNX's last two axes (module docstring)."""
    import onnx2tf.ops.Trilu as trilu_module
    import tensorflow as tf

    def wrap(make_node):
        def fixed(*, graph_node, tf_layers_dict, **kwargs):
            held = _held_layout(graph_node.inputs[0], tf_layers_dict, kwargs)
            if held is None or held[1] == identity(len(held[1])):
                return make_node(graph_node=graph_node, tf_layers_dict=tf_layers_dict, **kwargs)
            node, layout = held
            info = tf_layers_dict[graph_node.inputs[0].name]
            flag = info.get("before_op_output_shape_trans", True)
            with _handed_over(info, _in_onnx_layout(node, layout), before_op_output_shape_trans=False):
                result = make_node(graph_node=graph_node, tf_layers_dict=tf_layers_dict, **kwargs)
            output = tf_layers_dict[graph_node.outputs[0].name]
            output.update(tf_node=tf.transpose(output["tf_node"], perm=layout), before_op_output_shape_trans=flag)
            return result

        return fixed

    with _wrapped_make_node((trilu_module,), wrap):
        yield


@contextlib.contextmanager
def gathers_in_onnx_layout():
    """Wrap onnx2tf's GatherElements so that it gathers from its data and indices in ONNX's layout (module
    docstring)."""
    import onnx2tf.ops.GatherElements as gather_module

    def wrap(make_node):
        def fixed(*, graph_node, tf_layers_dict, **kwargs):
            inputs = graph_node.inputs[:2]
            held = [_held_layout(t, tf_layers_dict, kwargs) for t in inputs]
            if None in held or any(hasattr(t, "values") for t in inputs) \
                    or all(perm == identity(len(perm)) for _, perm in held):
                return make_node(graph_node=graph_node, tf_layers_dict=tf_layers_dict, **kwargs)
            with contextlib.ExitStack() as stack:
                for tensor, (node, perm) in zip(inputs, held):
                    stack.enter_context(_handed_over(tf_layers_dict[tensor.name], _in_onnx_layout(node, perm),
                                                     before_op_output_shape_trans=False, nhwc=False))
                result = make_node(graph_node=graph_node, tf_layers_dict=tf_layers_dict, **kwargs)
            tf_layers_dict[graph_node.outputs[0].name].update(before_op_output_shape_trans=False, nhwc=False)
            return result

        return fixed

    with _wrapped_make_node((gather_module,), wrap):
        yield


def _in_onnx_layout(node, perm: list[int]):
    """`node`, held as transpose(ONNX's value, perm), moved back to ONNX's layout (the identity left as it is)."""
    import numpy as np
    import tensorflow as tf

    return node if perm == identity(len(perm)) else tf.transpose(node, perm=[int(i) for i in np.argsort(perm)])


@contextlib.contextmanager
def leading_axis_transposes():
    """Wrap onnx2tf's Transpose converter so that a transpose that moves the first axis, on a tensor with axes of
    one length, is built from the layout onnx2tf holds its input in (module docstring)."""
    import numpy as np
    import onnx2tf.ops.Transpose as transpose_module
    import tensorflow as tf

    def wrap(make_node):
        def fixed(*, graph_node, tf_layers_dict, **kwargs):
            result = make_node(graph_node=graph_node, tf_layers_dict=tf_layers_dict, **kwargs)
            perm, output = list(graph_node.attrs.get("perm", [])), graph_node.outputs[0]
            shape, info = list(output.shape or []), tf_layers_dict.get(output.name, {})
            if (not perm or perm[0] == 0 or len(set(shape)) == len(shape) or info.get("nwc_nhwc_ndhwc_keep")
                    or not hasattr(info.get("tf_node"), "shape") or info["tf_node"].shape.as_list() != shape):
                return result
            held = _held_layout(graph_node.inputs[0], tf_layers_dict, kwargs)
            if held is not None:
                node, layout = held
                info["tf_node"] = tf.transpose(node, perm=[int(i) for i in np.argsort(layout)[perm]])
            return result

        return fixed

    with _wrapped_make_node((transpose_module,), wrap):
        yield


@contextlib.contextmanager
def computed_conv_weights():
    """Wrap onnx2tf's Conv and ConvTranspose converters so that a weight computed in the graph reaches them in TF's
    filter layout, as onnx2tf makes a constant one."""
    import onnx2tf.ops.Conv as conv_module
    import onnx2tf.ops.ConvTranspose as conv_transpose_module
    import tensorflow as tf

    def wrap(make_node):
        def fixed(*, graph_node, tf_layers_dict, **kwargs):
            weight = graph_node.inputs[1]  # onnx2tf handles constants and DequantizeLinear outputs itself
            computed = not hasattr(weight, "values") and not any(p.op == "DequantizeLinear" for p in weight.inputs)
            info = tf_layers_dict.get(weight.name, {})
            perm = _filter_perm(list(weight.shape or []), info.get("tf_node")) if computed else None
            if perm is None:
                return make_node(graph_node=graph_node, tf_layers_dict=tf_layers_dict, **kwargs)
            with _handed_over(info, tf.transpose(info["tf_node"], perm=perm)):
                return make_node(graph_node=graph_node, tf_layers_dict=tf_layers_dict, **kwargs)

        return fixed

    with _wrapped_make_node((conv_module, conv_transpose_module), wrap):
        yield


@contextlib.contextmanager
def transposed_conv_inputs():
    """Wrap onnx2tf's ConvTranspose converter so that an activation it holds in ONNX's layout reaches it
    channels-last, as TensorFlow's convolution reads it (module docstring)."""
    import onnx2tf.ops.ConvTranspose as conv_transpose_module
    import tensorflow as tf

    def wrap(make_node):
        def fixed(*, graph_node, tf_layers_dict, **kwargs):
            info = tf_layers_dict.get(graph_node.inputs[0].name, {})
            held, shape = info.get("tf_node"), list(graph_node.inputs[0].shape or [])
            if (info.get("before_op_output_shape_trans", True) or not hasattr(held, "shape") or len(shape) < 3
                    or held.shape.as_list() != shape):
                return make_node(graph_node=graph_node, tf_layers_dict=tf_layers_dict, **kwargs)
            with _handed_over(info, tf.transpose(held, perm=channels_last(len(shape)))):
                return make_node(graph_node=graph_node, tf_layers_dict=tf_layers_dict, **kwargs)

        return fixed

    with _wrapped_make_node((conv_transpose_module,), wrap):
        yield


@contextlib.contextmanager
def _handed_over(info: dict, node, **entries):
    """Inside the block, onnx2tf's entry `info` for a tensor holds `node` (and `entries`, as flags); other readers
    get it as it was."""
    changed = {"tf_node": node, **entries}
    held = {key: info[key] for key in changed if key in info}
    info.update(changed)
    try:
        yield
    finally:
        for key in changed:
            info.pop(key, None)
        info.update(held)


@contextlib.contextmanager
def cumulative_axes():
    """Wrap onnx2tf's CumSum and CumProd converters so that a constant axis reaches them converted to the layout
    onnx2tf holds the input in, as its other ops convert theirs."""
    import numpy as np
    import onnx2tf.ops.CumProd as cumprod_module
    import onnx2tf.ops.CumSum as cumsum_module
    from onnx2tf.utils.common_functions import convert_axis

    def wrap(make_node):
        def fixed(*, graph_node, tf_layers_dict, **kwargs):
            data, axis = graph_node.inputs[0], graph_node.inputs[1]
            held = tf_layers_dict.get(data.name, {})
            if not hasattr(axis, "values") or not hasattr(held.get("tf_node"), "shape") or axis.values.size != 1:
                return make_node(graph_node=graph_node, tf_layers_dict=tf_layers_dict, **kwargs)
            onnx_axis = axis.values
            axis.values = np.asarray(convert_axis(axis=int(onnx_axis.reshape(())), tensor_rank=len(held["tf_node"].shape),
                                                  before_op_output_shape_trans=held.get("before_op_output_shape_trans", True)),
                                     dtype=onnx_axis.dtype).reshape(onnx_axis.shape)
            try:
                return make_node(graph_node=graph_node, tf_layers_dict=tf_layers_dict, **kwargs)
            finally:
                axis.values = onnx_axis

        return fixed

    with _wrapped_make_node((cumsum_module, cumprod_module), wrap):
        yield


@contextlib.contextmanager
def constant_concats():
    """Wrap onnx2tf's Concat converter so that an activation and a constant are concatenated as onnx2tf holds the
    activation (module docstring)."""
    import onnx2tf.ops.Concat as concat_module
    import tensorflow as tf
    from onnx2tf.utils.common_functions import convert_axis, get_constant_or_variable

    def wrap(make_node):
        def fixed(*, graph_node, tf_layers_dict, **kwargs):
            result = make_node(graph_node=graph_node, tf_layers_dict=tf_layers_dict, **kwargs)
            inputs, output = graph_node.inputs, graph_node.outputs[0]
            variables = [i for i in inputs if not hasattr(i, "values")]
            if len(inputs) != 2 or len(variables) != 1:
                return result
            held = tf_layers_dict.get(variables[0].name, {})
            node, onnx_shape = held.get("tf_node"), list(output.shape or [])
            trans = held.get("before_op_output_shape_trans", True)
            if (held.get("nhwc") or not hasattr(node, "shape") or len(onnx_shape) not in (3, 4, 5)
                    or not all(isinstance(d, int) for d in onnx_shape)):
                return result
            layout = [0, *range(2, len(onnx_shape)), 1] if trans else list(range(len(onnx_shape)))
            axis = convert_axis(axis=graph_node.attrs.get("axis", 0), tensor_rank=len(onnx_shape),
                                before_op_output_shape_trans=trans)
            values = [node if i is variables[0] else tf.convert_to_tensor(get_constant_or_variable(i, trans))
                      for i in inputs]
            try:
                joined = tf.concat(values, axis=axis)
            except (ValueError, TypeError, tf.errors.InvalidArgumentError):
                return result
            if joined.shape.as_list() == [onnx_shape[i] for i in layout]:
                tf_layers_dict[output.name]["tf_node"] = joined
                tf_layers_dict[output.name]["before_op_output_shape_trans"] = trans
            return result

        return fixed

    with _wrapped_make_node((concat_module,), wrap):
        yield


@contextlib.contextmanager
def onnx_layout_broadcasts():
    """Wrap onnx2tf's Add, Sub, Mul and Div so that where one fails, it is built with ONNX's broadcasting on its
    inputs moved to ONNX's layout (module docstring)."""
    import onnx2tf.ops.Add as add_module
    import onnx2tf.ops.Div as div_module
    import onnx2tf.ops.Mul as mul_module
    import onnx2tf.ops.Sub as sub_module
    import tensorflow as tf

    ops = {"Add": tf.math.add, "Sub": tf.math.subtract, "Mul": tf.math.multiply, "Div": tf.math.divide}

    def wrap(make_node):
        def fixed(*, graph_node, tf_layers_dict, **kwargs):
            try:
                return make_node(graph_node=graph_node, tf_layers_dict=tf_layers_dict, **kwargs)
            except Exception:
                inputs, output = graph_node.inputs, graph_node.outputs[0]
                held = [_held_layout(i, tf_layers_dict, kwargs) for i in inputs]
                if graph_node.op not in ops or None in held or all(hasattr(i, "values") for i in inputs):
                    raise
                print(f"onnx_layout_broadcasts: {graph_node.op} {graph_node.name} built with ONNX's broadcasting "
                      "(onnx2tf's error above)", flush=True)
                values = [_in_onnx_layout(node, perm) for node, perm in held]
                dtype = next(v.dtype for i, v in zip(inputs, values) if not hasattr(i, "values"))
                result = ops[graph_node.op](*[tf.cast(v, dtype) for v in values])
                info = {"optype": graph_node.op, "shape": output.shape, "dtype": output.dtype,
                        "nhwc": False, "before_op_output_shape_trans": False}
                # The output is held as the first activation of its shape that onnx2tf holds in another layout.
                like = next(((i, perm) for i, (_, perm) in zip(inputs, held) if not hasattr(i, "values")
                             and perm != identity(len(perm)) and list(i.shape) == list(output.shape)), None)
                if like:
                    result = tf.transpose(result, perm=like[1])
                    info.update({key: tf_layers_dict[like[0].name].get(key)
                                 for key in ("nhwc", "before_op_output_shape_trans")})
                tf_layers_dict[output.name] = {**info, "tf_node": result}
                return None

        return fixed

    with _wrapped_make_node((add_module, sub_module, mul_module, div_module), wrap):
        yield


def _held_layout(tensor, tf_layers_dict, kwargs) -> tuple | None:
    """(tensor as onnx2tf holds it, perm from ONNX's layout to that) for a constant or an activation of static
    shape, or None. Where the held shape fits several perms (axes of one length), a graph input's is the transpose
    onnx2tf gave it, and strict mode's data decides the others' (a graph input has none: x.tril() of a
    [1, 4, 5, 4] input took the first fitting perm, rows for channels, rel 0.60; tests/models/small.py:input_triangle)."""
    import numpy as np
    import tensorflow as tf

    if hasattr(tensor, "values"):
        value = tf.convert_to_tensor(tensor.values)
        return value, identity(len(value.shape))
    info = tf_layers_dict.get(tensor.name, {})
    node, shape = info.get("tf_node"), list(tensor.shape or [])
    if not hasattr(node, "shape") or not all(isinstance(d, int) for d in shape):
        return None
    if not info.get("before_op_output_shape_trans", True) and node.shape.as_list() == shape:
        return node, identity(len(shape))
    perms = [p for p in fitting_perms(tuple(shape), node.shape.as_list()) if p[:1] in ([], [0])]
    given = info.get("ncw_nchw_ncdhw_perm")  # a graph input: the perm from its held layout back to ONNX's
    held = [int(i) for i in np.argsort(given)] if given is not None else None
    if len(perms) > 1 and held in perms:
        return node, held
    values = _strict_values(tensor, node, tf_layers_dict, kwargs) if len(perms) > 1 else None
    if values is not None:
        expected, actual = (np.asarray(v, np.float64) for v in values)  # masks too
        perms.sort(key=lambda perm: float(np.max(np.abs(np.transpose(expected, perm) - actual))))
    return (node, perms[0]) if perms else None


def _strict_values(tensor, node, tf_layers_dict, kwargs) -> tuple | None:
    """(ONNX Runtime's value of `tensor`, `node`'s value) on strict mode's data; None where there is none."""
    import onnx2tf.utils.common_functions as common

    expected = (kwargs.get("onnx_tensor_infos_for_validation") or {}).get(tensor.name)
    if expected is None:
        return None
    inputs = common.get_tf_model_inputs(tf_layers_dict=tf_layers_dict)
    actual = list(common.dummy_tf_inference(
        model=common.tf_keras.Model(inputs=inputs, outputs=[node]), inputs=inputs,
        test_data_nhwc=kwargs.get("test_data_nhwc"),
        custom_input_op_name_np_data_path=kwargs.get("custom_input_op_name_np_data_path"),
        prefilled_input_datas=kwargs.get("tf_input_cache")).values())[0]
    return expected, actual


# Ops whose output holds its inputs' elements where they were (onnx2tf builds them without a transpose).
ELEMENTWISE = ("Abs", "Add", "And", "Cast", "Ceil", "Clip", "Cos", "Div", "Elu", "Equal", "Erf", "Exp", "Floor",
               "Gelu", "Greater", "GreaterOrEqual", "HardSigmoid", "HardSwish", "Identity", "LeakyRelu", "Less",
               "LessOrEqual", "Log", "Max", "Min", "Mish", "Mod", "Mul", "Neg", "Not", "Or", "Pow", "Reciprocal",
               "Relu", "Round", "Selu", "Sigmoid", "Sign", "Sin", "Softplus", "Sqrt", "Sub", "Tanh", "Where")


@contextlib.contextmanager
def elementwise_layouts_kept():
    """Wrap onnx2tf's elementwise ops so that inputs held in two layouts that the shapes cannot tell apart meet in
    one, and an output is not flagged channels-last for its equal axes alone when no activation input is (module
    docstring)."""
    import importlib

    import tensorflow as tf

    modules = [importlib.import_module(f"onnx2tf.ops.{op}") for op in ELEMENTWISE]

    def wrap(make_node):
        def fixed(*, graph_node, tf_layers_dict, **kwargs):
            moved = _onnx_layout_partners(graph_node, tf_layers_dict, kwargs)
            with contextlib.ExitStack() as stack:
                for info, rank in moved:
                    stack.enter_context(_handed_over(info, tf.transpose(info["tf_node"], perm=channels_last(rank)),
                                                     before_op_output_shape_trans=True))
                result = make_node(graph_node=graph_node, tf_layers_dict=tf_layers_dict, **kwargs)
            if moved:
                for output in graph_node.outputs:
                    tf_layers_dict.get(output.name, {})["before_op_output_shape_trans"] = True
                return result
            held = [tf_layers_dict.get(i.name, {}) for i in graph_node.inputs if not hasattr(i, "values")]
            if held and not any(h.get("before_op_output_shape_trans", True) or h.get("nhwc") for h in held):
                for output in graph_node.outputs:
                    info = tf_layers_dict.get(output.name, {})
                    node = info.get("tf_node")
                    if hasattr(node, "shape") and node.shape.as_list() == list(output.shape or []):
                        info["before_op_output_shape_trans"] = False
            return result

        return fixed

    with _wrapped_make_node(modules, wrap):
        yield


# Ops that reduce axes away unless keepdims=1.
REDUCTIONS = ("ArgMax", "ArgMin", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax",
              "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare")


@contextlib.contextmanager
def reductions_flagged():
    """Wrap onnx2tf's reductions so that an output without the reduced axes is flagged by the layout it is held in,
    not by its equal axes (module docstring)."""
    import importlib

    modules = [importlib.import_module(f"onnx2tf.ops.{op}") for op in REDUCTIONS]

    def wrap(make_node):
        def fixed(*, graph_node, tf_layers_dict, **kwargs):
            dropped = _dropped_axes(graph_node)
            held = _held_layout(graph_node.inputs[0], tf_layers_dict, kwargs) if dropped else None
            result = make_node(graph_node=graph_node, tf_layers_dict=tf_layers_dict, **kwargs)
            output = graph_node.outputs[0]
            shape, info = list(output.shape or []), tf_layers_dict.get(output.name, {})
            if held is None or len(shape) < 3 or not hasattr(info.get("tf_node"), "shape"):
                return result
            kept = [axis for axis in held[1] if axis not in dropped]
            perm = [sorted(kept).index(axis) for axis in kept]  # from the output's ONNX layout to its held one
            if info["tf_node"].shape.as_list() == [shape[i] for i in perm]:
                if perm == identity(len(shape)):  # "nhwc" too: ReduceMean copies its input's
                    info.update(before_op_output_shape_trans=False, nhwc=False)
                elif perm == channels_last(len(shape)):
                    info["before_op_output_shape_trans"] = True
            return result

        return fixed

    with _wrapped_make_node(modules, wrap):
        yield


def _dropped_axes(graph_node) -> set[int]:
    """The input axes a reduction with keepdims=0 removes (constant axes only); empty where it keeps them."""
    if graph_node.attrs.get("keepdims", 1):
        return set()
    rank = len(graph_node.inputs[0].shape or [])
    if "axis" in graph_node.attrs or graph_node.op in ("ArgMax", "ArgMin"):
        axes = [graph_node.attrs.get("axis", 0)]
    elif len(graph_node.inputs) > 1 and hasattr(graph_node.inputs[1], "values"):
        axes = [int(a) for a in graph_node.inputs[1].values.reshape(-1)]
    else:
        axes = list(graph_node.attrs.get("axes", []))
    return {a % rank for a in axes} if rank and axes else set()


def _onnx_layout_partners(graph_node, tf_layers_dict, kwargs) -> list[tuple[dict, int]]:
    """(entry, rank) of each activation input of an elementwise op that onnx2tf holds in ONNX's layout while
    another of the output's rank is held channels-last with the same held shape, so that onnx2tf sees nothing to
    transpose. Where a held shape fits several layouts, strict mode's data tells (_held_layout)."""
    rank = len(graph_node.outputs[0].shape or [])
    inputs = [t for t in graph_node.inputs if not hasattr(t, "values") and len(t.shape or []) == rank]
    flags = [tf_layers_dict.get(t.name, {}).get("before_op_output_shape_trans", True) for t in inputs]
    if rank < 3 or all(flags) or not any(flags):  # one layout, as far as onnx2tf knows: nothing to align
        return []
    layouts = []
    for tensor in inputs:
        held = _held_layout(tensor, tf_layers_dict, kwargs)
        if held is None:
            return []
        layouts.append((tf_layers_dict[tensor.name], held[1], held[0].shape.as_list()))
    last = [shape for _, perm, shape in layouts if perm == channels_last(rank)]
    return [(info, rank) for info, perm, shape in layouts if perm == identity(rank) and shape in last]


def onnx_side_path(path) -> str:
    """Where saved_model._strict_mode_data puts the ONNX-layout copy of the strict-mode input file `path`."""
    return str(path).removesuffix(".npy") + ".onnx.npy"


@contextlib.contextmanager
def onnx_side_data():
    """onnx2tf's ONNX Runtime runs read each strict-mode input from its copy in ONNX's layout (module
    docstring)."""
    import onnx2tf.onnx2tf as main_module
    import onnx2tf.utils.common_functions as common

    name = "dummy_onnx_inference"
    original = getattr(common, name)

    def fixed(*args, custom_input_op_name_np_data_path=None, **kwargs):
        if custom_input_op_name_np_data_path:
            custom_input_op_name_np_data_path = [[input_name, onnx_side_path(path)]
                                                 for input_name, path in custom_input_op_name_np_data_path]
        return original(*args, custom_input_op_name_np_data_path=custom_input_op_name_np_data_path, **kwargs)

    with _rebound(name, original, fixed, main_module):
        yield


@contextlib.contextmanager
def matmuls_in_onnx_layout():
    """onnx2tf's MatMul accepts, among the transposes of its inputs, only one whose output, moved to ONNX's
    shape as MatMul then moves it, equals ONNX Runtime's (module docstring)."""
    import numpy as np
    import onnx2tf.ops.MatMul as matmul_module

    original = matmul_module.onnx_tf_tensor_validation

    def fixed(*, output_pairs, rtol, atol, **kwargs):
        results = original(output_pairs=output_pairs, rtol=rtol, atol=atol, **kwargs)
        for key, (expected, actual) in output_pairs.items():
            perm = _shape_perm(list(np.shape(actual)), list(np.shape(expected)))
            if perm is None:
                continue
            built = np.transpose(actual, perm)
            if np.allclose(expected, built, rtol=rtol, atol=atol, equal_nan=True):
                results[key][1:3] = [1, 0.0]
            else:
                results[key][1:3] = [False, float(np.max(np.abs(expected - built)))]
        return results

    matmul_module.onnx_tf_tensor_validation = fixed
    try:
        yield
    finally:
        matmul_module.onnx_tf_tensor_validation = original


def _shape_perm(shape: list[int], target: list[int]) -> list[int] | None:
    """The perm MatMul moves its output of `shape` to ONNX's `target` shape with: each target axis takes the
    first unused axis of its length (ops/MatMul.py, "Transpose to match ONNX output shape"); None if none."""
    if sorted(shape) != sorted(target):
        return None
    unused, perm = list(shape), []
    for length in target:
        axis = unused.index(length)
        perm.append(axis)
        unused[axis] = None
    return perm


def _filter_perm(onnx_shape: list, held) -> list[int] | None:
    """The perm from the layout a weight of ONNX shape (O, I, *k) is held in to TF's (*k, I, O); None if its TF
    shape is neither ONNX's nor channels-last's."""
    if len(onnx_shape) < 3 or not all(isinstance(d, int) for d in onnx_shape) or not hasattr(held, "shape"):
        return None
    k = len(onnx_shape) - 2
    shape = held.shape.as_list()
    if shape == [onnx_shape[0], *onnx_shape[2:], onnx_shape[1]]:  # channels-last, or the shapes cannot tell
        return [*range(1, k + 1), k + 1, 0]
    if shape == onnx_shape:
        return [*range(2, k + 2), 1, 0]
    return None


@contextlib.contextmanager
def _wrapped_make_node(modules, wrap):
    """Each of onnx2tf's op modules converts with wrap(its make_node) inside the block."""
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


@contextlib.contextmanager
def constant_layouts_kept():
    """Every onnx2tf op's shape_unmatched_special_avoidance_workaround sees a constant array input without an
    ONNX shape (module docstring). Enter it before channels_last_add, whose copy of Add imports the function."""
    import numpy as np
    import onnx2tf.utils.common_functions as common

    name = "shape_unmatched_special_avoidance_workaround"
    original = getattr(common, name)
    unknown = types.SimpleNamespace(shape=None)

    def fixed(*, graph_node_input_1, graph_node_input_2, **kwargs):
        return original(graph_node_input_1=unknown if isinstance(graph_node_input_1, np.ndarray) else graph_node_input_1,
                        graph_node_input_2=unknown if isinstance(graph_node_input_2, np.ndarray) else graph_node_input_2,
                        **kwargs)

    with _rebound(name, original, fixed):
        yield


@contextlib.contextmanager
def _rebound(name: str, original, replacement, *also):
    """Inside the block, every module of onnx2tf.ops and onnx2tf.utils, and the modules `also`, whose `name` is
    `original` has `replacement` there (its op modules imported first: onnx2tf imports one only when it meets
    its op)."""
    import importlib
    import pkgutil
    import sys

    import onnx2tf.ops

    for info in pkgutil.iter_modules(onnx2tf.ops.__path__):
        importlib.import_module(f"onnx2tf.ops.{info.name}")
    modules = [m for key, m in list(sys.modules.items()) if key.startswith(("onnx2tf.ops.", "onnx2tf.utils."))]
    modules = [m for m in [*modules, *also] if getattr(m, name, None) is original]
    for module in modules:
        setattr(module, name, replacement)
    try:
        yield
    finally:
        for module in modules:
            setattr(module, name, original)


@contextlib.contextmanager
def checked_once():
    """Give onnx2tf's ops and utilities a tf_keras whose Model(inputs=..., outputs=...) evaluates incrementally
    (_PartialModel); onnx2tf's own module, which builds the final model, keeps the real one."""
    import tf_keras

    with _rebound("tf_keras", tf_keras, _KerasWithPartialModels(tf_keras, _LayerValues(VALUE_BUDGET))):
        yield


class _KerasWithPartialModels(types.ModuleType):
    def __init__(self, keras, values) -> None:
        super().__init__(keras.__name__)
        self._keras, self._values = keras, values

    def __getattr__(self, name):
        return getattr(self._keras, name)

    def Model(self, *args, **kwargs):  # noqa: N802 (tf_keras's name)
        if args or set(kwargs) != {"inputs", "outputs"}:
            return self._keras.Model(*args, **kwargs)
        return _PartialModel(self._keras, self._values, kwargs["inputs"], kwargs["outputs"])


class _PartialModel:
    """What dummy_tf_inference and the ops use of a Keras model (call, inputs, outputs, output), computed from
    _LayerValues; anything else builds the real model."""

    def __init__(self, keras, values, inputs, outputs) -> None:
        self._keras, self._values = keras, values
        self.inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        self.outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        self._real = None

    @property
    def output(self):
        return self.outputs[0] if len(self.outputs) == 1 else self.outputs

    def __call__(self, inputs, training=False, **kwargs):
        if kwargs or training:
            return self._model()(inputs, training=training, **kwargs)
        if isinstance(inputs, dict):
            data = [inputs[t.name] for t in self.inputs]
        else:
            data = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        return self._values.evaluate(self.inputs, data, self.outputs)

    def _model(self):
        if self._real is None:
            self._real = self._keras.Model(inputs=self.inputs, outputs=self.outputs)
        return self._real

    def __getattr__(self, name):
        return getattr(self._model(), name)


class _LayerValues:
    """Values of Keras tensors, keyed by the tensor and the data its model's inputs were given."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.values: collections.OrderedDict = collections.OrderedDict()  # key -> (tensor, value, bytes)
        self.bytes = 0

    def evaluate(self, inputs: list, data: list, outputs: list) -> list:
        """The values of `outputs` with `inputs` fed `data`, each layer run as Functional._run_internal_graph
        runs it, and only the layers whose outputs are not known yet."""
        import tensorflow as tf

        world = tuple((id(t), _digest(d)) for t, d in zip(inputs, data))
        for t, d in zip(inputs, data):
            self._put((world, id(t)), t, _conformed(tf.convert_to_tensor(d), t))
        stack = list(outputs)
        while stack:
            t = stack[-1]
            key = (world, id(t))
            if key in self.values:
                self.values.move_to_end(key)
                stack.pop()
                continue
            layer, node_index, _ = t._keras_history
            node = layer._inbound_nodes[node_index]
            if node.is_input:
                raise ValueError(f"{t.name} is an input the model was not given")
            missing = [x for x in node.keras_inputs if (world, id(x)) not in self.values]
            if missing:
                stack.extend(missing)
                continue
            uses = collections.Counter(node.flat_input_ids)
            args, kwargs = node.map_arguments({str(id(x)): [self.values[(world, id(x))][1]] * uses[str(id(x))]
                                               for x in node.keras_inputs})
            result = node.layer(*args, **kwargs)
            for x, y in zip(tf.nest.flatten(node.outputs), tf.nest.flatten(result)):
                self._put((world, id(x)), x, y)
        found = [self.values[(world, id(t))][1] for t in outputs]
        while self.bytes > self.budget and len(self.values) > 1:
            _, (_, _, size) = self.values.popitem(last=False)
            self.bytes -= size
        return found

    def _put(self, key, tensor, value) -> None:
        shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
        size = 0
        if hasattr(shape, "num_elements") and hasattr(dtype, "size"):
            size = (shape.num_elements() or 0) * dtype.size
        if key in self.values:
            self.bytes -= self.values[key][2]
        self.values[key] = (tensor, value, size)  # the tensor kept alive, so that its id stays its own
        self.bytes += size


def _digest(data) -> tuple:
    import numpy as np

    array = np.ascontiguousarray(data.numpy() if hasattr(data, "numpy") else data)
    return array.shape, str(array.dtype), hashlib.blake2b(array.tobytes(), digest_size=16).digest()


def _conformed(tensor, ref):
    """Functional._conform_to_reference_input: rank by a trailing 1, then the Input's dtype."""
    import tensorflow as tf

    rank, ref_rank = tensor.shape.rank, ref.shape.rank
    if rank is not None and ref_rank is not None:
        if rank == ref_rank + 1 and tensor.shape[-1] == 1:
            tensor = tf.squeeze(tensor, axis=-1)
        elif rank == ref_rank - 1 and ref.shape[-1] == 1:
            tensor = tf.expand_dims(tensor, axis=-1)
    return tf.cast(tensor, dtype=ref.dtype)
