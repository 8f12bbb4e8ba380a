"""End to end through the CLI: every stage converts and matches PyTorch, on real models."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from runcli import DIGITS, run_cli
from converter.parity import SPREAD_FACTOR
from converter.graph import default_targets, plan
from converter.stages.torchscript import ANDROID_LITE_BYTECODE

# the default targets; the browser stage needs Chromium (scripts/setup.sh installs it)
ALL_STAGES = ["onnx", "saved_model", "tfjs", "tflite_fp32", "tflite_fp16", "torchscript", "ptl", "browser"]
REPORT_STAGE_KEYS = {"name", "status", "max_abs_err", "max_rel_err", "tolerance", "seconds", "artifact", "bytes"}


def _report(folder):
    return json.loads((folder / "report.json").read_text())


def _assert_all_passed(report, stages=ALL_STAGES):
    assert [s["name"] for s in report["stages"]] == stages
    for stage in report["stages"]:
        assert stage["status"] == "passed", stage
        assert REPORT_STAGE_KEYS <= stage.keys()
        assert stage["max_rel_err"] <= stage["tolerance"]
        assert stage["bytes"] > 0


def test_every_registered_stage_is_exercised_end_to_end():
    """A stage added to the pipeline must be added to ALL_STAGES, which every end-to-end test checks."""
    assert [stage.name for stage in plan(default_targets())] == ALL_STAGES


def test_digits_every_stage_passes_with_accuracy(digits_dir, digits_report):
    _assert_all_passed(digits_report)
    assert digits_report["exit_code"] == 0
    accuracy = digits_report["accuracy"]
    # 360 held-out images: the trained model scores 98%, and every artifact classifies them like PyTorch.
    assert accuracy["pytorch"] > 0.97
    for stage in ALL_STAGES:
        assert abs(accuracy[stage] - accuracy["pytorch"]) <= 1 / 360, (stage, accuracy)
    for name in ("model.onnx", "saved_model/saved_model.pb", "tfjs/model.json", "model.pt", "model.ptl",
                 "tflite/model_float32.tflite", "tflite/model_float16.tflite", "golden/golden.json",
                 "metadata.json", "report.json", "report.html"):
        assert (digits_dir / name).is_file(), name
    assert list((digits_dir / "tfjs").glob("group1-shard*.bin"))
    for stage in ALL_STAGES:
        assert (digits_dir / "logs" / f"{stage}.log").is_file()
    assert not list(digits_dir.parent.glob(".digits*")), "temporary folders or locks left behind"


def test_digits_each_stage_compared_with_the_stage_before(digits_report):
    by_name = {s["name"]: s for s in digits_report["stages"]}
    for stage in ALL_STAGES:
        against = [c["against"] for c in by_name[stage]["comparisons"]]
        assert against[0] == "pytorch"
        if stage == "tfjs":  # run on two backends; the main one is also compared with the stage before
            runs = [(c["against"], c["runtime"]) for c in by_name[stage]["comparisons"]]
            assert runs == [("pytorch", "wasm"), ("saved_model", "wasm"), ("pytorch", "cpu")]
        elif stage == "browser":  # one run per runtime and backend; the first also against the TF.js stage
            runs = [(c["against"], c["runtime"]) for c in by_name[stage]["comparisons"]]
            assert runs[:2] == [("pytorch", "tfjs_wasm"), ("tfjs", "tfjs_wasm")]
            assert all(against == "pytorch" for against, _ in runs[2:]) and len(runs) >= 6
        elif by_name[stage]["after"] != "pytorch":
            assert against == ["pytorch", by_name[stage]["after"]]
    fp16 = by_name["tflite_fp16"]
    assert fp16["precision"] == "fp16" and fp16["tolerance"] == 1e-2
    # fp16 weights really are lower precision: measurably worse than fp32, within their own tolerance.
    assert by_name["tflite_fp32"]["max_rel_err"] < fp16["max_rel_err"] < 1e-2
    assert fp16["bytes"] < 0.6 * by_name["tflite_fp32"]["bytes"]


def test_digits_terminal_output_is_short_and_quiet(digits_run):
    _, proc = digits_run
    lines = proc.stdout.splitlines()
    assert len(lines) <= len(ALL_STAGES) + 5  # header; passed, accuracy, report and serve lines
    assert sum(line.startswith("[") for line in lines) == len(ALL_STAGES)
    noise = ("E0000", "W0000", "WARNING", "Warning", "absl", "tensorflow/")
    assert not [line for line in (proc.stdout + proc.stderr).splitlines() if any(n in line for n in noise)]
    assert "report.html" in proc.stdout and "serve" in proc.stdout
    assert "top-1 accuracy on the eval data: 98.06% in PyTorch, the same in every artifact" in proc.stdout


def test_metadata_records_layouts_per_artifact(digits_dir):
    meta = json.loads((digits_dir / "metadata.json").read_text())
    assert meta["inputs"] == [{"name": "x", "shape": [1, 1, 8, 8], "dtype": "float32", "layout": "NCHW"}]
    assert meta["labels"] == [str(d) for d in range(10)] and meta["preprocessing"]["kind"] == "digits8x8"
    tfjs = meta["artifacts"]["tfjs"]
    assert tfjs["inputs"][0]["perm"] == [0, 2, 3, 1] and tfjs["inputs"][0]["layout"] == "NHWC"
    assert tfjs["inputs"][0]["shape"] == [1, 8, 8, 1]
    assert meta["artifacts"]["onnx"]["inputs"][0]["perm"] == [0, 1, 2, 3]
    assert set(meta["artifacts"]) == set(ALL_STAGES)


def test_golden_json_matches_the_npy_files_and_pytorch(digits_dir):
    import torch

    golden = json.loads((digits_dir / "golden" / "golden.json").read_text())
    assert [c["name"] for c in golden["cases"]] == ["random_0", "random_1"]
    module = torch.jit.load(str(digits_dir / "model.pt"))
    for case in golden["cases"]:
        x = np.load(digits_dir / "golden" / f"input_x_{case['name']}.npy")
        np.testing.assert_array_equal(np.asarray(case["inputs"]["x"], dtype=np.float32), x.reshape(-1))
        expected = module(torch.from_numpy(x)).detach().numpy().reshape(-1)
        np.testing.assert_allclose(case["outputs"]["output"], expected, rtol=1e-6, atol=1e-6)


def test_report_html_draws_stages_and_errors(digits_dir):
    page = (digits_dir / "report.html").read_text()
    assert page.count("<svg") == 3  # the pipeline diagram, the error plot and the browser latency chart
    for stage in ALL_STAGES:
        assert stage in page
    assert "http" not in page.replace("http-equiv", "")  # nothing to fetch: it opens offline


def test_ptl_bytecode_fits_the_android_runtime(digits_report):
    ptl = next(s for s in digits_report["stages"] if s["name"] == "ptl")
    assert ptl["bytecode_version"] <= ANDROID_LITE_BYTECODE
    assert any("XNNPACK" in note for note in ptl["notes"])


@pytest.mark.parametrize("quantize, ratio", [("fp16", 0.5), ("uint8", 0.25)])
def test_tfjs_quantized_weights_are_smaller_and_within_tolerance(tmp_path, digits_dir, quantize, ratio):
    out = tmp_path / quantize
    proc = run_cli("convert", *DIGITS, "--targets", "tfjs", "--quantize", quantize, "--out", out, "--cases", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stage = next(s for s in _report(out)["stages"] if s["name"] == "tfjs")
    assert stage["precision"] == quantize
    assert stage["max_rel_err"] <= stage["tolerance"]
    shards = lambda d: sum(p.stat().st_size for p in (d / "tfjs").glob("*.bin"))  # noqa: E731
    # Weights only: model.json (the graph) is the same size at every precision.
    assert shards(out) <= ratio * shards(digits_dir) * 1.01


def test_constants_fp16_cannot_hold_stay_float32(tmp_path):
    """F.normalize's eps (1e-12) and a -1e9 mask fill, stored as float16, are 0 and -inf: padded rows gave NaN
    (torchvision's swin_v2_t in TFLite fp16). Without converter/fp16.py both fp16 stages fail with NaN."""
    out = tmp_path / "fp16_range"
    proc = run_cli("convert", "tests/models/small.py:fp16_range", "--input-shape", "1,6,16", "--targets",
                   "tflite,tfjs", "--quantize", "fp16", "--no-browser", "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stages = {s["name"]: s for s in _report(out)["stages"]}
    assert stages["tflite_fp16"]["status"] == stages["tfjs"]["status"] == "passed"
    assert stages["tfjs"]["precision"] == "fp16"
    assert any("1 constant kept in float32" in n and "= 1e-12" in n for n in stages["tflite_fp16"]["notes"])
    weights = [w for group in json.loads((out / "tfjs" / "model.json").read_text())["weightsManifest"]
               for w in group["weights"]]
    float32 = [w for w in weights if w["dtype"] == "float32" and "quantization" not in w]
    assert [w["shape"] for w in float32] == [[], [], []]  # the two eps and the fill; the layers stay float16
    assert sum(w.get("quantization", {}).get("dtype") == "float16" for w in weights) >= 2


def test_targets_subset_builds_only_what_is_asked(tmp_path):
    out = tmp_path / "onnx_only"
    proc = run_cli("convert", *DIGITS, "--targets", "onnx", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert [s["name"] for s in _report(out)["stages"]] == ["onnx"]
    assert (out / "model.onnx").is_file() and not (out / "saved_model").exists()
    assert _report(out)["stages"][0]["opset"] == 18


def test_output_that_ignores_its_input_is_degenerate_not_passed(tmp_path):
    out = tmp_path / "bias_only"
    proc = run_cli("convert", "tests/models/small.py:bias_only", "--input-shape", "1,16", "--targets", "onnx",
                   "--out", out)
    # Nothing was found wrong, so the exit code stays 0; but nothing could have been, and every place says so.
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = _report(out)
    stage = report["stages"][0]
    assert report["status"] == stage["status"] == "degenerate"
    assert stage["max_rel_err"] <= stage["tolerance"]
    output = stage["comparisons"][0]["outputs"][0]
    assert output["degenerate"] and output["rel_spread"] < SPREAD_FACTOR * stage["tolerance"]
    assert stage["reason"].startswith("output: varies by ")
    assert "[1/1] onnx         degenerate" in proc.stdout and "unverified: output" in proc.stdout
    assert "parity UNVERIFIED in 1 of 1 stages" in proc.stdout and "stages passed" not in proc.stdout
    assert "--sample-input" in proc.stdout and "more --cases" in proc.stdout
    assert 'class="status degenerate">DEGENERATE' in (out / "report.html").read_text()
    # Nor at a tolerance as tight as float32's own rounding of this model.
    assert any(n.startswith("not verified at ") and n.endswith("the reference varies too little for that too")
               for n in stage["notes"]), stage["notes"]


def test_a_check_that_cannot_fail_at_its_tolerance_is_judged_at_the_models_own_rounding(tmp_path):
    """Scores on a large offset vary by 0.03 of their scale: at fp16's 1e-2 no artifact could fail; at twice
    what fp16 weights move the model by in PyTorch (about 5e-4) one could, and the TFLite fp16 artifact passes."""
    out = tmp_path / "offset_scores"
    proc = run_cli("convert", "tests/models/small.py:offset_scores", "--input-shape", "1,16", "--targets", "tflite",
                   "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = _report(out)
    stage = next(s for s in report["stages"] if s["name"] == "tflite_fp16")
    floor = stage["rounding_floor"]
    assert report["status"] == stage["status"] == "passed"
    assert floor["nominal_tolerance"] == 1e-2 and stage["tolerance"] == floor["tolerance"] == 2 * floor["rel_err"] < 1e-3
    output = stage["comparisons"][0]["outputs"][0]
    assert SPREAD_FACTOR * stage["tolerance"] < output["rel_spread"] < SPREAD_FACTOR * 1e-2
    assert not output["degenerate"] and stage["max_rel_err"] <= stage["tolerance"]
    assert any("varies too little for the fp16 tolerance 0.01 to fail" in n for n in stage["notes"])
    assert re.search(r"\[4/4\] tflite_fp16  passed .* \(tol 0\.000\d+, rounding floor\)", proc.stdout), proc.stdout


def test_a_single_input_case_leaves_parity_unverified(tmp_path):
    out = tmp_path / "one_case"
    proc = run_cli("convert", *DIGITS, "--targets", "onnx", "--cases", "1", "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = _report(out)
    stage = report["stages"][0]
    assert report["status"] == stage["status"] == "degenerate"
    assert stage["reason"] == "output: one input case, no spread to measure"
    output = stage["comparisons"][0]["outputs"][0]
    assert output["degenerate"] and output["reference_spread"] is None and output["rel_to_spread"] is None
    assert "output: one input case, no spread to measure (every stage)" in proc.stdout


def test_digits_reference_varies_well_beyond_every_tolerance(digits_report):
    for stage in digits_report["stages"]:
        for output in stage["comparisons"][0]["outputs"]:
            assert not output["degenerate"], stage
            assert output["rel_spread"] > SPREAD_FACTOR * stage["tolerance"]
            # The error as a fraction of how much the input moves the output: small, and recorded.
            assert output["rel_to_spread"] == output["max_abs_err"] / output["reference_spread"] < stage["tolerance"]
    assert digits_report["status"] == "passed"


def test_sample_input_becomes_a_golden_case(tmp_path):
    sample = tmp_path / "x.npy"
    np.save(sample, np.linspace(0, 1, 64, dtype=np.float32).reshape(1, 1, 8, 8))
    out = tmp_path / "sampled"
    proc = run_cli("convert", *DIGITS, "--targets", "onnx,ptl", "--sample-input", sample, "--out", out)
    assert proc.returncode == 0, proc.stderr
    golden = json.loads((out / "golden" / "golden.json").read_text())
    assert [c["name"] for c in golden["cases"]] == ["random_0", "random_1", "sample_0"]
    assert golden["cases"][2]["inputs"]["x"][-1] == 1.0


# Token ids for the bags, below the 10 rows of their tables.
EXTRA_ARGS = {"embedding_bags": ["--input-dtype", "int64", "--input-dtype", "float32", "--int-high", "10"]}
# The browser stage (about 10 s a model: ten runtime and backend pairs) runs for the four quick models and for the
# one whose failure was the page's own (integer inputs); the rest check TF.js in Node.js, on wasm and cpu, which keeps
# the suite within its 30 minutes. tests/web covers the stage itself.
BROWSER_MODELS = {"mlp_layernorm_gelu", "attention_block", "two_inputs", "residual_cnn", "embedding_bags"}


# The last forty failed for a new user (issue 9; a bidirectional GRU, a running sum, flips, an affine warp,
# LayerNorms over several axes, circular padding, cdist, uneven adaptive and 3-D pooling, EmbeddingBag, area resizes,
# dilated pools, a VAE decoder, an LSTM over as many sequences as steps, inputs of equal axes, an argmax as a float,
# top-k expert routing, a running product, a Gram matrix, triangles, statistics over channels, inverse trigonometry
# and fmod, tokens sorted by a score, max unpooling, an input's triangle since) or in random timm and Hugging Face
# samples (gmixer's square SwiGLU, a ConvNeXt block on a square map, skresnet's stacked paths, the resizes, CLIP's
# nested outputs, mobilevitv2's wide GroupNorm, maxvit_rmlp_nano's equal dimensions, CondConv's computed weights,
# tnt's position map at batch > 1, mvitv2's relative positions, NesT's rank-5 attention and 6-axis slices, vit_wee's
# square tokens) before the TF.js audit, the ONNX rewrites and export patches, the blocked reductions and the fixes
# in converter/stages/onnx2tf_fixes.py.
@pytest.mark.parametrize("model, shapes", [
    ("mlp_layernorm_gelu", ["2,32"]),
    ("attention_block", ["1,10,32"]),
    ("two_inputs", ["1,3,8,8", "1,6"]),
    ("residual_cnn", ["1,3,16,16"]),
    *(pytest.param(model, shapes, marks=pytest.mark.slow) for model, shapes in [
        ("conv_bn_hardswish", ["1,3,16,16"]),
        ("two_input_tanh", ["1,16", "1,16"]),
        ("l2_normalized", ["1,8,16"]),
        ("resizes", ["1,3,4,4"]),
        ("nested_outputs", ["2,8"]),
        ("wide_group_norm", ["1,3,128,128"]),
        ("equal_dims", ["1,3,8,8"]),
        ("cond_conv", ["1,3,12,12"]),
        ("bidirectional_gru", ["1,12,16"]),
        ("positional_map", ["2,3,8,8"]),
        ("relative_positions", ["1,12,10"]),
        ("block_attention", ["1,3,5,8"]),
        ("cumulative_sum", ["1,4,20"]),
        ("split_heads", ["1,3,5,8"]),
        ("square_tokens", ["1,3,16,16"]),
        ("flipped", ["1,3,10,12"]),
        ("affine_warp", ["1,3,8,8"]),
        ("plane_norm", ["1,3,5,7"]),
        ("circular_conv", ["1,3,6,9"]),
        ("prototype_distances", ["2,3,10,10"]),
        ("volume_pools", ["1,2,4,8,12"]),
        ("square_glu", ["1,16,8"]),
        ("square_block", ["1,8,8,8"]),
        ("selective_kernel", ["1,6,16,16"]),
        ("embedding_bags", ["2,5", "2,5"]),
        ("area_resize", ["1,3,12,11"]),
        ("dilations", ["1,3,12,11"]),
        ("linear_decoder", ["2,8"]),
        ("square_lstm", ["8,8,16"]),
        ("square_steps", ["6,6,6", "1,8,8,8"]),
        ("ranking", ["4,10"]),
        ("expert_routing", ["1,6,16"]),
        ("gated_scores", ["2,8,8"]),
        ("gram_matrix", ["2,16,16"]),
        ("triangles", ["1,8,8", "1,3,8,6"]),
        ("channel_stats", ["1,4,8,8"]),
        ("trig_functions", ["2,6"]),
        ("token_sort", ["2,10,6"]),
        ("unpooling", ["1,3,12,10"]),
        ("input_triangle", ["1,4,5,4"]),
    ]),
])
def test_small_architectures_pass_every_stage(tmp_path, model, shapes):
    out = tmp_path / model
    args = [a for s in shapes for a in ("--input-shape", s)] + EXTRA_ARGS.get(model, [])
    if model not in BROWSER_MODELS:
        args.append("--no-browser")
    # Two cases (the default): with one, parity cannot be verified (status "degenerate").
    proc = run_cli("convert", f"tests/models/small.py:{model}", *args, "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = _report(out)
    _assert_all_passed(report, ALL_STAGES if model in BROWSER_MODELS else ALL_STAGES[:-1])
    tfjs = next(s for s in report["stages"] if s["name"] == "tfjs")
    assert [c["runtime"] for c in tfjs["comparisons"] if c["against"] == "pytorch"] == ["wasm", "cpu"]
    if model == "nested_outputs":
        assert [o["name"] for o in report["outputs"]] == ["scores", "inner_features", "inner_pair_output_0"]
    if model == "two_inputs":
        tfjs = report["artifacts"]["tfjs"]
        assert [b["name"] for b in tfjs["inputs"]] == ["image", "features"]
        assert [b["perm"] for b in tfjs["outputs"]] == [[0, 2, 3, 1], [0, 1]]
    if model == "residual_cnn":
        # onnx2tf alone wraps each residual add in NCHW transposes (converter/stages/onnx2tf_fixes.py).
        graph = json.loads((out / "tfjs" / "model.json").read_text())["modelTopology"]["node"]
        assert [n["op"] for n in graph].count("Transpose") == 0
        assert [n["op"] for n in graph].count("AddV2") >= 2
    if model == "wide_group_norm":
        # The two means of 524,288 elements went as two means of at most 1024 each, and passed at 1e-4 (not at a
        # rounding floor above it).
        graph = json.loads((out / "tfjs" / "model.json").read_text())["modelTopology"]["node"]
        assert [n["op"] for n in graph].count("Mean") == 4
        assert {s["tolerance"] for s in report["stages"] if s["precision"] == "fp32"} == {1e-4}
    if model == "triangles":
        assert [(r["op"], r["fix"]) for r in tfjs["rewrites"]] == [("MatrixBandPart", "masked")] * 3
    if model == "expert_routing":
        rewrites = [(r["op"], r["fix"], r["backends"]) for r in tfjs["rewrites"]]
        assert rewrites == [("TensorScatterUpdate", "copied", ["cpu"])]
    if model == "attention_block":
        # A (batch, length, features) input keeps its layout: no transpose for sequences.
        assert report["artifacts"]["saved_model"]["inputs"][0]["perm"] == [0, 1, 2]


@pytest.mark.slow
def test_mobilenet_v2_passes_every_stage(tmp_path):
    out = tmp_path / "mobilenet_v2"
    proc = run_cli("convert", "tests/models/small.py:mobilenet_v2", "--input-shape", "1,3,224,224", "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = _report(out)
    _assert_all_passed(report)
    # Random weights make tiny outputs; the relative measure still holds every artifact to 1e-4 of their scale.
    for stage in report["stages"]:
        assert stage["comparisons"][0]["outputs"][0]["top1_agreement"] == 1.0


def test_dynamic_batch_runs_every_artifact_at_another_batch_size(tmp_path):
    out = tmp_path / "dynamic"
    proc = run_cli("convert", *DIGITS, "--dynamic-batch", "--cases", "1", "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = _report(out)
    _assert_all_passed(report)
    assert report["cases"]["names"] == ["random_0", "batch_3"]
    assert report["cases"]["golden"] == ["random_0"]  # golden data keeps the declared shape
    assert report["inputs"][0]["dynamic_axes"] == [0] and report["outputs"][0]["dynamic_axes"] == [0]
    graph = json.loads((out / "tfjs" / "model.json").read_text())["modelTopology"]["node"]
    placeholder = next(n for n in graph if n["op"] == "Placeholder")
    assert placeholder["attr"]["shape"]["shape"]["dim"][0]["size"] == "-1"
    browser = next(s for s in report["stages"] if s["name"] == "browser")
    assert any("LiteRT.js did not run" in note and "dynamic axis" in note for note in browser["notes"]), browser
    runs = json.loads((out / "browser.json").read_text())["runs"]
    assert runs and not [r for r in runs if r["runtime"] == "litert.js"]


def test_every_artifact_that_can_carry_files_records_its_layouts(digits_dir):
    import zipfile

    import onnx
    import torch

    def check(record: dict, artifact: str):
        assert record["model_inputs"][0]["layout"] == "NCHW", artifact
        assert [b["layout"] for b in record["inputs"]] == [meta["artifacts"][artifact]["inputs"][0]["layout"]]
        assert record["inputs"][0]["perm"] == meta["artifacts"][artifact]["inputs"][0]["perm"]

    meta = json.loads((digits_dir / "metadata.json").read_text())
    props = {p.key: p.value for p in onnx.load(str(digits_dir / "model.onnx")).metadata_props}
    check(json.loads(props["converter_io.json"]), "onnx")
    extra = {"converter_io.json": ""}
    torch.jit.load(str(digits_dir / "model.pt"), _extra_files=extra)
    check(json.loads(extra["converter_io.json"]), "torchscript")
    with zipfile.ZipFile(digits_dir / "model.ptl") as archive:
        name = next(n for n in archive.namelist() if n.endswith("extra/converter_io.json"))
        check(json.loads(archive.read(name)), "ptl")
    check(json.loads((digits_dir / "saved_model" / "assets.extra" / "converter_io.json").read_text()), "saved_model")
    model_json = json.loads((digits_dir / "tfjs" / "model.json").read_text())
    check(model_json["userDefinedMetadata"]["converter_io.json"], "tfjs")
    assert model_json["userDefinedMetadata"]["converter_io.json"]["inputs"][0]["layout"] == "NHWC"


def test_an_fp16_artifact_past_its_tolerance_is_judged_at_its_models_own_rounding_floor(tmp_path):
    """The difference of two nearly equal layers: fp16 weights move the output past the fp16 tolerance in
    PyTorch itself. The artifact is judged at twice that floor, and passes; its fp32 sibling, within 1e-4, is
    judged at 1e-4 and measures no floor."""
    out = tmp_path / "cancel"
    proc = run_cli("convert", "tests/models/faulty.py:cancelling", "--input-shape", "4,16", "--targets", "tflite",
                   "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stages = {s["name"]: s for s in _report(out)["stages"]}
    fp16, fp32 = stages["tflite_fp16"], stages["tflite_fp32"]
    floor = fp16["rounding_floor"]
    assert floor["precision"] == "fp16" and floor["nominal_tolerance"] == 1e-2
    assert fp16["status"] == "passed" and 1e-2 < fp16["max_rel_err"] <= fp16["tolerance"] == floor["tolerance"]
    assert floor["tolerance"] == pytest.approx(2 * floor["rel_err"])
    assert "rounding floor" in proc.stdout and "own rounding" in fp16["notes"][-1]
    assert fp32["status"] == "passed" and fp32["tolerance"] == 1e-4 and "rounding_floor" not in fp32
