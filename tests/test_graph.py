"""The stage graph: a stage registered from here alone is planned, runs in its own worker process and is
reported; workers that die or hand objects across processes are caught; re-runs reuse exactly the stages
whose inputs did not change."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from converter import Options, convert
from converter.graph import plan
from converter.stages import register, unregister
from converter.stages.base import Artifact, Handoff, Stage
from runcli import DIGITS, run_cli

SMALL = Path(__file__).parent / "models" / "small.py"


class OnnxUnoptimised(Stage):
    """model.onnx again, in ONNX Runtime with every graph optimisation off, in a worker of its own."""

    name = target = "onnx_unoptimised"
    after = "onnx"
    worker = "test-worker"

    def convert(self, ctx) -> Artifact:
        folder = ctx.work / "unoptimised"
        folder.mkdir()
        shutil.copy(ctx.work / "model.onnx", folder / "model.onnx")
        (folder / "pid").write_text(str(os.getpid()))
        source = ctx.artifacts["onnx"]
        return Artifact(Path("unoptimised/model.onnx"), "fp32", source.inputs, source.outputs, ["no ORT optimisations"])

    def run(self, ctx, artifact, cases):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = ort.InferenceSession(str(ctx.work / artifact.path), options, providers=["CPUExecutionProvider"])
        names = [b.artifact_name for b in artifact.outputs]
        return [dict(zip([b.name for b in artifact.outputs], session.run(names, {b.artifact_name: case[b.name]
                                                                                for b in artifact.inputs})))
                for case in cases]


class DiesInConvert(OnnxUnoptimised):
    name = target = "dies"

    def convert(self, ctx) -> Artifact:
        os._exit(7)


SECRET = Handoff("secret", "an object")


class Gives(Stage):
    name = target = "gives"
    gives = (SECRET,)


class TakesElsewhere(Stage):
    name = target = "takes"
    takes = (SECRET,)
    worker = "elsewhere"


@pytest.fixture
def registered():
    names = []

    def add(stage: Stage) -> Stage:
        names.append(stage.name)
        return register(stage)

    yield add
    for name in names:
        unregister(name)


def _convert(out: Path, targets: tuple[str, ...], **options):
    return convert(f"{SMALL}:mlp_layernorm_gelu", Options([(2, 32)], out, targets=targets, verbosity=0, **options))


def test_a_stage_registered_from_a_test_is_planned_run_in_its_worker_and_reported(tmp_path, registered):
    registered(OnnxUnoptimised())
    assert [s.name for s in plan(("onnx_unoptimised",))] == ["onnx", "onnx_unoptimised"]
    result = _convert(tmp_path / "out", ("onnx_unoptimised",))
    assert result.exit_code == 0, result.error
    stages = {s["name"]: s for s in result.report["stages"]}
    stage = stages["onnx_unoptimised"]
    assert stage["status"] == "passed" and stage["worker"] == "test-worker"
    assert [c["against"] for c in stage["comparisons"]] == ["pytorch", "onnx"]
    assert stage["max_rel_err"] < 1e-5 and stage["notes"] == ["no ORT optimisations"]
    assert int((result.path / "unoptimised" / "pid").read_text()) != os.getpid()
    assert (result.path / "logs" / "onnx_unoptimised.log").is_file()
    assert (result.path / "logs" / "worker-test-worker.log").is_file()


def test_a_worker_that_dies_fails_its_stage_and_the_run_goes_on(tmp_path, registered):
    registered(DiesInConvert())
    result = _convert(tmp_path / "out", ("dies", "torchscript"))
    assert result.exit_code == 4
    stages = {s["name"]: s for s in result.report["stages"]}
    assert stages["torchscript"]["status"] == "passed"
    assert stages["dies"]["status"] == "failed"
    assert "worker process ended (exit 7)" in stages["dies"]["error"]["message"]


def test_an_in_memory_handoff_across_workers_is_refused_when_planned(registered):
    registered(Gives())
    registered(TakesElsewhere())
    with pytest.raises(ValueError, match="takes 'secret' from 'gives', which runs in another worker"):
        plan(("takes",))


def test_a_stage_it_only_uses_is_read_when_planned_and_never_built_for_it():
    from converter.graph import prerequisites

    for targets, planned in ((("browser",), False), (("browser", "tflite"), True)):
        stages = plan(targets)
        names = [s.name for s in stages]
        browser = stages[names.index("browser")]
        assert ("tflite_fp32" in names) is planned
        assert ("tflite_fp32" in prerequisites(browser, stages)) is planned  # waited for, and in its cache key
        assert not planned or names.index("tflite_fp32") < names.index("browser")


def _rerun(model_file: Path, weights: Path, out: Path, *extra: str) -> dict:
    proc = run_cli("convert", f"{model_file}:build", "--weights", weights, "--input-shape", "2,8", "--targets",
                   "onnx,ptl", "--out", out, "--force", *extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {s["name"]: s for s in json.loads((out / "report.json").read_text())["stages"]}


MODEL = """import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x):
        return torch.tanh(self.fc(x)){extra}


def build():
    return Net()
"""


def test_a_rerun_reuses_unchanged_stages_and_rebuilds_after_a_changed_weight_or_line(tmp_path):
    import torch

    model_file, weights, out = tmp_path / "net.py", tmp_path / "w.pt", tmp_path / "out"
    model_file.write_text(MODEL.format(extra=""))
    torch.manual_seed(0)
    torch.save({f"fc.{k}": v for k, v in torch.nn.Linear(8, 4).state_dict().items()}, weights)
    first = _rerun(model_file, weights, out)
    assert not any(s["cached"] for s in first.values())
    assert set(first) == {"onnx", "torchscript", "ptl"}

    again = _rerun(model_file, weights, out)
    assert all(s["cached"] for s in again.values())
    for name, stage in again.items():  # the same checks, carried over with the artifact
        assert stage["max_rel_err"] == first[name]["max_rel_err"] and stage["status"] == "passed"
        assert any("reused from the previous run" in n for n in stage["notes"])
    assert (out / "model.onnx").is_file() and (out / "model.ptl").is_file()

    state = torch.load(weights)
    state["fc.bias"][0] += 1e-3
    torch.save(state, weights)
    changed_weight = _rerun(model_file, weights, out)
    assert not any(s["cached"] for s in changed_weight.values())

    model_file.write_text(MODEL.format(extra=" * 2"))
    changed_code = _rerun(model_file, weights, out)
    assert not any(s["cached"] for s in changed_code.values())
    assert changed_code["onnx"]["max_rel_err"] < 1e-5  # and the rebuilt artifact computes the new code

    tolerance = _rerun(model_file, weights, out, "--tolerance", "fp16=0.02")
    assert all(s["cached"] for s in tolerance.values()), "an fp16 tolerance does not touch fp32 stages"


@pytest.mark.slow
def test_changing_only_quantize_rebuilds_only_the_tfjs_stage(tmp_path, digits_dir):
    out = tmp_path / "digits"
    shutil.copytree(digits_dir, out)
    proc = run_cli("convert", *DIGITS, "--eval-data", "examples/digits/test.npz", "--out", out, "--force",
                   "--quantize", "fp16")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stages = {s["name"]: s for s in json.loads((out / "report.json").read_text())["stages"]}
    # tfjs, and the browser stage that runs its artifact (its key holds tfjs's): every other stage is reused.
    assert {n for n, s in stages.items() if not s["cached"]} == {"tfjs", "browser"} & set(stages) | {"tfjs"}
    assert stages["tfjs"]["precision"] == "fp16" and stages["tfjs"]["status"] == "passed"
    assert "(reused)" in proc.stdout
    weights = sorted((out / "tfjs").glob("group1-shard*.bin"))
    before = sorted((digits_dir / "tfjs").glob("group1-shard*.bin"))
    assert sum(p.stat().st_size for p in weights) < 0.6 * sum(p.stat().st_size for p in before)
    # The reused SavedModel is the earlier one, byte for byte, and still loads.
    assert (out / "saved_model" / "saved_model.pb").read_bytes() == (digits_dir / "saved_model" / "saved_model.pb").read_bytes()
    assert np.load(out / ".cache" / "onnx.npz").files


def test_the_architecture_diagram_shows_every_registered_stage_and_handoff():
    from converter.graph import registered

    diagram = (Path(__file__).parent.parent / "docs" / "architecture.md").read_text().split("## Declarations")[0]
    for stage in registered():
        assert f"{stage.name} (" in diagram, stage.name
        assert f'worker "{stage.worker}"' in diagram, stage.worker
        for handoff in stage.gives:
            assert f"═{handoff.name.upper()}═" in diagram, handoff.name
