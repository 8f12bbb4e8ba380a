"""A bounded HTTP load generator for `converter endpoint`, with the retrying client the README documents, and
the endpoint command run as a child process (tests, benchmarks).

Inference requests are idempotent, so a client retries one that failed on the way (a connection reset, or
502/503/504 and 500 while Serve replaces a replica that died) a bounded number of times with a short backoff.
4xx answers are the request's own fault and are never retried. Used by tests/test_endpoint.py and
scripts/bench_endpoint.py; the standard library only (Ray is not imported).
"""

from __future__ import annotations

import http.client
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

RETRY_STATUSES = {500, 502, 503, 504}


@dataclass
class Answer:
    status: int
    body: bytes
    retries: int
    seconds: float
    index: int = -1  # which of run_load's requests


def post(url: str, body: bytes, headers: dict[str, str], retries: int = 5, backoff_s: float = 0.2,
         timeout_s: float = 30.0) -> Answer:
    """POST with up to `retries` retries on connection errors and RETRY_STATUSES."""
    parts = urlsplit(url)
    started = time.perf_counter()
    for attempt in range(retries + 1):
        try:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout_s)
            try:
                conn.request("POST", parts.path, body=body, headers=headers)
                response = conn.getresponse()
                status, data = response.status, response.read()
            finally:
                conn.close()
        except (ConnectionError, http.client.HTTPException, TimeoutError, OSError):
            status, data = 0, b""
        if status not in RETRY_STATUSES and status != 0 or attempt == retries:
            return Answer(status, data, attempt, time.perf_counter() - started)
        time.sleep(backoff_s * (attempt + 1))
    raise AssertionError("unreachable")


@dataclass
class Load:
    answers: list[Answer] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def throughput(self) -> float:
        return len(self.answers) / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float:
        times = sorted(a.seconds for a in self.answers)
        return 1000 * times[min(len(times) - 1, int(q / 100 * len(times)))] if times else 0.0

    @property
    def retried(self) -> int:
        return sum(a.retries > 0 for a in self.answers)


def run_load(url: str, bodies: list[bytes], headers: dict[str, str], requests: int, concurrency: int,
             during=None, retries: int = 5) -> Load:
    """`requests` POSTs (bodies in turn) from `concurrency` threads; `during(done)`, if given, is called once by
    the first thread after half the requests were answered (a fault to inject mid-load)."""
    load = Load()
    lock = threading.Lock()
    counter = iter(range(requests))
    fired = threading.Event()

    def worker():
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            answer = post(url, bodies[i % len(bodies)], headers, retries=retries)
            answer.index = i
            with lock:
                load.answers.append(answer)
                fire = during is not None and len(load.answers) >= requests // 2 and not fired.is_set()
                if fire:
                    fired.set()
            if fire:
                during()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    load.seconds = time.perf_counter() - started
    return load


class EndpointProcess:
    """`python -m converter endpoint FOLDER --port <free> ARGS` as a child process; `stop()` is Ctrl-C."""

    def __init__(self, folder, *args: str, cwd=None):
        from .endpoint import free_port  # no Ray at import

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "converter", "endpoint", str(folder), "--port",
                                      str(self.port), *args], cwd=cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith("Ctrl-C stops it"):
                self.ready.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready.is_set() and self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        if not self.ready.is_set():
            raise RuntimeError(f"the endpoint did not start:\n{self.output}")

    @property
    def metrics_url(self) -> str:
        return next(line for line in self.lines if "metrics:" in line).split()[-2]

    def stop(self, signum: int = signal.SIGINT) -> int:
        """Ctrl-C by default; SIGTERM (a service manager's stop) where SIGINT is ignored, as in a background job."""
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
            try:
                return self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise
        return self.proc.returncode
