"""The whole pipeline with no network at all, and the same model converted twice giving the same bytes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from faults import MODELS, REPO

# conv3's input (1, 3, 8, 8) becomes (1, 8, 8, 3) in TensorFlow: a batch of RGB images to onnx2tf, which then
# wants its calibration sample file and downloads it when it is not in the working directory.
ARGS = ["convert", f"{MODELS}:conv3", "--input-shape", "1,3,8,8", "-q"]


def _can_unshare() -> bool:
    return shutil.which("unshare") is not None and \
        subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


# A fresh network namespace has its loopback interface down; a machine without network still has it up (the
# browser stage serves the artifacts to Chromium on 127.0.0.1). Bring it up (SIOCSIFFLAGS, IFF_UP), then run.
LOOPBACK_UP = """import fcntl, os, socket, struct, sys
fcntl.ioctl(socket.socket(socket.AF_INET, socket.SOCK_DGRAM), 0x8914, struct.pack("16sH14x", b"lo", 0x1 | 0x40))
os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two whole conversions of one model: the first in a network namespace with no network (when this
    machine allows one), the second as usual."""
    base = tmp_path_factory.mktemp("repro")
    offline = _can_unshare()
    done = []
    for i, prefix in enumerate([["unshare", "-n", sys.executable, "-c", LOOPBACK_UP] if offline else [sys.executable],
                                [sys.executable]]):
        out = base / f"run{i}"
        proc = subprocess.run([*prefix, "-m", "converter", *ARGS, "--out", str(out)], cwd=REPO,
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        done.append(out)
    return offline, done


@pytest.mark.slow
def test_whole_pipeline_offline(runs):
    offline, (first, _) = runs
    if not offline:
        pytest.skip("unshare -n is not permitted here (needs root or user namespaces)")
    # The namespace really has no network...
    probe = subprocess.run(["unshare", "-n", sys.executable, "-c",
                            "import socket; socket.create_connection(('140.82.112.3', 443), timeout=5)"],
                           capture_output=True, text=True)
    assert probe.returncode != 0 and "unreachable" in probe.stderr.lower(), probe.stderr
    # ...and the model did take onnx2tf down its download path: an NHWC batch of 3-channel images.
    metadata = json.loads((first / "metadata.json").read_text())
    shape = metadata["artifacts"]["saved_model"]["inputs"][0]["shape"]
    assert len(shape) == 4 and shape[-1] == 3 and shape[0] <= 20
    report = json.loads((first / "report.json").read_text())
    # Every default stage, the browser's too: Chromium loads the page, TF.js and ONNX Runtime Web from our origin.
    assert {s["name"] for s in report["stages"]} >= {"onnx", "saved_model", "tfjs", "browser", "ptl"}
    assert [s["status"] for s in report["stages"]] == ["passed"] * len(report["stages"])


@pytest.mark.slow
def test_calibration_file_is_ours(tmp_path, monkeypatch):
    """onnx2tf reads the file the stage puts in its working directory and never calls out."""
    from converter.stages.saved_model import ONNX2TF_SAMPLE_FILE, _offline_workdir, import_tensorflow

    import_tensorflow()
    import requests
    from onnx2tf.utils.common_functions import download_test_image_data

    def no_network(*args, **kwargs):
        raise AssertionError("onnx2tf tried the network")

    monkeypatch.setattr(requests, "get", no_network)
    with _offline_workdir(tmp_path / "work", seed=0):
        data = download_test_image_data()
    assert data.shape == (20, 128, 128, 3) and (tmp_path / "work" / ONNX2TF_SAMPLE_FILE).is_file()


# Files whose bytes legitimately differ between two conversions, and why. Everything else must be identical
# (tfjs/model.json included: the stage sorts the keys that tensorflowjs writes in hash order).
VARYING = {
    "report.json": "timings, peak memory",
    "report.html": "timings, peak memory",
    ".cache/index.json": "the report's timings and peak memory, kept for a re-run (converter/cache.py)",
    "browser.json": "the browser stage's latencies, cold starts and the browser's build",
    # TensorFlow gives every SavedModel save a random `uuid` in its fingerprint; the content hashes beside it
    # are equal (checked below). Nothing that loads the SavedModel reads it.
    "saved_model/fingerprint.pb": "FingerprintDef.uuid is random per save",
}


@pytest.mark.slow
def test_same_model_same_bytes(runs):
    _, (first, second) = runs
    files = sorted(str(p.relative_to(first)) for p in first.rglob("*") if p.is_file())
    assert files == sorted(str(p.relative_to(second)) for p in second.rglob("*") if p.is_file())
    differ = [f for f in files if not f.startswith("logs/") and f not in VARYING
              and (first / f).read_bytes() != (second / f).read_bytes()]
    assert differ == [], f"differ between two conversions: {differ}"
    from converter.stages.saved_model import import_tensorflow

    import_tensorflow()
    from tensorflow.core.protobuf import fingerprint_pb2

    prints = []
    for run in (first, second):
        fingerprint = fingerprint_pb2.FingerprintDef()
        fingerprint.ParseFromString((run / "saved_model" / "fingerprint.pb").read_bytes())
        fingerprint.ClearField("uuid")
        prints.append(fingerprint.SerializeToString(deterministic=True))
    assert prints[0] == prints[1] and len(prints[0]) > 40
    for name in ("model.onnx", "model.ptl", "model.pt", "tfjs/model.json", "tflite/model_float32.tflite"):
        assert name in files
