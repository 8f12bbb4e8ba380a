"""Int8 artifacts (--quantize int8 / int8-dynamic): planned only when asked (Stage.wanted), each judged by its
accuracy gate in its own runtime; a layer planted to quantize badly is named by the sensitivity analysis, and
--keep-float with it passes the gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from converter import Options
from converter.errors import UsageError
from converter.graph import plan
from converter.quantize import check_options, parse_gate
from converter.stages import register, unregister
from converter.stages.base import Stage
from runcli import DIGITS, run_cli

PLANTED = ["tests/models/planted.py:build", "--input-shape", "1,1,8,8"]
EVAL = ["--eval-data", "examples/digits/test.npz"]


def names(stages) -> list[str]:
    return [s.name for s in stages]


def test_int8_stages_are_planned_only_with_their_quantize(tmp_path):
    options = lambda q: Options(input_shapes=[(1, 1, 8, 8)], out_dir=tmp_path, quantize=q,  # noqa: E731
                                eval_data=Path("examples/digits/test.npz"))
    for quantize in ("fp32", "fp16", "uint8"):
        planned = names(plan(("onnx", "tflite", "tfjs"), options(quantize)))
        assert not [n for n in planned if "int8" in n], quantize
    assert {"onnx_int8", "tflite_int8"} <= set(names(plan(("onnx", "tflite"), options("int8"))))
    dynamic = names(plan(("onnx", "tflite"), options("int8-dynamic")))
    assert {"onnx_int8_dynamic", "tflite_int8_dynamic"} <= set(dynamic) and "onnx_int8" not in dynamic
    # --targets still selects: no TFLite stage without the tflite target, and TF.js keeps fp32 weights.
    assert "tflite_int8" not in names(plan(("onnx",), options("int8")))
    assert {"executorch", "executorch_int8"} <= set(names(plan(("executorch",), options("int8"))))
    assert "executorch_int8_dynamic" in names(plan(("executorch",), options("int8-dynamic")))
    tfjs = next(s for s in plan(("tfjs",), options("int8")) if s.name == "tfjs")
    assert tfjs.precision == "fp32"


class OnlyWithSeed(Stage):
    name = target = "only_with_seed"

    def wanted(self, options) -> bool:
        return options is not None and options.seed == 7


def test_a_registered_stage_decides_whether_it_is_wanted(tmp_path):
    register(OnlyWithSeed())
    try:
        targets = ("onnx", "only_with_seed")
        assert "only_with_seed" not in names(plan(targets, Options(input_shapes=[(1,)], out_dir=tmp_path)))
        assert "only_with_seed" in names(plan(targets, Options(input_shapes=[(1,)], out_dir=tmp_path, seed=7)))
    finally:
        unregister("only_with_seed")


def test_gate_and_calibration_options(tmp_path):
    assert parse_gate("agreement=0.9") == {"agreement": 0.9, "accuracy_drop": 0.01}
    assert parse_gate("accuracy_drop=0.02,rel_err=0.2")["rel_err"] == 0.2
    with pytest.raises(ValueError):
        parse_gate("top5=1")
    with pytest.raises(UsageError, match="calibration data"):
        check_options(Options(input_shapes=[(1, 1, 8, 8)], out_dir=tmp_path, quantize="int8"))
    check_options(Options(input_shapes=[(1, 1, 8, 8)], out_dir=tmp_path, quantize="int8", calibration_random=True))
    check_options(Options(input_shapes=[(1, 1, 8, 8)], out_dir=tmp_path, quantize="int8-dynamic"))
    proc = run_cli("convert", *DIGITS, "--quantize", "int8", "--targets", "onnx", "--out", tmp_path / "x")
    assert proc.returncode == 2 and "--calibration-data" in proc.stderr


def test_digits_int8_within_a_point_of_fp32_in_every_runtime(tmp_path):
    out = tmp_path / "int8"
    proc = run_cli("convert", *DIGITS, *EVAL, "--targets", "onnx,tflite,executorch", "--quantize", "int8",
                   "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((out / "report.json").read_text())
    stages = {s["name"]: s for s in report["stages"]}
    accuracy = report["accuracy"]
    for name, fp32 in (("onnx_int8", "onnx"), ("tflite_int8", "tflite_fp32"), ("executorch_int8", "executorch")):
        stage = stages[name]
        assert stage["status"] == "passed" and stage["gate"]["passed"]
        assert abs(accuracy[name] - accuracy[fp32]) <= 0.01, (name, accuracy)
        assert stage["gate"]["agreement"] >= 0.99
        assert stage["calibration"]["source"].startswith("the inputs of --eval-data")
    assert stages["tflite_int8"]["bytes"] < 0.3 * stages["tflite_fp32"]["bytes"]
    assert stages["executorch_int8"]["bytes"] < 0.4 * stages["executorch"]["bytes"]
    assert stages["executorch_int8"]["xnnpack_ops"] > 0 and (out / "model_int8.pte").is_file()
    assert stages["onnx_int8"]["ort_web"] is True
    assert (out / "tflite" / "model_int8.tflite").is_file() and (out / "model_int8.onnx").is_file()
    html = (out / "report.html").read_text()
    assert "Int8 artifacts: accuracy gate in each runtime" in html and "tflite_int8" in html


@pytest.mark.slow
def test_digits_int8_dynamic(tmp_path):
    out = tmp_path / "dyn"
    proc = run_cli("convert", *DIGITS, *EVAL, "--targets", "onnx,tflite,executorch", "--quantize", "int8-dynamic",
                   "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((out / "report.json").read_text())
    stages = {s["name"]: s for s in report["stages"]}
    for name in ("onnx_int8_dynamic", "tflite_int8_dynamic", "executorch_int8_dynamic"):
        assert stages[name]["gate"]["passed"] and stages[name]["gate"]["accuracy_drop"] <= 0.01
    assert "MatMulInteger" in " ".join(stages["onnx_int8_dynamic"]["notes"])
    assert stages["onnx_int8_dynamic"]["ort_web"] is True  # no ConvInteger, which ORT-web lacks


def test_planted_layer_is_named_and_keep_float_passes_the_gate(tmp_path):
    out = tmp_path / "planted"
    proc = run_cli("convert", *PLANTED, *EVAL, "--targets", "onnx,tflite,executorch", "--quantize", "int8",
                   "--out", out)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "failed its gate: top-1 agreement" in proc.stderr + proc.stdout
    assert "--keep-float head" in proc.stderr + proc.stdout
    report = json.loads((tmp_path / "planted.failed" / "report.json").read_text())
    stages = {s["name"]: s for s in report["stages"]}
    for name, runtime in (("onnx_int8", "onnxruntime"), ("tflite_int8", "litert"), ("executorch_int8", "executorch")):
        analysis = stages[name]["sensitivity"]
        assert analysis["runtime"] == runtime
        assert analysis["costliest"] == ["head"], analysis
        assert analysis["suggest"] == "--keep-float head"
        assert not stages[name]["gate"]["passed"]
    assert "sensitivity" in (tmp_path / "planted.failed" / "report.html").read_text()

    proc = run_cli("convert", *PLANTED, *EVAL, "--targets", "onnx,tflite,executorch", "--quantize", "int8", "--out",
                   out, "--keep-float", "head", "--force")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((out / "report.json").read_text())
    for stage in (s for s in report["stages"] if s["name"] in ("onnx_int8", "tflite_int8", "executorch_int8")):
        assert stage["gate"]["passed"] and stage["keep_float"] == ["head"]


def test_keep_float_names_an_unknown_layer(tmp_path):
    proc = run_cli("convert", *PLANTED, *EVAL, "--targets", "onnx", "--quantize", "int8", "--out", tmp_path / "x",
                   "--keep-float", "nosuch")
    assert proc.returncode == 4
    said = proc.stdout + proc.stderr
    assert "--keep-float names no layer of the model: nosuch" in said and "head" in said


NARROW = ["tests/models/narrow.py:build", "--input-shape", "1,16", "--cases", "32", "--calibration-random"]


def test_tflite_int8_keeps_float_the_ops_its_quantizer_cannot_resolve(tmp_path):
    """A model whose activations die out (output ~1e-8, like a randomly initialised torchvision mobilenet_v2's
    ~1e-9): TFLite's quantizer widens the head's range to ±1e-6, so quantized it is one int8 step and agrees with
    PyTorch on ~10% of the cases (mobilenet_v2: 0%). The head stays float, the gate passes, and the report says
    that the output's scale is degenerate."""
    out = tmp_path / "narrow"
    proc = run_cli("convert", *NARROW, "--targets", "tflite", "--quantize", "int8", "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 op kept float (range under 1e-06, the output's among them: a degenerate output scale)" in proc.stdout
    stage = next(s for s in json.loads((out / "report.json").read_text())["stages"] if s["name"] == "tflite_int8")
    assert stage["status"] == "passed" and stage["gate"]["agreement"] >= 0.99, stage["gate"]
    assert stage["gate"]["max_rel_err"] < 0.05
    narrow = stage["narrow_range"]
    assert narrow["layers"] == ["head"] and len(narrow["ops"]) == 1 and narrow["min_range"] == 1e-6
    assert 0 < narrow["outputs"]["output"] < 1e-7 and stage["gate"]["narrow_outputs"] == narrow["outputs"]
    assert any("output 'output' spans only" in w and "degenerate scale" in w for w in stage["warnings"])
    assert any(n.startswith("kept float: 1 op whose activations span") for n in stage["notes"])
    assert "a degenerate output scale" in (out / "report.html").read_text()


def test_tflite_quantizer_still_widens_narrow_ranges():
    """The floor that quantize.TFLITE_MIN_RANGE stands for, measured on TFLite's quantizer itself: an output that
    spans ~1e-8 gets an int8 step of ~8e-9 (2e-6 / 255: widened to about ±1e-6), one that spans ~1e-5 gets its own
    range / 255; tflite_narrow names the first only. If TensorFlow moves or drops the floor, this fails."""
    import numpy as np

    from converter.quantize import TFLITE_MIN_RANGE, tflite_narrow
    from converter.stages.saved_model import import_tensorflow

    tf = import_tensorflow()
    from ai_edge_litert.interpreter import Interpreter
    from tensorflow.lite.python import convert

    rng = np.random.default_rng(0)
    weight = tf.constant(rng.standard_normal((8, 4)).astype(np.float32))
    xs = rng.standard_normal((16, 1, 8)).astype(np.float32)

    @tf.function(input_signature=[tf.TensorSpec([1, 8], tf.float32)])
    def f(x):
        y = tf.matmul(x, weight)
        return {"narrow": y * 1e-9, "wide": y * 1e-6}

    holder = tf.Module()
    holder.f = f
    converter = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], holder)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x] for x in xs)
    converter.experimental_new_quantizer = True
    converter._experimental_calibrate_only = True
    calibrated = converter.convert()
    found = tflite_narrow(calibrated)
    assert list(found["outputs"]) == ["narrow"] and len(found["ops"]) == 1

    interp = Interpreter(model_content=convert.mlir_quantize(calibrated))
    tensors = interp.get_tensor_details()
    runner = interp.get_signature_runner("serving_default")
    steps = {}
    for name, detail in runner.get_output_details().items():
        dequantize = next(op for op in interp._get_ops_details() if op["outputs"][0] == detail["index"])
        steps[name] = tensors[dequantize["inputs"][0]]["quantization"][0]
    spans = {k: np.ptp([f(x)[k].numpy() for x in xs]) for k in steps}
    assert spans["narrow"] < TFLITE_MIN_RANGE / 10 and spans["wide"] > TFLITE_MIN_RANGE
    assert steps["narrow"] > 0.5 * 2 * TFLITE_MIN_RANGE / 255, (steps, spans)  # widened to about ±1e-6
    assert spans["narrow"] / steps["narrow"] < 2, (steps, spans)  # so its values fall on one or two int8 steps
    assert steps["wide"] < 1.1 * spans["wide"] / 255, (steps, spans)
