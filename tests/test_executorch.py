"""The ExecuTorch stage (converter/stages/executorch.py), in its own environment .venv-executorch (executorch needs
numpy >= 2, this suite's .venv has 1.26): through the CLI, where the stage runs in the executorch worker process;
the refusal test runs tests/executorch_drive.py in that environment, which calls the stage with its checks
tampered with."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from runcli import DIGITS, REPO, run_cli

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


def convert(out, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    """The CLI with --targets executorch: the stage runs in the executorch worker, a process started from
    .venv-executorch's Python (converter/graph.py)."""
    proc = run_cli("convert", *args, "--targets", "executorch", "--out", out)
    folder = out if proc.returncode == 0 else out.with_name(out.name + ".failed")
    report = json.loads((folder / "report.json").read_text())
    return proc, next(s for s in report["stages"] if s["name"] == "executorch")


def test_digits_converts_and_matches_pytorch(executorch_python, tmp_path):
    out = tmp_path / "digits"
    proc, stage = convert(out, *DIGITS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # ExecuTorch's runtime prints cpuinfo lines from C++ straight to fd 2; the stage's capture sends them to its log.
    assert proc.stderr == "", f"output escaped the stage's log:\n{proc.stderr}"
    assert stage["status"] == "passed" and stage["worker"] == "executorch"
    assert (out / "model.pte").stat().st_size == stage["bytes"] > 0
    (output,) = stage["comparisons"][0]["outputs"]
    assert output["max_rel_err"] < 1e-5, output
    # The two cases differ and the model's answer depends on them: the check could have failed.
    assert output["rel_spread"] > 0.1, output
    assert stage["executorch_version"] == "1.5.1"
    assert (stage["pte_identifier"], stage["pte_schema_version"]) == ("ET12", 0)
    assert stage["android_runtime"] == "org.pytorch:executorch-android:1.5.1"
    # Every op of this CNN has an XNNPACK kernel.
    assert stage["delegates"] == {"XnnpackBackend": ["XN01"]}
    assert stage["xnnpack_ops"] >= 5 and stage["portable_ops"] == 0, stage["ops"]
    assert "aten_convolution_default" in stage["ops"]["xnnpack"]
    assert "Traceback" not in (out / "logs" / "executorch.log").read_text()


def test_nested_outputs_and_dynamic_batch(executorch_python, tmp_path):
    """Three outputs nested in dicts and a tuple holding a None (the program returns the None, the names come
    from flatten_outputs), and a batch 2 rows larger than the example, whose batch of 1 torch.export would
    otherwise fix as a constant."""
    proc, stage = convert(tmp_path / "nested", "tests/models/small.py:nested_outputs", "--input-shape", "1,8",
                          "--dynamic-batch")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    outputs = stage["comparisons"][0]["outputs"]
    assert [o["name"] for o in outputs] == ["scores", "inner_features", "inner_pair_output_0"]
    assert all(o["max_rel_err"] < 1e-5 and o["rel_spread"] > 0.1 for o in outputs), outputs
    assert stage["max_batch"] == 32


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
    proc, stage = convert(tmp_path / "no_onnx", "tests/models/faulty.py:no_onnx", "--input-shape", "1,8")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    error = stage["error"]
    assert error["type"] == "ConversionError" and stage["status"] == "failed"
    assert error["message"].startswith("to_edge_transform_and_lower")
    assert "aten.digamma.default, aten.lgamma.default" in error["message"]
    assert not (tmp_path / "no_onnx.failed" / "model.pte").exists()
