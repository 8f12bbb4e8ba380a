"""The model zoo's runner (scripts/zoo.py), its builders (scripts/zoo_models.py) and the samples nobody picked
(scripts/zoo_sample.py: a seeded random draw from timm, and Hugging Face transformers families).

The fast subset (zoo.CI_SUBSET) converts through `converter batch` with the runner's own lines:
tests/test_batch.py. The full runs are `python scripts/zoo.py [--sample hf | --sample timm:40 --seed 0]` (results
in docs/zoo.md). Everything here runs without converting: the draw, its rules, the builders in PyTorch, the
honest-table rules.
"""

from __future__ import annotations

import json
import re
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from runcli import REPO

sys.path.insert(0, str(REPO / "scripts"))

import zoo  # noqa: E402
import zoo_models  # noqa: E402
import zoo_sample  # noqa: E402

ENTRIES = {e.name: e for e in [*zoo_models.ZOO, *zoo_sample.HF]}
NO_LIMITS = SimpleNamespace(max_rss_gb=None, timeout=None)  # zoo.py's defaults: each model's known needs


def test_zoo_has_thirty_architectures_with_builders():
    assert len({e.name for e in zoo_models.ZOO}) == len(zoo_models.ZOO) >= 30
    families = {e.family for e in zoo_models.ZOO}
    assert {"classification", "detection", "segmentation", "transformer"} <= families
    for entry in zoo_models.ZOO:
        assert callable(getattr(zoo_models, entry.name)), entry.name
        assert len(entry.shapes) == len(entry.dtypes), entry.name


def test_batch_jobs_carry_dtypes_token_range_two_cases_and_limits():
    job = zoo.batch_job(ENTRIES["text_decoder"], NO_LIMITS)
    args = job.convert_args(REPO / "out")
    assert args[:2] == ["convert", "scripts/zoo_models.py:text_decoder"]
    assert args[-3:] == ["--out", str(REPO / "out"), "--force"]
    assert args.count("--input-shape") == 2 and args.count("--input-dtype") == 2
    assert args[args.index("--int-high") + 1] == str(zoo_models.VOCAB)
    # Two cases at least: one case cannot show an output that ignores its input.
    assert int(args[args.index("--cases") + 1]) >= 2
    assert "--input-dtype" not in zoo.convert_options(ENTRIES["resnet18"])
    assert zoo.batch_job(ENTRIES["hf_t5"], NO_LIMITS).model == "scripts/zoo_sample.py:hf_t5"
    # Its MODELS.txt line carries the limits the model needs.
    vgg = zoo.batch_job(ENTRIES["vgg11"], NO_LIMITS)
    assert vgg.text().endswith(f"--max-rss-gb 18 --timeout {ENTRIES['vgg11'].timeout_s}")


def test_ssdlite_adapter_returns_tensors_for_every_anchor():
    import torch

    model = zoo_models.ssdlite320_mobilenet_v3_large()
    with torch.no_grad():
        boxes, scores = model(torch.randn(1, 3, 320, 320))
    assert boxes.shape[:2] == scores.shape[:2] and boxes.shape[2] == 4
    np.testing.assert_allclose(scores.sum(-1).numpy(), 1.0, rtol=1e-5)


# --- the timm draw ------------------------------------------------------------------------------------------

def _fake_population():
    """Architectures with made-up facts, one per rule and some that fit the default budget."""
    facts = {f"ok{i}": zoo_sample.TimmFacts(f"ok{i}", 5_000_000, (3, 224, 224)) for i in range(8)}
    facts["big"] = zoo_sample.TimmFacts("big", 300_000_000, (3, 224, 224))
    facts["huge_input"] = zoo_sample.TimmFacts("huge_input", 5_000_000, (3, 384, 384), True)
    facts["broken"] = zoo_sample.TimmFacts("broken", error="RuntimeError: no meta")
    return facts


def test_timm_draw_is_reproducible_and_depends_on_the_seed():
    facts = _fake_population()
    draw = lambda seed, n=5: zoo_sample.draw_timm(n, seed, names=list(facts), facts=facts.__getitem__)  # noqa: E731
    first, again = draw(3), draw(3)
    assert [f.arch for f in first.picked] == [f.arch for f in again.picked]
    assert first.skipped == again.skipped and first.examined == again.examined
    assert len(first.picked) == 5
    orders = {tuple(f.arch for f in draw(seed, 8).picked) for seed in range(6)}
    assert len(orders) > 1, "the seed must change the draw"
    # The population's order does not matter (timm's list is sorted first).
    assert [f.arch for f in zoo_sample.draw_timm(5, 3, names=list(facts)[::-1], facts=facts.__getitem__).picked] \
        == [f.arch for f in first.picked]


def test_timm_skip_rules_are_applied_and_reported():
    facts = _fake_population()
    draw = zoo_sample.draw_timm(100, 0, names=list(facts), facts=facts.__getitem__)
    assert sorted(f.arch for f in draw.picked) == sorted(a for a in facts if a.startswith("ok"))
    assert draw.skipped == {"params": ["big"], "input_size": ["huge_input"], "meta_build": ["broken"]}
    assert draw.examined == len(facts)
    text = zoo._draw_text(draw.as_json())
    assert "1 skipped: more than 30 M parameters" in text
    assert "1 skipped: default input (timm's pretrained_cfg input_size) larger than 256x256" in text
    assert "1 skipped: cannot be built on PyTorch's meta device" in text
    # A budget is an option: with a larger one, the big model is drawn.
    bigger = zoo_sample.draw_timm(100, 0, zoo_sample.Budget(max_params_m=500, max_side=512), names=list(facts),
                                  facts=facts.__getitem__)
    assert {"big", "huge_input"} <= {f.arch for f in bigger.picked}
    # ... and the table says which models each rule skipped.
    section = _section([], [], draw=draw.as_json())
    markdown = "\n".join(zoo.render_suite(section))
    assert "skipped by `params`: big" in markdown and "skipped by `input_size`: huge_input" in markdown


def test_timm_draw_from_the_real_list_is_reproducible():
    import timm

    first = zoo_sample.draw_timm(3, 0)
    assert [f.arch for f in first.picked] == [f.arch for f in zoo_sample.draw_timm(3, 0).picked]
    assert first.population == len(timm.list_models()) > 1000
    for f in first.picked:
        assert f.params <= 30e6 and max(f.input_size[1:]) <= 256
    if first.timm_version == "1.0.31":  # the pinned version: the same three on every machine
        assert [f.arch for f in first.picked] == ["repvit_m2_3", "convnext_atto_rms", "tf_efficientnetv2_b1"]


def test_timm_architectures_are_reachable_by_name_through_the_cli_loader():
    import torch

    from converter.loading import load_model

    loaded = load_model("scripts/zoo_sample.py:timm__test_convnext2")
    assert isinstance(loaded.module, torch.nn.Module) and not loaded.module.training
    with pytest.raises(AttributeError):
        zoo_sample.timm__no_such_architecture  # noqa: B018
    entry = zoo.find_entry("timm__test_convnext2")
    assert entry.model == "scripts/zoo_sample.py:timm__test_convnext2" and entry.shapes == ((1, 3, 160, 160),)


def test_timm_batchnorm_models_get_live_statistics():
    """A fresh BatchNorm normalises nothing; the builder measures its statistics on a seeded batch."""
    import torch

    model = zoo_sample.timm__ghostnet_100()
    norm = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert not torch.allclose(norm.running_var, torch.ones_like(norm.running_var))
    assert "BatchNorm statistics" in zoo.find_entry("timm__ghostnet_100").note


# --- Hugging Face families ----------------------------------------------------------------------------------

def test_hf_families_are_at_least_twelve_with_token_inputs():
    assert len(zoo_sample.HF) >= 12 and len({e.name for e in zoo_sample.HF}) == len(zoo_sample.HF)
    tokens = [e for e in zoo_sample.HF if "int64" in e.dtypes]
    assert len(tokens) >= 6 and all(e.int_high == zoo_sample.VOCAB for e in tokens)
    for entry in zoo_sample.HF:
        assert entry.family == "hf" and entry.note and len(entry.shapes) == len(entry.dtypes), entry.name


@pytest.mark.parametrize("entry", zoo_sample.HF, ids=lambda e: e.name)
def test_hf_builder_runs_forward_with_a_model_output_that_depends_on_the_input(entry):
    import torch
    from transformers.utils import ModelOutput

    model = getattr(zoo_sample, entry.name)()
    assert not model.training
    generator = torch.Generator().manual_seed(1)

    def inputs():
        return [torch.randint(0, entry.int_high, shape, generator=generator) if dtype == "int64"
                else torch.randn(shape, generator=generator) for shape, dtype in zip(entry.shapes, entry.dtypes)]

    with torch.no_grad():
        first, second = model(*inputs()), model(*inputs())
    assert isinstance(first, ModelOutput), type(first)  # as the library returns it, not a tuple
    tensors = {k: v for k, v in first.items() if isinstance(v, torch.Tensor)}
    assert tensors, entry.name
    for name, y in tensors.items():
        assert torch.isfinite(y).all(), name
        # An output that barely moves with the input would make parity vacuous (converter/parity.py).
        spread = float((y - second[name]).abs().max() / y.abs().max().clamp(min=1e-12))
        assert spread > 0.1, f"{entry.name}.{name}: relative spread {spread:.2g} over two inputs"


# --- the honest table ---------------------------------------------------------------------------------------

OK = {"status": "passed", "max_rel_err": 3e-7, "seconds": 1.5, "bytes": 4_000_000}


def _row(name: str, status: str = "passed", run: int = 1, **extra) -> dict:
    row = {"model": name, "family": "classification", "inputs": "1x3x8x8", "note": "", "status": status,
           "cause": "" if status == "passed" else "saved_model: differs", "fix": "", "seconds": 10,
           "peak_rss_gb": 1.0, "run": run, "limits": {"max_rss_gb": 10.0, "timeout_s": 1500},
           "command": "python -m converter convert x --cases 2", "stages": {s: OK for s in zoo.STAGES}}
    row.update(extra)
    return row


def _section(builders: list[str], rows: list[dict], runs: list[dict] | None = None, draw: dict | None = None) -> dict:
    entries = [zoo_models.Entry(name, ((1, 3, 8, 8),)) for name in builders]
    runs = runs if runs is not None else [
        {"id": 1, "date": "today", "commit": "a" * 40, "dirty": False, "changed": [], "argv": "python scripts/zoo.py",
         "planned": builders, "finished": [r["model"] for r in rows]}]
    section = {"title": "Model zoo", "builders": builders, "runs": runs, "options": [],
               "rows": zoo.complete_rows(entries, {r["model"]: r for r in rows}, runs)}
    if draw:
        section["draw"] = draw
    return section


def test_every_builder_has_a_row_and_the_headline_counts_the_whole_list():
    runs = [{"id": 1, "date": "monday", "commit": "a" * 40, "dirty": False, "changed": [], "argv": "x",
             "planned": ["a", "b"], "finished": ["a"]}]
    section = _section(["a", "b", "c"], [_row("a")], runs)
    assert [r["model"] for r in section["rows"]] == ["a", "b", "c"]
    by_name = {r["model"]: r for r in section["rows"]}
    assert by_name["b"]["status"] == by_name["c"]["status"] == "not run"
    assert "planned by run 1 (monday), which ended before reaching it" in by_name["b"]["cause"]
    assert "no recorded run included it" in by_name["c"]["cause"]
    assert zoo.headline(section) == "**1/3 pass every stage** (2 not run)"
    text = zoo.render_markdown({"suites": {"zoo": section}, "versions": {}})
    assert "- Model zoo: **1/3 pass every stage** (2 not run)" in text
    assert "| b | classification | 1x3x8x8 | **NOT RUN** |" in text


def test_a_row_passes_only_if_every_stage_passed():
    degenerate = {**OK, "status": "degenerate", "reason": "output: is the same across 2 input cases"}
    failed = {**OK, "status": "failed", "error": "differs"}
    assert zoo.row_status({"onnx": OK, "tfjs": degenerate}, "degenerate") == {
        "status": "degenerate", "cause": "tfjs: output: is the same across 2 input cases"}
    assert zoo.row_status({"onnx": degenerate, "tfjs": failed}, "failed")["cause"] == "tfjs: differs"
    assert zoo.row_status({"onnx": OK}, "passed") == {"status": "passed", "cause": ""}
    section = _section(["a", "b"], [_row("a"), _row("b", "degenerate")])
    assert zoo.headline(section) == "**1/2 pass every stage** (1 degenerate)"


def test_the_limit_a_model_needs_is_in_its_command():
    args = NO_LIMITS
    assert zoo.limits(ENTRIES["vgg11"], args) == (18.0, ENTRIES["vgg11"].timeout_s)
    assert zoo.limits(ENTRIES["resnet18"], args)[0] == zoo.DEFAULT_MAX_RSS_GB
    assert zoo.limits(ENTRIES["vgg11"], SimpleNamespace(max_rss_gb=24.0, timeout=60)) == (24.0, 60)
    command = zoo._zoo_command(["--sample", "hf"], "hf_bert", 18.0, 900)
    assert command == "python scripts/zoo.py --sample hf --only hf_bert --max-rss-gb 18 --timeout 900"


def test_a_run_records_commit_dirty_flag_argv_and_a_row_per_builder(tmp_path, monkeypatch):
    def fake_run_entries(entries, args, suite, finished):
        for entry in entries:
            max_rss_gb, timeout = zoo.limits(entry, args)
            finished(entry, _row(entry.name, zoo_command=zoo._zoo_command(suite.options, entry.name, max_rss_gb,
                                                                          timeout)))

    monkeypatch.setattr(zoo, "run_entries", fake_run_entries)
    argv = ["--sample", "hf", "--only", "hf_bert,hf_t5", "--docs", str(tmp_path), "--work", str(tmp_path / "w")]
    assert zoo.main(argv) == 0
    doc = json.loads((tmp_path / "zoo.json").read_text())
    section = doc["suites"]["hf"]
    (run,) = section["runs"]
    assert re.fullmatch(r"[0-9a-f]{40}", run["commit"]) and isinstance(run["dirty"], bool)
    assert run["argv"] == "python scripts/zoo.py " + " ".join(argv)
    assert run["finished"] == ["hf_bert", "hf_t5"]
    assert [r["model"] for r in section["rows"]] == [e.name for e in zoo_sample.HF]
    assert sum(r["status"] == "not run" for r in section["rows"]) == len(zoo_sample.HF) - 2
    assert {r["zoo_command"] for r in section["rows"] if r["status"] == "passed"} == {
        "python scripts/zoo.py --sample hf --only hf_bert --max-rss-gb 10 --timeout 1500",
        "python scripts/zoo.py --sample hf --only hf_t5 --max-rss-gb 10 --timeout 1500"}
    markdown = (tmp_path / "zoo.md").read_text()
    assert f"Hugging Face transformers families: **2/{len(zoo_sample.HF)} pass every stage**" in markdown
    assert run["commit"][:10] in markdown
    # A second --only run keeps the first one's rows; the zoo suite is untouched by either.
    assert zoo.main(["--sample", "hf", "--only", "hf_gpt2", "--docs", str(tmp_path), "--work", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "zoo.json").read_text())
    assert [r["run"] for r in doc["suites"]["hf"]["rows"] if r["status"] == "passed"] == [1, 2, 1]
    assert "zoo" not in doc["suites"]


def test_old_results_without_commits_say_so():
    """A format-1 zoo.json (rows from several runs, no commit, one input case) renders with those facts."""
    names = [e.name for e in zoo_models.ZOO]
    old = {"updated": "then", "machine": "m", "versions": {"torch": "x"},
           "runs": [{"date": "d1", "command": "python scripts/zoo.py", "models": names[:2]},
                    {"date": "d2", "command": f"python scripts/zoo.py --only {names[2]},{names[3]}",
                     "models": [names[2]]}],
           "models": [{**_row(n, command="python -m converter convert x --cases 1 --seed 0"), "run": None}
                      for n in names[:3]]}
    doc = zoo.migrate_v1(old)
    section = doc["suites"]["zoo"]
    assert len(section["rows"]) == len(names)
    assert zoo.headline(section) == f"**3/{len(names)} pass every stage** ({len(names) - 3} not run)"
    assert "run 2 (d2)" in section["rows"][3]["cause"] and "run 2" not in section["rows"][4]["cause"]
    text = zoo.render_markdown(doc)
    assert "none of which recorded its commit" in text and "3 rows ran with one input case" in text


def test_markdown_cells_show_status_error_time_size_and_causes():
    failing = _row("b", "failed", cause="saved_model: differs; first diverging op: MatMul `n` (abs 1, rel 0.5)",
                   fix="fold it", zoo_command="python scripts/zoo.py --only b --max-rss-gb 18 --timeout 1500",
                   stages={"onnx": OK, "saved_model": {"status": "failed", "max_rel_err": 0.5, "seconds": 3.0,
                                                       "bytes": 10, "error": "differs"}})
    text = zoo.render_markdown({"suites": {"zoo": _section(["a", "b"], [_row("a", note="smaller input"), failing])},
                                "versions": {"torch": "x"}})
    assert "**1/2 pass every stage** (1 failed)" in text
    assert "ok · 3.0e-07 · 1.5 s · 4.0 MB" in text and "**FAIL** · 5.0e-01" in text
    assert "first diverging op: MatMul" in text and "what would fix it: fold it" in text
    assert "re-run: `python scripts/zoo.py --only b --max-rss-gb 18 --timeout 1500`" in text
    assert "`python scripts/zoo.py`" in text and "smaller input" in text
    assert "commit aaaaaaaaaa" in text


def test_a_batch_row_becomes_a_docs_row(tmp_path):
    """run_entries hands each converter.batch row to docs_row: a killed model's row says why; a passed one gets a
    cell per stage from its report.json, and its artifacts are deleted (the report stays)."""
    entry, suite = ENTRIES["resnet18"], zoo.Suite("zoo", "Model zoo", [], [])
    args = SimpleNamespace(max_rss_gb=None, timeout=None, keep_artifacts=False)
    done = {"exit_code": -9, "seconds": 5.0, "peak_rss_gb": 10.2, "report": None,
            "error": "killed: memory above 10 GB"}
    row = zoo.docs_row(entry, done, args, suite)
    assert (row["status"], row["cause"], row["exit_code"]) == ("crashed", "killed: memory above 10 GB", -9)
    assert row["command"].startswith("python -m converter convert scripts/zoo_models.py:resnet18 --cases 2 ")
    assert row["command"].endswith(" --out out/resnet18 --force")

    folder = tmp_path / "resnet18"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"onnx")
    stages = [{"name": s, "status": "passed", "max_rel_err": 1e-7, "seconds": 1.0, "bytes": 10, "error": None,
               "reason": "", "notes": []} for s in zoo.STAGES]
    (folder / "report.json").write_text(json.dumps({"status": "passed", "stages": stages, "versions": {"torch": "x"}}))
    row = zoo.docs_row(entry, {**done, "exit_code": 0, "report": str(folder / "report.json"), "error": ""}, args, suite)
    assert (row["status"], row["cause"], row["versions"]) == ("passed", "", {"torch": "x"})
    assert list(row["stages"]) == list(zoo.STAGES) and row["stages"]["onnx"]["max_rel_err"] == 1e-7
    assert sorted(p.name for p in folder.iterdir()) == ["report.json"]
