"""golden/ and metadata.json: the data and descriptions that the web demo and the Android app check
themselves against (format in docs/artifacts.md)."""

from __future__ import annotations

import json
import math
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


# Readers: what a consumer in Python (a test, a script checking a converted folder) uses to load these files.
# A malformed file is a UsageError naming the file and the field, never a KeyError from deep inside.
READ_STAGE = "read"


def read_metadata(path: Path) -> dict:
    """metadata.json, checked against docs/artifacts.md."""
    doc = _read_json(path)
    _tensor_list(doc, "inputs", path)
    _tensor_list(doc, "outputs", path)
    artifacts = doc.get("artifacts", {})
    if not isinstance(artifacts, dict):
        raise _bad(path, "artifacts", "an object")
    for name, artifact in artifacts.items():
        if not isinstance(artifact, dict) or not isinstance(artifact.get("path"), str):
            raise _bad(path, f"artifacts.{name}.path", "a string")
        for side in ("inputs", "outputs"):
            for i, binding in enumerate(_list(artifact, side, path, f"artifacts.{name}.")):
                if not isinstance(binding, dict) or not isinstance(binding.get("artifact_name"), str) or \
                        not _int_list(binding.get("perm")) or not _int_list(binding.get("shape")) or \
                        sorted(binding["perm"]) != list(range(len(binding["perm"]))):
                    raise _bad(path, f"artifacts.{name}.{side}[{i}]", "{artifact_name, shape, perm (a permutation)}")
    return doc


def read_golden(path: Path) -> dict:
    """golden/golden.json, checked against docs/artifacts.md; each case's data becomes float64 arrays of the
    declared shapes (null, i.e. NaN or Inf, becomes NaN)."""
    doc = _read_json(path)
    inputs = _tensor_list(doc, "inputs", path)
    outputs = _tensor_list(doc, "outputs", path)
    tolerances = doc.get("tolerances", {})
    if not isinstance(tolerances, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in tolerances.values()):
        raise _bad(path, "tolerances", "an object of positive numbers")
    for i, case in enumerate(_list(doc, "cases", path)):
        if not isinstance(case, dict) or not isinstance(case.get("name"), str):
            raise _bad(path, f"cases[{i}].name", "a string")
        for side, specs in (("inputs", inputs), ("outputs", outputs)):
            data = case.get(side)
            if not isinstance(data, dict):
                raise _bad(path, f"cases[{i}].{side}", "an object")
            for spec in specs:
                values = data.get(spec["name"])
                size = math.prod(spec["shape"])
                if not isinstance(values, list) or len(values) != size or not all(
                        v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values):
                    raise _bad(path, f"cases[{i}].{side}.{spec['name']}", f"a list of {size} numbers")
                data[spec["name"]] = np.array([np.nan if v is None else v for v in values],
                                              dtype=np.float64).reshape(spec["shape"])
    return doc


def _read_json(path: Path) -> dict:
    from .errors import UsageError

    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist", stage=READ_STAGE, hint="pass a folder written by convert") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise UsageError(f"{path} is not readable JSON ({exc})", stage=READ_STAGE, hint="convert again") from None
    if not isinstance(doc, dict):
        raise _bad(path, "the top level", "an object")
    if doc.get("format") != FORMAT:
        raise _bad(path, "format", f"{FORMAT} (this converter's format)")
    return doc


def _list(doc: dict, key: str, path: Path, prefix: str = "") -> list:
    value = doc.get(key)
    if not isinstance(value, list):
        raise _bad(path, prefix + key, "a list")
    return value


def _int_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value)


def _tensor_list(doc: dict, key: str, path: Path) -> list[dict]:
    specs = _list(doc, key, path)
    for i, spec in enumerate(specs):
        if not (isinstance(spec, dict) and isinstance(spec.get("name"), str) and _int_list(spec.get("shape"))
                and len(spec["shape"]) <= 8 and math.prod(spec["shape"]) <= 2**28
                and isinstance(spec.get("dtype"), str)):
            raise _bad(path, f"{key}[{i}]", "{name, shape (at most 8 dims, 2**28 elements), dtype}")
    return specs


def _bad(path: Path, field: str, wanted: str):
    from .errors import UsageError

    return UsageError(f"{path}: {field} is not {wanted}", stage=READ_STAGE,
                      hint="the file is damaged or from another tool; convert again")
