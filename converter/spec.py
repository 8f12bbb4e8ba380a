"""What a conversion is asked to do: the model's tensors and the run's options."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# Layout names by rank, for tensors whose layout PyTorch does not state. PyTorch is channels-first.
CHANNELS_FIRST = {0: "", 1: "N", 2: "NC", 3: "NCW", 4: "NCHW", 5: "NCDHW"}

# Named tolerances on the error relative to the reference's scale (docs/artifacts.md), by precision.
DEFAULT_TOLERANCES = {"fp32": 1e-4, "fp16": 1e-2, "uint8": 5e-2, "int8": 1e-1, "int8-dynamic": 1e-1}

# --quantize values: TF.js weight storage (fp32, fp16, uint8), or int8 artifacts (converter/quantize.py):
# int8-dynamic (int8 weights, float activations) and int8 (full integer, calibrated).
QUANTIZE = ("fp32", "fp16", "uint8", "int8-dynamic", "int8")
INT8 = ("int8-dynamic", "int8")

# The accuracy gate of an int8 artifact (--gate): top-1 agreement with PyTorch fp32 over the input cases, and
# the drop of top-1 accuracy on --eval-data, in fractions (0.01: one point); rel_err (the error relative to
# the output's scale) is gated only when given.
DEFAULT_GATE = {"agreement": 0.99, "accuracy_drop": 0.01}

FLOAT_DTYPES = ("float32", "float16", "float64")
INT_DTYPES = ("int64", "int32", "bool")

@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    layout: str = ""
    dynamic_axes: tuple[int, ...] = ()  # axes whose size may change at run time (the batch, with --dynamic-batch)

    def __post_init__(self) -> None:
        if not self.layout:
            object.__setattr__(self, "layout", CHANNELS_FIRST.get(len(self.shape), "?" * len(self.shape)))

    def to_json(self) -> dict:
        doc = {"name": self.name, "shape": list(self.shape), "dtype": self.dtype, "layout": self.layout}
        if self.dynamic_axes:
            doc["dynamic_axes"] = list(self.dynamic_axes)
        return doc


@dataclass
class Options:
    """Everything `convert` needs besides the model; the CLI builds one from its flags."""

    input_shapes: list[tuple[int, ...]]
    out_dir: Path
    input_dtypes: list[str] = field(default_factory=list)
    targets: tuple[str, ...] = field(default_factory=lambda: _default_targets())
    quantize: str = "fp32"
    tolerances: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TOLERANCES))
    random_cases: int = 2
    seed: int = 0
    int_high: int = 2
    sample_inputs: list[Path] = field(default_factory=list)
    eval_data: Path | None = None
    dynamic_batch: bool = False
    force: bool = False
    calibration_data: Path | None = None  # an .npz with 'inputs' (like --eval-data) for int8 calibration
    calibration_random: bool = False  # calibrate on the random cases when there is no real data (warned)
    gate: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_GATE))
    keep_float: tuple[str, ...] = ()  # PyTorch module names that int8 artifacts keep in float
    verbosity: int = 1
    # Stages run in their worker processes (converter/graph.py); False runs those of this environment here,
    # one after another (for a debugger, or a test that patches a converter in this process).
    workers: bool = True
    memory_check: bool = True  # refuse a model that would need more memory than is available (resources.py)


def _default_targets() -> tuple[str, ...]:
    from .graph import default_targets

    return default_targets()
