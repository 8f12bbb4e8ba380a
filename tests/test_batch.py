"""`python -m converter batch` (converter/batch.py): many conversions as Ray tasks, each under its own memory and
time limit, a table and batch.json at the end, and re-runs that skip what passed with the same line.

The CI subset of the model zoo (zoo.CI_SUBSET: a cross-attention decoder, nn.Transformer with masks, a small CNN,
a transformers BERT and T5, a timm ConvNeXt) runs as one batch on a local Ray, with the lines scripts/zoo.py
builds: slow. The rest is fast: malformed files, limits that kill while another model passes, changed lines.
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
from types import SimpleNamespace

import pytest

from runcli import DIGITS, REPO, run_cli

sys.path.insert(0, str(REPO / "scripts"))

import zoo  # noqa: E402

from converter import batch  # noqa: E402
from converter.errors import UsageError  # noqa: E402

DIGITS_LINE = "digits: " + " ".join([*DIGITS, "--no-browser"])
ZOO_LIMITS = SimpleNamespace(max_rss_gb=None, timeout=None)  # each model's own, as scripts/zoo.py runs it


def _rows(out_root) -> dict[str, dict]:
    doc = json.loads((out_root / "batch.json").read_text())
    return {row["name"]: row for row in doc["rows"]}


def _assert_every_stage_passed(report: dict) -> None:
    assert sorted(s["name"] for s in report["stages"]) == sorted(zoo.STAGES)  # the zoo runs --no-browser
    for stage in report["stages"]:
        assert stage["status"] == "passed", stage
        assert stage["max_rel_err"] <= stage["tolerance"]


@pytest.mark.slow
def test_zoo_subset_passes_every_stage_as_one_batch_and_a_rerun_skips_it(tmp_path):
    jobs = [zoo.batch_job(zoo.find_entry(name), ZOO_LIMITS) for name in zoo.CI_SUBSET]
    models = tmp_path / "MODELS.txt"
    models.write_text("".join(job.text() + "\n" for job in jobs))
    out_root = tmp_path / "out"
    started = time.perf_counter()
    proc = run_cli("batch", models, "--out-root", out_root, "--workers", 1, timeout=3000)
    first_seconds = time.perf_counter() - started
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    rows = _rows(out_root)
    assert list(rows) == list(zoo.CI_SUBSET)
    for name, row in rows.items():
        assert row["status"] == "passed" and row["exit_code"] == 0, row
        _assert_every_stage_passed(json.loads((out_root / name / "report.json").read_text()))
    print(f"\nfirst run {first_seconds:.0f} s: " + ", ".join(f"{n} {r['seconds']:.0f} s" for n, r in rows.items()))

    started = time.perf_counter()
    again = run_cli("batch", models, "--out-root", out_root, "--workers", 1, timeout=300)
    rerun_seconds = time.perf_counter() - started
    assert again.returncode == 0, f"{again.stdout}\n{again.stderr}"
    assert {r["status"] for r in _rows(out_root).values()} == {"skipped"}
    assert again.stdout.count("skipped (passed before)") == 2 * len(jobs)  # its progress line and its table row
    print(f"rerun {rerun_seconds:.1f} s")
    assert rerun_seconds < 30  # nothing converts; Ray does not even start


def test_zoo_lines_read_back_as_the_same_jobs(tmp_path):
    jobs = [zoo.batch_job(zoo.find_entry(name), ZOO_LIMITS) for name in zoo.CI_SUBSET]
    models = tmp_path / "MODELS.txt"
    models.write_text("# the CI subset\n\n" + "".join(job.text() + "\n" for job in jobs))
    parsed = batch.parse_models(models, max_rss_gb=1.0, timeout_s=1.0)
    assert [(j.name, j.model, j.options, j.max_rss_gb, j.timeout_s) for j in parsed] == \
        [(j.name, j.model, j.options, j.max_rss_gb, j.timeout_s) for j in jobs]
    assert [j.line for j in parsed] == list(range(3, 3 + len(jobs)))


@pytest.mark.parametrize("text, line, said", [
    ("# fine\nfine: m.py:f --input-shape 1\nm.py:f --input-shape 1\n", 3, "expected `NAME: MODEL"),
    ("a: m.py:f --input-shape 1\n\na: m.py:g --input-shape 1\n", 3, "the name 'a' again (first on line 1)"),
    ("../up: m.py:f --input-shape 1\n", 1, "'../up' is not a safe folder name"),
    ("a.failed: m.py:f --input-shape 1\n", 1, "'a.failed' is not a safe folder name"),
    ("a: m.py:f --input-shape 1 --out elsewhere\n", 1, "--out in a line"),
    ("a: m.py:f --input-shape 1 --ou=elsewhere\n", 1, "--ou=elsewhere in a line"),
    ("a: m.py:f --input-shape 1 --timeout 0\n", 1, "--timeout '0' is not a positive number"),
    ("a: m.py:f --input-shape 1 --max-rss-gb\n", 1, "--max-rss-gb '' is not a positive number"),
    ("a: m.py:f --input-shape 1 --no-such-option\n", 1, "unrecognized arguments: --no-such-option"),
    ("a: m.py:f --input-shape 1 --help\n", 1, "a line cannot ask for help"),
    ("a: m.py:f --input-shape '1\n", 1, "No closing quotation"),
])
def test_a_malformed_line_is_named(tmp_path, text, line, said):
    models = tmp_path / "MODELS.txt"
    models.write_text(text)
    with pytest.raises(UsageError) as caught:
        batch.parse_models(models, max_rss_gb=10.0, timeout_s=60)
    assert caught.value.stage == "batch"
    assert f"{models}, line {line}: " in caught.value.message and said in caught.value.message


def test_a_malformed_file_exits_2_before_ray_starts(tmp_path):
    models = tmp_path / "MODELS.txt"
    models.write_text(f"{DIGITS_LINE}\n{DIGITS_LINE}\n")
    proc = run_cli("batch", models, "--out-root", tmp_path / "out", timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert f"error: [batch] {models}, line 2: the name 'digits' again (first on line 1)" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_an_unreachable_cluster_is_a_usage_error_not_a_wait(tmp_path):
    import socket

    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    models = tmp_path / "MODELS.txt"
    models.write_text(DIGITS_LINE + "\n")
    started = time.perf_counter()
    proc = run_cli("batch", models, "--out-root", tmp_path / "out", "--address", f"127.0.0.1:{port}", timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert f"error: [batch] no Ray cluster answers at 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr and time.perf_counter() - started < 30


BUILDERS = '''
import pathlib
import time

import torch


def sleeper():
    time.sleep(300)
    return torch.nn.Linear(2, 2)


def hog():
    pathlib.Path(__file__).with_name("allocating").write_text("")
    held = b"x" * (3 * 10**9)  # written, so resident
    time.sleep(300)
    return torch.nn.Linear(2, 2), held
'''


def test_limits_kill_their_model_while_another_passes_and_a_changed_line_runs_again(tmp_path):
    (tmp_path / "slow.py").write_text(textwrap.dedent(BUILDERS))
    models = tmp_path / "MODELS.txt"
    models.write_text(f"{DIGITS_LINE}\n"
                      f"sleeper: {tmp_path}/slow.py:sleeper --input-shape 1,2 --timeout 5\n"
                      # The converter's own processes stay near 2 GB here (digits peaks at 1.9-2.0); the builder's 3 GB
                      # is what crosses the limit.
                      f"hog: {tmp_path}/slow.py:hog --input-shape 1,2 --max-rss-gb 3.5\n")
    out_root = tmp_path / "out"
    proc = run_cli("batch", models, "--out-root", out_root, "--workers", 2, "--timeout", 120, timeout=600)
    assert proc.returncode == 1, f"{proc.stdout}\n{proc.stderr}"
    rows = _rows(out_root)
    assert rows["digits"]["status"] == "passed" and rows["digits"]["exit_code"] == 0
    assert rows["sleeper"]["status"] == "killed" and rows["sleeper"]["limits"]["timeout_s"] == 5
    assert rows["sleeper"]["error"] == "killed: over the 5 s time limit" and rows["sleeper"]["seconds"] < 15
    # Stopped by SIGTERM, the sleeper's conversion removed its work folder and lock (SIGKILL left them).
    assert [p.name for p in out_root.iterdir() if p.name.startswith(".sleeper.")] == []
    assert rows["hog"]["status"] == "killed" and rows["hog"]["error"] == "killed: memory above 3.5 GB"
    # Killed above 3.5 GB; the row keeps the peak to 2 decimals (3.5004 GB reads 3.5).
    assert (tmp_path / "allocating").exists() and rows["hog"]["peak_rss_gb"] >= 3.5
    assert rows["hog"]["limits"] == {"max_rss_gb": 3.5, "timeout_s": 120, "ray_memory_gb": 3.5}
    assert "[1/3] digits: passed in" in proc.stdout and "[2/3] sleeper: killed in" in proc.stdout
    table = proc.stdout[proc.stdout.index("name "):]
    assert "hog" in table and "killed: memory above 3.5 GB" in table and "1 passed, 2 killed" in table
    assert "sleeper" in (out_root / ".batch" / "sleeper.log").read_text().splitlines()[0]
    assert proc.stderr == ""  # Ray's own messages stay in its session folder

    # The same digits line is skipped (and Ray does not start); a changed one runs again (the converter's cache
    # reuses the stages the change did not touch).
    models.write_text(DIGITS_LINE + "\n")
    proc = run_cli("batch", models, "--out-root", out_root, timeout=600)
    assert proc.returncode == 0 and "[1/1] digits: skipped (passed before)" in proc.stdout
    models.write_text(DIGITS_LINE + " --tolerance fp16=2e-2\n")
    proc = run_cli("batch", models, "--out-root", out_root, timeout=600)
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    (row,) = _rows(out_root).values()
    assert row["status"] == "passed" and row["options"][-2:] == ["--tolerance", "fp16=2e-2"]
    report = json.loads((out_root / "digits" / "report.json").read_text())
    assert {s["name"]: s["tolerance"] for s in report["stages"]}["tflite_fp16"] == 2e-2
