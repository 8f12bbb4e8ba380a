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
