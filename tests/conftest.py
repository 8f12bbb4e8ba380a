"""Shared fixtures: the bundled digits example converted once per session, through the CLI."""

from __future__ import annotations

import json
import pathlib
import subprocess

import pytest

from runcli import DIGITS, run_cli


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
