"""The browser stage through the CLI: the converted digits model in headless Chromium on every backend, with
parity and timings per runtime and backend in report.json and report.html; a backend that breaks tolerance
fails the stage by name (exit 3); a missing Chromium skips the stage with a clear line, or fails it under CI."""

from __future__ import annotations

import json
import os

import pytest

from runcli import DIGITS, run_cli
from converter.errors import ConversionError
from converter.stages import browser as browser_stage

EXPECTED = {"tfjs_wasm", "tfjs_wasm_threads", "tfjs_webgl", "onnx_wasm", "onnx_wasm_threads"}


def test_digits_runs_on_every_backend_in_chromium(digits_report, digits_dir, browser_tools):
    stage = next(s for s in digits_report["stages"] if s["name"] == "browser")
    assert stage["status"] == "passed", stage
    records = {r["key"]: r for r in stage["browser"]}
    assert EXPECTED <= set(records)
    for key in EXPECTED:
        r = records[key]
        assert r["status"] == "passed" and r["max_rel_err"] <= r["tolerance"], r
        assert 0 < r["warm_median_ms"] < r["cold_start_ms"] < 60_000, r
        assert r["warm_runs"] == browser_stage.WARM_RUNS
        # The model files were really fetched, and the runtime's own code and wasm with them.
        assert r["model_bytes"] > 100_000 and r["bytes_downloaded"] > r["model_bytes"], r
    assert records["tfjs_wasm"]["threads"] == 1 and records["onnx_wasm"]["threads"] == 1
    assert records["tfjs_wasm_threads"]["threads"] > 1 and records["onnx_wasm_threads"]["threads"] > 1
    assert records["onnx_wasm"]["tolerance"] == digits_report["tolerances"]["fp32"]
    assert records["tfjs_webgl"]["tolerance"] == digits_report["tolerances"]["fp16"]  # the demo's rule
    assert stage["browser_env"]["crossOriginIsolated"] is True
    # One comparison with PyTorch per backend that ran, recorded with its runtime.
    runs = [c["runtime"] for c in stage["comparisons"] if c["against"] == "pytorch"]
    assert set(runs) == {k for k, r in records.items() if r["status"] != "unavailable"}
    assert digits_report["accuracy"]["browser"] == digits_report["accuracy"]["pytorch"]
    html = (digits_dir / "report.html").read_text()
    assert "<h2>In the browser</h2>" in html and "warm median latency" in html
    assert json.loads((digits_dir / "browser.json").read_text())["records"] == stage["browser"]


def test_a_backend_that_breaks_tolerance_fails_the_stage_by_name(tmp_path, browser_tools):
    out = tmp_path / "planted"
    env = {**os.environ, browser_stage.PLANT_ENV: "tfjs_webgl"}
    proc = run_cli("convert", *DIGITS, "--cases", "4", "--targets", "browser", "--out", out, env=env)

    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "browser differs from PyTorch" in proc.stdout and "tfjs_webgl (tolerance 0.01)" in proc.stdout
    report = json.loads((tmp_path / "planted.failed" / "report.json").read_text())
    stage = next(s for s in report["stages"] if s["name"] == "browser")
    assert stage["status"] == "failed" and stage["error"]["type"] == "ParityError"
    status = {r["key"]: r["status"] for r in stage["browser"]}
    assert status["tfjs_webgl"] == "failed"
    assert all(v in ("passed", "unavailable") for k, v in status.items() if k != "tfjs_webgl"), status
    assert [s["status"] for s in report["stages"] if s["name"] != "browser"] == ["passed"] * 3


def test_missing_chromium_skips_the_stage_and_says_so(tmp_path, browser_tools):
    env = {**os.environ, "CHROMIUM": str(tmp_path / "no-chromium"), "CI": "false"}
    proc = run_cli("convert", *DIGITS, "--cases", "4", "--targets", "browser", "--out", tmp_path / "out", env=env)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(line for line in proc.stdout.splitlines() if " browser " in line)
    assert "skipped (Chromium is not installed" in line and "--no-browser" in line
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    stage = next(s for s in report["stages"] if s["name"] == "browser")
    assert stage["status"] == "skipped" and "Chromium is not installed" in stage["reason"]
    assert "skipped: Chromium is not installed" in (tmp_path / "out" / "report.html").read_text()


def test_missing_chromium_under_ci_is_a_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("CHROMIUM", str(tmp_path / "no-chromium"))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(ConversionError, match="Chromium is not installed.*CI=true") as error:
        browser_stage.BrowserStage().convert(None)
    assert "--no-browser" in error.value.hint


def test_no_browser_leaves_the_stage_out():
    from converter.cli import build_parser

    args = build_parser().parse_args(["convert", "m.py:f", "--input-shape", "1", "--out", "x", "--no-browser"])
    assert args.no_browser and "browser" in args.targets  # the flag filters the default targets when converting
