"""golden/ and metadata.json: the data and descriptions that the web demo and the Android app check
themselves against (format in docs/artifacts.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .stages.base import Context

FORMAT = 1


def write_golden(ctx: Context, reference: list[dict[str, np.ndarray]]) -> None:
    folder = ctx.work / "golden"
    folder.mkdir(exist_ok=True)
    cases = []
    for i in ctx.cases.golden:
        name = ctx.cases.names[i]
        for spec in ctx.inputs:
            np.save(folder / f"input_{spec.name}_{name}.npy", ctx.cases.inputs[i][spec.name])
        for spec in ctx.outputs:
            np.save(folder / f"output_{spec.name}_{name}.npy", reference[i][spec.name])
        cases.append({
            "name": name,
            "inputs": {s.name: _flat(ctx.cases.inputs[i][s.name]) for s in ctx.inputs},
            "outputs": {s.name: _flat(reference[i][s.name]) for s in ctx.outputs},
        })
    doc = {
        "format": FORMAT,
        "inputs": [s.to_json() for s in ctx.inputs],
        "outputs": [s.to_json() for s in ctx.outputs],
        "tolerances": ctx.options.tolerances,
        "cases": cases,
    }
    _write_json(folder / "golden.json", doc)


def write_metadata(ctx: Context, model_name: str) -> None:
    doc = {
        "format": FORMAT,
        "model": model_name,
        "inputs": [s.to_json() for s in ctx.inputs],
        "outputs": [s.to_json() for s in ctx.outputs],
        **{k: v for k, v in ctx.model.metadata.items() if k in ("labels", "preprocessing")},
        "artifacts": {name: artifact.to_json() for name, artifact in ctx.artifacts.items()},
    }
    _write_json(ctx.work / "metadata.json", doc)


def _flat(array: np.ndarray) -> list:
    """Row-major values; NaN and Inf (which JSON cannot hold) become null."""
    values = np.asarray(array).reshape(-1)
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        return [float(v) if np.isfinite(v) else None for v in values]
    return values.tolist()


def _write_json(path: Path, doc: dict) -> None:
    path.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
