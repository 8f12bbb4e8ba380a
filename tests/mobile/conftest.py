"""Fixtures for the Android sample's tests: the converted digits folder (`digits_dir`, tests/conftest.py)
read as the app reads it, and each mobile artifact run on its golden inputs in the desktop build of the
runtime that Android uses."""

from __future__ import annotations

import json

import pytest

from converter.layout import to_artifact
from mobile_runtimes import MOBILE_ARTIFACTS, MobileRun, golden_arrays, run_artifact


@pytest.fixture(scope="session")
def metadata(digits_dir) -> dict:
    return json.loads((digits_dir / "metadata.json").read_text())


@pytest.fixture(scope="session")
def golden(digits_dir) -> dict:
    return json.loads((digits_dir / "golden" / "golden.json").read_text())


@pytest.fixture(scope="session")
def pte(digits_dir, metadata) -> dict:
    """metadata.json's entry for model.pte. Until the pipeline runs the executorch stage by default
    (converter/stages/executorch.py exists; its registration in the stage graph is the pipeline's), the
    digits conversion has none, and the tests of the .pte say so by skipping."""
    if "executorch" not in metadata["artifacts"]:
        pytest.skip("the digits conversion has no executorch artifact: the pipeline does not run the "
                    "executorch stage (yet)")
    return metadata["artifacts"]["executorch"]


@pytest.fixture(scope="session")
def mobile_runs(digits_dir, metadata, golden) -> dict[str, MobileRun]:
    """Every mobile artifact of the conversion in its desktop runtime (the .pte when the pipeline made one)."""
    runs = {}
    for key in (k for k in MOBILE_ARTIFACTS if k in metadata["artifacts"]):
        spec = metadata["artifacts"][key]
        perms = {b["name"]: b["perm"] for b in spec["inputs"]}
        inputs = [{name: to_artifact(x, perms[name]) for name, x in case.items()} for case in golden_arrays(golden, "inputs")]
        runs[key] = MobileRun(key, spec, inputs, run_artifact(digits_dir / spec["path"], spec, inputs))
    return runs
