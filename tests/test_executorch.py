"""The ExecuTorch stage (converter/stages/executorch.py), in its own environment .venv-executorch (executorch needs
numpy >= 2, this suite's .venv has 1.26): each test runs tests/executorch_drive.py there, which converts a real
model, runs model.pte in ExecuTorch's runtime and prints parity numbers as JSON."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from runcli import DIGITS, REPO

PYTHON = REPO / ".venv-executorch" / "bin" / "python"
DRIVE = REPO / "tests" / "executorch_drive.py"


@pytest.fixture(scope="module")
def executorch_python():
    if not PYTHON.exists():
        message = ".venv-executorch is missing (bash scripts/setup.sh creates it)"
        if os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}:
            pytest.fail(f"CI=true, and {message}: CI must run these tests, not skip them")
        pytest.skip(message)
    return PYTHON


def drive(python, out, *args: str) -> dict:
    proc = subprocess.run([str(python), str(DRIVE), *map(str, args), "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"driver failed:\n{proc.stdout}\n{proc.stderr}"
    # ExecuTorch's runtime prints cpuinfo lines from C++ straight to fd 2; the stage's capture sends them to its log.
    assert proc.stderr == "", f"output escaped the stage's log:\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_digits_converts_and_matches_pytorch(executorch_python, tmp_path):
    out = tmp_path / "digits"
    doc = drive(executorch_python, out, *DIGITS[:-2], "--input-shape", "1,1,8,8")
    assert "error" not in doc, doc.get("error")
    assert doc["pte_exists"] and (out / "model.pte").stat().st_size == doc["bytes"] > 0
    assert doc["cases"] == ["random_0", "random_1"]
    (output,) = doc["outputs"].values()
    assert output["max_rel_err"] < 1e-5, output
    # The two cases differ and the model's answer depends on them: the check could have failed.
    assert output["rel_spread"] > 0.1, output
    extra = doc["extra"]
    assert extra["executorch_version"] == "1.5.1"
    assert (extra["pte_identifier"], extra["pte_schema_version"]) == ("ET12", 0)
    assert extra["android_runtime"] == "org.pytorch:executorch-android:1.5.1"
    # Every op of this CNN has an XNNPACK kernel.
    assert extra["delegates"] == {"XnnpackBackend": ["XN01"]}
    assert extra["xnnpack_ops"] >= 5 and extra["portable_ops"] == 0, extra["ops"]
    assert "aten_convolution_default" in extra["ops"]["xnnpack"]
    log = (out / "logs" / "executorch.log").read_text()
    assert "Traceback" not in log


def test_nested_outputs_and_dynamic_batch(executorch_python, tmp_path):
    """Three outputs nested in dicts and a tuple holding a None (the program returns the None, the names come
    from flatten_outputs), and a batch 2 rows larger than the example, whose batch of 1 torch.export would
    otherwise fix as a constant."""
    doc = drive(executorch_python, tmp_path / "nested", "tests/models/small.py:nested_outputs", "--input-shape", "1,8",
                "--dynamic-batch")
    assert "error" not in doc, doc.get("error")
    assert doc["cases"] == ["random_0", "random_1", "batch_3"]
    assert list(doc["outputs"]) == ["scores", "inner_features", "inner_pair_output_0"]
    assert all(o["max_rel_err"] < 1e-5 and o["rel_spread"] > 0.1 for o in doc["outputs"].values()), doc["outputs"]
    assert doc["extra"]["max_batch"] == 32


def test_refuses_a_pte_the_android_runtime_cannot_load(executorch_python, tmp_path):
    """Another file identifier, or a schema version above the runtime's maximum: convert raises and writes nothing."""
    out = tmp_path / "tampered"
    doc = drive(executorch_python, out, "tests/models/small.py:two_inputs", "--input-shape", "1,3,8,8",
                "--input-shape", "1,6", "--tamper", "identifier", "--tamper", "schema")
    refused = doc["refused"]
    assert refused["identifier"] is not None and refused["schema"] is not None, refused
    for error in refused.values():
        assert error["type"] == "ConversionError" and error["stage"] == "executorch"
        assert "org.pytorch:executorch-android:1.5.1 cannot load" in error["message"]
    assert "b'ET13'" in refused["identifier"]["message"]
    assert "schema version is 1" in refused["schema"]["message"]
    assert doc["written"] == {"identifier": False, "schema": False}
    assert not (out / "model.pte").exists()


def test_ops_outside_core_aten_are_listed_at_once(executorch_python, tmp_path):
    doc = drive(executorch_python, tmp_path / "no_onnx", "tests/models/faulty.py:no_onnx", "--input-shape", "1,8")
    error = doc["error"]
    assert (error["type"], error["stage"]) == ("ConversionError", "executorch")
    assert error["message"].startswith("to_edge_transform_and_lower")
    assert "aten.digamma.default, aten.lgamma.default" in error["message"]
    assert not doc["pte_exists"]
