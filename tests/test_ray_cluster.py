"""`--address`: `converter endpoint` and `converter batch` on a Ray cluster started apart from them (`ray start
--head`, token authentication on, as Ray starts it), not the Ray they embed. One node, on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from converter.endpoint import free_port
from converter.loadgen import EndpointProcess
from runcli import REPO, run_cli


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """`ray start --head --block` in a process group of its own, which the teardown ends (not `ray stop`, which
    would stop every Ray on the machine)."""
    port = free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}
    temp = tmp_path_factory.mktemp("ray")
    head = subprocess.Popen([str(Path(sys.executable).with_name("ray")), "start", "--head", "--block",
                             f"--port={port}", "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats",
                             f"--temp-dir={temp}"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while head.poll() is None and time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        assert head.poll() is None, f"ray start exited {head.returncode}"
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()


def test_endpoint_deploys_to_the_cluster_and_answers_like_pytorch(cluster, digits_dir):
    ep = EndpointProcess(digits_dir, "--address", cluster, "--name", "digits", cwd=REPO)
    try:
        ep.wait_ready()
        assert "metrics:" not in ep.output  # the cluster's own metrics export, not ours
        import urllib.request

        doc = json.loads((digits_dir / "golden" / "golden.json").read_text())
        for case in doc["cases"]:
            x = np.load(digits_dir / "golden" / f"input_x_{case['name']}.npy")
            want = np.load(digits_dir / "golden" / f"output_output_{case['name']}.npy")
            request = urllib.request.Request(ep.base + "/v2/models/digits/infer", data=json.dumps({"inputs": [
                {"name": "x", "shape": list(x.shape), "datatype": "FP32", "data": x.reshape(-1).tolist()}]}).encode())
            with urllib.request.urlopen(request, timeout=30) as response:
                out = json.loads(response.read())["outputs"][0]
            got = np.reshape(out["data"], out["shape"])
            assert np.max(np.abs(got - want)) / np.max(np.abs(want)) <= 1e-4
    finally:
        code = ep.stop(signal.SIGTERM)
    assert code == 0 and "stopping" in ep.output, ep.output
    assert "INFO" not in ep.output and "Traceback" not in ep.output, ep.output


def test_batch_runs_its_tasks_on_the_cluster(cluster, tmp_path):
    models = tmp_path / "models.txt"
    models.write_text("digits: examples/digits/model.py:build --weights examples/digits/weights.pt "
                      "--input-shape 1,1,8,8 --targets onnx,tflite --no-browser\n")
    proc = run_cli("batch", models, "--out-root", tmp_path / "out", "--address", cluster, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (row,) = json.loads((tmp_path / "out" / "batch.json").read_text())["rows"]
    assert row["status"] == "passed" and json.loads(Path(row["report"]).read_text())["status"] == "passed"
    assert json.loads((tmp_path / "out" / "batch.json").read_text())["address"] == cluster
