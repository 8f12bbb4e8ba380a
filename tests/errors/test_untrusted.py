"""Model files that would run code when loaded: without --trust-model nothing from them runs (the side
effect the file would cause is checked to be absent), and the same file does run when trusted, which shows
the check is not vacuous."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from faults import MODELS, assert_error, assert_intact, convert_here, make_previous


class _Payload:
    """Unpickling this creates the file at `marker` (os.system would do anything else just as well)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "pwned"
    yield path


def test_malicious_torch_save_is_refused(tmp_path, marker, capsys):
    model = tmp_path / "model.pt"
    torch.save({"model": _Payload(str(marker))}, model)
    out = tmp_path / "out"
    before = make_previous(out)
    outcome = convert_here(capsys, model, "--input-shape", "1,16", "--out", out, "--force")
    assert_error(outcome, 2, "load", "full pickle", "--trust-model")
    assert not marker.exists(), "unpickling ran code from the file"
    assert_intact(out, before)


def test_malicious_weights_are_never_unpickled(tmp_path, marker, capsys):
    weights = tmp_path / "weights.pt"
    torch.save({"net.0.weight": _Payload(str(marker))}, weights)
    # --trust-model applies to MODEL, never to --weights.
    outcome = convert_here(capsys, f"{MODELS}:mlp", "--input-shape", "1,16", "--weights", weights, "--trust-model",
                           "--out", tmp_path / "out")
    assert_error(outcome, 2, "load", "not a state dict that loads safely")
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_raw_pickle_is_refused(tmp_path, marker, capsys):
    model = tmp_path / "model.pkl"
    model.write_bytes(pickle.dumps(_Payload(str(marker))))
    outcome = convert_here(capsys, model, "--input-shape", "1,16", "--out", tmp_path / "out", "--trust-model")
    assert_error(outcome, 2, "load", "neither a TorchScript nor a torch.save archive")
    assert not marker.exists()


def test_the_payload_does_run_when_trusted(tmp_path, marker, capsys):
    """The control: with --trust-model the same file is unpickled and its code runs."""
    model = tmp_path / "model.pt"
    torch.save({"model": _Payload(str(marker))}, model)
    outcome = convert_here(capsys, model, "--input-shape", "1,16", "--out", tmp_path / "out", "--trust-model")
    assert marker.exists()
    assert_error(outcome, 2, "load", "not a torch.nn.Module")


def test_torchscript_needs_trust(tmp_path, capsys):
    model = tmp_path / "model.pt"
    torch.jit.save(torch.jit.trace(torch.nn.Linear(16, 3), torch.zeros(1, 16)), model)
    outcome = convert_here(capsys, model, "--input-shape", "1,16", "--out", tmp_path / "out")
    assert_error(outcome, 2, "load", "TorchScript archive, which carries code", "--trust-model")
    assert not (tmp_path / "out").exists()


def test_weights_only_loader_is_used(monkeypatch, tmp_path, capsys):
    """Every torch.load call made without --trust-model asks for weights_only=True."""
    calls = []
    real = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    torch.save({"a": torch.zeros(2)}, tmp_path / "state.pt")
    convert_here(capsys, tmp_path / "state.pt", "--input-shape", "1,16", "--out", tmp_path / "o1")
    torch.save({"net.0.weight": torch.zeros(8, 16)}, tmp_path / "w.pt")
    convert_here(capsys, f"{MODELS}:mlp", "--input-shape", "1,16", "--weights", tmp_path / "w.pt", "--out",
                 tmp_path / "o2")
    assert calls and all(c is True for c in calls), calls
    assert not os.path.exists(tmp_path / "o1") and not os.path.exists(tmp_path / "o2")
