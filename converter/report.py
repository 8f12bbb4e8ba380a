"""report.json: what ran, how long, how big, and how far each artifact is from PyTorch (keys are stable)."""

from __future__ import annotations

import json
import math
import platform
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from .errors import ConverterError
from .parity import Comparison

FORMAT = 1
PACKAGES = ("torch", "torchvision", "onnx", "onnxruntime", "onnxscript", "onnx2tf", "tensorflow", "tf-keras",
            "tensorflowjs", "ai-edge-litert", "numpy")


@dataclass
class StageResult:
    name: str
    after: str
    status: str = "skipped"  # passed | degenerate (within tolerance, but the check could not fail) | failed | skipped
    precision: str = "fp32"
    tolerance: float | None = None
    artifact: str | None = None
    bytes: int | None = None
    seconds: float = 0.0
    comparisons: list[Comparison] = field(default_factory=list)
    accuracy: float | None = None
    error: ConverterError | None = None
    reason: str = ""  # why it was skipped, or why it is degenerate
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    peak_rss_mb: float | None = None
    worker: str = "main"  # the process it ran in (converter/graph.py)
    cached: bool = False  # reused from the previous run in the same folder (converter/cache.py)

    def vs(self, against: str) -> Comparison | None:
        return next((c for c in self.comparisons if c.against == against), None)

    def to_json(self) -> dict:
        # The worst of the runtimes the artifact ran on (TF.js: wasm and cpu).
        ref = max((c for c in self.comparisons if c.against == "pytorch"), key=lambda c: c.max_rel_err, default=None)
        error = None
        if self.error is not None:
            error = {"type": type(self.error).__name__, "message": self.error.message, "hint": self.error.hint,
                     "unsupported_ops": getattr(self.error, "unsupported_ops", [])}
        return {
            "name": self.name, "status": self.status, "after": self.after, "precision": self.precision,
            "tolerance": self.tolerance,
            "max_abs_err": ref.max_abs_err if ref else None,
            "max_rel_err": ref.max_rel_err if ref else None,
            "seconds": round(self.seconds, 3), "artifact": self.artifact, "bytes": self.bytes,
            "accuracy": self.accuracy, "comparisons": [c.to_json() for c in self.comparisons],
            "error": error, "reason": self.reason, "notes": self.notes, "warnings": self.warnings,
            "peak_rss_mb": self.peak_rss_mb, "log": f"logs/{self.name}.log", "worker": self.worker,
            "cached": self.cached, **self.extra,
        }


def folder_bytes(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def tool_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    try:
        versions["node"] = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    tfjs = Path(__file__).resolve().parent.parent / "node_modules" / "@tensorflow" / "tfjs" / "package.json"
    if tfjs.is_file():
        versions["@tensorflow/tfjs"] = json.loads(tfjs.read_text())["version"]
    return versions


def write_report(path: Path, doc: dict) -> None:
    path.write_text(json.dumps(_finite(doc), indent=1, default=_json_default, allow_nan=False) + "\n")


def _finite(value):
    """NaN and Inf become null: JSON has no such numbers and browsers' parsers reject them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _json_default(value):
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
