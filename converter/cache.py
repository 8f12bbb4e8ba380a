"""Incremental re-runs: a stage whose inputs are unchanged reuses what the previous run into the same output
folder made (its artifact, outputs and checks), and the report says so (`cached` per stage).

A stage's key hashes everything its artifact depends on: the model's code (the source of every class in
the module tree and the file it came from, or the archive's bytes) and weights, the input specs and cases,
the stage's own options (stage.options_key), its tolerance, the converter's own source, the tool versions,
and the keys of the stages it consumes. So a changed weight or a changed line of the model rebuilds
everything; a changed --quantize rebuilds only the TF.js stage. The entries live in DIR/.cache/: index.json
and one .npz of outputs per stage, read with allow_pickle=False.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
from pathlib import Path

import numpy as np

from .layout import Binding
from .parity import Comparison, OutputParity
from .report import StageResult
from .stages.base import Artifact

FOLDER = ".cache"
FORMAT = 1


def model_digest(loaded, weights: Path | None) -> str:
    """A hash of the model's code and weights."""
    h = hashlib.sha256()
    module = loaded.module
    source = loaded.source.split(":")[0]
    if Path(source).is_file():
        h.update(Path(source).read_bytes())
    if loaded.kind == "python":
        for cls in sorted({type(m) for m in module.modules()}, key=lambda c: f"{c.__module__}.{c.__qualname__}"):
            h.update(f"{cls.__module__}.{cls.__qualname__}".encode())
            try:
                h.update(inspect.getsource(cls).encode())
            except (OSError, TypeError):
                pass
    if weights is not None and Path(weights).is_file():
        h.update(Path(weights).read_bytes())
    import torch

    for name, tensor in sorted({**dict(module.named_parameters()), **dict(module.named_buffers())}.items()):
        h.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}".encode())
        if tensor.device.type != "meta":
            h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _converter_digest() -> str:
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted([*root.rglob("*.py"), *root.rglob("*.mjs"), *root.rglob("*.json")]):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


class Cache:
    def __init__(self, previous: Path, ctx, stages: list, model_digest: str, versions: dict) -> None:
        self.previous = previous
        h = hashlib.sha256()
        h.update(json.dumps({"format": FORMAT, "model": model_digest, "versions": versions,
                             "converter": _converter_digest(),
                             "inputs": [s.to_json() for s in ctx.inputs], "names": ctx.cases.names,
                             "dynamic_batch": ctx.options.dynamic_batch}, sort_keys=True).encode())
        for case in ctx.cases.inputs:
            for name in sorted(case):
                h.update(np.ascontiguousarray(case[name]).tobytes())
        for label in ctx.cases.labels:
            if label is not None:
                h.update(np.ascontiguousarray(label).tobytes())
        self.base = h.hexdigest()
        self.index = self._read(previous / FOLDER / "index.json")
        from .graph import prerequisites

        self.keys: dict[str, str] = {}
        self.takers: dict[str, list[str]] = {}
        for stage in stages:
            parts = {"base": self.base, "stage": stage.name, "options": stage.options_key(ctx.options),
                     "tolerance": ctx.options.tolerances.get(stage.precision),
                     "after": [self.keys[n] for n in prerequisites(stage, stages)]}
            self.keys[stage.name] = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
            for handoff in stage.takes:
                for giver in (s for s in stages if handoff in s.gives and s is not stage):
                    self.takers.setdefault(giver.name, []).append(stage.name)

    @staticmethod
    def _read(path: Path) -> dict:
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        return doc.get("stages", {}) if doc.get("format") == FORMAT else {}

    def hit(self, name: str) -> bool:
        """An entry with this key that passed, and, for a stage that hands objects to others in memory,
        the same for every taker (a taker that runs needs its giver to run too)."""
        entry = self.index.get(name)
        if not entry or entry.get("key") != self.keys.get(name) or entry["result"]["status"] not in ("passed",
                                                                                                    "degenerate"):
            return False
        return all(self.hit(taker) for taker in self.takers.get(name, []))

    def reuse(self, stage, result: StageResult, board) -> bool:
        if not self.hit(stage.name):
            return False
        entry = self.index[stage.name]
        ctx = board.ctx
        try:
            artifact = _artifact(entry["artifact"])
            for rel in {entry["artifact"]["path"], *(filter(None, [entry["artifact"].get("bundle")]))}:
                _link(self.previous / rel, ctx.work / rel)
            with np.load(self.previous / FOLDER / f"{stage.name}.npz", allow_pickle=False) as data:
                outputs = [{o: data[f"{i}/{o}"] for o in entry["outputs"]} for i in range(entry["cases"])]
        except (OSError, KeyError, ValueError):
            return False  # a damaged entry: convert again
        _fill(result, entry["result"])
        result.cached = True
        result.notes = [*result.notes, f"reused from the previous run in this folder (cache key {self.keys[stage.name][:12]})"]
        board.record(result, outputs, artifact)
        return True

    def save(self, work: Path, results: dict[str, StageResult], outputs_by_stage: dict, artifacts: dict) -> None:
        folder = work / FOLDER
        folder.mkdir(exist_ok=True)
        stages = {}
        for name, result in results.items():
            outputs = outputs_by_stage.get(name)
            artifact = artifacts.get(name)
            if result.status not in ("passed", "degenerate") or outputs is None or artifact is None:
                continue
            np.savez(folder / f"{name}.npz", **{f"{i}/{o}": v for i, case in enumerate(outputs) for o, v in case.items()})
            stages[name] = {"key": self.keys[name], "cases": len(outputs), "outputs": list(outputs[0]),
                            "artifact": {**artifact.to_json(), "notes": artifact.notes, "extra": artifact.extra,
                                         "bundle": str(artifact.bundle) if artifact.bundle else None},
                            "result": _result_json(result)}
        (folder / "index.json").write_text(json.dumps({"format": FORMAT, "stages": stages}, indent=1, default=str))


def _link(source: Path, target: Path) -> None:
    """Hard links where the filesystem allows (a run never edits a file in place), copies otherwise."""
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)

    def link(src, dst):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    if source.is_dir():
        shutil.copytree(source, target, copy_function=link)
    else:
        link(source, target)


def _result_json(result: StageResult) -> dict:
    return {"status": result.status, "artifact": result.artifact, "bytes": result.bytes, "seconds": result.seconds,
            "comparisons": [c.to_json() for c in result.comparisons], "accuracy": result.accuracy,
            "reason": result.reason, "notes": result.notes, "warnings": result.warnings, "extra": result.extra,
            "peak_rss_mb": result.peak_rss_mb, "worker": result.worker}


def _fill(result: StageResult, doc: dict) -> None:
    for key in ("status", "artifact", "bytes", "accuracy", "reason", "notes", "warnings", "extra", "peak_rss_mb",
                "worker"):
        setattr(result, key, doc[key])
    result.seconds = 0.0
    result.comparisons = [Comparison(c["against"], c["tolerance"], [OutputParity(**o) for o in c["outputs"]],
                                     c["runtime"]) for c in doc["comparisons"]]


def _artifact(doc: dict) -> Artifact:
    bind = lambda b: Binding(b["name"], b["artifact_name"], b["shape"], b["layout"], b["perm"])  # noqa: E731
    return Artifact(Path(doc["path"]), doc["precision"], [bind(b) for b in doc["inputs"]],
                    [bind(b) for b in doc["outputs"]], doc["notes"], doc["extra"],
                    Path(doc["bundle"]) if doc.get("bundle") else None)
