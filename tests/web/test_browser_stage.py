"""The browser stage through the CLI: the converted digits model in headless Chromium on every backend (TF.js,
ONNX Runtime Web, and the TFLite file in LiteRT.js), with parity and timings per runtime and backend in
report.json and report.html; a backend that breaks tolerance fails the stage by name (exit 3); a folder without
TFLite runs without LiteRT.js and says so; a missing Chromium skips the stage with a clear line, or fails it
under CI."""

from __future__ import annotations

import json
import os

import pytest

from runcli import DIGITS, run_cli
from converter.errors import ConversionError
from converter.stages import browser as browser_stage

# WebGPU included: without a GPU, Chromium's adapter is SwiftShader (chromium-common ships it), on the CPU.
EXPECTED = {"tfjs_wasm", "tfjs_wasm_threads", "tfjs_webgl", "tfjs_webgpu", "onnx_wasm", "onnx_wasm_threads",
            "onnx_webgpu", "litert.js_wasm", "litert.js_wasm_threads", "litert.js_webgpu"}


def test_digits_runs_on_every_backend_in_chromium(digits_report, digits_dir, browser_tools):
    stage = next(s for s in digits_report["stages"] if s["name"] == "browser")
    assert stage["status"] == "passed", stage
    records = {r["key"]: r for r in stage["browser"]}
    assert EXPECTED <= set(records)
    for key in EXPECTED:
        r = records[key]
        assert r["status"] == "passed" and r["max_rel_err"] <= r["tolerance"], r
        if stage["browser_env"].get(f"{r['backend']}Software"):  # SwiftShader, without a GPU: parity only
            assert r["warm_runs"] == 0 and r["warm_median_ms"] is None and 0 < r["cold_start_ms"] < 60_000, r
        else:
            assert r["warm_runs"] == browser_stage.WARM_RUNS, r
            assert 0 < r["warm_median_ms"] < r["cold_start_ms"] < 60_000, r
        # The model files were really fetched, and the runtime's own code and wasm with them.
        assert r["model_bytes"] > 100_000 and r["bytes_downloaded"] > r["model_bytes"], r
    for runtime in ("tfjs", "onnx", "litert.js"):
        assert records[f"{runtime}_wasm"]["threads"] == 1 and records[f"{runtime}_wasm_threads"]["threads"] > 1
        assert records[f"{runtime}_webgpu"]["backend"] == "webgpu" and records[f"{runtime}_webgpu"]["threads"] is None
    assert stage["browser_env"]["webgpu"] is True and stage["browser_env"]["webgpuAdapter"]
    # LiteRT.js runs the Android app's file: the fp32 TFLite model, held to fp32.
    assert {r["runtime"] for k, r in records.items() if k.startswith("litert.js")} == {"litert.js"}
    assert records["litert.js_wasm"]["model_bytes"] == (digits_dir / "tflite" / "model_float32.tflite").stat().st_size
    for key in ("onnx_wasm", "onnx_webgpu", "litert.js_wasm", "litert.js_webgpu"):
        assert records[key]["tolerance"] == digits_report["tolerances"]["fp32"] and records[key]["precision"] == "fp32"
    assert records["tfjs_webgl"]["tolerance"] == digits_report["tolerances"]["fp16"]  # the demo's rule
    assert stage["browser_env"]["crossOriginIsolated"] is True
    # One comparison with PyTorch per backend that ran, recorded with its runtime.
    runs = [c["runtime"] for c in stage["comparisons"] if c["against"] == "pytorch"]
    assert set(runs) == {k for k, r in records.items() if r["status"] != "unavailable"}
    assert digits_report["accuracy"]["browser"] == digits_report["accuracy"]["pytorch"]
    html = (digits_dir / "report.html").read_text()
    assert "<h2>In the browser</h2>" in html and "warm median latency" in html
    assert json.loads((digits_dir / "browser.json").read_text())["records"] == stage["browser"]


def _planted(tmp_path, key: str, targets: str) -> tuple[str, dict, dict]:
    """The digits conversion with `key`'s outputs perturbed in the page (5% off): exit 3, and that backend alone
    failed. Returns the CLI's output, the report and its browser stage."""
    env = {**os.environ, browser_stage.PLANT_ENV: key}
    proc = run_cli("convert", *DIGITS, "--cases", "4", "--targets", targets, "--out", tmp_path / "planted", env=env)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "browser differs from PyTorch" in proc.stdout
    report = json.loads((tmp_path / "planted.failed" / "report.json").read_text())
    stage = next(s for s in report["stages"] if s["name"] == "browser")
    assert stage["status"] == "failed" and stage["error"]["type"] == "ParityError"
    status = {r["key"]: r["status"] for r in stage["browser"]}
    assert status[key] == "failed"
    assert all(v in ("passed", "unavailable") for k, v in status.items() if k != key), status
    return proc.stdout, report, stage


def test_a_backend_that_breaks_tolerance_fails_the_stage_by_name(tmp_path, browser_tools):
    said, report, stage = _planted(tmp_path, "tfjs_webgl", "browser")
    assert "tfjs_webgl (tolerance 0.01)" in said
    assert [s["status"] for s in report["stages"] if s["name"] != "browser"] == ["passed"] * 3
    # No TFLite in this folder (--targets browser): the stage ran without LiteRT.js, and says so.
    assert not any(r["runtime"] == "litert.js" for r in stage["browser"])
    assert any("LiteRT.js did not run: there is no tflite_fp32 artifact" in note for note in stage["notes"])


def test_litert_js_breaking_tolerance_fails_the_stage_by_name(tmp_path, browser_tools):
    said, _, stage = _planted(tmp_path, "litert.js_wasm", "browser,tflite")
    assert "litert.js_wasm: " in said  # held to fp32, the stage's own tolerance here
    assert {r["key"]: r["status"] for r in stage["browser"]}["litert.js_wasm_threads"] == "passed"


def test_litert_js_runs_when_there_is_a_tflite_file_with_inputs_it_has_tensors_for():
    from types import SimpleNamespace

    def ctx(artifacts, dtype, dynamic_axes=()):
        spec = SimpleNamespace(name="ids", dtype=dtype, dynamic_axes=dynamic_axes)
        return SimpleNamespace(artifacts=dict.fromkeys(artifacts), inputs=[spec])

    assert browser_stage.litert_absent(ctx(["tfjs", "tflite_fp32"], "int32")) is None
    assert "no tflite_fp32 artifact" in browser_stage.litert_absent(ctx(["tfjs"], "float32"))
    assert "not ids (int64)" in browser_stage.litert_absent(ctx(["tfjs", "tflite_fp32"], "int64"))
    assert "dynamic axis" in browser_stage.litert_absent(ctx(["tfjs", "tflite_fp32"], "float32", (0,)))


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


def test_webgpu_on_a_software_adapter_is_advisory(tmp_path, browser_tools):
    """Without a GPU, Chromium's WebGPU adapter is SwiftShader: a WebGPU backend that breaks tolerance there is
    recorded (failed, advisory) and noted, and the stage passes, since the emulator cannot be told from the
    runtime. With a GPU the same plant fails the stage (exit 3), like any backend."""
    env = {**os.environ, browser_stage.PLANT_ENV: "tfjs_webgpu"}
    proc = run_cli("convert", *DIGITS, "--targets", "browser", "--out", tmp_path / "planted", env=env)
    folder = tmp_path / ("planted" if proc.returncode == 0 else "planted.failed")
    stage = next(s for s in json.loads((folder / "report.json").read_text())["stages"] if s["name"] == "browser")
    record = next(r for r in stage["browser"] if r["key"] == "tfjs_webgpu")
    assert record["status"] == "failed", record
    if not stage["browser_env"]["webgpuSoftware"]:
        assert proc.returncode == 3, proc.stdout + proc.stderr
        return
    assert proc.returncode == 0 and stage["status"] == "passed", proc.stdout + proc.stderr
    assert record["advisory"] is True
    assert any(n.startswith("advisory, tfjs_webgpu on a software WebGPU adapter differs") for n in stage["notes"])
    assert all(r["status"] == "passed" for r in stage["browser"] if r["key"] != "tfjs_webgpu")
