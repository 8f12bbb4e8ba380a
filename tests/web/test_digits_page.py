"""The digits demo in headless Chromium against the real converted folder, checked against PyTorch."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from converter.parity import compare

# A "0" as one closed stroke, in fractions of the canvas; it fills the grid like the training digits do.
ZERO = [[[0.5, 0.1], [0.28, 0.25], [0.22, 0.5], [0.28, 0.75], [0.5, 0.9], [0.72, 0.75], [0.78, 0.5], [0.72, 0.25], [0.5, 0.1]]]
RUNS = 30  # the page's default number of timed runs


def torch_output(model, flat: list[float], shape: list[int]) -> np.ndarray:
    with torch.no_grad():
        return model(torch.tensor(flat, dtype=torch.float32).reshape(shape)).numpy()


def names(golden: dict) -> tuple[str, str]:
    """The digits model's one input and one output, as the converter named them."""
    return golden["inputs"][0]["name"], golden["outputs"][0]["name"]


@pytest.mark.parametrize("pointer", ["mouse", "touch"])
def test_drawn_digit_is_classified_like_pytorch(pointer, demo_url, run_browser, torch_model, golden, artifacts_dir):
    screenshot = artifacts_dir / f"web-demo-digits-{pointer}.png"
    page = run_browser("draw", demo_url, strokes=ZERO, pointer=pointer, screenshot=str(screenshot))

    assert page["problems"] == []  # also catches Content-Security-Policy violations (console errors)
    assert page["source"] == "your drawing"
    input_name, output_name = names(golden)
    pixels = page["input"][input_name]
    assert len(pixels) == 64 and 0 <= min(pixels) and max(pixels) <= 1 and sum(pixels) > 5

    reference = torch_output(torch_model, pixels, golden["inputs"][0]["shape"])
    expected = str(int(reference.argmax()))
    for runtime in ("tfjs", "ort", "litert"):  # TF.js, ONNX Runtime Web and LiteRT.js side by side
        assert page[runtime]["top3"][0] == expected, runtime
    # Equality with PyTorch alone would also hold for inverted ink; the drawn zero must read as a zero.
    assert expected == "0"
    parity = compare([{output_name: reference}], [{output_name: np.array(page["output"]).reshape(reference.shape)}],
                     golden["tolerances"]["fp32"], "tfjs in Chromium")
    assert parity.passed, parity.to_json()

    for runtime, name in (("ort", "ONNX Runtime Web"), ("litert", "LiteRT.js")):
        assert page[runtime]["agreement"].startswith(f"TF.js and {name} agree")
        assert page[runtime]["agreement"].endswith("same top-1 class: yes")
    for runtime in ("tfjs", "ort", "litert"):
        assert re.fullmatch(rf"\d+\.\d+ ms \(median of {RUNS}\)", page[runtime]["latency"])
        assert re.fullmatch(r"\d+(\.\d+)? KiB", page[runtime]["size"])
    assert page["parity"].startswith("parity OK")
    assert screenshot.stat().st_size > 0

    assert page["afterClear"]["source"] == "golden case 0"
    assert page["afterClear"]["input"][input_name] == pytest.approx(golden["cases"][0]["inputs"][input_name])


@pytest.fixture(scope="module")
def golden_runs(demo_url, run_browser) -> dict:
    page = run_browser("golden", demo_url, backends=["wasm", "cpu", "webgl"])
    assert page["problems"] == []
    return {result["backend"]: result for result in page["results"]}


@pytest.mark.parametrize("backend", ["wasm", "cpu"])
def test_golden_check_passes(backend, golden_runs, golden):
    result = golden_runs[backend]
    assert "error" not in result, result
    assert result["passed"] and result["maxRelErr"] <= golden["tolerances"]["fp32"]
    assert result["tolerance"] == golden["tolerances"]["fp32"]
    assert result["badge"].startswith("parity OK") and f"fp32 on {backend}" in result["badge"]
    assert result["note"] == ""


def test_golden_check_on_webgl_uses_the_looser_tolerance(golden_runs, golden):
    result = golden_runs["webgl"]
    if "error" in result:
        pytest.skip(f"WebGL does not start in this headless Chromium: {result['error']}")
    tolerance = max(golden["tolerances"]["fp32"], golden["tolerances"]["fp16"])
    assert result["tolerance"] == tolerance
    assert result["passed"] and result["maxRelErr"] <= tolerance
    assert "fp16 tolerance" in result["note"]


@pytest.mark.parametrize("backend", ["wasm", "cpu"])
def test_predict_matches_pytorch_on_fresh_random_inputs(backend, demo_url, run_browser, torch_model, golden):
    shape = golden["inputs"][0]["shape"]
    inputs = np.random.default_rng().random((4, *shape), dtype=np.float32)
    page = run_browser("predict", demo_url, backend=backend, inputs=[x.ravel().tolist() for x in inputs])

    assert page["problems"] == []
    _, output_name = names(golden)
    references = [{output_name: torch_output(torch_model, x.ravel().tolist(), shape)} for x in inputs]
    outputs = [{output_name: np.array(y).reshape(ref[output_name].shape)} for y, ref in zip(page["outputs"], references)]
    parity = compare(references, outputs, golden["tolerances"]["fp32"], f"tfjs {backend} in Chromium")
    assert parity.passed, parity.to_json()
    assert parity.outputs[0].top1_agreement == 1.0
