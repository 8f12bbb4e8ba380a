"""Numerical parity: how far an artifact's outputs are from a reference's, as data.

The measure (docs/artifacts.md): max absolute error, and that error relative to the reference's scale,
max |ref|, so that a model with tiny outputs cannot pass on an absolute tolerance alone. NaN or Inf on
either side fails outright.

Whether the check could have failed at all: a reference that barely changes from one input case to the next
(an output that is the last layer's bias, a detector's anchors) is matched by any artifact that reproduces
the constant, right or wrong. Per output, the reference's spread is max over elements of (max over cases -
min over cases), over the region every case shares (a --dynamic-batch case is larger along axis 0); its
relative spread is spread / max |ref|. The output is degenerate when its relative spread is under
SPREAD_FACTOR x the tolerance, or when there is one case only (no spread to measure). `rel_to_spread`,
max_abs_err / spread, is the error as a fraction of what the input moves the output by.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

Arrays = dict[str, np.ndarray]

SCALE_FLOOR = 1e-12

# Why 10: an artifact that ignores its input is off by at least spread / 2 somewhere (two cases that differ by
# `spread` at one element cannot both be closer than that to one constant), so a check can fail at all only
# when relative spread > 2 x tolerance. 10 x leaves a margin of 5 over that bare minimum: the check then also
# sees an artifact that loses a fifth of the input-dependent part. Measured on 2 seeded standard-normal
# cases: the digits example 0.75, tests/models/small.py 0.17 (residual_cnn) to 1.4, all above fp16's
# 10 x 1e-2; the zoo's googlenet 1.8e-12, deeplabv3 7.5e-9 and ssdlite320 0 with their former initialisation.
SPREAD_FACTOR = 10.0


@dataclass
class OutputParity:
    name: str
    shape: list[int]
    max_abs_err: float
    max_rel_err: float
    reference_scale: float
    passed: bool
    top1_agreement: float | None = None
    nonfinite: str = ""  # which side held NaN/Inf, if any
    reference_spread: float | None = None  # max over elements of (max - min over cases); None: a single case
    rel_spread: float | None = None  # reference_spread / max |ref|
    rel_to_spread: float | None = None  # max_abs_err / reference_spread; None when the spread is 0 or unknown
    degenerate: bool = False  # the reference varies too little for this check to fail
    degenerate_reason: str = ""

    def describe(self) -> str:
        if self.nonfinite:
            return f"{self.name}: {self.nonfinite} holds NaN or Inf"
        text = f"{self.name}: max abs {self.max_abs_err:.3g}, rel {self.max_rel_err:.3g}"
        if self.rel_to_spread is not None:
            text += f", {self.rel_to_spread:.3g} of the reference's spread"
        if self.top1_agreement is not None:
            text += f", top-1 agreement {self.top1_agreement:.1%}"
        return text


@dataclass
class Comparison:
    against: str
    tolerance: float
    outputs: list[OutputParity]
    runtime: str = ""  # the backend that ran the artifact, where a stage runs it on several (TF.js: wasm, cpu)

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outputs)

    @property
    def max_abs_err(self) -> float:
        return max((o.max_abs_err for o in self.outputs), default=0.0)

    @property
    def max_rel_err(self) -> float:
        return max((o.max_rel_err for o in self.outputs), default=0.0)

    def failures(self) -> list[OutputParity]:
        return [o for o in self.outputs if not o.passed]

    def degenerate(self) -> list[OutputParity]:
        """Outputs whose check could not have failed (see the module docstring)."""
        return [o for o in self.outputs if o.degenerate]

    def to_json(self) -> dict:
        return {
            "against": self.against,
            "runtime": self.runtime,
            "tolerance": self.tolerance,
            "passed": self.passed,
            "max_abs_err": self.max_abs_err,
            "max_rel_err": self.max_rel_err,
            "degenerate": [o.name for o in self.degenerate()],
            "outputs": [asdict(o) for o in self.outputs],
        }


def compare(reference: list[Arrays], candidate: list[Arrays], tolerance: float, against: str,
            runtime: str = "") -> Comparison:
    """Compare every output over every case; shapes must already agree (layouts are undone by the caller)."""
    results = []
    for name in reference[0]:
        ref = [np.asarray(case[name], dtype=np.float64) for case in reference]
        got = [np.asarray(case[name], dtype=np.float64) for case in candidate]
        shape = list(ref[0].shape)
        bad = [side for side, arrays in (("the reference", ref), ("the artifact", got)) if not _finite(arrays)]
        if any(r.shape != g.shape for r, g in zip(ref, got)):
            raise ValueError(f"output {name!r}: shape {got[0].shape} vs reference {ref[0].shape}")
        if bad:
            results.append(OutputParity(name, shape, float("nan"), float("nan"), float("nan"), False, None, " and ".join(bad)))
            continue
        max_abs = max(float(np.max(np.abs(g - r), initial=0.0)) for r, g in zip(ref, got))
        scale = max(float(np.max(np.abs(r), initial=0.0)) for r in ref)
        rel = max_abs / max(scale, SCALE_FLOOR)
        result = OutputParity(name, shape, max_abs, rel, scale, rel <= tolerance, _top1(ref, got))
        _judge_spread(result, ref, tolerance)
        results.append(result)
    return Comparison(against, tolerance, results, runtime)


def _judge_spread(result: OutputParity, ref: list[np.ndarray], tolerance: float) -> None:
    spread = _spread(ref)
    if spread is None:
        result.degenerate, result.degenerate_reason = True, "one input case, no spread to measure"
        return
    result.reference_spread = spread
    result.rel_spread = spread / max(result.reference_scale, SCALE_FLOOR)
    result.rel_to_spread = result.max_abs_err / spread if spread > 0 else None
    if spread == 0 or result.rel_spread < SPREAD_FACTOR * tolerance:  # at tolerance 0 too: a constant proves nothing
        varies = f"varies by {result.rel_spread:.2g} of its scale" if spread > 0 else "is the same"
        result.degenerate = True
        result.degenerate_reason = (f"{varies} across {len(ref)} input cases, under {SPREAD_FACTOR:g} x tolerance "
                                    f"{tolerance:g}")


def _spread(ref: list[np.ndarray]) -> float | None:
    """max over elements of (max - min over cases), on the leading region that every case has; None if fewer
    than two cases have the same rank."""
    cases = [r for r in ref if r.ndim == ref[0].ndim]
    if len(cases) < 2:
        return None
    region = tuple(slice(0, min(sizes)) for sizes in zip(*(r.shape for r in cases)))
    low = high = cases[0][region]
    for r in cases[1:]:
        low, high = np.minimum(low, r[region]), np.maximum(high, r[region])
    return float(np.max(high - low, initial=0.0))


def _finite(arrays: list[np.ndarray]) -> bool:
    return all(bool(np.isfinite(a).all()) for a in arrays)


def _top1(ref: list[np.ndarray], got: list[np.ndarray]) -> float | None:
    """Top-1 agreement for score vectors ([N, C], C > 1)."""
    if ref[0].ndim != 2 or ref[0].shape[1] < 2:
        return None
    same = [np.argmax(r, axis=1) == np.argmax(g, axis=1) for r, g in zip(ref, got)]
    return float(np.mean(np.concatenate(same)))


def accuracy(outputs: list[Arrays], labels: list[np.ndarray | None]) -> float | None:
    """Top-1 accuracy of the first output over the cases that carry labels."""
    hits, total = 0, 0
    for case, truth in zip(outputs, labels):
        if truth is None:
            continue
        scores = next(iter(case.values()))
        hits += int(np.sum(np.argmax(scores.reshape(len(truth), -1), axis=1) == truth))
        total += len(truth)
    return hits / total if total else None
