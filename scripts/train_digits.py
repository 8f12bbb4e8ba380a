"""Train the bundled digits CNN on scikit-learn's digits data (shipped with the package, no download).

Deterministic and CPU-only: a fixed seed, a fixed split, full-batch-free mini-batches in a fixed order.
Writes examples/digits/weights.pt (a state dict), examples/digits/test.npz (the held-out images and labels,
used by the converter's --eval-data) and prints the test accuracy.

    .venv/bin/python scripts/train_digits.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "digits"
sys.path.insert(0, str(EXAMPLE))
from model import build  # noqa: E402

SEED = 0
EPOCHS = 30
BATCH = 64


def main() -> None:
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=SEED, stratify=y)
    print(f"pixel mean {x_train.mean():.4f} std {x_train.std():.4f} (model.py's PIXEL_MEAN / PIXEL_STD)")

    model = build()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    order = torch.Generator().manual_seed(SEED)
    for epoch in range(EPOCHS):
        model.train()
        for idx in torch.randperm(len(xt), generator=order).split(BATCH):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            loss.backward()
            optimizer.step()

    model.eval()
    with torch.no_grad():
        predicted = model(torch.from_numpy(x_test)).argmax(dim=1).numpy()
    accuracy = float((predicted == y_test).mean())
    torch.save(model.state_dict(), EXAMPLE / "weights.pt")
    np.savez(EXAMPLE / "test.npz", inputs=x_test, labels=y_test)
    print(json.dumps({"train": len(x_train), "test": len(x_test), "epochs": EPOCHS, "test_accuracy": accuracy}))


if __name__ == "__main__":
    main()
