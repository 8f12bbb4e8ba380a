"""Bad models, bad input descriptions and bad flags: each one exit code, one message naming the stage, the cause
and what to try, and the previous output folder untouched (the runs ask for --force, so they are allowed to
replace it and must not)."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import torch

from faults import MODELS, assert_error, assert_intact, convert_here, make_previous

MLP = [f"{MODELS}:mlp", "--input-shape", "1,16"]
TWO = ["tests/models/small.py:two_inputs"]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> pathlib.Path:
    """One of every kind of broken file."""
    d = tmp_path_factory.mktemp("files")
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(16, 3))
    torch.jit.save(torch.jit.trace(mlp, torch.zeros(1, 16)), d / "good.pt")
    program = torch.export.export(mlp, (torch.zeros(1, 16),))
    torch.export.save(program, d / "good.pt2")
    torch.onnx.export(mlp, (torch.zeros(1, 16),), d / "good.onnx", dynamo=False)
    for name in ("good.pt", "good.pt2", "good.onnx"):
        data = (d / name).read_bytes()
        (d / name.replace("good", "truncated")).write_bytes(data[: len(data) // 2])
        (d / name.replace("good", "garbage")).write_bytes(np.random.default_rng(0).bytes(4096))
    (d / "empty.pt").write_bytes(b"")
    torch.save({"0.weight": torch.zeros(3, 16), "0.bias": torch.zeros(3)}, d / "wrong_arch.pt")
    np.save(d / "x_15.npy", np.zeros((1, 15), np.float32))
    (d / "garbage.npy").write_bytes(b"\x93NUMPY garbage")
    (d / "garbage.npz").write_bytes(b"PK\x03\x04 not really")
    return d


# (id, arguments after the model's own, exit code, stage, words the message must hold)
CASES = [
    # the model file
    ("missing-file", lambda f: ["/nonexistent/model.pt", "--input-shape", "1,16"], 2, "load", ["no such file"]),
    ("missing-py", lambda f: ["/nonexistent/model.py:build", "--input-shape", "1,16"], 2, "load", ["no such file"]),
    ("empty-pt", lambda f: [f / "empty.pt", "--input-shape", "1,16"], 2, "load", ["is empty"]),
    ("truncated-pt", lambda f: [f / "truncated.pt", "--input-shape", "1,16", "--trust-model"], 2, "load",
     ["truncated or not a model file"]),
    ("garbage-pt", lambda f: [f / "garbage.pt", "--input-shape", "1,16"], 2, "load", ["neither a TorchScript"]),
    ("truncated-pt2", lambda f: [f / "truncated.pt2", "--input-shape", "1,16"], 2, "load",
     ["not a readable torch.export archive"]),
    ("garbage-pt2", lambda f: [f / "garbage.pt2", "--input-shape", "1,16"], 2, "load",
     ["not a readable torch.export archive"]),
    ("truncated-onnx", lambda f: [f / "truncated.onnx", "--input-shape", "1,16"], 2, "load", ["ONNX file"]),
    ("garbage-onnx", lambda f: [f / "garbage.onnx", "--input-shape", "1,16"], 2, "load", ["ONNX file"]),
    ("unparseable-model-arg", lambda f: ["not-a-file-nor-module", "--input-shape", "1,16"], 2, "load",
     ["cannot read MODEL"]),
    # Python model code
    ("import-raises", lambda f: ["tests/errors/import_raises.py:build", "--input-shape", "1,16"], 2, "load",
     ["ImportError", "broken on purpose"]),
    ("module-not-found", lambda f: ["no_such_package.models:build", "--input-shape", "1,16"], 2, "load",
     ["ModuleNotFoundError"]),
    ("missing-attribute", lambda f: [f"{MODELS}:no_such_builder", "--input-shape", "1,16"], 2, "load",
     ["no attribute 'no_such_builder'"]),
    ("returns-non-module", lambda f: [f"{MODELS}:not_a_module", "--input-shape", "1,16"], 2, "load",
     ["gave a dict, not a torch.nn.Module"]),
    ("non-module-with-weights", lambda f: [f"{MODELS}:not_a_module", "--input-shape", "1,16", "--weights",
                                           f / "wrong_arch.pt"], 2, "load", ["not a torch.nn.Module"]),
    ("forward-raises", lambda f: [f"{MODELS}:raises", "--input-shape", "1,16"], 2, "pytorch",
     ["boom in forward", "given: x float32[1, 16]"]),
    ("forward-returns-none", lambda f: [f"{MODELS}:returns_none", "--input-shape", "1,16"], 2, "pytorch",
     ["forward returned a NoneType"]),
    # weights
    ("weights-missing", lambda f: [*MLP, "--weights", f / "nope.pt"], 2, "load", ["no such weights file"]),
    ("weights-garbage", lambda f: [*MLP, "--weights", f / "garbage.pt"], 2, "load", ["not a state dict"]),
    ("weights-wrong-architecture", lambda f: [*MLP, "--weights", f / "wrong_arch.pt"], 2, "load",
     ["does not fit the model"]),
    # the input description: expected vs given
    ("wrong-size", lambda f: [f"{MODELS}:mlp", "--input-shape", "1,15"], 2, "pytorch",
     ["given: x float32[1, 15]", "last dimension is 16"]),
    ("wrong-rank", lambda f: [f"{MODELS}:conv3", "--input-shape", "1,3"], 2, "pytorch",
     ["given: image float32[1, 3]", "rank 4"]),
    ("wrong-channels", lambda f: [f"{MODELS}:conv3", "--input-shape", "1,1,8,8"], 2, "pytorch",
     ["given: image float32[1, 1, 8, 8]", "3 channels"]),
    ("wrong-dtype", lambda f: [*MLP, "--input-dtype", "int64"], 2, "pytorch",
     ["given: x int64[1, 16]", "a float input"]),
    ("unknown-dtype", lambda f: [*MLP, "--input-dtype", "float8"], 2, "inputs", ["unknown dtype 'float8'"]),
    ("dtype-count", lambda f: [*TWO, "--input-shape", "1,3,8,8", "--input-shape", "1,6", "--input-dtype", "float32",
                               "--input-dtype", "float32", "--input-dtype", "int64"], 2, "inputs",
     ["3 --input-dtype values for 2"]),
    ("too-few-inputs", lambda f: [*TWO, "--input-shape", "1,3,8,8"], 2, "inputs",
     ["needs 2 input(s) (image, features), 1"]),
    ("too-many-inputs", lambda f: [*MLP, "--input-shape", "1,16"], 2, "inputs", ["takes 1 input(s) (x), 2"]),
    ("inputs-swapped", lambda f: [*TWO, "--input-shape", "1,6", "--input-shape", "1,3,8,8"], 2, "pytorch",
     ["given: image float32[1, 6], features float32[1, 3, 8, 8]", "'conv'"]),
    ("sample-wrong-shape", lambda f: [*MLP, "--sample-input", f / "x_15.npy"], 2, "inputs",
     ["has shape (1, 15), input 'x' expects (1, 16)"]),
    ("sample-garbage", lambda f: [*MLP, "--sample-input", f / "garbage.npy"], 2, "inputs", ["cannot read"]),
    ("eval-garbage", lambda f: [*MLP, "--eval-data", f / "garbage.npz"], 2, "inputs", ["cannot read"]),
    ("no-cases", lambda f: [*MLP, "--cases", "0"], 2, "inputs", ["nothing to check parity on"]),
    ("negative-cases", lambda f: [*MLP, "--cases", "-3"], 2, "inputs", ["--cases must be >= 0"]),
    ("int-high-zero", lambda f: [*MLP, "--int-high", "0"], 2, "inputs", ["--int-high >= 1"]),
    # flags
    ("tolerance-not-a-number", lambda f: [*MLP, "--tolerance", "fp32=abc"], 2, "arguments", ["is not a number"]),
    ("tolerance-negative", lambda f: [*MLP, "--tolerance", "fp32=-1"], 2, "arguments", ["positive finite"]),
    ("tolerance-nan", lambda f: [*MLP, "--tolerance", "fp16=nan"], 2, "arguments", ["positive finite"]),
    ("tolerance-unknown-precision", lambda f: [*MLP, "--tolerance", "int4=0.1"], 2, "arguments", ["PRECISION=REL"]),
    ("shape-not-numbers", lambda f: [f"{MODELS}:mlp", "--input-shape", "1,x"], 2, "arguments", ["is not a shape"]),
    ("shape-zero", lambda f: [f"{MODELS}:mlp", "--input-shape", "0,16"], 2, "arguments", ["positive integer"]),
    ("unknown-target", lambda f: [*MLP, "--targets", "onnx,coreml"], 2, "arguments", ["coreml"]),
    ("unknown-flag", lambda f: [*MLP, "--opset", "17"], 2, "arguments", ["--opset"]),
    # NaN / Inf: a parity failure, said plainly, before any conversion
    ("nan-output", lambda f: [f"{MODELS}:log", "--input-shape", "1,16"], 3, "pytorch",
     ["PyTorch's own output holds NaN or Inf", "output in case random_0"]),
    ("inf-output", lambda f: [f"{MODELS}:inf", "--input-shape", "1,16"], 3, "pytorch",
     ["PyTorch's own output holds NaN or Inf"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, files, tmp_path, capsys):
    _, args, code, stage, words = case
    out = tmp_path / "out"
    before = make_previous(out)
    outcome = convert_here(capsys, *args(files), "--out", out, "--force")
    assert_error(outcome, code, stage, *words)
    assert_intact(out, before)
    assert not (tmp_path / "out.failed").exists()  # nothing was converted, so there is no report


def test_verbose_adds_the_traceback(files, tmp_path, capsys):
    outcome = convert_here(capsys, f"{MODELS}:raises", "--input-shape", "1,16", "--out", tmp_path / "o", "-vv")
    assert_error(outcome, 2, "pytorch", "boom in forward", verbose=True)


def test_existing_folder_needs_force(tmp_path, capsys):
    out = tmp_path / "out"
    before = make_previous(out)
    outcome = convert_here(capsys, *MLP, "--out", out)
    assert_error(outcome, 2, "output", "already exists", "--force")
    assert_intact(out, before)


def test_output_path_is_a_file(tmp_path, capsys):
    out = tmp_path / "out"
    out.write_text("a file")
    outcome = convert_here(capsys, *MLP, "--out", out, "--force")
    assert_error(outcome, 2, "output", "is not a folder")
    assert out.read_text() == "a file"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_output_parent_is_a_file(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    outcome = convert_here(capsys, *MLP, "--out", tmp_path / "file" / "out")
    assert_error(outcome, 2, "output", "cannot create")


@pytest.mark.parametrize("verbose", [False, True])
def test_unexpected_bug_is_one_message(verbose, monkeypatch, tmp_path, capsys):
    """A failure no check anticipated (simulated): exit 1 and one `[internal]` line; the traceback with -v."""
    from converter import pipeline

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(pipeline, "convert", broken)
    outcome = convert_here(capsys, *MLP, "--out", tmp_path / "out", *(["-v"] if verbose else []))
    assert_error(outcome, 1, "internal", "RuntimeError: a bug", "-v", verbose=verbose)
