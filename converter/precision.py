"""How far a model's own rounding moves its outputs: the floor under which no artifact of a precision can be
judged.

A stage is judged at its precision's tolerance, relative to max |ref| (fp32 1e-4, fp16 1e-2). Some models
amplify rounding (deep random networks whose normalisation blows small changes up), and an artifact of such a
model can be past the tolerance with a right conversion. PyTorch itself says how far rounding alone moves it:

- fp32: the model in float64 against itself in float32, PyTorch's own rounding error;
- fp16: the model with every floating-point weight and buffer that fp16 holds (fp16.py) rounded to fp16, and
  FP16_DRAWS more times moved by a seeded random fraction of an fp16 step: a converter that folds BatchNorm
  into a convolution before it rounds (TFLite) rounds other numbers than PyTorch's, each by under one step, so
  the largest of the draws is what some order of rounding can do.

When an artifact fails its tolerance, its stage measures that floor (graph.py) and judges again at
FLOOR_MARGIN x the floor where that is larger, saying so in the report (`rounding_floor`). A wrong graph is
off by a sizeable part of the reference's spread, far above a floor; and the spread check (parity.py) runs at
the raised tolerance, so a floor as large as what the input moves the output by makes the stage degenerate,
not passed.

The other way round: when an artifact is within its tolerance but the check could not have failed there (the
reference varies by under SPREAD_FACTOR x the tolerance), and FLOOR_MARGIN x the floor is tighter, the stage
is judged again at that tighter tolerance. Where the artifact is within it and the reference varies enough
for it, the check could fail and the stage passes at it; otherwise it stays degenerate. A stricter check,
never a looser one: random-weight transformers whose class token hardly moves (timm's coatnet_0_224: output
spread 0.081 of its scale, under 10 x fp16's 1e-2) round to fp16 by 0.0016 in PyTorch and are verified at 0.0032.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from .fp16 import holds
from .parity import compare

# Why 2: on the random timm sample (seed 0) the TFLite fp16 artifacts that broke 1e-2 were off by 0.41 to 1.0 x
# the largest fp16 draw (repvit_m2_3 0.011 vs 0.010, dla102x 0.041 vs 0.066, mobilenetv4_conv_blur_medium
# 0.028 vs 0.038, mobilenetv1_100 0.012 vs 0.023); a margin of 2 covers which draw happens to be largest.
FLOOR_MARGIN = 2.0
FP16_DRAWS = 2
PRECISIONS = ("fp32", "fp16")


@dataclass
class Floor:
    precision: str
    rel_err: float  # max over outputs of the largest difference from PyTorch's fp32 outputs, relative to max |ref|
    how: str

    def at_margin(self) -> float:
        """FLOOR_MARGIN x the floor: a stage's tolerance where the floor decides it (graph.py), raised or tightened."""
        return FLOOR_MARGIN * self.rel_err

    def tolerance(self, nominal: float) -> float:
        return max(nominal, self.at_margin())

    def to_json(self, nominal: float, judged: float | None = None) -> dict:
        return {"precision": self.precision, "rel_err": self.rel_err, "margin": FLOOR_MARGIN,
                "nominal_tolerance": nominal, "tolerance": self.tolerance(nominal) if judged is None else judged,
                "measured": self.how}


class NotMeasured(Exception):
    pass


_FLOORS: dict[tuple[int, str], Floor] = {}


def rounding_floor(ctx, precision: str) -> Floor:
    """The floor of `precision` for ctx's model, measured once per process; NotMeasured says why not."""
    key = (id(ctx), precision)
    if key not in _FLOORS:
        _FLOORS[key] = _measure(ctx, precision)
    return _FLOORS[key]


def _measure(ctx, precision: str) -> Floor:
    import torch

    if ctx.model is None:
        raise NotMeasured("the model is not loaded in this process")
    module = ctx.model.module
    # A worker process loads the model again: its fp32 outputs must be the reference's, or a floor measured
    # against them would be the difference of two models.
    own = _outputs(module, ctx, torch.float32)
    again = compare(ctx.reference, own, ctx.options.tolerances["fp32"], "pytorch")
    if not again.passed:
        raise NotMeasured(f"the model loaded again here differs from the reference by rel {again.max_rel_err:.3g}")
    scale = {name: max(float(np.max(np.abs(case[name]), initial=0.0)) for case in own) for name in own[0]}

    def rel(outputs) -> float:
        return max(float(np.max(np.abs(np.asarray(b[n], np.float64) - np.asarray(a[n], np.float64)), initial=0.0))
                   / max(scale[n], 1e-12) for a, b in zip(own, outputs) for n in a)

    if precision == "fp32":
        return Floor("fp32", rel(_outputs(copy.deepcopy(module).double(), ctx, torch.float64)),
                     "PyTorch in float64 against float32")
    generator = torch.Generator().manual_seed(0)
    worst = max(rel(_outputs(_fp16_weights(module, draw, generator), ctx, torch.float32))
                for draw in range(1 + FP16_DRAWS))
    return Floor("fp16", worst, f"PyTorch with fp16 weights, rounded and {FP16_DRAWS} x moved by under an fp16 step")


def _fp16_weights(module, draw: int, generator):
    import torch

    moved = copy.deepcopy(module)
    with torch.no_grad():
        for tensor in [*moved.parameters(), *moved.buffers()]:
            if not tensor.is_floating_point() or not holds(tensor.float().numpy()):  # float32 in the artifacts
                continue
            half = tensor.to(torch.float16)
            rounded = half.to(tensor.dtype)
            if draw == 0:
                tensor.copy_(rounded)
                continue
            step = torch.nextafter(half, torch.full_like(half, float("inf"))).to(tensor.dtype) - rounded
            tensor.add_((torch.rand(tensor.shape, generator=generator) - 0.5).to(tensor.dtype) * step)
    return moved


def _outputs(module, ctx, dtype) -> list[dict]:
    import torch

    from .samples import Cases, reference_outputs

    cases = Cases(list(ctx.cases.names), [{k: v.astype(np.float64) if v.dtype.kind == "f" and dtype == torch.float64
                                           else v for k, v in case.items()} for case in ctx.cases.inputs],
                  list(ctx.cases.labels))
    try:
        return reference_outputs(module, ctx.inputs, cases)[1]
    except Exception as exc:
        from .errors import first_line

        raise NotMeasured(f"PyTorch in {str(dtype).replace('torch.', '')} raised {type(exc).__name__}: "
                          f"{first_line(exc)}") from None
