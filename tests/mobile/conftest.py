"""Fixtures for the Android sample's tests: a real converted digits folder, and each mobile artifact run on
its golden inputs in the desktop build of the runtime that Android uses."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

from converter.layout import to_artifact
from mobile_runtimes import MOBILE_ARTIFACTS, REPO, MobileRun, golden_arrays, run_artifact


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory) -> pathlib.Path:
    """The bundled digits example through the real converter CLI, once per session."""
    out = tmp_path_factory.mktemp("converted") / "digits"
    command = [
        sys.executable, "-m", "converter", "convert", "examples/digits/model.py:build",
        "--weights", "examples/digits/weights.pt", "--input-shape", "1,1,8,8", "--out", str(out),
    ]
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(command)} failed:\n{proc.stdout}\n{proc.stderr}"
    return out


@pytest.fixture(scope="session")
def metadata(digits_dir) -> dict:
    return json.loads((digits_dir / "metadata.json").read_text())


@pytest.fixture(scope="session")
def golden(digits_dir) -> dict:
    return json.loads((digits_dir / "golden" / "golden.json").read_text())


@pytest.fixture(scope="session")
def mobile_runs(digits_dir, metadata, golden) -> dict[str, MobileRun]:
    runs = {}
    for key in MOBILE_ARTIFACTS:
        spec = metadata["artifacts"][key]
        perms = {b["name"]: b["perm"] for b in spec["inputs"]}
        inputs = [{name: to_artifact(x, perms[name]) for name, x in case.items()} for case in golden_arrays(golden, "inputs")]
        runs[key] = MobileRun(key, spec, inputs, run_artifact(digits_dir / spec["path"], spec, inputs))
    return runs
