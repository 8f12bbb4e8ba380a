"""Fuzzing, bounded in time (a few seconds a property): the CLI's argument handling and the metadata/golden
readers answer anything with a result or one of the documented errors (UsageError, exit 2), never a crash."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from converter import cli, golden
from converter.errors import UsageError

# A fixed seed and a fixed number of examples: the same inputs every run, a few seconds a property.
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

numbers = st.one_of(st.integers(-5, 10**12).map(str), st.sampled_from(["", "x", "nan", "inf", "-0", "1e3", "٣"]))
shapes = st.lists(numbers, min_size=0, max_size=6).map(",".join)
values = st.one_of(numbers, shapes, st.text(max_size=12),
                   st.sampled_from(["fp32=1e-3", "fp16=abc", "=1", "fp32=", "onnx,tfjs", "coreml", "float32", "int64",
                                    "float8", "uint8", "/nonexistent/x.npy", "/dev/null"]))
FLAGS = ["--input-shape", "--input-dtype", "--out", "--weights", "--targets", "--quantize", "--tolerance",
         "--sample-input", "--eval-data", "--cases", "--seed", "--int-high", "--port", "--host", "--app"]
SWITCHES = ["--force", "--trust-model", "-v", "-vv", "--verbose", "-q", "--no-memory-check", "--", "-"]
tokens = st.one_of(st.sampled_from(FLAGS + SWITCHES), values,
                   st.sampled_from(FLAGS).flatmap(lambda f: values.map(lambda v: f"{f}={v}")))
commands = st.sampled_from(["convert", "serve", "android-assets", "", "help", "--help"])
argvs = st.tuples(commands, st.lists(tokens, max_size=12)).map(lambda t: [t[0], *t[1]] if t[0] else t[1])


@FUZZ
@given(argvs)
def test_parser_answers_or_raises_usage_error(argv):
    try:
        cli.build_parser().parse_args(argv)
    except UsageError as exc:
        assert exc.exit_code == 2 and exc.stage == "arguments"
    except SystemExit as exc:  # --help prints and exits 0
        assert exc.code == 0


@pytest.fixture
def no_work(monkeypatch):
    """main() all the way down to where work would start; the stand-ins run the same cheap checks the
    pipeline runs first (targets, input description), then stop."""
    from converter import android, pipeline, serve
    from converter.samples import input_specs

    def convert(model, options, **kwargs):
        input_specs(["a", "b", "c"], options, required=1)
        return pipeline.Result(Path(options.out_dir), {}, 0)

    monkeypatch.setattr(pipeline, "convert", convert)
    monkeypatch.setattr(serve, "serve", lambda *a, **k: None)
    monkeypatch.setattr(android, "install_assets", lambda *a, **k: [])


@FUZZ
@given(argv=argvs)
def test_main_exits_0_or_2_with_one_message(argv, no_work, capsys):
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        assert exc.code == 0 and any(a in ("-h", "--help") or a.startswith("--h") for a in argv), argv
        return
    out, err = capsys.readouterr()
    assert code in (0, 2), (argv, code, err)
    if code == 2:
        verbose = any(a in ("-v", "-vv", "--verbose") for a in argv)
        message = err[err.index("error: ["):] if verbose and "error: [" in err else err
        assert message.startswith("error: [") and "try:" in message, err
        assert "Traceback" not in message and ("Traceback" not in err or verbose), err


def _valid_golden() -> dict:
    return {"format": 1, "inputs": [{"name": "x", "shape": [1, 2], "dtype": "float32", "layout": "NC"}],
            "outputs": [{"name": "y", "shape": [1, 3], "dtype": "float32", "layout": "NC"}],
            "tolerances": {"fp32": 1e-4}, "cases": [{"name": "random_0", "inputs": {"x": [0.5, None]},
                                                      "outputs": {"y": [1, 2, 3]}}]}


def _valid_metadata() -> dict:
    binding = {"name": "x", "artifact_name": "x:0", "shape": [1, 2], "layout": "NC", "perm": [0, 1]}
    return {"format": 1, "model": "m", "inputs": [{"name": "x", "shape": [1, 2], "dtype": "float32"}],
            "outputs": [{"name": "y", "shape": [1, 3], "dtype": "float32"}],
            "artifacts": {"tfjs": {"path": "tfjs/model.json", "precision": "fp32", "inputs": [binding],
                                   "outputs": [{**binding, "name": "y", "shape": [1, 3]}]}}}


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=False), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)


def _mutate(doc, data) -> object:
    """Replace one value somewhere in `doc` with arbitrary JSON, or delete it."""
    node = doc
    while isinstance(node, (dict, list)) and node and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node))))
        if not isinstance(node[key], (dict, list)) or not node[key] or data.draw(st.booleans()):
            if isinstance(node, dict) and data.draw(st.booleans()):
                del node[key]
            else:
                node[key] = data.draw(json_values)
            return doc
        node = node[key]
    return data.draw(json_values) if data.draw(st.booleans()) else doc


@pytest.mark.parametrize("reader,valid", [(golden.read_golden, _valid_golden), (golden.read_metadata, _valid_metadata)],
                         ids=["golden", "metadata"])
def test_readers_accept_the_documented_format(reader, valid, tmp_path):
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(valid()))
    doc = reader(path)
    if reader is golden.read_golden:
        assert doc["cases"][0]["inputs"]["x"].shape == (1, 2) and math.isnan(doc["cases"][0]["inputs"]["x"][0, 1])


@pytest.mark.parametrize("reader,valid", [(golden.read_golden, _valid_golden), (golden.read_metadata, _valid_metadata)],
                         ids=["golden", "metadata"])
@FUZZ
@given(data=st.data())
def test_readers_answer_any_file_with_usage_error(reader, valid, data):
    kind = data.draw(st.sampled_from(["mutated", "json", "bytes"]))
    if kind == "bytes":
        content = data.draw(st.binary(max_size=64))
    else:
        doc = _mutate(valid(), data) if kind == "mutated" else data.draw(json_values)
        content = json.dumps(doc).encode()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "doc.json"
        path.write_bytes(content)
        try:
            reader(path)
        except UsageError as exc:
            assert exc.stage == "read" and str(path) in str(exc)
