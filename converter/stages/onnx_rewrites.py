"""The ONNX graph onnx2tf converts: constants folded, and ops that onnx2tf or the TF-side runtimes get wrong
rewritten into ones every runtime runs right. Each rule is a function of one node that returns the nodes
replacing it (the node itself when the rule does not apply); RULES applies them in order.

The ONNX artifact itself (model.onnx) gets ARTIFACT_RULES only (portable_onnx, from the onnx stage): what
ONNX Runtime Web computes wrong; RULES are only what onnx2tf reads.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Constant subgraphs with more input elements than this stay as they are.
FOLD_LIMIT_ELEMENTS = 64 << 20
# Ops whose value is not a function of their inputs.
NOT_FOLDABLE = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli"}


@dataclass
class GraphFacts:
    """What a rule may read (static shapes, constant values) and add (new constants). Shapes are inferred
    and constants decoded only when a rule asks: most graphs have nothing to rewrite."""

    model: object  # the onnx.ModelProto being rewritten
    value: Callable[[str], np.ndarray]  # a constant's value by name
    constants: Container[str]  # the names `value` knows
    added: dict[str, np.ndarray] = field(default_factory=dict)

    @functools.cached_property
    def _inferred(self) -> list:
        """Every tensor's ValueInfoProto after ONNX shape inference."""
        import onnx

        graph = onnx.shape_inference.infer_shapes(self.model).graph
        return [info for info in [*graph.value_info, *graph.input, *graph.output] if info.type.HasField("tensor_type")]

    @functools.cached_property
    def shapes(self) -> dict[str, list]:
        """Tensor name -> shape (ints, or None for a dynamic axis)."""
        return {info.name: [d.dim_value if d.HasField("dim_value") else None for d in info.type.tensor_type.shape.dim]
                for info in self._inferred if info.type.tensor_type.HasField("shape")}

    @functools.cached_property
    def element_types(self) -> dict[str, int]:
        """Tensor name -> onnx.TensorProto data type, where inference knows it."""
        return {info.name: info.type.tensor_type.elem_type for info in self._inferred
                if info.type.tensor_type.elem_type}

    @functools.cached_property
    def producers(self) -> dict[str, object]:
        """Tensor name -> the node that computes it."""
        return {o: n for n in self.model.graph.node for o in n.output}

    def array(self, name: str) -> np.ndarray | None:
        return self.value(name) if name in self.constants else None

    def constant(self, name: str, value: np.ndarray) -> str:
        self.added[name] = value
        return name


def _attributes(node) -> dict:
    """A node's attributes by name, as Python values."""
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def onnx_for_onnx2tf(source: Path, target: Path) -> Path:
    """`source` with every node whose inputs are all constants replaced by its value, then RULES applied,
    written to `target`.

    torch.onnx leaves weight preprocessing in the graph (nn.MultiheadAttention's in-projection weight goes
    through Split and Transpose), and neither its optimizer nor onnxsim folds a multi-output Split.
    onnx2tf then rewrites a Transpose's perm by matching shapes, so the transpose of a square weight
    (cross-attention's 64x64 query projection) silently becomes the identity (onnx2tf issues #317, #327:
    tensors whose dimensions are all equal). As constants, those values are computed here, exactly.
    """
    import onnx
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    model = onnx.load(str(source))
    graph = model.graph
    constants = {t.name: t for t in graph.initializer}
    arrays: dict[str, np.ndarray] = {}

    def value(name: str) -> np.ndarray:
        if name not in arrays:
            arrays[name] = numpy_helper.to_array(constants[name])
        return arrays[name]

    kept = []
    for node in graph.node:
        inputs = [i for i in node.input if i]
        foldable = (node.domain in ("", "ai.onnx") and node.op_type not in NOT_FOLDABLE
                    and all(i in constants for i in inputs) and (inputs or node.op_type == "Constant")
                    and not any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
                                for a in node.attribute)
                    and sum(value(i).size for i in inputs) <= FOLD_LIMIT_ELEMENTS)
        if foldable:
            single = helper.make_model(
                helper.make_graph([node], "fold", [onnx.ValueInfoProto(name=i) for i in inputs],
                                  [onnx.ValueInfoProto(name=o) for o in node.output]),
                opset_imports=model.opset_import, ir_version=model.ir_version)
            try:
                results = ReferenceEvaluator(single).run(None, {i: value(i) for i in inputs})
            except Exception:  # an op the reference evaluator lacks: leave it to onnx2tf
                foldable = False
        if not foldable:
            kept.append(node)
            continue
        for name, result in zip(node.output, results):
            arrays[name] = np.asarray(result)
            constants[name] = numpy_helper.from_array(arrays[name], name)

    del graph.node[:]
    graph.node.extend(kept)
    facts = GraphFacts(model, value, constants)
    for rule in RULES:
        kept = [new for node in kept for new in rule(node, facts)]
    constants.update({name: numpy_helper.from_array(array, name) for name, array in facts.added.items()})
    used = {i for n in kept for i in n.input} | {o.name for o in graph.output}
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(t for name, t in constants.items() if name in used)
    onnx.save(model, str(target))
    return target


def norm_as_sums(node, facts: GraphFacts) -> list:
    """ReduceL2 as Sqrt(ReduceSumSquare), ReduceL1 as ReduceSum(Abs), same axes and keepdims.

    onnx2tf converts both with tf.norm, which accepts its axis only as a Python int, and opset 18 gives the
    axes as a tensor: `F.normalize(x, dim=-1)` and every `torch.linalg.vector_norm` over one axis of a
    rank-3 or larger tensor stopped at `'axis' must be None, an integer, or a tuple of 2 unique integers`.
    """
    from onnx import helper

    if node.op_type not in ("ReduceL2", "ReduceL1") or node.domain not in ("", "ai.onnx"):
        return [node]
    attributes = _attributes(node)
    inner = f"{node.output[0]}_{node.op_type.lower()}_inner"
    if node.op_type == "ReduceL2":
        return [helper.make_node("ReduceSumSquare", list(node.input), [inner], name=f"{node.name}_sumsq", **attributes),
                helper.make_node("Sqrt", [inner], list(node.output), name=node.name)]
    return [helper.make_node("Abs", [node.input[0]], [inner], name=f"{node.name}_abs"),
            helper.make_node("ReduceSum", [inner, *node.input[1:]], list(node.output), name=node.name, **attributes)]


# Coordinate modes of bilinear resizes that onnx2tf converts right (every other one becomes matrix products).
LINEAR_RESIZES_KEPT = (b"half_pixel", b"pytorch_half_pixel")


def resize_as_matmul(node, facts: GraphFacts) -> list:
    """A Resize of the last one or two axes, with static sizes, whose TF form computes other numbers, as
    matrix products with the interpolation matrices of each axis:

        before:  Resize(x[N,C,H,W]; nearest, asymmetric, floor, 4x4 -> 7x7)
        after:   MatMul(A_h[7,4], MatMul(x, A_w^T[4,7]))

    Resize is separable, so each axis is one matrix, computed here by ONNX's reference Resize itself on an
    identity (the op's exact semantics: coordinate mode, rounding, cubic coefficient, antialias). TF's
    nearest resize rounds differently from PyTorch whenever the scale is not an integer upscale (timm's
    ghostnetv3: relative error 0.027 at that node), and its bicubic kernel differs from PyTorch's and
    exists in neither TF.js nor TFLite. A bilinear resize with align_corners=True (ONNX's align_corners
    coordinates; DeepLab-style decoders) came out of onnx2tf wrong for every scale, up or down (rel 0.17 at
    tests/models/small.py:resizes' corner-aligned output); an antialiased one became ScaleAndTranslate, which
    neither TF.js nor TFLite has; a trilinear one (rank 5) failed in onnx2tf. Bilinear resizes with half-pixel
    coordinates (PyTorch's default) stay, onnx2tf converts them right. The depth axis of a rank-5 resize is
    multiplied with height and width folded into one axis.
    """
    import onnxruntime
    from onnx import TensorProto, helper

    if node.op_type != "Resize" or node.domain not in ("", "ai.onnx"):
        return [node]
    attributes = _attributes(node)
    shape = facts.shapes.get(node.input[0])
    roi, scales, sizes = (facts.array(name) if name else None for name in (list(node.input[1:]) + [""] * 3)[:3])
    scales = None if scales is not None and scales.size == 0 else scales
    if sizes is None and scales is None and len(node.input) > 3 and node.input[3]:
        sizes = _sizes_past_the_batch(node.input[0], node.input[3], facts)
    mode = attributes.get("mode", b"nearest")
    coordinates = attributes.get("coordinate_transformation_mode", b"half_pixel")
    if shape is None or len(shape) not in (3, 4, 5) or None in shape[1:]:
        return [node]
    kept = (mode == b"linear" and coordinates in LINEAR_RESIZES_KEPT and not attributes.get("antialias")
            and len(shape) < 5)
    if (mode not in (b"nearest", b"cubic", b"linear") or kept or "axes" in attributes
            or attributes.get("keep_aspect_ratio_policy", b"stretch") != b"stretch" or (roi is not None and roi.size)
            or (scales is None) == (sizes is None)):
        return [node]
    rank, axes = len(shape), range(2, len(shape))
    if scales is not None:
        if list(scales[:2]) != [1, 1]:
            return [node]
        out = {axis: int(np.floor(shape[axis] * scales[axis])) for axis in axes}
    else:
        if int(sizes[1]) != shape[1] or shape[0] is not None and int(sizes[0]) != shape[0]:
            return [node]
        out = {axis: int(sizes[axis]) for axis in axes}
    resized = [axis for axis in axes if out[axis] != shape[axis]]
    if not resized or rank < 5 and mode == b"nearest" and all(out[a] % shape[a] == 0 for a in resized):
        return [node]  # integer upscales: TF's nearest picks the same pixels

    def matrix(axis: int) -> np.ndarray:
        """The resize of `axis` alone, applied to an identity along it and the axis after it (before it, for the
        last): [in, out] for the last axis, [out, in] for the others, so that it multiplies from the right and
        from the left."""
        n = shape[axis]
        identity_shape = [1] * rank
        identity_shape[axis] = identity_shape[axis + 1 if axis < rank - 1 else axis - 1] = n
        feeds = {"x": np.eye(n, dtype=np.float32).reshape(identity_shape)}
        if scales is not None:
            feeds["scales"] = np.ones(rank, dtype=np.float32)
            feeds["scales"][axis] = scales[axis]
        else:
            feeds["sizes"] = np.array(feeds["x"].shape, dtype=np.int64)
            feeds["sizes"][axis] = out[axis]
        names = ["x", "", "scales"] if scales is not None else ["x", "", "", "sizes"]
        types = {"x": TensorProto.FLOAT, "scales": TensorProto.FLOAT, "sizes": TensorProto.INT64}
        single = helper.make_model(helper.make_graph(
            [helper.make_node("Resize", names, ["y"], **attributes)], "axis",
            [helper.make_tensor_value_info(n, types[n], None) for n in feeds],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]),
            opset_imports=facts.model.opset_import, ir_version=facts.model.ir_version)
        # ONNX Runtime, whose Resize the onnx stage has just checked against PyTorch on this very graph: onnx's
        # pure-Python reference evaluator took over 45 minutes for one 240-pixel bicubic resize (crossvit).
        session = onnxruntime.InferenceSession(single.SerializeToString(), providers=["CPUExecutionProvider"])
        result = session.run(None, feeds)[0]
        pair = (axis, axis + 1) if axis < rank - 1 else (axis - 1, axis)
        return np.ascontiguousarray(result.reshape([result.shape[a] for a in pair]), dtype=np.float32)

    x, nodes, base = node.input[0], [], node.output[0]
    if rank - 1 in resized:
        out_name = base if resized == [rank - 1] else f"{base}_resize_w"
        nodes.append(helper.make_node("MatMul", [x, facts.constant(f"{base}_resize_w_matrix", matrix(rank - 1))],
                                      [out_name], name=f"{node.name}_w"))
        x = out_name
    if rank - 2 in resized:
        out_name = base if min(resized) == rank - 2 else f"{base}_resize_h"
        nodes.append(helper.make_node("MatMul", [facts.constant(f"{base}_resize_h_matrix", matrix(rank - 2)), x],
                                      [out_name], name=f"{node.name}_h"))
        x = out_name
    if rank == 5 and 2 in resized:  # the depth, with height and width as one axis
        h, w = out[3], out[4]
        c = facts.constant
        folded = c(f"{base}_resize_d_in_shape", np.array([-1, shape[1], shape[2], h * w], np.int64))
        nodes += [
            helper.make_node("Reshape", [x, folded], [f"{base}_resize_d_in"], name=f"{node.name}_d_in"),
            helper.make_node("MatMul", [c(f"{base}_resize_d_matrix", matrix(2)), f"{base}_resize_d_in"],
                             [f"{base}_resize_d"], name=f"{node.name}_d"),
            helper.make_node("Reshape", [f"{base}_resize_d", c(f"{base}_resize_d_out_shape",
                                                                np.array([-1, shape[1], out[2], h, w], np.int64))],
                             [base], name=f"{node.name}_d_out")]
    return nodes


def _sizes_past_the_batch(data: str, sizes: str, facts: GraphFacts) -> np.ndarray | None:
    """A Resize's sizes under a dynamic batch, Concat(Shape(data)[:2], constant), as [0, channels, *constant] (0
    for the open batch); None for any other form. torch.onnx writes F.interpolate(size=...) so with
    --dynamic-batch, where the sizes are no constant to read."""
    concat = facts.producers.get(sizes)
    if concat is None or concat.op_type != "Concat" or len(concat.input) != 2:
        return None
    shape_node, spatial = facts.producers.get(concat.input[0]), facts.array(concat.input[1])
    data_shape = facts.shapes.get(data)
    if shape_node is None or shape_node.op_type != "Shape" or shape_node.input[0] != data or spatial is None \
            or not data_shape or data_shape[1] is None:
        return None
    attributes = _attributes(shape_node)
    if attributes.get("start", 0) != 0 or attributes.get("end") != 2 or len(spatial) != len(data_shape) - 2:
        return None
    return np.array([0, data_shape[1], *spatial], np.int64)


def einsum_as_matmul(node, facts: GraphFacts) -> list:
    """A two-operand Einsum (no index twice in one operand, every index of an operand in the other or in the
    result; an ellipsis spelled out where the ranks are known) as a batched matrix product: each operand
    transposed to (batch, kept, summed) and (batch, summed, kept) and reshaped to one kept and one summed axis
    where it has several, MatMul, and the product reshaped and transposed to the result's axes. Steps that change nothing are left out: `bhik,bhkj->bhij`
    is one MatMul, `bhik,bhjk->bhij` a Transpose and a MatMul.

    onnx2tf keeps Einsum as tf.einsum, which TF.js's wasm backend has no kernel for: maxvit's attention
    (`bhik,bhjk->bhij`), mvitv2's relative positions (`byhwc,hkc->byhwk`, h a batch axis of both). MatMul runs
    everywhere.
    """
    from onnx import helper

    if node.op_type != "Einsum" or len(node.input) != 2:
        return [node]
    equation = next((a.s.decode() for a in node.attribute if a.name == "equation"), "").replace(" ", "")
    equation = _spelled_out(equation, [facts.shapes.get(name) for name in node.input])
    if equation is None:
        return [node]
    operands, _, result = equation.partition("->")
    terms = operands.split(",")
    if len(terms) != 2 or "." in equation or any(len(set(t)) != len(t) for t in (*terms, result)):
        return [node]
    a, b = terms
    if (set(a) ^ set(b)) - set(result) or set(result) - set(a) - set(b):
        return [node]  # an index summed within one operand, or a malformed equation: onnx2tf's einsum
    batch = [c for c in result if c in a and c in b]
    summed = [c for c in a if c in b and c not in result]
    kept_a, kept_b = [c for c in a if c not in b], [c for c in b if c not in a]
    shapes = [facts.shapes.get(name) for name in node.input]
    if any(s is None or len(s) != len(t) or not all(isinstance(d, int) for d in s) for s, t in zip(shapes, terms)):
        return [node]
    size = {**dict(zip(b, shapes[1])), **dict(zip(a, shapes[0]))}
    if any(size[c] != d for c, d in zip(b, shapes[1])):
        return [node]  # Einsum does not broadcast: leave the error to the runtime
    out = node.output[0]
    nodes = []

    def transposed(name: str, term: str, order: list[str], suffix: str) -> str:
        perm = [term.index(c) for c in order]
        if perm == sorted(perm):
            return name
        nodes.append(helper.make_node("Transpose", [name], [f"{out}_einsum_{suffix}_t"], name=f"{node.name}_{suffix}_t",
                                      perm=perm))
        return nodes[-1].output[0]

    def reshaped(name: str, groups: list[list[str]], merged: list[list[str]], suffix: str, target: str | None = None) -> str:
        if all(len(g) == 1 for g in merged):  # the axes are already these groups
            return name
        shape = np.array([math.prod(size[c] for c in g) for g in groups], np.int64)
        constant = facts.constant(f"{out}_einsum_{suffix}_shape", shape)
        nodes.append(helper.make_node("Reshape", [name, constant], [target or f"{out}_einsum_{suffix}"],
                                      name=f"{node.name}_{suffix}_reshape"))
        return nodes[-1].output[0]

    lhs = reshaped(transposed(node.input[0], a, batch + kept_a + summed, "lhs"),
                   [[c] for c in batch] + [kept_a, summed], [kept_a, summed], "lhs")
    rhs = reshaped(transposed(node.input[1], b, batch + summed + kept_b, "rhs"),
                   [[c] for c in batch] + [summed, kept_b], [summed, kept_b], "rhs")
    order = batch + kept_a + kept_b
    last = len(kept_a) == 1 and len(kept_b) == 1 and order == list(result)
    nodes.append(helper.make_node("MatMul", [lhs, rhs], [out if last else f"{out}_einsum_matmul"], name=node.name))
    if not last:
        product = reshaped(nodes[-1].output[0], [[c] for c in order], [kept_a, kept_b], "product",
                           target=out if order == list(result) else None)
        if order != list(result):
            nodes.append(helper.make_node("Transpose", [product], [out], name=f"{node.name}_out_t",
                                          perm=[order.index(c) for c in result]))
    return nodes


def _spelled_out(equation: str, shapes: list) -> str | None:
    """An Einsum equation with each "..." written as letters of its own, right-aligned across the operands as
    NumPy aligns them (`...hij,hjk->...hik` on a rank-5 operand: `ABhij,hjk->ABhik`); None where an operand with
    an ellipsis has no known rank or the result is implicit."""
    import string

    if "..." not in equation:
        return equation
    operands, arrow, result = equation.partition("->")
    terms = operands.split(",")
    if not arrow or len(terms) != len(shapes) or any(s is None for t, s in zip(terms, shapes) if "..." in t):
        return None
    counts = [len(s) - (len(t) - 3) if "..." in t else 0 for t, s in zip(terms, shapes)]
    spare = [c for c in string.ascii_letters if c not in equation][:max(counts)]
    if min(counts) < 0 or len(spare) < max(counts):
        return None
    terms = [t.replace("...", "".join(spare[len(spare) - k:])) for t, k in zip(terms, counts)]
    return ",".join(terms) + "->" + result.replace("...", "".join(spare))


def instance_norm_blocked(node, facts: GraphFacts) -> list:
    """InstanceNormalization over more than REDUCTION_BLOCK elements per channel as its formula, with each
    mean taken in two steps over a reshape (N, C, L / b, b): (x - mean) / sqrt(var + eps) * scale + bias.

    GroupNorm exports as InstanceNormalization over (N, groups, C / groups x H x W): timm's mobilevitv2
    normalises 196,608 elements at once. ONNX Runtime Web's wasm kernel, like TFLite's and TF.js wasm's means
    (converter/stages/onnx2tf_fixes.py:blocked_reductions), sums them one after the other into one float32:
    rel 1.2e-4 at the output of tests/models/small.py:wide_group_norm, where native ONNX Runtime has 5e-6.
    """
    from onnx import helper

    from .onnx2tf_fixes import block_split

    if node.op_type != "InstanceNormalization" or node.domain not in ("", "ai.onnx"):
        return [node]
    shape = facts.shapes.get(node.input[0])
    if not shape or len(shape) < 3 or any(d is None for d in shape):
        return [node]
    split = block_split(math.prod(shape[2:]))
    if split is None:
        return [node]
    eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
    x, scale, bias = node.input
    out = node.output[0]
    name = node.name or out
    t = lambda suffix: f"{out}_in_{suffix}"  # noqa: E731
    rank = len(shape)
    c = facts.constant
    nodes = [helper.make_node("Reshape", [x, c(t("blocked_shape"), np.array([*shape[:2], *split], np.int64))],
                              [t("x")], name=f"{name}_reshape")]

    def mean(source: str, target: str) -> None:
        nodes.append(helper.make_node("ReduceMean", [source, c(t("axis3"), np.array([3], np.int64))],
                                      [f"{target}_inner"], name=f"{name}_{target}_inner", keepdims=1))
        nodes.append(helper.make_node("ReduceMean", [f"{target}_inner", c(t("axis2"), np.array([2], np.int64))],
                                      [target], name=f"{name}_{target}", keepdims=1))

    mean(t("x"), t("mean"))
    nodes.append(helper.make_node("Sub", [t("x"), t("mean")], [t("centred")], name=f"{name}_centre"))
    nodes.append(helper.make_node("Mul", [t("centred"), t("centred")], [t("squared")], name=f"{name}_square"))
    mean(t("squared"), t("var"))
    nodes += [helper.make_node("Add", [t("var"), c(t("eps"), np.array(eps, np.float32))], [t("var_eps")],
                               name=f"{name}_eps"),
              helper.make_node("Sqrt", [t("var_eps")], [t("std")], name=f"{name}_sqrt"),
              helper.make_node("Div", [t("centred"), t("std")], [t("normed")], name=f"{name}_divide"),
              helper.make_node("Reshape", [t("normed"), c(t("shape"), np.array(shape, np.int64))], [t("back")],
                               name=f"{name}_reshape_back")]
    per_channel = c(t("channel_shape"), np.array([shape[1], *[1] * (rank - 2)], np.int64))
    nodes += [helper.make_node("Reshape", [scale, per_channel], [t("scale")], name=f"{name}_scale_shape"),
              helper.make_node("Reshape", [bias, per_channel], [t("bias")], name=f"{name}_bias_shape"),
              helper.make_node("Mul", [t("back"), t("scale")], [t("scaled")], name=f"{name}_scale"),
              helper.make_node("Add", [t("scaled"), t("bias")], [out], name=f"{name}_bias")]
    return nodes


# TFLite's StridedSlice, Gather and Split kernels take at most 5 axes.
MAX_SLICE_RANK = 5


def slices_in_5d(node, facts: GraphFacts) -> list:
    """A Slice, Split or Gather of a tensor of more than MAX_SLICE_RANK axes, with static shapes, on that tensor
    reshaped so that each run of axes the op takes whole is one axis; its outputs reshaped back:

        before:  Slice(x[3,1,2,3,5,4]; axes [0], 0:1) -> [1,1,2,3,5,4]
        after:   Reshape(Slice(Reshape(x, [3,120]); axes [0], 0:1), [1,1,2,3,5,4])

    timm's NesT splits its queries, keys and values as `reshape(B, T, N, 3, heads, C / heads).permute(3, 0, 4,
    1, 2, 5).unbind(0)`: TFLite has no StridedSlice over 6 axes (neither builtin nor flex), and onnx2tf
    sliced the wrong axis of such a tensor (rel 1.24 at tests/models/small.py:split_heads's output).
    """
    from onnx import helper

    if node.op_type not in ("Slice", "Split", "Gather") or node.domain not in ("", "ai.onnx"):
        return [node]
    shape = facts.shapes.get(node.input[0])
    outputs = [facts.shapes.get(o) for o in node.output]
    if (not shape or len(shape) <= MAX_SLICE_RANK or None in shape
            or any(s is None or None in s for s in outputs)):
        return [node]
    rank = len(shape)
    attributes = _attributes(node)
    if node.op_type == "Slice":
        if len(node.input) > 3 and node.input[3]:
            axes = facts.array(node.input[3])
        else:  # every axis that `starts` has an entry for
            starts = facts.shapes.get(node.input[1])
            axes = np.arange(starts[0]) if starts and starts[0] else None
        if axes is None or not len(axes):
            return [node]
        touched = {int(a) % rank for a in axes}
    else:
        touched = {int(attributes.get("axis", 0)) % rank}
    groups: list[list[int]] = []
    for axis in range(rank):
        if axis in touched or not groups or groups[-1][-1] in touched:
            groups.append([axis])
        else:
            groups[-1].append(axis)
    if len(groups) > MAX_SLICE_RANK:
        return [node]
    new_axis = {group[0]: i for i, group in enumerate(groups)}
    out = node.output[0]
    c = facts.constant
    merged = f"{out}_in_{len(groups)}d"
    nodes = [helper.make_node("Reshape", [node.input[0], c(f"{merged}_shape", np.array(
        [math.prod(shape[a] for a in g) for g in groups], np.int64))], [merged], name=f"{node.name}_merge")]
    inputs = [merged, *node.input[1:]]
    if node.op_type == "Slice":
        new_axes = c(f"{merged}_axes", np.array([new_axis[int(a) % rank] for a in axes], np.int64))
        inputs = [*inputs[:3], new_axes, *inputs[4:]]
    else:
        attributes["axis"] = new_axis[next(iter(touched))]
    small = [f"{o}_{len(groups)}d" for o in node.output]
    nodes.append(helper.make_node(node.op_type, inputs, small, name=node.name, **attributes))
    for name, target, s in zip(small, node.output, outputs):
        nodes.append(helper.make_node("Reshape", [name, c(f"{target}_shape", np.array(s, np.int64))], [target],
                                      name=f"{node.name}_{target}_back"))
    return nodes


def reversed_slices(node, facts: GraphFacts) -> list:
    """A Slice with a negative step (torch.flip, reversed ranges), with constant starts, ends, axes and steps
    and static lengths on those axes, as a Gather of the indices it takes along each such axis; the axes it
    steps forward along stay a Slice:

        before:  Slice(x[1,4,6,7]; axes [2], starts [-1], ends [INT64_MIN], steps [-1])
        after:   Gather(x, [5, 4, 3, 2, 1, 0], axis 2)

    onnx2tf builds such a slice as the identity (tests/models/small.py:flipped, rel 0.88 without the rule).
    """
    from onnx import helper

    if node.op_type != "Slice" or node.domain not in ("", "ai.onnx") or len(node.input) < 5 or not node.input[4]:
        return [node]
    starts, ends, steps = (facts.array(node.input[i]) for i in (1, 2, 4))
    axes = facts.array(node.input[3]) if node.input[3] else (None if starts is None else np.arange(len(starts)))
    shape = facts.shapes.get(node.input[0])
    if any(a is None for a in (starts, ends, steps, axes)) or not shape or not (steps < 0).any():
        return [node]
    rank = len(shape)
    if any(shape[int(a) % rank] is None for a, step in zip(axes, steps) if step < 0):
        return [node]
    c, out = facts.constant, node.output[0]
    forward = [i for i, step in enumerate(steps) if step > 0]
    nodes, current = [], node.input[0]
    if forward:
        current = f"{out}_forward"
        kept = [c(f"{current}_{k}", np.array([v[i] for i in forward], np.int64))
                for k, v in (("starts", starts), ("ends", ends), ("axes", axes), ("steps", steps))]
        nodes.append(helper.make_node("Slice", [node.input[0], *kept], [current], name=f"{node.name}_forward"))
    backward = [i for i, step in enumerate(steps) if step < 0]
    for k, i in enumerate(backward):
        axis = int(axes[i]) % rank
        dim = shape[axis]
        start, end = int(starts[i]), int(ends[i])
        start = min(max(start + dim if start < 0 else start, 0), dim - 1)
        end = min(max(end + dim if end < 0 else end, -1), dim - 1)
        target = out if k == len(backward) - 1 else f"{out}_reversed_{axis}"
        indices = c(f"{out}_indices_{axis}", np.arange(start, end, int(steps[i]), dtype=np.int64))
        nodes.append(helper.make_node("Gather", [current, indices], [target], name=f"{node.name}_axis_{axis}",
                                      axis=axis))
        current = target
    return nodes


def layer_norms_over_one_axis(node, facts: GraphFacts) -> list:
    """A LayerNormalization over several trailing axes (nn.LayerNorm([5, 8])), with static lengths there and
    constant scale and bias, over those axes merged into one; its output reshaped back:

        before:  LayerNormalization(x[2,5,8], scale[5,8], bias[5,8]; axis -2)
        after:   Reshape(LayerNormalization(Reshape(x, [0, 40]), scale[40], bias[40]; axis -1), [0, 5, 8])

    onnx2tf builds its scale as a tf.constant of the last axis's shape and failed ("Eager execution of
    tf.constant with unsupported shape"; tests/models/small.py:plane_norm).
    """
    from onnx import helper

    if (node.op_type != "LayerNormalization" or node.domain not in ("", "ai.onnx")
            or any(node.output[1:]) or len(node.input) < 2):
        return [node]
    shape = facts.shapes.get(node.input[0])
    attributes = _attributes(node)
    if not shape:
        return [node]
    axis = int(attributes.get("axis", -1)) % len(shape)
    normalized = shape[axis:]
    parameters = [facts.array(name) if name else None for name in node.input[1:3]]
    if (len(normalized) < 2 or None in normalized or parameters[0] is None
            or (len(node.input) > 2 and node.input[2] and parameters[1] is None)):
        return [node]
    c, out = facts.constant, node.output[0]
    size = math.prod(normalized)
    flat = [c(f"{out}_flat_{name}", np.broadcast_to(value, normalized).reshape(size).copy())
            for name, value in zip(("scale", "bias"), parameters) if value is not None]
    attributes["axis"] = -1
    merged_shape = c(f"{out}_flat_shape", np.array([0] * axis + [size], np.int64))
    return [helper.make_node("Reshape", [node.input[0], merged_shape], [f"{out}_flat_in"], name=f"{node.name}_merge"),
            helper.make_node("LayerNormalization", [f"{out}_flat_in", *flat], [f"{out}_flat"], name=node.name,
                             **attributes),
            helper.make_node("Reshape", [f"{out}_flat", c(f"{out}_shape", np.array([0] * axis + normalized, np.int64))],
                             [out], name=f"{node.name}_back")]


def wrapped_pads(node, facts: GraphFacts) -> list:
    """A Pad in "wrap" mode (padding_mode="circular") with constant, non-negative pads, as each padded axis
    concatenated between its own last and first entries:

        before:  Pad(x[1,3,9,9]; pads [0,0,1,1, 0,0,1,1], wrap)
        after:   Concat(x[..., -1:], x, x[..., :1]; axis 3), the same for axis 2 on that

    onnx2tf passes the mode to tf.pad, which has no such mode ("Exception encountered when calling layer
    tf.pad"; tests/models/small.py:circular_conv).
    """
    from onnx import helper

    if node.op_type != "Pad" or node.domain not in ("", "ai.onnx") or _attributes(node).get("mode") != b"wrap":
        return [node]
    pads = facts.array(node.input[1]) if len(node.input) > 1 else None
    shape = facts.shapes.get(node.input[0])
    if pads is None or (pads < 0).any() or not shape:
        return [node]
    rank = len(shape)
    axes = facts.array(node.input[3]) if len(node.input) > 3 and node.input[3] else np.arange(rank)
    if axes is None:
        return [node]
    half = len(axes)
    c, out = facts.constant, node.output[0]
    big = np.iinfo(np.int64).max
    nodes, current = [], node.input[0]
    padded = [(int(axis) % rank, int(pads[i]), int(pads[i + half])) for i, axis in enumerate(axes)
              if pads[i] or pads[i + half]]
    for k, (axis, before, after) in enumerate(padded):
        parts = []
        for name, start, end, size in (("head", -before, big, before), ("tail", 0, after, after)):
            if size:
                part = f"{out}_wrap_{axis}_{name}"
                nodes.append(helper.make_node("Slice", [current, c(f"{part}_starts", np.array([start], np.int64)),
                                                        c(f"{part}_ends", np.array([end], np.int64)),
                                                        c(f"{part}_axes", np.array([axis], np.int64))],
                                              [part], name=f"{node.name}_{axis}_{name}"))
                parts.append(part)
        target = out if k == len(padded) - 1 else f"{out}_wrap_{axis}"
        ordered = ([parts[0]] if before else []) + [current] + ([parts[-1]] if after else [])
        nodes.append(helper.make_node("Concat", ordered, [target], name=f"{node.name}_{axis}", axis=axis))
        current = target
    return nodes or [helper.make_node("Identity", [node.input[0]], [out], name=node.name)]


def pools_in_2d(node, facts: GraphFacts) -> list:
    """A 3-D MaxPool or AveragePool without padding, dilation or ceil mode, with static lengths, as two 2-D pools
    of the same op: over height and width with the depth folded into the channels, then over the depth with
    height and width folded into one axis. Max and average are separable over such windows, so the values are the
    same:

        before:  MaxPool(x[N,C,D,H,W]; kernel [kd,kh,kw], strides [sd,sh,sw])
        after:   Reshape(MaxPool(Reshape(MaxPool(Reshape(x, [N,C*D,H,W]); [kh,kw]), [N,C,D,H'*W']); [kd,1]),
                         [N,C,D',H',W'])

    TFLite has no 3-D pooling kernel, builtin or flex ("TFLite has no kernel for: MaxPool3D";
    tests/models/small.py:volume_pools).
    """
    from onnx import helper

    if node.op_type not in ("MaxPool", "AveragePool") or node.domain not in ("", "ai.onnx") or len(node.output) > 1:
        return [node]
    attributes = _attributes(node)
    kernel = list(attributes.get("kernel_shape", []))
    shape = facts.shapes.get(node.input[0])
    if (len(kernel) != 3 or not shape or None in shape[1:] or any(attributes.get("pads", [0]))
            or attributes.get("ceil_mode") or any(d != 1 for d in attributes.get("dilations", [1]))
            or attributes.get("auto_pad", b"NOTSET") != b"NOTSET"):
        return [node]
    strides = list(attributes.get("strides", [1, 1, 1]))
    _, c, d, h, w = shape
    h2, w2 = (h - kernel[1]) // strides[1] + 1, (w - kernel[2]) // strides[2] + 1
    d2 = (d - kernel[0]) // strides[0] + 1
    out, k = node.output[0], facts.constant
    extra = {"count_include_pad": attributes["count_include_pad"]} if "count_include_pad" in attributes else {}
    shaped = lambda name, dims: k(f"{out}_{name}_shape", np.array([-1, *dims], np.int64))  # noqa: E731
    return [
        helper.make_node("Reshape", [node.input[0], shaped("planes", [c * d, h, w])], [f"{out}_planes"],
                         name=f"{node.name}_planes"),
        helper.make_node(node.op_type, [f"{out}_planes"], [f"{out}_hw"], name=f"{node.name}_hw",
                         kernel_shape=kernel[1:], strides=strides[1:], **extra),
        helper.make_node("Reshape", [f"{out}_hw", shaped("depth", [c, d, h2 * w2])], [f"{out}_depth"],
                         name=f"{node.name}_depth"),
        helper.make_node(node.op_type, [f"{out}_depth"], [f"{out}_d"], name=f"{node.name}_d",
                         kernel_shape=[kernel[0], 1], strides=[strides[0], 1], **extra),
        helper.make_node("Reshape", [f"{out}_d", shaped("volume", [c, d2, h2, w2])], [out], name=node.name),
    ]


def dilated_transposed_convs(node, facts: GraphFacts) -> list:
    """A ConvTranspose with a dilation above 1 and a constant weight, as the ConvTranspose with that weight spread
    out (dilation - 1 zeros between its taps) and no dilation: the same sums, so the same values. TensorFlow's
    CPU kernel refuses it ("do not yet support dilation rates larger than 1"; tests/test_onnx2tf_workarounds.py)."""
    from onnx import helper

    if node.op_type != "ConvTranspose" or node.domain not in ("", "ai.onnx"):
        return [node]
    attributes = _attributes(node)
    dilations, weight = attributes.get("dilations", []), facts.array(node.input[1])
    if not any(d > 1 for d in dilations) or weight is None:
        return [node]
    spread = np.zeros([*weight.shape[:2], *((k - 1) * d + 1 for k, d in zip(weight.shape[2:], dilations))],
                      weight.dtype)
    spread[(slice(None), slice(None), *(slice(None, None, d) for d in dilations))] = weight
    kernel = {"kernel_shape": list(spread.shape[2:])} if "kernel_shape" in attributes else {}
    return [helper.make_node("ConvTranspose", [node.input[0], facts.constant(f"{node.output[0]}_spread", spread),
                                              *node.input[2:]], list(node.output), name=node.name,
                             **{**attributes, "dilations": [1] * len(dilations), **kernel})]


def dilated_max_pools(node, facts: GraphFacts) -> list:
    """A MaxPool with a dilation above 1 (and no indices output), as the Max of one strided Slice per window tap
    of the input padded with the lowest value: the same maxima. onnx2tf builds it with TensorFlow's Dilation2D,
    which TFLite has no kernel for and TF.js's wasm backend computes wrongly (rel 0.025;
    tests/test_onnx2tf_workarounds.py)."""
    from onnx import helper

    if not _tapped_pool(node, facts, indices=False) or not any(d > 1 for d in _attributes(node).get("dilations", [])):
        return [node]
    nodes, taps, _ = _pool_taps(node, facts)
    return [*nodes, helper.make_node("Max", [tap for _, tap in taps], [node.output[0]], name=node.name)]


def pool_indices(node, facts: GraphFacts) -> list:
    """A 2-D MaxPool that also gives its indices, built from the pool's taps (_pool_taps): the maximum and the
    flat index ((n * C + c) * H + y) * W + x of the first tap that holds it in row-major order, as ONNX Runtime and
    PyTorch choose, by Greater, Max and Where. onnx2tf built the indices with TensorFlow's MaxPoolWithArgmax, which
    counts in the channels-last layout (rel 2.0 on the indices), and TFLite has no kernel for that: a SegNet
    decoder's max_unpool2d failed (tests/models/small.py:unpooling)."""
    from onnx import helper

    if not _tapped_pool(node, facts, indices=True) or len(_attributes(node)["kernel_shape"]) != 2:
        return [node]
    attributes = _attributes(node)
    n, c, h, w = facts.shapes[node.input[0]]
    strides, pads = attributes.get("strides", [1, 1]), attributes.get("pads", [0, 0, 0, 0])
    dilations = attributes.get("dilations", [1, 1])
    values, indices = node.output[:2]
    nodes, taps, (out_h, out_w) = _pool_taps(node, facts)
    # The flat index of each window's first tap; each tap adds its offset in the input.
    rows, cols = np.meshgrid(np.arange(out_h) * strides[0] - pads[0], np.arange(out_w) * strides[1] - pads[1],
                             indexing="ij")
    planes = np.arange(n * c, dtype=np.int64).reshape(n, c, 1, 1) * h * w
    base = facts.constant(f"{indices}_base", planes + (rows * w + cols).astype(np.int64))
    (_, best), offset = taps[0], facts.constant(f"{indices}_offset_0", np.array(0, np.int64))
    for (i, j), tap in taps[1:]:
        delta = facts.constant(f"{tap}_offset", np.array(i * dilations[0] * w + j * dilations[1], np.int64))
        last = (i, j) == taps[-1][0]
        better, chosen, maximum = f"{tap}_better", f"{tap}_chosen", values if last else f"{tap}_max"
        nodes += [helper.make_node("Greater", [tap, best], [better], name=f"{node.name}_{better}"),
                  helper.make_node("Max", [best, tap], [maximum], name=f"{node.name}_{maximum}"),
                  helper.make_node("Where", [better, delta, offset], [chosen], name=f"{node.name}_{chosen}")]
        best, offset = maximum, chosen
    if len(taps) == 1:
        nodes.append(helper.make_node("Identity", [best], [values], name=f"{node.name}_values"))
    return [*nodes, helper.make_node("Add", [base, offset], [indices], name=node.name)]


def _tapped_pool(node, facts: GraphFacts, indices: bool) -> bool:
    """Whether `node` is a float32 MaxPool with (or without) an indices output that _pool_taps can build."""
    from onnx import TensorProto

    if (node.op_type != "MaxPool" or node.domain not in ("", "ai.onnx")
            or (len(node.output) > 1 and bool(node.output[1])) != indices
            or facts.element_types.get(node.input[0]) != TensorProto.FLOAT):
        return False
    attributes, shape = _attributes(node), facts.shapes.get(node.input[0])
    return (not attributes.get("ceil_mode", 0) and not attributes.get("storage_order", 0)
            and attributes.get("auto_pad", b"NOTSET") in (b"NOTSET", b"VALID") and bool(shape)
            and all(isinstance(d, int) and d > 0 for d in shape[1 if indices else 2:]) and bool(not indices or shape[0]))


def _pool_taps(node, facts: GraphFacts) -> tuple[list, list[tuple[tuple, str]], list[int]]:
    """A max pool's window taps: (nodes: its input padded with float32's lowest value and one strided Slice per
    tap, [(tap position in the window, its tensor)] in row-major order, the output's spatial sizes)."""
    from onnx import helper

    attributes, shape = _attributes(node), facts.shapes[node.input[0]]
    kernel = attributes["kernel_shape"]
    k = len(kernel)
    dilations, strides = attributes.get("dilations", [1] * k), attributes.get("strides", [1] * k)
    pads = attributes.get("pads", [0] * 2 * k)
    out, c = node.output[0], facts.constant
    sizes = [(n + pads[i] + pads[i + k] - (kernel[i] - 1) * dilations[i] - 1) // strides[i] + 1
             for i, n in enumerate(shape[2:])]
    lowest = np.array(np.finfo(np.float32).min, np.float32)
    nodes = [helper.make_node("Pad", [node.input[0], c(f"{out}_pads", np.array([0, 0, *pads[:k], 0, 0, *pads[k:]],
                                                                                    np.int64)),
                                      c(f"{out}_lowest", lowest)], [f"{out}_padded"], name=f"{node.name}_pad")]
    taps = []
    for tap in np.ndindex(*kernel):
        starts = [t * d for t, d in zip(tap, dilations)]
        name = f"{out}_tap_{'_'.join(map(str, tap))}"
        nodes.append(helper.make_node("Slice", [f"{out}_padded", c(f"{name}_starts", np.array(starts, np.int64)),
                                                c(f"{name}_ends", np.array([b + (n - 1) * s + 1 for b, n, s in
                                                                            zip(starts, sizes, strides)], np.int64)),
                                                c(f"{name}_axes", np.arange(2, 2 + k, dtype=np.int64)),
                                                c(f"{name}_steps", np.array(strides, np.int64))],
                                      [name], name=f"{node.name}_{name}"))
        taps.append((tap, name))
    return nodes, taps, sizes


def cast_likes(node, facts: GraphFacts) -> list:
    """A CastLike as a Cast to its second input's element type, where that is known. onnx2tf has no CastLike
    (the one op of ONNX's registry that torch.onnx writes and onnx2tf lacks: nn.EmbeddingBag's mean;
    tests/test_onnx2tf_workarounds.py)."""
    from onnx import helper

    if node.op_type != "CastLike" or node.domain not in ("", "ai.onnx"):
        return [node]
    like = facts.array(node.input[1])
    to = helper.np_dtype_to_tensor_dtype(like.dtype) if like is not None else facts.element_types.get(node.input[1])
    if not to:
        return [node]
    return [helper.make_node("Cast", [node.input[0]], list(node.output), name=node.name, to=to,
                             **{k: v for k, v in _attributes(node).items() if k == "saturate"})]


def strided_dilations(node, facts: GraphFacts) -> list:
    """A Conv with a stride above 1 and a dilation above 1 (on any axes), as the Conv at stride 1 followed by a
    Slice that keeps every stride-th output along each strided axis. Output k of the stride-1 Conv at k * stride
    is output k of the strided one, so the values are the same; the Conv computes stride^2 times the outputs:

        before:  Conv(x; strides [2,2], dilations [2,2], pads [2,2,2,2])
        after:   Slice(Conv(x; strides [1,1], dilations [2,2], pads [2,2,2,2]); steps [2,2] on the spatial axes)

    TensorFlow's convolution refuses the pair ("`strides > 1` not supported in conjunction with `dilation_rate >
    1`": timm's skresnet18, whose dilated path downsamples; tests/models/small.py:selective_kernel).
    """
    from onnx import helper

    if node.op_type != "Conv" or node.domain not in ("", "ai.onnx"):
        return [node]
    attributes = _attributes(node)
    strides, dilations = attributes.get("strides", []), attributes.get("dilations", [])
    if not any(s > 1 for s in strides) or not any(d > 1 for d in dilations) \
            or attributes.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID"):
        return [node]
    out, c = node.output[0], facts.constant
    axes = [axis for axis, stride in enumerate(strides, start=2) if stride > 1]
    dense = f"{out}_stride_1"
    return [helper.make_node("Conv", list(node.input), [dense], name=node.name,
                             **{**attributes, "strides": [1] * len(strides)}),
            helper.make_node("Slice", [dense, c(f"{out}_starts", np.zeros(len(axes), np.int64)),
                                       c(f"{out}_ends", np.full(len(axes), np.iinfo(np.int64).max)),
                                       c(f"{out}_axes", np.array(axes, np.int64)),
                                       c(f"{out}_steps", np.array([strides[a - 2] for a in axes], np.int64))],
                             [out], name=f"{node.name}_strides")]


def truncated_mods(node, facts: GraphFacts) -> list:
    """A floating-point Mod with fmod=1 (torch.fmod, C's fmod: the remainder takes the dividend's sign) as
    a - b * trunc(a / b), trunc(q) = Where(q < 0, Ceil(q), Floor(q)). onnx2tf ignores fmod and builds every Mod as
    TensorFlow's floor modulo, whose remainder takes the divisor's sign: torch.fmod(5 * x, 1.5) was off by rel
    1.23 on negative inputs (tests/models/small.py:trig_functions)."""
    from onnx import TensorProto, helper

    floats = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16)
    if node.op_type != "Mod" or node.domain not in ("", "ai.onnx") or not _attributes(node).get("fmod", 0) \
            or facts.element_types.get(node.input[0]) not in floats:
        return [node]
    a, b = node.input
    out = node.output[0]
    zero = facts.constant(f"{out}_zero", np.zeros((), helper.tensor_dtype_to_np_dtype(facts.element_types[a])))
    q, names = f"{out}_quotient", [f"{out}_{part}" for part in ("negative", "ceil", "floor", "trunc", "multiple")]
    negative, ceil, floor, trunc, multiple = names
    return [helper.make_node("Div", [a, b], [q], name=f"{node.name}_quotient"),
            helper.make_node("Less", [q, zero], [negative], name=f"{node.name}_negative"),
            helper.make_node("Ceil", [q], [ceil], name=f"{node.name}_ceil"),
            helper.make_node("Floor", [q], [floor], name=f"{node.name}_floor"),
            helper.make_node("Where", [negative, ceil, floor], [trunc], name=f"{node.name}_trunc"),
            helper.make_node("Mul", [b, trunc], [multiple], name=f"{node.name}_multiple"),
            helper.make_node("Sub", [a, multiple], [out], name=node.name)]


# reversed_slices before slices_in_5d: the Gathers it writes for a tensor of more than 5 axes are merged there.
RULES = [norm_as_sums, resize_as_matmul, einsum_as_matmul, layer_norms_over_one_axis, wrapped_pads, pools_in_2d,
         strided_dilations, dilated_transposed_convs, dilated_max_pools, pool_indices, cast_likes, truncated_mods,
         reversed_slices, slices_in_5d]
# The rules that the ONNX artifact itself gets (ONNX Runtime Web runs it); onnx2tf reads the artifact, so it
# gets them too.
ARTIFACT_RULES = [instance_norm_blocked]


def portable_onnx(model) -> list[str]:
    """Apply ARTIFACT_RULES to an onnx.ModelProto, in place; the names of the nodes rewritten."""
    from onnx import numpy_helper

    constants = {t.name: t for t in model.graph.initializer}
    facts = GraphFacts(model, lambda name: numpy_helper.to_array(constants[name]), constants)
    rewritten, kept = [], []
    for node in model.graph.node:
        new = [node]
        for rule in ARTIFACT_RULES:
            new = [n for old in new for n in rule(old, facts)]
        if new != [node]:
            rewritten.append(node.name)
        kept += new
    if rewritten:
        del model.graph.node[:]
        model.graph.node.extend(kept)
        model.graph.initializer.extend(numpy_helper.from_array(a, n) for n, a in facts.added.items())
    return rewritten
