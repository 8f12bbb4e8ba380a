"""PyTorch -> ONNX with torch.onnx.export(dynamo=True), run in ONNX Runtime."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import numpy as np

from ..errors import ConversionError, first_line
from .base import IO_RECORD, Arrays, Artifact, Context, Stage, io_record
from .onnx2tf_fixes import REDUCTION_BLOCK
from .onnx_rewrites import portable_onnx

# Opset 18: new enough for LayerNorm as one op, old enough that exact GELU stays Erf-based (opset 20's Gelu
# makes onnx2tf emit Erfc, which TF.js cannot run), and supported by onnx2tf 1.29, ONNX Runtime and ORT-web.
OPSET = 18


class OnnxStage(Stage):
    name = target = "onnx"

    def convert(self, ctx: Context) -> Artifact:
        import torch

        path = ctx.work / "model.onnx"
        args = tuple(torch.from_numpy(np.ascontiguousarray(ctx.cases.inputs[0][s.name])) for s in ctx.inputs)
        names = {"input_names": [s.name for s in ctx.inputs], "output_names": [s.name for s in ctx.outputs]}
        notes = []
        try:
            with _export_patches():
                torch.onnx.export(ctx.model.module, args, str(path), dynamo=True, opset_version=OPSET,
                                  dynamic_shapes=_dynamic_shapes(ctx), external_data=False, optimize=True,
                                  verbose=False, **names)
        except Exception as exc:
            import traceback

            traceback.print_exc()  # the exporter's whole story, into the stage's log
            if _captured(exc):
                # torch.export captured the model and torch.onnx's type-promotion pass failed after it: it
                # re-runs the decomposed graph on fake tensors, and a `view` of a transposed tensor whose
                # `contiguous` the decomposition dropped cannot be viewed (Hugging Face's T5 and Swin
                # attention). As `reshape`, which views where it can and copies where it must, the pass runs;
                # both become the same ONNX Reshape.
                try:
                    with _export_patches(), _views_as_reshapes():
                        torch.onnx.export(ctx.model.module, args, str(path), dynamo=True, opset_version=OPSET,
                                          dynamic_shapes=_dynamic_shapes(ctx), external_data=False, optimize=True,
                                          verbose=False, **names)
                    notes.append("exported with aten.view as aten.reshape in torch.onnx's type-promotion pass, "
                                 f"which failed on a view otherwise ({_root_cause(exc)[:100]})")
                except Exception:
                    traceback.print_exc()
            if not notes:
                self._raise(ctx, args, exc)
        inputs, outputs = ctx.same_layout()
        rewritten = _finish(path, io_record(ctx, inputs, outputs))
        if rewritten:
            notes.append(f"{len(rewritten)} InstanceNormalization over more than {REDUCTION_BLOCK} elements written "
                         "with two-step means (ONNX Runtime Web sums them in one float32)")
        return Artifact(Path("model.onnx"), "fp32", inputs, outputs, notes, {"opset": OPSET})

    def _raise(self, ctx: Context, args: tuple, exc: Exception):
        # The exporter stops at the first op it cannot translate; list them all so one edit fixes the model.
        ops = sorted(set(_unsupported_ops(str(exc))) | set(_scan_unsupported(ctx.model.module, args)))
        cause = _root_cause(exc)
        what = f"unsupported ops: {', '.join(ops)}" if ops else cause
        hint = ("replace those ops in the model, or register a custom translation "
                "(torch.onnx.export(custom_translation_table=...))")
        if not ops and "data-dependent" in cause:
            hint = ("the model branches on a tensor's value, which torch.export cannot capture: make that "
                    "branch depend on shapes or flags only (logs/onnx.log shows the line)")
        raise ConversionError(f"torch.onnx.export failed: {what}", stage=self.name, unsupported_ops=ops,
                              hint=hint) from exc

    def run(self, ctx: Context, artifact: Artifact, cases: list[Arrays]) -> list[Arrays]:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(str(ctx.work / artifact.path), options, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        return [dict(zip([o.name for o in ctx.outputs], session.run(names, case))) for case in cases]


def _finish(path: Path, record: str) -> list[str]:
    """The exported file made portable (onnx_rewrites.portable_onnx), with the layouts carried inside it as
    model metadata (metadata_props), which ONNX tools show; the names of the nodes rewritten."""
    import onnx

    model = onnx.load(str(path))
    rewritten = portable_onnx(model)
    model.metadata_props.add(key=IO_RECORD, value=record)
    onnx.save(model, str(path))
    return rewritten


def _dynamic_shapes(ctx: Context):
    """torch.export's description of the dynamic axes (one shared batch dimension), or None for static."""
    if not any(s.dynamic_axes for s in ctx.inputs):
        return None
    from torch.export import Dim

    batch = Dim("batch")
    return tuple({axis: batch for axis in s.dynamic_axes} for s in ctx.inputs)


@contextlib.contextmanager
def _export_patches():
    """Every patch torch.onnx.export runs under (the functions below)."""
    with _static_causal_check(), _attention_in_4d(), _translatable_forms():
        yield


@contextlib.contextmanager
def _static_causal_check():
    """nn.Transformer and its encoder/decoder, given a mask but no is_causal flag, compare the mask with a
    causal one and branch on the result (`bool(tensor.all())`), which torch.export cannot trace. The flag is
    only a speed hint and the mask is applied either way (see the docstring of
    torch.nn.modules.transformer._detect_is_causal_mask), so while exporting an unset flag means "not
    known to be causal": the graph computes the same values."""
    from torch.nn.modules import transformer

    original = transformer._detect_is_causal_mask
    transformer._detect_is_causal_mask = lambda mask=None, is_causal=None, size=None: is_causal is True
    try:
        yield
    finally:
        transformer._detect_is_causal_mask = original


@contextlib.contextmanager
def _attention_in_4d():
    """F.scaled_dot_product_attention on query, key and value of rank 3 (one head) or 5 and more (timm's NesT:
    batch, heads, blocks, tokens, channels) as the same attention on rank 4: onnxscript's translation takes only
    rank 4 ("only 4D query, key, and value are supported"). The leading axes go into the first, the head axis
    is 1, and a mask is broadcast to the query's leading axes first; the values are the same. Patched while
    exporting, for models that call it as F.scaled_dot_product_attention (torch.nn.functional's attribute)."""
    import torch.nn.functional as F

    original = F.scaled_dot_product_attention

    def in_4d(query, key, value, attn_mask=None, *args, **kwargs):
        lead = query.shape[:-2]
        if query.dim() == 4 or key.shape[:-2] != lead or value.shape[:-2] != lead or kwargs.get("enable_gqa"):
            return original(query, key, value, attn_mask, *args, **kwargs)
        as_4d = lambda t: t.reshape(-1, 1, *t.shape[-2:])  # noqa: E731
        if attn_mask is not None:
            attn_mask = as_4d(attn_mask.expand(*lead, query.shape[-2], key.shape[-2]))
        out = original(as_4d(query), as_4d(key), as_4d(value), attn_mask, *args, **kwargs)
        return out.reshape(*lead, *out.shape[-2:])

    F.scaled_dot_product_attention = in_4d
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original


@contextlib.contextmanager
def _translatable_forms():
    """torch.cdist and F.adaptive_max_pool1d/2d to sizes that do not divide the input, which torch.onnx cannot
    translate (aten._cdist_forward, aten.adaptive_max_pool2d), written while exporting with the ops it can: the
    distances from the coordinate differences, the pooling as the max over each of PyTorch's bins (from
    floor(i * n / out) to ceil((i + 1) * n / out)). F.adaptive_avg_pool1d/2d to such sizes as the mean over each
    bin too: torch.onnx writes them as gathers of padded windows over rank-6 tensors, which onnx2tf got wrong
    behind F.interpolate(mode="area") (rel 1.3). And F.embedding_bag of fixed-length bags (2-D input), which
    torch.onnx writes as a Loop over a sequence of bags that onnx2tf cannot convert (its body holds CastLike), as
    the embedding's sum, mean or max over each bag. F.rrelu in eval mode (aten.rrelu_with_noise) as the leaky ReLU
    it is then, with the mean of its two slopes. torch.cumprod (prims.prod) of floats as the exponential of a
    cumulative sum of logarithms, signed by the parity of the negatives so far (a zero gives exp(-inf) = 0 from
    there on). Patched as torch's, torch.Tensor's and torch.nn.functional's attributes, which nn.AdaptiveMaxPool2d,
    nn.EmbeddingBag, nn.RReLU and most models call; other calls keep the originals."""
    import torch
    import torch.nn.functional as F

    def cdist(x1, x2, p=2.0, compute_mode="use_mm_for_euclid_dist_if_necessary"):
        diff = (x1.unsqueeze(-2) - x2.unsqueeze(-3)).abs()
        if p == float("inf"):
            return diff.amax(-1)
        return diff.square().sum(-1).sqrt() if p == 2 else diff.pow(p).sum(-1).pow(1.0 / p)

    def binned(x, output_size, dims: int, reduce):
        """x reduced over each of PyTorch's adaptive bins along its last `dims` axes; None where every bin has one
        size (the original's even case, which exports as a plain pool)."""
        sizes = [output_size] * dims if isinstance(output_size, int) else list(output_size)
        sizes = [x.shape[-dims + i] if s is None else s for i, s in enumerate(sizes)]
        if all(x.shape[-dims + i] % s == 0 for i, s in enumerate(sizes)):
            return None
        for i, s in enumerate(sizes):
            axis, n = x.dim() - dims + i, x.shape[-dims + i]
            x = torch.cat([reduce(x.narrow(axis, k * n // s, -(-(k + 1) * n // s) - k * n // s), axis, keepdim=True)
                           for k in range(s)], axis)
        return x

    def max_pooled(original, dims: int):
        def pool(x, output_size, return_indices=False):
            out = None if return_indices else binned(x, output_size, dims, torch.amax)
            return original(x, output_size, return_indices) if out is None else out

        return pool

    def avg_pooled(original, dims: int):
        def pool(x, output_size):
            out = binned(x, output_size, dims, torch.mean)
            return original(x, output_size) if out is None else out

        return pool

    def bagged(original):
        def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2, scale_grad_by_freq=False,
                          mode="mean", sparse=False, per_sample_weights=None, include_last_offset=False,
                          padding_idx=None):
            if input.dim() != 2 or max_norm is not None or (padding_idx is not None and mode == "max"):
                return original(input, weight, offsets, max_norm, norm_type, scale_grad_by_freq, mode, sparse,
                                per_sample_weights, include_last_offset, padding_idx)
            vectors = F.embedding(input, weight)
            if per_sample_weights is not None:
                vectors = vectors * per_sample_weights.unsqueeze(-1)
            if mode == "max":
                return vectors.amax(1)
            kept = (input != padding_idx).unsqueeze(-1).to(vectors.dtype) if padding_idx is not None else None
            total = (vectors * kept).sum(1) if kept is not None else vectors.sum(1)
            if mode == "sum":
                return total
            return total / kept.sum(1).clamp_min(1) if kept is not None else total / input.shape[1]

        return embedding_bag

    def rrelu(original):
        def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False):
            if training:
                return original(input, lower, upper, training, inplace)
            return F.leaky_relu(input, (lower + upper) / 2, inplace)

        return rrelu

    def cumprod(original):
        def cumprod(input, dim, *, dtype=None, out=None):
            if out is not None or not input.is_floating_point():
                return original(input, dim, dtype=dtype, out=out)
            x = input if dtype is None else input.to(dtype)
            magnitude = torch.exp(torch.cumsum(torch.log(x.abs()), dim))  # exp(-inf) = 0 from the first zero on
            negatives = torch.cumsum((x < 0).to(x.dtype), dim)
            return magnitude * (1 - 2 * torch.remainder(negatives, 2))

        return cumprod

    replacements = {(torch, "cdist"): cdist, (F, "embedding_bag"): bagged(F.embedding_bag),
                    (F, "rrelu"): rrelu(F.rrelu), (torch, "cumprod"): cumprod(torch.cumprod),
                    (torch.Tensor, "cumprod"): cumprod(torch.Tensor.cumprod),
                    **{(F, f"adaptive_{kind}_pool{dims}d"): wrap(getattr(F, f"adaptive_{kind}_pool{dims}d"), dims)
                       for kind, wrap in (("max", max_pooled), ("avg", avg_pooled)) for dims in (1, 2)}}
    originals = {(owner, name): getattr(owner, name) for owner, name in replacements}
    for (owner, name), replacement in replacements.items():
        setattr(owner, name, replacement)
    try:
        yield
    finally:
        for (owner, name), original in originals.items():
            setattr(owner, name, original)


def _captured(exc: BaseException) -> bool:
    """Whether the dynamo exporter failed in its decomposition step, after torch.export captured the model."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if "Failed to decompose the FX graph" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@contextlib.contextmanager
def _views_as_reshapes():
    """torch.onnx's type-promotion pass with every aten.view of the decomposed graph made an aten.reshape first.
    Patches torch.onnx internals only while exporting; a no-op if they have moved."""
    import torch

    try:
        from torch.onnx._internal.exporter import _fx_passes
        original = _fx_passes.insert_type_promotion_nodes
    except (ImportError, AttributeError):
        yield
        return

    def promote(graph_module):
        for node in graph_module.graph.nodes:
            if node.op == "call_function" and node.target is torch.ops.aten.view.default:
                node.target = torch.ops.aten.reshape.default
        graph_module.recompile()
        return original(graph_module)

    _fx_passes.insert_type_promotion_nodes = promote
    try:
        yield
    finally:
        _fx_passes.insert_type_promotion_nodes = original


def _root_cause(exc: BaseException) -> str:
    """The innermost exception's type and first line: the exporter wraps the real cause in generic steps."""
    seen = set()
    while (exc.__cause__ or exc.__context__) is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return re.sub(r"\x1b\[[0-9;]*m", "", f"{type(exc).__name__}: {first_line(exc)}")


def _scan_unsupported(module, args: tuple) -> list[str]:
    """Every op in the model that the exporter's registry has no translation for, found the way the exporter
    looks for them (torch.export, then its ONNX decompositions). Uses torch.onnx internals, so any failure
    here just gives up: the exporter's own message still names the first op."""
    import torch

    try:
        from torch.onnx._internal.exporter import _core, _registration

        program = torch.export.export(module, args, strict=False)
        registry = _registration.ONNXRegistry.from_torchlib(OPSET)
        program = _core._prepare_exported_program_for_export(program, registry=registry)
        return sorted({str(n.target) for n in program.graph.nodes if n.op == "call_function"
                       and isinstance(n.target, torch._ops.OpOverload) and not registry.is_registered(n.target)})
    except Exception:
        return []


def _unsupported_ops(text: str) -> list[str]:
    """Op names from the dynamo exporter's 'Unsupported FX nodes' / missing-decomposition messages."""
    found = re.findall(r"(?:aten|prims|torchvision|[a-z_]+)::[A-Za-z0-9_.]+|(?:aten|prims)\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+", text)
    return sorted(set(found))
