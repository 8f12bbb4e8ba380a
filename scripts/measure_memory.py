"""Peak memory per stage against model size, for the memory guard (converter/resources.py) and the README.

    .venv/bin/python scripts/measure_memory.py 256 2048 5120 8192

Converts an MLP (Linear(W, W), ReLU, Linear(W, 10)) for each width W through every stage and prints each
stage's own peak RSS (report.json, `peak_rss_mb`) with the model's parameter bytes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODEL = '''
import torch
def build():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear({w}, {w}), torch.nn.ReLU(), torch.nn.Linear({w}, 10))
'''


def main(widths: list[int]) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for width in widths:
            model = Path(tmp) / f"mlp{width}.py"
            model.write_text(MODEL.format(w=width))
            out = Path(tmp) / f"out{width}"
            done = subprocess.run([sys.executable, "-m", "converter", "convert", f"{model}:build", "--input-shape",
                                   f"1,{width}", "--cases", "1", "--out", str(out), "-q"], cwd=REPO)
            report = json.loads(((out if done.returncode == 0 else Path(f"{out}.failed")) / "report.json").read_text())
            params = (width * width + width + width * 10 + 10) * 4
            peaks = {s["name"]: s["peak_rss_mb"] for s in report["stages"]}
            rows.append((width, params, peaks, report["seconds_total"]))
            print(json.dumps({"width": width, "param_mb": round(params / 2**20, 1), "peaks_mb": peaks,
                              "seconds": report["seconds_total"]}), flush=True)


if __name__ == "__main__":
    main([int(w) for w in sys.argv[1:]] or [256, 2048, 5120, 8192])
