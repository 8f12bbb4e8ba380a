"""The bundled example: a small CNN for scikit-learn's 8x8 digits, trained by scripts/train_digits.py.

Input: (N, 1, 8, 8) float32, each pixel the fraction of ink in that cell, in [0, 1] (sklearn's 0..16 counts
divided by 16). Output: (N, 10) logits. The model holds its own normalisation, so every consumer (web demo,
Android app) only has to produce ink fractions.
"""

from __future__ import annotations

import torch
from torch import nn

# Read by the converter and written into metadata.json, so that the web demo and the Android app know how
# to turn a drawing into the model's input and how to name the classes.
CONVERTER_METADATA = {
    "labels": [str(d) for d in range(10)],
    "preprocessing": {
        "kind": "digits8x8",
        "description": "8x8 grid, row-major, each cell the fraction of ink in [0, 1], 0 = background",
    },
}

# Mean and standard deviation of the training pixels (ink fractions), measured by scripts/train_digits.py.
PIXEL_MEAN = 0.3054
PIXEL_STD = 0.3761


class DigitsCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * 4 * 4, 64),
            nn.ReLU(),
            nn.Linear(64, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features((x - PIXEL_MEAN) / PIXEL_STD))


def build() -> DigitsCNN:
    return DigitsCNN()
