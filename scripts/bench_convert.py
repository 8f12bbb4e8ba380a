"""Benchmark: our whole conversion (every target, every parity check) against the bare library calls with
their defaults, on torchvision mobilenet_v2 (random weights, 1x3x224x224), in the same run; a re-run into the
same folder that changes only --quantize; r3d_18 (1x3x4x64x64) with every check.

    .venv/bin/python scripts/bench_convert.py [--runs 3]   # writes the section into docs/benchmarks.md

Each side runs in fresh Python processes, so imports count on both. Wall time is measured from outside;
peak memory is the largest sum of resident memory over the whole process tree (our worker processes
included), sampled every 20 ms. Rounds alternate the order of the bare and our runs; medians are reported,
with the 1-minute load average at the start of each round.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
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
    """Wall seconds, peak RSS of the process tree in MB, and stdout."""
    import psutil

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()
    peak = 0
    with open(log, "w") as err, tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=err, text=True, env=env)
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
                total = 0
                for p in tree:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                peak = max(peak, total)
            except psutil.Error:
                pass
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        out.seek(0)
        stdout = out.read()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed; see {log}")
    return wall, peak / 2**20, stdout


def median(values: list[float]) -> float:
    return statistics.median(values)


def ours(model: str, shape: str, out: Path, log: Path, *extra: str) -> tuple[float, float, dict]:
    # Without the browser stage: the bare calls have no counterpart of it (scripts/bench_web.py measures it).
    wall, rss, _ = measure([sys.executable, "-m", "converter", "convert", model, "--input-shape", shape,
                            "--out", str(out), "--no-browser", *extra], ROOT, log)
    return wall, rss, json.loads((out / "report.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    rows: dict[str, list[tuple[float, float]]] = {"bare": [], "ours": [], "rerun": [], "r3d_18": []}
    loads, steps, report, rerun_report, r3d_report = [], None, None, None, None
    with tempfile.TemporaryDirectory(prefix="bench-convert-") as tmp:
        tmp = Path(tmp)
        (tmp / "bare.py").write_text(BARE)
        for i in range(args.runs):
            loads.append(os.getloadavg()[0])
            order = ["bare", "ours"] if i % 2 == 0 else ["ours", "bare"]
            for side in order:
                if side == "bare":
                    folder = tmp / f"bare{i}"
                    folder.mkdir()
                    wall, rss, out = measure([sys.executable, str(tmp / "bare.py"), str(folder)], tmp, tmp / "bare.log")
                    steps = json.loads(re.search(r"^BARE (.*)$", out, re.M).group(1))
                    rows["bare"].append((wall, rss))
                else:
                    folder = tmp / f"ours{i}"
                    wall, rss, report = ours("tests/models/small.py:mobilenet_v2", "1,3,224,224", folder,
                                             tmp / "ours.log")
                    rows["ours"].append((wall, rss))
                    # The same command into the same folder, only --quantize changed: the cache's case.
                    wall, rss, rerun_report = ours("tests/models/small.py:mobilenet_v2", "1,3,224,224", folder,
                                                   tmp / "rerun.log", "--force", "--quantize", "fp16")
                    rows["rerun"].append((wall, rss))
            wall, rss, r3d_report = ours("torchvision.models.video:r3d_18", "1,3,4,64,64", tmp / f"r3d{i}",
                                         tmp / "r3d.log")
            rows["r3d_18"].append((wall, rss))
    m = {k: (median([w for w, _ in v]), median([r for _, r in v])) for k, v in rows.items()}
    bare_wall, bare_rss = m["bare"]

    def target(value: float, limit: float) -> str:
        return f"<= {limit:g}: {'met' if value <= limit else 'missed'}"

    stages = {s["name"]: s for s in report["stages"]}
    lines = [
        SECTION, "",
        f"Command: `.venv/bin/python scripts/bench_convert.py --runs {args.runs}` ({time.strftime('%Y-%m-%d')}, "
        f"commit {_commit()}, {platform.machine()}, {os.cpu_count()} cores; 1-minute load average at the start "
        f"of each round: {', '.join(f'{x:.1f}' for x in loads)}). Median of {args.runs} runs each, whole processes "
        "including imports, the bare and our runs alternating in order. Ours runs every default target and "
        "check except the browser stage (`--no-browser`), which the bare calls have no counterpart of.", "",
        "| run | wall time | peak memory (process tree) | wall vs bare | memory vs bare | targets |",
        "|---|---|---|---|---|---|",
        f"| bare library calls, defaults | {bare_wall:.1f} s | {bare_rss:.0f} MB | | | |",
        f"| ours, mobilenet_v2, every target and parity check | {m['ours'][0]:.1f} s | {m['ours'][1]:.0f} MB | "
        f"{m['ours'][0] / bare_wall:.2f}x | {m['ours'][1] / bare_rss:.2f}x | wall {target(m['ours'][0] / bare_wall, 0.15)}; "
        f"memory {target(m['ours'][1] / bare_rss, 1.0)} |",
        f"| ours, the same again with only `--quantize fp16` (`--force`, same folder) | {m['rerun'][0]:.1f} s | "
        f"{m['rerun'][1]:.0f} MB | {m['rerun'][0] / bare_wall:.2f}x | | wall {target(m['rerun'][0] / bare_wall, 0.1)} |",
        f"| ours, r3d_18 1x3x4x64x64, every target and check | {m['r3d_18'][0]:.1f} s | {m['r3d_18'][1]:.0f} MB | | | "
        f"wall <= 30 s: {'met' if m['r3d_18'][0] <= 30 else 'missed'} |",
        "", "All runs: " + "; ".join(f"{k} " + ", ".join(f"{w:.1f} s/{r:.0f} MB" for w, r in v) for k, v in rows.items())
        + ".", "",
        "Bare steps (last run): " + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items()) + ".", "",
        "Our stages, mobilenet_v2 (last run; conversion plus running the artifact and comparing; the tf worker's "
        "stages run beside the main worker's):", "",
        "| stage | worker | status | seconds | max rel err | size |", "|---|---|---|---|---|---|",
        *[f"| {n} | {s['worker']} | {s['status']} | {s['seconds']:.1f} | {s['max_rel_err']:.1e} | {s['bytes'] / 1e6:.1f} MB |"
          for n, s in stages.items()], "",
        "The re-run: " + ", ".join(f"{s['name']} " + ("reused" if s["cached"] else f"{s['seconds']:.1f} s")
                                   for s in rerun_report["stages"]) + f"; {rerun_report['seconds_total']:.1f} s in the pipeline.",
        "r3d_18 stages: " + ", ".join(f"{s['name']} {s['seconds']:.1f} s ({s['status']})" for s in r3d_report["stages"]) + ".",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        write_section("bench_convert", text)


def _commit() -> str:
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + (" (dirty)" if git("status", "--porcelain", "--untracked-files=no") else "")


if __name__ == "__main__":
    main()
