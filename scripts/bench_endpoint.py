"""Benchmark: `converter endpoint` under load on loopback, at 1, 2 and 4 replicas, against the plain alternative
(the same model.onnx called in-process by ONNX Runtime, one thread, no HTTP).

    .venv/bin/python scripts/bench_endpoint.py [--folder DIR] [--requests 1000] [--concurrency 8] [--runs 3]

Without --folder it converts the bundled digits example first (--targets onnx). Each run starts the endpoint
through the CLI at each replica count in turn (the order alternates between runs), sends 50 warm-up requests,
then --requests JSON /invocations from --concurrency client threads with loadgen's retrying client; the table
has the median of the runs' throughput, p50 and p99, and the 1-minute load average at each start. The client
threads run on the same machine, so on a small machine they take CPU from the replicas. The section goes into
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchdoc import write_section  # scripts/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from converter.loadgen import EndpointProcess, run_load  # noqa: E402

SECTION = "## Endpoint: converter endpoint on Ray Serve, under load"
REPLICAS = (1, 2, 4)


def convert_digits(out: Path) -> Path:
    cmd = [sys.executable, "-m", "converter", "convert", "examples/digits/model.py:build", "--weights",
           "examples/digits/weights.pt", "--input-shape", "1,1,8,8", "--targets", "onnx", "--out", str(out), "--force"]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    return out


def bodies(folder: Path) -> list[bytes]:
    doc = json.loads((folder / "golden" / "golden.json").read_text())
    name = doc["inputs"][0]["name"]
    return [json.dumps({name: np.load(folder / "golden" / f"input_{name}_{c['name']}.npy").tolist()}).encode()
            for c in doc["cases"]]


def in_process(folder: Path, requests: int) -> dict:
    """The plain alternative: ONNX Runtime in this process, one call after another."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
    doc = json.loads((folder / "golden" / "golden.json").read_text())
    name = doc["inputs"][0]["name"]
    x = np.load(folder / "golden" / f"input_{name}_{doc['cases'][0]['name']}.npy")
    for _ in range(50):
        session.run(None, {session.get_inputs()[0].name: x})
    times = []
    started = time.perf_counter()
    for _ in range(requests):
        t = time.perf_counter()
        session.run(None, {session.get_inputs()[0].name: x})
        times.append(time.perf_counter() - t)
    seconds = time.perf_counter() - started
    times.sort()
    return {"throughput": requests / seconds, "p50": 1000 * times[len(times) // 2],
            "p99": 1000 * times[int(0.99 * len(times))]}


def serve_run(folder: Path, replicas: int, requests: int, concurrency: int) -> dict:
    load_avg = os.getloadavg()[0]
    ep = EndpointProcess(folder, "--replicas", str(replicas), cwd=ROOT)
    try:
        ep.wait_ready()
        url, headers, data = ep.base + "/invocations", {"content-type": "application/json"}, bodies(folder)
        run_load(url, data, headers, requests=50, concurrency=concurrency)
        load = run_load(url, data, headers, requests=requests, concurrency=concurrency)
    finally:
        ep.stop(signal.SIGTERM)  # SIGINT is ignored when this runs as a background job
    failed = sum(a.status != 200 for a in load.answers)
    return {"throughput": load.throughput, "p50": load.percentile_ms(50), "p99": load.percentile_ms(99),
            "failed": failed, "retried": load.retried, "load": load_avg}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, help="a converted folder (default: digits, converted now)")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or convert_digits(Path(tmp) / "digits")
        results: dict[int, list[dict]] = {r: [] for r in REPLICAS}
        for run in range(args.runs):
            order = REPLICAS if run % 2 == 0 else tuple(reversed(REPLICAS))
            for replicas in order:
                result = serve_run(folder, replicas, args.requests, args.concurrency)
                results[replicas].append(result)
                print(f"run {run + 1}, {replicas} replica(s): {result}", flush=True)
        plain = in_process(folder, args.requests)
    rows = []
    for replicas in REPLICAS:
        runs = results[replicas]
        rows.append(f"| {replicas} | {statistics.median(r['throughput'] for r in runs):.0f} | "
                    f"{statistics.median(r['p50'] for r in runs):.1f} | {statistics.median(r['p99'] for r in runs):.1f} | "
                    f"{sum(r['failed'] for r in runs)} | {sum(r['retried'] for r in runs)} | "
                    f"{', '.join(format(r['load'], '.1f') for r in runs)} |")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    name = "digits (converted now, model.onnx)" if args.folder is None else str(args.folder)
    body = f"""{SECTION}

Measured by `.venv/bin/python scripts/bench_endpoint.py --requests {args.requests} --concurrency {args.concurrency}
--runs {args.runs}` on {time.strftime('%Y-%m-%d')} at {commit} ({platform.machine()}, {os.cpu_count()} cores): {name},
JSON `/invocations` on loopback from {args.concurrency} client threads in the same machine, every answer checked for
status 200. Median of {args.runs} runs per row; the replica counts' order alternates between runs.

| replicas | requests/s | p50 ms | p99 ms | failed | retried | load average at start |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}
| in-process ONNX Runtime, no HTTP (the plain alternative) | {plain['throughput']:.0f} | {plain['p50']:.3f} | {plain['p99']:.3f} | | | |

Ray Serve's proxy, the HTTP parsing and JSON decoding cost far more than this model's inference (a few
microseconds): with {os.cpu_count()} cores shared by the proxy, the replicas and the client threads, more replicas
do not add throughput here; what they add where each replica has cores of its own (a larger
machine, a cluster through `--address`) was not measured.
"""
    write_section("endpoint", body)
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
