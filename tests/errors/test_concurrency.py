"""Two conversions into one folder at the same time, and a run killed outright: one wins whole, the other
fails clearly, never a mix; a killed run's leftovers are cleaned by the next one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from faults import MODELS, REPO, assert_intact, litter, make_previous, snapshot


def _start(model: str, out, seconds: str = "4") -> subprocess.Popen:
    env = {**os.environ, "SLEEPY_SECONDS": seconds}
    return subprocess.Popen(
        [sys.executable, "-m", "converter", "convert", f"{MODELS}:{model}", "--input-shape", "1,16", "--targets",
         "torchscript", "--cases", "1", "--out", str(out), "--force"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.slow
def test_two_conversions_into_one_folder(tmp_path):
    """Models with 3 and 5 outputs: every file of the folder must come from the same one."""
    out = tmp_path / "out"
    make_previous(out)
    procs = {3: _start("sleepy3", out), 5: _start("sleepy5", out)}
    results = {n: (p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for n, p in procs.items()}
    codes = sorted(code for code, _, _ in results.values())
    assert codes == [0, 2], results
    winner = next(n for n, r in results.items() if r[0] == 0)
    loser = results[8 - winner]
    assert "error: [output] another conversion is writing" in loser[2] and "try:" in loser[2], loser
    assert "Traceback" not in loser[2]
    metadata = json.loads((out / "metadata.json").read_text())
    report = json.loads((out / "report.json").read_text())
    golden = np.load(out / "golden" / "output_output_random_0.npy")
    assert metadata["outputs"][0]["shape"] == [1, winner]
    assert report["outputs"][0]["shape"] == [1, winner] and report["model"]["source"].endswith(f"sleepy{winner}")
    assert golden.shape == (1, winner)
    assert not (out / "model.onnx").exists()  # nothing of the previous folder either
    assert litter(out) == []


@pytest.mark.slow
def test_killed_run_leaves_nothing_the_next_run_keeps(tmp_path):
    """SIGKILL cannot be caught: the work folder and the lock file stay, the previous folder is untouched;
    the next run into the folder removes them."""
    out = tmp_path / "out"
    before = make_previous(out)
    proc = _start("sleepy3", out, seconds="30")
    deadline = time.monotonic() + 120
    while not any(n.startswith(".out.partial-") for n in litter(out)):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert snapshot(out) == before and litter(out)
    rerun = subprocess.run([sys.executable, "-m", "converter", "convert", f"{MODELS}:raises", "--input-shape", "1,16",
                            "--out", str(out), "--force"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 2, rerun.stderr
    assert_intact(out, before)
