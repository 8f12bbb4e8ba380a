"""Shared fixtures: the CLI as a user runs it, and the bundled digits example converted once per session."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
DIGITS = ["examples/digits/model.py:build", "--weights", "examples/digits/weights.pt", "--input-shape", "1,1,8,8"]


def run_cli(*args: str, timeout: float = 900, **kwargs) -> subprocess.CompletedProcess:
    """`python -m converter ARGS` from the repository root, output captured as text."""
    return subprocess.run([sys.executable, "-m", "converter", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, **kwargs)


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory) -> tuple[pathlib.Path, subprocess.CompletedProcess]:
    """The bundled digits example through the real converter CLI, with its labelled test set."""
    out = tmp_path_factory.mktemp("converted") / "digits"
    proc = run_cli("convert", *DIGITS, "--eval-data", "examples/digits/test.npz", "--out", out)
    assert proc.returncode == 0, f"conversion failed:\n{proc.stdout}\n{proc.stderr}"
    return out, proc


@pytest.fixture(scope="session")
def digits_dir(digits_run) -> pathlib.Path:
    return digits_run[0]


@pytest.fixture(scope="session")
def digits_report(digits_dir) -> dict:
    return json.loads((digits_dir / "report.json").read_text())
