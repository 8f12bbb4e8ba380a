"""Memory: refuse a conversion that would need more than the machine has, before it starts, and measure
what each stage really took.

The estimate is `BASE_MB + FACTOR x model bytes + input bytes`, with both numbers measured on this machine
(docs/errors.md, "Memory"): the frameworks themselves take BASE_MB, and on top of that the stages hold
several copies of the weights at once (torch, the ONNX proto, onnx2tf's Keras model, the TF graph being
saved, the serialised flatbuffers).
"""

from __future__ import annotations

import math
import os
import resource
from pathlib import Path

from .errors import ConversionError

STAGE = "resources"
BASE_MB = 2300  # peak RSS of a whole conversion of a tiny model: torch + TensorFlow + onnx2tf loaded
FACTOR = 8  # measured: peak grows by about 6 bytes per byte of parameters; 8 leaves a margin
INPUT_FACTOR = 4  # the input cases are held with their outputs and their per-stage copies


def tensor_bytes(module) -> int:
    """Bytes of a module's parameters and buffers (shared tensors once); meta tensors count too."""
    seen, total = set(), 0
    for tensor in [*module.parameters(), *module.buffers()]:
        if id(tensor) not in seen:
            seen.add(id(tensor))
            total += tensor.numel() * tensor.element_size()
    return total


def needed_bytes(model_bytes: int, input_bytes: int = 0) -> int:
    return BASE_MB * 2**20 + FACTOR * model_bytes + INPUT_FACTOR * input_bytes


def available_bytes() -> int:
    """What this process may still take: the kernel's MemAvailable, or less under a cgroup memory limit."""
    import psutil

    available = psutil.virtual_memory().available
    limit = _cgroup_room()
    return min(available, limit) if limit is not None else available


def _cgroup_room() -> int | None:
    base = Path("/sys/fs/cgroup")
    try:
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((base / "memory.current").read_text())
    except (OSError, ValueError):
        return None


def check(model_bytes: int, input_bytes: int = 0, *, what: str, available: int | None = None) -> None:
    """Raise a ConversionError when the estimate exceeds what is available."""
    need = needed_bytes(model_bytes, input_bytes)
    have = available_bytes() if available is None else available
    if need > have:
        raise ConversionError(
            f"converting {what} needs about {_gb(need)} of memory ({_gb(model_bytes)} of weights, "
            f"{_gb(input_bytes)} of input cases), but only {_gb(have)} is available",
            stage=STAGE,
            hint="run on a machine with more memory, close other programs, or use fewer/smaller --input-shape "
                 "and --cases; --no-memory-check skips this estimate",
        )


def _gb(n: int) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 / 10 else f"{n / 2**20:.0f} MB"


def input_bytes(specs, cases: int) -> int:
    import numpy as np

    return cases * sum(math.prod(s.shape) * np.dtype(s.dtype).itemsize for s in specs)


# Peak memory per stage. Linux keeps the process's high-water mark (VmHWM) and lets a process reset it
# (`5` into /proc/self/clear_refs, since Linux 4.0), so each stage's peak is its own; elsewhere the
# process-wide maximum so far is reported instead.
_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def reset_peak() -> None:
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        pass


def peak_mb() -> float:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def file_bytes(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
