"""`python -m converter endpoint` on the converted digits folder, through the real CLI, Ray Serve and ONNX Runtime,
on loopback: both protocols against PyTorch's golden outputs, bad input, a replica killed under load, Ray's
Prometheus metrics, Ctrl-C, and a replica that refuses a folder whose artifact no longer matches golden/."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import psutil
import pytest

from converter.loadgen import EndpointProcess, run_load
from runcli import REPO

REPLICAS = 2
MAX_BODY_MB = 1


def _request(url: str, body: bytes | None = None, headers: dict | None = None, method: str | None = None):
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read(), r.headers.get("content-type")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("content-type")


def _json(url: str, doc, **kw):
    status, body, _ = _request(url, json.dumps(doc).encode() if not isinstance(doc, bytes) else doc,
                               {"content-type": "application/json", **kw.pop("headers", {})}, **kw)
    return status, json.loads(body)


@pytest.fixture(scope="module")
def golden_cases(digits_dir):
    doc = json.loads((digits_dir / "golden" / "golden.json").read_text())
    return [(np.load(digits_dir / "golden" / f"input_x_{c['name']}.npy"),
             np.load(digits_dir / "golden" / f"output_output_{c['name']}.npy")) for c in doc["cases"]]


def _copies() -> set:
    """The replicas' copies of served folders (converter/endpoint.py:files_root) on this machine."""
    return set(Path(tempfile.gettempdir()).glob("converter-endpoint-*"))


@pytest.fixture(scope="module")
def endpoint(digits_dir):
    before = _copies()
    ep = EndpointProcess(digits_dir, "--replicas", str(REPLICAS), "--max-body-mb", str(MAX_BODY_MB), "--name",
                         "digits", cwd=REPO)
    try:
        ep.wait_ready()
        yield ep
    finally:
        code = ep.stop()
    assert code == 0, ep.output
    assert "stopping" in ep.output
    assert _copies() - before == set()  # one replica was killed (SIGKILL) on the way


def _rel(got, want) -> float:
    return float(np.max(np.abs(np.asarray(got, np.float64) - want))) / float(np.max(np.abs(want)))


def test_invocations_return_pytorchs_outputs(endpoint, golden_cases):
    assert _request(endpoint.base + "/ping")[0] == 200
    for x, want in golden_cases:
        status, doc = _json(endpoint.base + "/invocations", {"x": x.tolist()})
        assert status == 200, doc
        assert _rel(doc["output"], want) <= 1e-4
        # the one-input shorthand: the bare nested list
        status, doc = _json(endpoint.base + "/invocations", x.tolist())
        assert status == 200 and _rel(doc["output"], want) <= 1e-4
        buffer = io.BytesIO()
        np.save(buffer, x)
        status, body, content_type = _request(endpoint.base + "/invocations", buffer.getvalue(),
                                              {"content-type": "application/x-npy", "accept": "application/x-npy"})
        assert status == 200 and content_type == "application/x-npy"
        got = np.load(io.BytesIO(body))
        assert got.dtype == np.float32 and got.shape == want.shape and _rel(got, want) <= 1e-4


def test_kserve_v2_returns_pytorchs_outputs(endpoint, golden_cases):
    base = endpoint.base + "/v2"
    assert _request(base + "/health/ready")[0] == 200
    assert _request(base + "/health/live")[0] == 200
    assert _request(base + "/models/digits/ready")[0] == 200
    status, meta, _ = _request(base + "/models/digits")
    meta = json.loads(meta)
    assert status == 200 and meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [1, 1, 8, 8]}]
    for i, (x, want) in enumerate(golden_cases):
        status, doc = _json(base + "/models/digits/infer", {"id": f"r{i}", "inputs": [
            {"name": "x", "shape": list(x.shape), "datatype": "FP32", "data": x.reshape(-1).tolist()}]})
        assert status == 200, doc
        assert doc["model_name"] == "digits" and doc["id"] == f"r{i}"
        (out,) = doc["outputs"]
        assert out["name"] == "output" and out["shape"] == [1, 10] and out["datatype"] == "FP32"
        assert _rel(np.reshape(out["data"], out["shape"]), want) <= 1e-4


def _v2(x, **override):
    return {"inputs": [{"name": "x", "shape": list(np.shape(x)), "datatype": "FP32",
                        "data": np.asarray(x).reshape(-1).tolist(), **override}]}


def test_bad_requests_get_4xx_and_the_replicas_keep_serving(endpoint, golden_cases):
    x = golden_cases[0][0]
    inv, infer = endpoint.base + "/invocations", endpoint.base + "/v2/models/digits/infer"
    float64 = io.BytesIO()
    np.save(float64, x.astype(np.float64))
    big = b"[" + b"0," * (MAX_BODY_MB * 1024**2 // 2) + b"0]"
    cases = [  # (what, url, body, headers, status, words in the error)
        ("malformed JSON", inv, b"{bad", {"content-type": "application/json"}, 400, "not valid JSON"),
        ("wrong shape", inv, json.dumps({"x": [[1.0, 2.0]]}).encode(), {"content-type": "application/json"}, 400,
         "[1, 1, 8, 8]"),
        ("ragged array", inv, json.dumps({"x": [[1.0], [1.0, 2.0]]}).encode(), {"content-type": "application/json"},
         400, "rectangular"),
        ("text values", inv, json.dumps({"x": [[["a"] * 8] * 8]}).encode(), {"content-type": "application/json"},
         400, "not numbers"),
        ("unknown input", inv, json.dumps({"x": x.tolist(), "y": 1}).encode(), {"content-type": "application/json"},
         400, "unknown input"),
        ("wrong dtype (.npy float64)", inv, float64.getvalue(), {"content-type": "application/x-npy"}, 400,
         "float64"),
        ("not an .npy", inv, b"\x93NUMPY garbage", {"content-type": "application/x-npy"}, 400, "not a valid"),
        ("unsupported content type", inv, b"x", {"content-type": "text/csv"}, 415, "text/csv"),
        ("unsupported accept", inv, json.dumps({"x": x.tolist()}).encode(),
         {"content-type": "application/json", "accept": "text/csv"}, 406, "text/csv"),
        ("oversized body", inv, big, {"content-type": "application/json"}, 413, "at most"),
        ("v2 wrong datatype", infer, json.dumps(_v2(x.astype(np.int64), datatype="INT64")).encode(), {}, 400,
         "FP32"),
        ("v2 data does not fill the shape", infer, json.dumps(_v2(x, shape=[1, 1, 8, 9])).encode(), {}, 400,
         "do not fill"),
        ("v2 wrong shape", infer, json.dumps(_v2(x.reshape(1, 8, 8))).encode(), {}, 400, "[1, 1, 8, 8]"),
        ("v2 no inputs", infer, b'{"x": 1}', {}, 400, '"inputs"'),
        ("v2 unknown model", endpoint.base + "/v2/models/other/infer", json.dumps(_v2(x)).encode(), {}, 404,
         "digits"),
        ("unknown route", endpoint.base + "/predict", b"{}", {}, 404, "no route"),
    ]
    for what, url, body, headers, want_status, words in cases:
        status, data, content_type = _request(url, body, headers)
        assert status == want_status, (what, status, data[:300])
        assert content_type == "application/json", what
        assert words in json.loads(data)["error"], (what, data[:300])
    assert _request(inv, method="GET")[0] == 405
    # every replica still answers, correctly
    for _ in range(2 * REPLICAS):
        status, doc = _json(inv, {"x": x.tolist()})
        assert status == 200 and _rel(doc["output"], golden_cases[0][1]) <= 1e-4


def _replica_pids(ep: EndpointProcess) -> list[int]:
    """The endpoint's replica processes (its embedded Ray runs below it)."""
    pids = []
    for p in psutil.Process(ep.proc.pid).children(recursive=True):
        try:
            if any("ServeReplica:converter" in part for part in p.cmdline()):
                pids.append(p.pid)
        except psutil.NoSuchProcess:
            pass
    return pids


def test_a_replica_killed_under_load_loses_no_request(endpoint, golden_cases):
    bodies = [json.dumps({"x": x.tolist()}).encode() for x, _ in golden_cases]
    before = _replica_pids(endpoint)
    assert len(before) == REPLICAS
    killed = []

    def kill_one():
        killed.append(before[0])
        os.kill(before[0], signal.SIGKILL)

    load = run_load(endpoint.base + "/invocations", bodies, {"content-type": "application/json"}, requests=400,
                    concurrency=4, during=kill_one, retries=8)
    assert killed
    assert len(load.answers) == 400
    for answer in load.answers:
        assert answer.status == 200, (answer.status, answer.body[:300], answer.retries)
        want = golden_cases[answer.index % len(golden_cases)][1]
        assert _rel(json.loads(answer.body)["output"], want) <= 1e-4
    # Serve replaces the replica
    deadline = time.monotonic() + 60
    after = _replica_pids(endpoint)
    while time.monotonic() < deadline and not (len(after) == REPLICAS and killed[0] not in after):
        time.sleep(0.5)
        after = _replica_pids(endpoint)
    assert len(after) == REPLICAS and killed[0] not in after, (before, after)
    print(f"400 requests at 4 clients, one replica of {REPLICAS} killed half-way: {load.throughput:.0f} req/s, "
          f"p50 {load.percentile_ms(50):.1f} ms, p99 {load.percentile_ms(99):.1f} ms, {load.retried} retried")


def _samples(text: str, name: str) -> list:
    from prometheus_client.parser import text_string_to_metric_families

    return [s for family in text_string_to_metric_families(text) for s in family.samples if s.name == name]


def test_prometheus_metrics_count_requests_errors_latency_and_replicas(endpoint, golden_cases):
    x = golden_cases[0][0]
    for _ in range(5):
        assert _json(endpoint.base + "/invocations", {"x": x.tolist()})[0] == 200
        assert _request(endpoint.base + "/invocations", b"{bad", {"content-type": "application/json"})[0] == 400
    deadline = time.monotonic() + 60
    while True:  # Ray reports metrics every 2 s (endpoint.py): wait for this test's own requests to show
        text = urllib.request.urlopen(endpoint.metrics_url, timeout=10).read().decode()
        requests = sum(s.value for s in _samples(text, "ray_serve_num_http_requests_total")
                       if s.labels.get("route") == "/" and s.labels.get("application") == "converter")
        errors = sum(s.value for s in _samples(text, "ray_serve_num_http_error_requests_total")
                     if s.labels.get("application") == "converter")
        latency = sum(s.value for s in _samples(text, "ray_serve_http_request_latency_ms_count")
                      if s.labels.get("application") == "converter")
        healthy = sum(s.value for s in _samples(text, "ray_serve_deployment_replica_healthy")
                      if s.labels.get("application") == "converter")
        if (requests >= 10 and errors >= 5 and latency >= 10 and healthy == REPLICAS) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert requests >= 10 and errors >= 5 and latency >= 10, (requests, errors, latency)
    assert healthy == REPLICAS


def test_a_replica_refuses_a_folder_whose_artifact_breaks_golden(digits_dir, tmp_path):
    folder = tmp_path / "tampered"
    folder.mkdir()
    shutil.copy(digits_dir / "model.onnx", folder)
    shutil.copy(digits_dir / "metadata.json", folder)
    shutil.copytree(digits_dir / "golden", folder / "golden")
    target = folder / "golden" / "output_output_random_0.npy"
    np.save(target, np.load(target) + 1.0)  # PyTorch's "answer" no longer matches what model.onnx computes
    before = _copies()
    ep = EndpointProcess(folder, cwd=REPO)
    try:
        code = ep.proc.wait(240)
    finally:
        ep.stop()
    time.sleep(0.5)
    assert code == 3, ep.output
    assert "no replica would start" in ep.output and "golden case 'random_0'" in ep.output, ep.output
    assert "Traceback" not in ep.output
    assert _copies() - before == set()


def test_a_folder_without_a_model_is_a_usage_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "converter", "endpoint", str(tmp_path), "--port", "1"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "[endpoint]" in proc.stderr and "model.onnx" in proc.stderr


def test_autoscale_adds_a_replica_under_load(digits_dir, golden_cases):
    """--autoscale 1,2 starts one replica; a burst of concurrent requests brings the second."""
    ep = EndpointProcess(digits_dir, "--autoscale", "1,2", cwd=REPO)
    try:
        ep.wait_ready()
        assert len(_replica_pids(ep)) == 1
        bodies = [json.dumps({"x": x.tolist()}).encode() for x, _ in golden_cases]
        deadline = time.monotonic() + 90
        while len(_replica_pids(ep)) < 2 and time.monotonic() < deadline:
            load = run_load(ep.base + "/invocations", bodies, {"content-type": "application/json"}, requests=200,
                            concurrency=8)
            assert all(a.status == 200 for a in load.answers)
        assert len(_replica_pids(ep)) == 2, ep.output
    finally:
        assert ep.stop() == 0, ep.output
