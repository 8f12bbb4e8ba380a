"""The digits example with a layer planted to quantize badly: `head` is the last Linear with an eleventh output
whose bias is 1e4, sliced off in forward. The model computes exactly what the digits CNN computes, but the
head's activation spans 1000 x the logits' range, which one int8 scale per tensor cannot resolve: keeping
`head` in float (--keep-float head) is what fixes it."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits"


class WideHead(nn.Module):
    def __init__(self, linear: nn.Linear, spike: float = 1e4) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.cat([linear.weight.detach(), torch.zeros(1, linear.in_features)]))
        self.bias = nn.Parameter(torch.cat([linear.bias.detach(), torch.tensor([spike])]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)[:, :-1]


class Planted(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        import importlib.util

        spec = importlib.util.spec_from_file_location("digits_model", DIGITS / "model.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        base = module.DigitsCNN()
        base.load_state_dict(torch.load(DIGITS / "weights.pt", weights_only=True))
        self.mean, self.std = module.PIXEL_MEAN, module.PIXEL_STD
        self.features = base.features
        self.classifier = nn.Sequential(*list(base.classifier)[:3])
        self.head = WideHead(base.classifier[3])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.classifier(self.features((x - self.mean) / self.std)))


def build() -> Planted:
    return Planted().eval()
