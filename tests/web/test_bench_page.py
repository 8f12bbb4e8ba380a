"""The benchmark page and scripts/bench_web.py's browser step, on the small digits model."""

from __future__ import annotations

import importlib.util
import pathlib
import shutil

# A script, not a package module: load it from its file.
spec = importlib.util.spec_from_file_location("bench_web", pathlib.Path(__file__).parents[2] / "scripts" / "bench_web.py")
bench_web = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_web)


def test_every_entry_is_timed_single_threaded(digits_dir, tmp_path, browser_tools):
    work = tmp_path / "bench"
    shutil.copytree(digits_dir, work / "digits")
    model_json = work / "digits" / "tfjs" / "model.json"
    entries = [
        bench_web.tfjs_entry("tfjs wasm", model_json, work),
        bench_web.artifact_entry("onnx", work / "digits", work),
        bench_web.artifact_entry("litert", work / "digits", work, runtime="litert.js"),
        bench_web.tfjs_entry("tfjs cpu", model_json, work, backend="cpu"),
    ]
    result = bench_web.run_in_chromium(work, entries, runs=7)  # not a multiple of the block size on purpose

    assert result["runs"] == 7 and result["tfjsWasmThreads"] is False
    assert result["threads"] == {"crossOriginIsolated": True, "tfjs": 1, "ort": 1, "litert": 1}
    rows = {row["label"]: row for row in result["rows"]}
    assert [(rows[e["label"]]["runtime"], rows[e["label"]]["backend"]) for e in entries] == [
        ("tfjs", "wasm"), ("onnx", "wasm"), ("litert.js", "wasm"), ("tfjs", "cpu")]
    assert all(row["medianMs"] > 0 for row in rows.values())
    assert rows["tfjs wasm"]["bytes"] == sum(f.stat().st_size for f in model_json.parent.iterdir())
    assert rows["onnx"]["bytes"] == (work / "digits" / "model.onnx").stat().st_size
    assert rows["litert"]["bytes"] == (work / "digits" / "tflite" / "model_float32.tflite").stat().st_size


def test_threads_run_the_wasm_runtimes_on_that_many_threads(digits_dir, tmp_path, browser_tools):
    work = tmp_path / "bench"
    shutil.copytree(digits_dir, work / "digits")
    entries = [bench_web.tfjs_entry("tfjs wasm", work / "digits" / "tfjs" / "model.json", work),
               bench_web.artifact_entry("onnx", work / "digits", work),
               bench_web.artifact_entry("litert", work / "digits", work, runtime="litert.js")]
    result = bench_web.run_in_chromium(work, entries, runs=5, threads=2)

    assert result["tfjsWasmThreads"] is True
    assert result["threads"] == {"crossOriginIsolated": True, "tfjs": 2, "ort": 2, "litert": 2}
    assert all(row["medianMs"] > 0 for row in result["rows"])
