"""Memory: refuse a conversion that would need more than the machine has, before it starts, and measure
what each stage really took.

The estimate is `BASE_MB + FACTOR x model bytes + INPUT_FACTOR x input bytes`, measured on this machine:
the frameworks themselves take BASE_MB, and on top of that the stages hold several copies of the weights at
once (torch, the ONNX proto, onnx2tf's Keras model, the TF graph being saved, the flatbuffers, each runtime
that checks an artifact).
"""

from __future__ import annotations

import math
import os
import resource
from pathlib import Path

from .errors import ConversionError

STAGE = "resources"
# Measured with scripts/measure_memory.py (MLPs through every stage, README "Errors and exit codes"): the peak
# was 1.9 GB for a tiny model, then grew by 22-24 bytes per byte of weights (16 MB -> 2.5 GB, 100 MB -> 4.3 GB,
# 256 MB -> 8.1 GB), because every stage's runtime keeps its own copy until the run ends. Rounded up for margin.
BASE_MB = 2000
FACTOR = 28
# Without the TensorFlow side (--targets among onnx, torchscript, ptl): 0.7 GB, then about 5 bytes per byte
# (256 MB of weights -> 2.0 GB).
TORCH_BASE_MB = 1000
TORCH_FACTOR = 8
TF_TARGETS = ("saved_model", "tflite", "tfjs")
INPUT_FACTOR = 4  # the input cases are held with their outputs and their per-stage copies


def tensor_bytes(module) -> int:
    """Bytes of a module's parameters and buffers (shared tensors once); meta tensors count too."""
    seen, total = set(), 0
    for tensor in [*module.parameters(), *module.buffers()]:
        if id(tensor) not in seen:
            seen.add(id(tensor))
            total += tensor.numel() * tensor.element_size()
    return total


def needed_bytes(model_bytes: int, input_bytes: int = 0, tf_side: bool = True) -> int:
    base, factor = (BASE_MB, FACTOR) if tf_side else (TORCH_BASE_MB, TORCH_FACTOR)
    return base * 2**20 + factor * model_bytes + INPUT_FACTOR * input_bytes


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


def check(model_bytes: int, input_bytes: int = 0, *, what: str, targets=TF_TARGETS,
          available: int | None = None) -> None:
    """Raise a ConversionError when the estimate for converting into `targets` exceeds what is available."""
    tf_side = any(t in TF_TARGETS for t in targets)
    need = needed_bytes(model_bytes, input_bytes, tf_side)
    have = available_bytes() if available is None else available
    if need > have:
        raise ConversionError(
            f"converting {what} needs about {_gb(need)} of memory ({_gb(model_bytes)} of weights, "
            f"{_gb(input_bytes)} of input cases), but only {_gb(have)} is available",
            stage=STAGE,
            hint="run on a machine with more memory or close other programs; "
                 + ("--targets onnx,torchscript,ptl needs far less; " if tf_side else "")
                 + "--no-memory-check skips this estimate",
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


def release() -> None:
    """Collect garbage and hand the heap's free pages back to the system (glibc's malloc_trim): between
    stages, the memory a finished stage used shows as free instead of staying in this process's RSS."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


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
