"""The data every stage is checked on: seeded random inputs, the user's samples, labelled eval data,
and PyTorch eager's outputs on them (the reference)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ParityError, UsageError, first_line
from .spec import FLOAT_DTYPES, INT_DTYPES, Options, TensorSpec

STAGE = "inputs"

Arrays = dict[str, np.ndarray]


@dataclass
class Cases:
    """Named input sets; `labels` is set for the eval cases (one int per batch row)."""

    names: list[str] = field(default_factory=list)
    inputs: list[Arrays] = field(default_factory=list)
    labels: list[np.ndarray | None] = field(default_factory=list)

    def add(self, name: str, inputs: Arrays, labels: np.ndarray | None = None) -> None:
        self.names.append(name)
        self.inputs.append(inputs)
        self.labels.append(labels)

    @property
    def golden(self) -> list[int]:
        """Indices of the cases that go into golden/ (random and sample cases, not the whole eval set)."""
        return [i for i, n in enumerate(self.names) if not n.startswith(("eval_", "batch_"))]


def input_specs(names: list[str], options: Options, required: int | None = None) -> list[TensorSpec]:
    shapes = options.input_shapes
    if not shapes:
        raise UsageError("no --input-shape given", stage=STAGE, hint="add --input-shape 1,3,224,224 (once per input)")
    if options.random_cases < 0 or options.int_high < 1:
        raise UsageError(f"--cases must be >= 0 and --int-high >= 1 (got {options.random_cases}, {options.int_high})",
                         stage=STAGE, hint="e.g. --cases 2 --int-high 10")
    if options.random_cases == 0 and not options.sample_inputs and options.eval_data is None:
        raise UsageError("--cases 0 and no --sample-input or --eval-data: nothing to check parity on", stage=STAGE,
                         hint="use --cases 1 or more, or give real inputs")
    dtypes = options.input_dtypes or ["float32"]
    if len(dtypes) == 1:
        dtypes = dtypes * len(shapes)
    if len(dtypes) != len(shapes):
        raise UsageError(
            f"{len(dtypes)} --input-dtype values for {len(shapes)} --input-shape values",
            stage=STAGE,
            hint="give one dtype, or one per input in the same order",
        )
    for dtype in dtypes:
        if dtype not in FLOAT_DTYPES + INT_DTYPES:
            each = " ".join(f"--input-dtype {d.strip()}" for d in dtype.split(","))
            hint = f"one flag per input: {each}" if "," in dtype else f"use one of {FLOAT_DTYPES + INT_DTYPES}"
            raise UsageError(f"unknown dtype {dtype!r}", stage=STAGE, hint=hint)
    if names and len(names) < len(shapes):
        raise UsageError(
            f"the model's forward takes {len(names)} input(s) ({', '.join(names)}), {len(shapes)} shapes were given",
            stage=STAGE,
            hint="give one --input-shape per forward argument, in order",
        )
    if required is not None and len(shapes) < required:
        raise UsageError(
            f"the model's forward needs {required} input(s) ({', '.join(names[:required])}), "
            f"{len(shapes)} --input-shape value(s) were given",
            stage=STAGE,
            hint="give one --input-shape (and --input-dtype) per forward argument, in forward's order",
        )
    names = names[: len(shapes)] if names else [f"input_{i}" for i in range(len(shapes))]
    dynamic = (0,) if options.dynamic_batch else ()
    return [TensorSpec(n, tuple(s), d, dynamic_axes=dynamic) for n, s, d in zip(names, shapes, dtypes)]


def make_cases(specs: list[TensorSpec], options: Options) -> Cases:
    cases = Cases()
    rng = np.random.default_rng(options.seed)
    for i in range(options.random_cases):
        cases.add(f"random_{i}", {s.name: _random(rng, s, options.int_high) for s in specs})
    for i, path in enumerate(options.sample_inputs):
        # One .npy per input, in input order; several --sample-input rounds make several cases.
        spec = specs[i % len(specs)]
        if i % len(specs) == 0:
            cases.add(f"sample_{i // len(specs)}", {})
        cases.inputs[-1][spec.name] = _read_npy(path, spec)
    if cases.inputs and len(cases.inputs[-1]) != len(specs):
        raise UsageError(
            f"{len(options.sample_inputs)} --sample-input files for {len(specs)} inputs",
            stage=STAGE,
            hint="give one .npy per model input, in input order",
        )
    if options.dynamic_batch:
        # A case with another batch size proves the batch axis really is dynamic in every artifact.
        batch = specs[0].shape[0] + 2
        resized = [dataclasses.replace(s, shape=(batch, *s.shape[1:])) for s in specs]
        cases.add(f"batch_{batch}", {s.name: _random(rng, s, options.int_high) for s in resized})
    if options.eval_data is not None:
        _add_eval(cases, specs, options.eval_data)
    return cases


def _random(rng: np.random.Generator, spec: TensorSpec, int_high: int) -> np.ndarray:
    if spec.dtype in INT_DTYPES:
        return rng.integers(0, int_high, size=spec.shape).astype(spec.dtype)
    # Standard normal data is on the scale of normalised images and activations.
    return rng.standard_normal(spec.shape).astype(spec.dtype)


def _read_npy(path: Path, spec: TensorSpec) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise UsageError(f"cannot read {path} as .npy: {exc}", stage=STAGE, hint="save it with numpy.save") from exc
    if tuple(array.shape) != spec.shape:
        raise UsageError(
            f"{path} has shape {tuple(array.shape)}, input {spec.name!r} expects {spec.shape}",
            stage=STAGE,
            hint="match --input-shape to the sample, or reshape the sample",
        )
    return array.astype(spec.dtype)


def _add_eval(cases: Cases, specs: list[TensorSpec], path: Path) -> None:
    if len(specs) != 1:
        raise UsageError("--eval-data supports single-input models", stage=STAGE)
    try:
        with np.load(path, allow_pickle=False) as data:
            inputs, labels = data["inputs"], data["labels"]
    except Exception as exc:
        raise UsageError(
            f"cannot read {path}: {exc}", stage=STAGE, hint="use an .npz with arrays 'inputs' (N, ...) and 'labels' (N,)"
        ) from exc
    spec = specs[0]
    batch = spec.shape[0]
    if tuple(inputs.shape[1:]) != spec.shape[1:]:
        raise UsageError(
            f"eval inputs have item shape {tuple(inputs.shape[1:])}, input {spec.name!r} expects {spec.shape[1:]}",
            stage=STAGE,
        )
    # Whole batches only: the artifacts have a fixed batch size.
    for start in range(0, len(inputs) - batch + 1, batch):
        chunk = inputs[start : start + batch].astype(spec.dtype)
        cases.add(f"eval_{start // batch}", {spec.name: chunk}, labels[start : start + batch].astype(np.int64))


def reference_outputs(module, specs: list[TensorSpec], cases: Cases) -> tuple[list[TensorSpec], list[Arrays]]:
    """Run PyTorch eager on every case; the output specs come from the first case."""
    import torch

    outputs: list[Arrays] = []
    names: list[str] = []
    with torch.no_grad(), _LayerTracker(module) as layers:
        for inputs in cases.inputs:
            try:
                result = module(*[torch.from_numpy(np.ascontiguousarray(inputs[s.name])) for s in specs])
            except Exception as exc:
                given = ", ".join(f"{s.name} {s.dtype}{list(s.shape)}" for s in specs)
                # Wrong shapes, dtypes and input order show up here: say what was given and, when the
                # failing layer is known, what it expects, so the user can compare the two.
                raise UsageError(
                    f"the model's forward raised {type(exc).__name__}: {first_line(exc)}; given: {given}"
                    + layers.expectation(),
                    stage="pytorch",
                    hint="check --input-shape, --input-dtype and their order against forward's arguments",
                ) from exc
            flat = flatten_outputs(result)
            names = list(flat)
            outputs.append({k: v.detach().cpu().numpy() for k, v in flat.items()})
    _check_finite(outputs, cases)
    first = outputs[0]
    # Outputs follow the inputs' batch axis when it is dynamic.
    dynamic = (0,) if any(s.dynamic_axes for s in specs) else ()
    return [TensorSpec(n, tuple(first[n].shape), str(first[n].dtype), dynamic_axes=dynamic) for n in names], outputs


def _check_finite(outputs: list[Arrays], cases: Cases) -> None:
    """NaN or Inf in PyTorch's own outputs: no artifact could pass parity (docs/artifacts.md), so say so now,
    before minutes of conversion."""
    bad = [f"{name} in case {case_name}" for case, case_name in zip(outputs, cases.names)
           for name, value in case.items() if value.dtype.kind in "fc" and not np.isfinite(value).all()]
    if bad:
        raise ParityError(
            f"PyTorch's own output holds NaN or Inf ({'; '.join(bad[:5])}), so no artifact can match it",
            stage="pytorch",
            hint="check the model on these inputs (e.g. log or sqrt of negative numbers, division by zero); "
                 "give realistic inputs with --sample-input",
        )


class _LayerTracker:
    """Remembers which leaf layer was running when forward raised, and what it was given."""

    def __init__(self, module) -> None:
        self.module = module
        self.stack: list[tuple[str, object, str]] = []
        self.handles: list = []

    def __enter__(self) -> _LayerTracker:
        import torch

        if isinstance(self.module, torch.jit.ScriptModule) or not isinstance(self.module, torch.nn.Module):
            return self  # TorchScript modules take no Python hooks
        for name, layer in self.module.named_modules():
            if name and next(layer.children(), None) is None:  # leaves only; the model itself says nothing new
                self.handles.append(layer.register_forward_pre_hook(self._enter(name)))
                self.handles.append(layer.register_forward_hook(self._leave))
        return self

    def _enter(self, name: str):
        def hook(layer, args):
            got = ", ".join(f"{str(a.dtype).replace('torch.', '')}{list(a.shape)}" for a in args if hasattr(a, "shape"))
            self.stack.append((name, layer, got))

        return hook

    def _leave(self, layer, args, output) -> None:
        if self.stack:
            self.stack.pop()

    def expectation(self) -> str:
        if not self.stack:
            return ""
        name, layer, got = self.stack[-1]
        wants = _expects(layer)
        return f"; in layer {name!r} ({type(layer).__name__})" + (f", which expects {wants}," if wants else "") + \
               f" given {got}"

    def __exit__(self, *exc_info) -> None:
        for handle in self.handles:
            handle.remove()


def _expects(layer) -> str:
    """What a common layer accepts, in the terms of --input-shape and --input-dtype."""
    from torch import nn

    if isinstance(layer, nn.Linear):
        return f"a float input whose last dimension is {layer.in_features}"
    if isinstance(layer, nn.modules.conv._ConvNd):
        n = len(layer.kernel_size)
        return f"a float input of rank {n + 2} (batched) or {n + 1} with {layer.in_channels} channels in dimension 1"
    if isinstance(layer, nn.LayerNorm):
        return f"a float input ending in dimensions {tuple(layer.normalized_shape)}"
    if isinstance(layer, nn.Embedding):
        return f"integer indices (--input-dtype int64) below {layer.num_embeddings}"
    if isinstance(layer, nn.modules.batchnorm._BatchNorm):
        return f"a float input with {layer.num_features} channels in dimension 1"
    return ""


def flatten_outputs(result) -> dict:
    """A tensor, or tuples, lists and dicts of tensors nested to any depth (Hugging Face's ModelOutput is a
    dict; CLIP's holds two more) -> {name: tensor}, in torch.export's flattening order: depth first, dict
    entries in order, None left out. Nested names join their keys with '_' (`text_model_output_pooler_output`)."""
    import torch

    if isinstance(result, torch.Tensor):
        return {"output": result}
    if not isinstance(result, (dict, list, tuple)):
        raise UsageError(f"forward returned a {type(result).__name__}, not a tensor", stage="pytorch",
                         hint="return a tensor, or a tuple, list or dict of tensors")
    flat: dict = {}

    def walk(value, key: str) -> None:
        if value is None:
            return
        if isinstance(value, torch.Tensor):
            if key in flat:
                raise UsageError(f"two outputs are both named {key!r} once flattened", stage="pytorch",
                                 hint="rename one of the dict keys")
            flat[key] = value
            return
        if not isinstance(value, (dict, list, tuple)):
            raise UsageError(f"output {key!r} is a {type(value).__name__}, not a tensor", stage="pytorch",
                             hint="return tensors, or tuples, lists and dicts of them")
        items = value.items() if isinstance(value, dict) else ((f"output_{i}", v) for i, v in enumerate(value))
        for child, item in items:
            walk(item, f"{key}_{child}" if key else str(child))

    walk(result, "")
    return flat
