"""Ctrl-C in the middle of each stage, as a user sends it (SIGINT to the whole process group, so the Node.js
runner and any other child get it too): exit 130, the previous folder untouched, nothing left behind (in the
temporary folder either). And SIGTERM to the converter's own processes: exit 143, the same, and no process of
the run left running."""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from faults import MODELS, REPO, assert_intact, make_previous

# (stage to interrupt, --targets that reaches it, model): `deep` keeps the quick torch-side stages busy for
# long enough; the TF side is slow enough with any model.
STAGES = [
    ("torchscript", "torchscript", "deep"),
    ("ptl", "ptl", "deep"),
    ("onnx", "onnx", "mlp"),
    ("saved_model", "saved_model", "mlp"),
    ("tflite_fp32", "tflite", "mlp"),
    ("tflite_fp16", "tflite", "mlp"),
    ("tfjs", "tfjs", "mlp"),
    ("browser", "browser", "mlp"),
]


def _start(out, target: str, model: str, verbose: bool = True) -> subprocess.Popen:
    """The converter with a temporary folder of its own (TMPDIR), which _left_in_tmp reads afterwards."""
    _tmp(out).mkdir()
    return subprocess.Popen(
        [sys.executable, "-m", "converter", "convert", f"{MODELS}:{model}", "--input-shape", "1,16", "--targets",
         target, "--cases", "1", "--out", str(out), "--force", *(["-vv"] if verbose else [])],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "TMPDIR": str(_tmp(out))})


def _tmp(out) -> Path:
    return out.with_name("tmp")


def _left_in_tmp(out) -> list[str]:
    """What the run left in its temporary folder (Chromium's profile and Playwright's files were left in /tmp when
    Node.js was killed), but torch's cache folder (torchinductor_<user>), which every run makes and keeps."""
    return sorted(p.name for p in _tmp(out).iterdir() if not p.name.startswith("torchinductor_"))


def _interrupt_when(proc: subprocess.Popen, pattern: str, timeout: float = 300) -> list[str]:
    """Read progress lines until one matches, then Ctrl-C the process group; returns the lines read."""
    seen, deadline = [], time.monotonic() + timeout
    for line in proc.stdout:
        seen.append(line)
        if re.search(pattern, line):
            os.killpg(proc.pid, signal.SIGINT)
            return seen
        assert time.monotonic() < deadline, "".join(seen)
    raise AssertionError("the run ended before the stage started:\n" + "".join(seen) + proc.stderr.read())


def _check(proc, seen, out, before) -> None:
    rest, err = proc.communicate(timeout=120)
    text = "".join(seen) + rest + err
    assert proc.returncode == 130, text
    assert "error: [pipeline] interrupted; the output folder was left as it was" in err, text
    # -vv (for the progress lines) prints our own traceback, and nothing else may.
    assert err.count("Traceback") == 1 and "converter.errors.Interrupted:" in err, err
    assert_intact(out, before)
    assert not out.with_name("out.failed").exists()
    assert _left_in_tmp(out) == []


@pytest.mark.slow
@pytest.mark.parametrize("stage,target,model", STAGES, ids=[s[0] for s in STAGES])
def test_ctrl_c_in_stage(stage, target, model, tmp_path):
    out = tmp_path / "out"
    before = make_previous(out)
    proc = _start(out, target, model)
    seen = _interrupt_when(proc, rf"^\[\d+/\d+\] {stage}\s+\.\.\.$")
    _check(proc, seen, out, before)


@pytest.mark.slow
def test_ctrl_c_while_loading(tmp_path):
    """Before any stage: while torch is imported and the model built."""
    out = tmp_path / "out"
    before = make_previous(out)
    proc = _start(out, "onnx", "mlp", verbose=False)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)
    rest, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, rest + err
    assert "interrupted" in err and "Traceback" not in err, err
    assert_intact(out, before)


@pytest.mark.slow
def test_sigterm_in_browser_stage(tmp_path):
    """SIGTERM to the converter's own processes (kill, timeout(1), pkill -f) while Chromium runs: exit 143 as
    Ctrl-C exits 130, the folder as it was, and no process of the run outlives it (Python's default SIGTERM left
    Chromium running and a 700 MB partial folder). Playwright starts Chromium in a session of its own, so the
    run's processes are its descendants, not its process group."""
    out = tmp_path / "out"
    before = make_previous(out)
    proc = _start(out, "browser", "mlp")
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if re.search(r"^\[\d+/\d+\] browser\s+\.\.\.$", line):
            break
    deadline = time.monotonic() + 120
    while not any("chromium" in command for command in _descendants(proc.pid).values()):
        assert proc.poll() is None and time.monotonic() < deadline, "".join(seen)
        time.sleep(0.1)
    running = _descendants(proc.pid)
    for pid, command in [(proc.pid, ""), *running.items()]:
        if pid == proc.pid or "converter.worker" in command:
            os.kill(pid, signal.SIGTERM)
    rest, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, "".join(seen) + rest + err
    assert "error: [pipeline] terminated (SIGTERM); the output folder was left as it was" in err, err
    assert_intact(out, before)
    # The workers are gone, and Node.js with them, and Chromium, which Node.js closes when it stops.
    assert _alive(running) == []
    assert _left_in_tmp(out) == []


def _descendants(root: int) -> dict[int, str]:
    """pid -> command line of every process below `root`."""
    children, commands = collections.defaultdict(list), {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            commands[int(stat.parent.name)] = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue  # it ended meanwhile
        children[parent].append(int(stat.parent.name))
    found, todo = {}, [root]
    while todo:
        for child in children[todo.pop()]:
            found[child] = commands[child]
            todo.append(child)
    return found


def _alive(processes: dict[int, str]) -> list[str]:
    """The command lines of those `processes` still running (a pid taken again has another command line)."""
    alive = []
    for pid, command in processes.items():
        try:
            if (Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode() == command
                    and Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"):
                alive.append(command)
        except OSError:
            continue
    return alive
