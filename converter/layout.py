"""Tensor layouts between PyTorch (channels-first) and the artifacts (onnx2tf makes them channels-last).

A `perm` goes from PyTorch's layout to the artifact's: artifact = np.transpose(torch_tensor, perm).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Binding:
    """One input or output of an artifact, tied to the PyTorch tensor it stands for."""

    name: str  # the PyTorch-side name (metadata.json's top-level inputs/outputs)
    artifact_name: str  # what the runtime calls it
    shape: list
    layout: str
    perm: list[int] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"name": self.name, "artifact_name": self.artifact_name, "shape": list(self.shape),
                "layout": self.layout, "perm": list(self.perm)}


def identity(rank: int) -> list[int]:
    return list(range(rank))


def channels_last(rank: int) -> list[int]:
    return [0, *range(2, rank), 1] if rank >= 3 else identity(rank)


def permute_layout(layout: str, perm: list[int]) -> str:
    return "".join(layout[i] for i in perm) if len(layout) == len(perm) else layout


def candidate_perms(torch_shape: tuple[int, ...], artifact_shape: list) -> list[list[int]]:
    """The perms onnx2tf makes, identity first, that map `torch_shape` onto `artifact_shape`."""
    rank = len(torch_shape)
    return [p for p in fitting_perms(torch_shape, artifact_shape) if p in (identity(rank), channels_last(rank))]


def fitting_perms(torch_shape: tuple[int, ...], artifact_shape: list) -> list[list[int]]:
    """Every perm that maps `torch_shape` onto `artifact_shape` (None matches anything)."""
    import itertools

    return [list(p) for p in itertools.permutations(range(len(torch_shape))) if len(artifact_shape) == len(p)
            and all(a is None or a == torch_shape[i] for a, i in zip(artifact_shape, p))]


def to_artifact(array: np.ndarray, perm: list[int]) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(array, perm)) if perm else array


def from_artifact(array: np.ndarray, perm: list[int]) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(array, np.argsort(perm))) if perm else array
