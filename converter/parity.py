"""Numerical parity: how far an artifact's outputs are from a reference's, as data.

The measure (docs/artifacts.md): max absolute error, and that error relative to the reference's scale,
max |ref|, so that a model with tiny outputs cannot pass on an absolute tolerance alone. NaN or Inf on
either side fails outright.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

Arrays = dict[str, np.ndarray]

SCALE_FLOOR = 1e-12


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

    def describe(self) -> str:
        if self.nonfinite:
            return f"{self.name}: {self.nonfinite} holds NaN or Inf"
        text = f"{self.name}: max abs {self.max_abs_err:.3g}, rel {self.max_rel_err:.3g}"
        if self.top1_agreement is not None:
            text += f", top-1 agreement {self.top1_agreement:.1%}"
        return text


@dataclass
class Comparison:
    against: str
    tolerance: float
    outputs: list[OutputParity]

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

    def to_json(self) -> dict:
        return {
            "against": self.against,
            "tolerance": self.tolerance,
            "passed": self.passed,
            "max_abs_err": self.max_abs_err,
            "max_rel_err": self.max_rel_err,
            "outputs": [asdict(o) for o in self.outputs],
        }


def compare(reference: list[Arrays], candidate: list[Arrays], tolerance: float, against: str) -> Comparison:
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
        results.append(OutputParity(name, shape, max_abs, rel, scale, rel <= tolerance, _top1(ref, got)))
    return Comparison(against, tolerance, results)


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
