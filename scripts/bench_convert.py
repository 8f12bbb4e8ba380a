"""Benchmark: our whole conversion (every target, every parity check) against the bare library calls with
their defaults, on torchvision mobilenet_v2 (random weights, 1x3x224x224), in the same run.

    .venv/bin/python scripts/bench_convert.py            # writes the section into docs/benchmarks.md

Each side runs in a fresh Python process, so imports count on both; wall time and peak resident memory
(the largest process, from wait4) are measured from outside.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchdoc import write_section  # scripts/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Conversion: our pipeline vs the bare library calls"

BARE = r'''
import os, sys, time
import numpy as np
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")
out = sys.argv[1]
os.chdir(out)
# onnx2tf downloads this sample file for image inputs; the bare run gets it locally so that it can run offline.
np.save("calibration_image_sample_data_20x128x128x3_float32.npy",
        np.random.default_rng(0).random((20, 128, 128, 3), dtype=np.float32))
times = {}
t = time.perf_counter()
import torch, torchvision
torch.manual_seed(0)
model = torchvision.models.mobilenet_v2(weights=None).eval()
x = torch.randn(1, 3, 224, 224)
torch.onnx.export(model, (x,), "model.onnx", dynamo=True)
times["torch.onnx.export"] = time.perf_counter() - t; t = time.perf_counter()
import onnx2tf
onnx2tf.convert(input_onnx_file_path="model.onnx", output_folder_path="saved_model")
times["onnx2tf.convert"] = time.perf_counter() - t; t = time.perf_counter()
from tensorflowjs.converters.tf_saved_model_conversion_v2 import convert_tf_saved_model
convert_tf_saved_model("saved_model", "tfjs")
times["convert_tf_saved_model"] = time.perf_counter() - t; t = time.perf_counter()
traced = torch.jit.trace(model, (x,))
traced._save_for_lite_interpreter("model.ptl")
times["jit.trace + _save_for_lite_interpreter"] = time.perf_counter() - t
print("BARE " + __import__("json").dumps(times))
'''


def measure(cmd: list[str], cwd: Path, log: Path) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MB (largest process in the tree), and stdout."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        stdout = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed; see {log}")
    return wall, usage.ru_maxrss / 1024, stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-convert-") as tmp:
        tmp = Path(tmp)
        (tmp / "bare").mkdir()
        (tmp / "bare.py").write_text(BARE)
        bare_wall, bare_rss, bare_out = measure([sys.executable, str(tmp / "bare.py"), str(tmp / "bare")], tmp,
                                                tmp / "bare.log")
        steps = json.loads(re.search(r"^BARE (.*)$", bare_out, re.M).group(1))
        ours_wall, ours_rss, ours_out = measure(
            [sys.executable, "-m", "converter", "convert", "tests/models/small.py:mobilenet_v2",
             "--input-shape", "1,3,224,224", "--out", str(tmp / "ours")], ROOT, tmp / "ours.log")
        report = json.loads((tmp / "ours" / "report.json").read_text())
    stages = {s["name"]: s for s in report["stages"]}
    lines = [
        SECTION, "",
        f"Command: `.venv/bin/python scripts/bench_convert.py` ({time.strftime('%Y-%m-%d')}, "
        f"{platform.machine()}, {os.cpu_count()} cores, 1-minute load average {os.getloadavg()[0]:.1f} at the end; "
        "one run each, whole process including imports).", "",
        "| | wall time | peak memory |", "|---|---|---|",
        f"| bare library calls, defaults | {bare_wall:.1f} s | {bare_rss:.0f} MB |",
        f"| our pipeline, every target and parity check | {ours_wall:.1f} s | {ours_rss:.0f} MB |",
        f"| ratio | {ours_wall / bare_wall:.2f}x | {ours_rss / bare_rss:.2f}x |", "",
        "Bare steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items()) + ".", "",
        "Our stages (conversion plus running the artifact and comparing):", "",
        "| stage | status | seconds | max rel err | size |", "|---|---|---|---|---|",
        *[f"| {n} | {s['status']} | {s['seconds']:.1f} | {s['max_rel_err']:.1e} | {s['bytes'] / 1e6:.1f} MB |"
          for n, s in stages.items()], "",
        f"Ours also: loading, PyTorch reference and report writing, {report['seconds_total'] - sum(s['seconds'] for s in stages.values()):.1f} s;"
        f" interpreter start and imports, {ours_wall - report['seconds_total']:.1f} s.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    print(ours_out.strip().splitlines()[-1])
    if not args.no_write:
        write_section("bench_convert", text)


if __name__ == "__main__":
    main()
