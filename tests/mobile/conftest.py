"""Fixtures for the Android sample's tests: the converted digits folder with every target, the opt-in
executorch one included (`digits_dir`, overriding tests/conftest.py's), read as the app reads it, and each
mobile artifact run on its golden inputs in the desktop build of the runtime that Android uses."""

from __future__ import annotations

import json
import shutil

import pytest

from converter.layout import to_artifact
from mobile_runtimes import MOBILE_ARTIFACTS, MobileRun, golden_arrays, run_artifact
from runcli import DIGITS, run_cli


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory, digits_run):
    """The session's digits conversion (tests/conftest.py) converted again into a copy with every registered
    target: executorch is opt-in (not built without --targets), and the app's default build runs its .pte.
    The re-run reuses the copied stages (converter/cache.py), so only the executorch stage runs."""
    from converter.stages import targets

    out = tmp_path_factory.mktemp("mobile") / "digits"
    shutil.copytree(digits_run[0], out)
    proc = run_cli("convert", *DIGITS, "--eval-data", "examples/digits/test.npz", "--out", out, "--force",
                   "--targets", ",".join(targets()))
    assert proc.returncode == 0, f"conversion failed:\n{proc.stdout}\n{proc.stderr}"
    assert "executorch" in targets()
    return out


@pytest.fixture(scope="session")
def metadata(digits_dir) -> dict:
    return json.loads((digits_dir / "metadata.json").read_text())


@pytest.fixture(scope="session")
def golden(digits_dir) -> dict:
    return json.loads((digits_dir / "golden" / "golden.json").read_text())


@pytest.fixture(scope="session")
def pte(digits_dir, metadata) -> dict:
    """metadata.json's entry for model.pte."""
    assert "executorch" in metadata["artifacts"], f"{digits_dir}/metadata.json has no executorch artifact"
    return metadata["artifacts"]["executorch"]


@pytest.fixture(scope="session")
def mobile_runs(digits_dir, metadata, golden) -> dict[str, MobileRun]:
    """Every mobile artifact of the conversion in its desktop runtime."""
    runs = {}
    for key in MOBILE_ARTIFACTS:
        spec = metadata["artifacts"][key]
        perms = {b["name"]: b["perm"] for b in spec["inputs"]}
        inputs = [{name: to_artifact(x, perms[name]) for name, x in case.items()} for case in golden_arrays(golden, "inputs")]
        runs[key] = MobileRun(key, spec, inputs, run_artifact(digits_dir / spec["path"], spec, inputs))
    return runs
