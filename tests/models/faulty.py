"""Tiny models for the error suite, used as MODEL arguments (`tests/errors/models.py:conv3`)."""

from __future__ import annotations

import os
import time

import torch
from small import seeded  # the MODEL file's own folder is on sys.path while it loads
from torch import nn


class Conv3(nn.Module):
    """A 3-channel image net: onnx2tf takes its input for an NHWC image batch and wants its calibration file."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 5)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(image)).mean(dim=(2, 3)))


class Mlp(nn.Module):
    def __init__(self, width: int = 16, out: int = 3) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(width, 8), nn.ReLU(), nn.Linear(8, out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Sleepy(nn.Module):
    """Sleeps in forward (SLEEPY_SECONDS), so that a stage that calls forward can be caught mid-way."""

    def __init__(self, out: int) -> None:
        super().__init__()
        self.fc = nn.Linear(16, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(float(os.environ.get("SLEEPY_SECONDS", "0")))
        return self.fc(x)


class Raises(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom in forward")


class Log(nn.Module):
    """log of a standard-normal input: NaN for about half the elements, in PyTorch itself."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(x)


class Inf(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / 0.0


class NoOnnx(nn.Module):
    """Two ops that torch.onnx has no translation for: the error must name both."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.lgamma(x) + torch.digamma(x)


conv3 = seeded(Conv3)
class Cancelling(nn.Module):
    """The difference of two nearly equal layers: rounding their weights to fp16 (relative 5e-4) is of the
    order of that difference, so any fp16 artifact is far from fp32 PyTorch, however right its conversion."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(16, 8), nn.Linear(16, 8)
        with torch.no_grad():
            self.b.weight.copy_(self.a.weight * (1 + 1e-2 * torch.randn_like(self.a.weight)))
            self.b.bias.copy_(self.a.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a(x) - self.b(x)


mlp = seeded(Mlp)
cancelling = seeded(Cancelling)
mlp_out5 = seeded(lambda: Mlp(out=5))
sleepy3 = seeded(lambda: Sleepy(3))
sleepy5 = seeded(lambda: Sleepy(5))
raises = Raises
log = Log
inf = Inf
no_onnx = NoOnnx


def not_a_module():
    return {"weights": [1, 2, 3]}


def huge_on_meta():
    """About 400 GB of float32 parameters, on the meta device: nothing is allocated, but the memory
    guard must see what converting it would need."""
    return nn.Linear(1_000_000, 100_000, device="meta")


class ReturnsNone(nn.Module):
    def forward(self, x: torch.Tensor) -> None:
        return None


returns_none = ReturnsNone


def deep():
    """Hundreds of small layers: tracing, freezing and saving take long enough to be caught mid-stage."""
    torch.manual_seed(0)
    return nn.Sequential(*[nn.Sequential(nn.Linear(16, 16), nn.Tanh()) for _ in range(150)])
