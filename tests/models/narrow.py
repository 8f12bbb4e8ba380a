"""A classifier whose activations die out layer by layer like a randomly initialised torchvision mobilenet_v2's
(whose output is ~1e-9): three layers scaled by 3e-3, biases zero, take the output to ~1e-8. Full-integer
TFLite cannot resolve a tensor that narrow (converter/quantize.py: TFLITE_MIN_RANGE), so tflite_int8 must keep
the last layers float. The weights stay within fp16's normal range, so the fp16 artifact is unaffected."""

from __future__ import annotations

import torch
from torch import nn


class DyingActivations(nn.Module):
    def __init__(self, scale: float = 3e-3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 32),
                                  nn.ReLU())
        self.head = nn.Linear(32, 10)
        with torch.no_grad():
            for layer in (self.body[2], self.body[4], self.head):
                layer.weight.mul_(scale)
                layer.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def build() -> nn.Module:
    return DyingActivations()
