"""The data every stage is checked on: seeded random inputs, the user's samples, labelled eval data,
and PyTorch eager's outputs on them (the reference)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ConversionError, UsageError, first_line
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
        return [i for i, n in enumerate(self.names) if not n.startswith("eval_")]


def input_specs(names: list[str], options: Options) -> list[TensorSpec]:
    shapes = options.input_shapes
    if not shapes:
        raise UsageError("no --input-shape given", stage=STAGE, hint="add --input-shape 1,3,224,224 (once per input)")
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
            raise UsageError(f"unknown dtype {dtype!r}", stage=STAGE, hint=f"use one of {FLOAT_DTYPES + INT_DTYPES}")
    if names and len(names) < len(shapes):
        raise UsageError(
            f"the model's forward takes {len(names)} input(s) ({', '.join(names)}), {len(shapes)} shapes were given",
            stage=STAGE,
            hint="give one --input-shape per forward argument, in order",
        )
    names = names[: len(shapes)] if names else [f"input_{i}" for i in range(len(shapes))]
    return [TensorSpec(n, tuple(s), d) for n, s, d in zip(names, shapes, dtypes)]


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
    with torch.no_grad():
        for inputs in cases.inputs:
            try:
                result = module(*[torch.from_numpy(np.ascontiguousarray(inputs[s.name])) for s in specs])
            except Exception as exc:
                raise ConversionError(
                    f"the model's forward raised {type(exc).__name__}: {first_line(exc)}",
                    stage="pytorch",
                    hint="check --input-shape and --input-dtype match what forward expects",
                ) from exc
            flat = flatten_outputs(result)
            names = list(flat)
            outputs.append({k: v.detach().cpu().numpy() for k, v in flat.items()})
    first = outputs[0]
    return [TensorSpec(n, tuple(first[n].shape), str(first[n].dtype)) for n in names], outputs


def flatten_outputs(result) -> dict:
    """A tensor, a tuple/list or a dict of tensors -> {name: tensor}, in a stable order."""
    import torch

    if isinstance(result, torch.Tensor):
        return {"output": result}
    items = list(result.items()) if isinstance(result, dict) else [(f"output_{i}", r) for i, r in enumerate(result)]
    flat = {}
    for key, value in items:
        if not isinstance(value, torch.Tensor):
            raise ConversionError(
                f"output {key!r} is a {type(value).__name__}, not a tensor", stage="pytorch", hint="return tensors only"
            )
        flat[str(key)] = value
    return flat
