"""The command line as a user meets it: fast help, clear usage errors."""

import subprocess
import sys
import time

from runcli import REPO, run_cli


def test_help_is_fast_and_loads_no_framework():
    code = ("import sys, time; t = time.perf_counter(); from converter.cli import build_parser; "
            "build_parser().format_help(); import converter; "
            "print(sorted(m for m in ('torch', 'tensorflow', 'onnx2tf', 'tensorflowjs', 'onnx') if m in sys.modules)); "
            "print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    loaded, seconds = out.stdout.splitlines()
    assert loaded == "[]"
    assert float(seconds) < 1.0
    t0 = time.perf_counter()
    proc = run_cli("convert", "--help")
    assert proc.returncode == 0
    assert "--input-shape" in proc.stdout and "exit codes" in proc.stdout
    assert time.perf_counter() - t0 < 10


def test_usage_errors_exit_2_with_a_hint():
    proc = run_cli("convert", "examples/digits/model.py:build", "--input-shape", "1,x,8", "--out", "/tmp/never")
    assert proc.returncode == 2
    assert "[arguments]" in proc.stderr and "try:" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_cli("convert", "examples/digits/model.py:build", "--input-shape", "1,1,8,8", "--out", "/tmp/never",
                   "--tolerance", "fp32=abc")
    assert proc.returncode == 2 and "not a number" in proc.stderr
    proc = run_cli("convert", "examples/digits/model.py:build", "--input-shape", "1,1,8,8", "--out", "/tmp/never",
                   "--targets", "onnx,coreml")
    assert proc.returncode == 2 and "coreml" in proc.stderr
    proc = run_cli("convert", "examples/digits/model.py:build", "--input-shape", "1,1,8,8", "--out", "/tmp/never",
                   "--input-dtype", "int64,float32")
    assert proc.returncode == 2 and "--input-dtype int64 --input-dtype float32" in proc.stderr


def test_a_model_named_relative_to_the_users_folder_loads_in_every_worker(tmp_path):
    """The stage workers run in the project's root. A worker that measures the rounding floor (a tolerance
    tighter than the model's own rounding) loads the model again: a model file, its weights and a module name
    given relative to the folder the user ran the converter in must mean the same there (the worker failed with
    "[load] no such file: model.py", in place of the stage's own result)."""
    import json
    import shutil

    mine = tmp_path / "mine"
    mine.mkdir()
    for name in ("model.py", "weights.pt"):
        shutil.copy(REPO / "examples" / "digits" / name, mine / name)
    for spec, out in (("model.py:build", "as-file"), ("model:build", "as-module")):
        proc = subprocess.run([sys.executable, "-m", "converter", "convert", spec, "--weights", "weights.pt",
                               "--input-shape", "1,1,8,8", "--targets", "saved_model", "--tolerance", "fp32=1e-9",
                               "--no-browser", "--out", out], cwd=mine, capture_output=True, text=True, timeout=600)
        assert "no such file" not in proc.stderr and "[load]" not in proc.stderr, proc.stderr
        report = json.loads((mine / (out if proc.returncode == 0 else out + ".failed") / "report.json").read_text())
        stage = next(s for s in report["stages"] if s["name"] == "saved_model")
        assert stage["worker"] != "main" and (stage["error"] or {}).get("type") in (None, "ParityError"), stage
        assert stage["rounding_floor"]["measured"] == "PyTorch in float64 against float32"
