"""`python -m converter endpoint DIR --port P`: a converted folder's model behind HTTP, on Ray Serve.

Each replica is a Ray actor that runs model.onnx on ONNX Runtime (or model.pt on TorchScript) with the request
handling of converter/serving.py, the same code SageMaker's container runs from the archive `converter package`
writes. The folder's files travel to the replicas through Ray's object store, so a cluster's nodes need no
shared disk. A replica checks golden/ before it takes traffic and refuses to start (the deployment fails, the
command exits 3) when the artifact's outputs break tolerance.

Routes: SageMaker's `GET /ping`, `POST /invocations`; KServe v2's `GET /v2/health/live|ready`, `GET /v2`,
`GET /v2/models/{name}[/ready]`, `POST /v2/models/{name}[/versions/{v}]/infer`. Metrics are Ray Serve's own, on
the Ray node's Prometheus port (request count `ray_serve_num_http_requests_total`, latency histogram
`ray_serve_http_request_latency_ms`, errors `ray_serve_num_http_error_requests_total`, replicas
`ray_serve_deployment_replica_healthy`).

Ray is imported only here, when the command runs.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
import uuid
from pathlib import Path

from .errors import ParityError, UsageError
from .raysession import session

STAGE = "endpoint"
APP = "converter"
# Ray's local object store: the model's files and nothing else pass through it.
OBJECT_STORE_BYTES = 256 * 1024**2


def folder_files(folder: Path, artifact: str) -> dict[str, bytes]:
    """The files a replica needs, by path relative to the folder."""
    from .serving import ARTIFACTS

    wanted = [folder / ARTIFACTS[artifact], folder / "metadata.json", *sorted((folder / "golden").glob("*"))]
    missing = [p for p in wanted[:2] if not p.is_file()]
    if missing or not (folder / "golden" / "golden.json").is_file():
        what = missing[0].name if missing else "golden/golden.json"
        raise UsageError(f"{folder} has no {what}", stage=STAGE,
                         hint=f"give a folder that `python -m converter convert` wrote (with the {artifact} target)")
    return {str(p.relative_to(folder)): p.read_bytes() for p in wanted if p.is_file()}


def files_root(token: str) -> Path:
    """Where the replicas of one `endpoint` command write their copies of the folder, on each node."""
    return Path(tempfile.gettempdir()) / f"converter-endpoint-{token}"


class Endpoint:
    """One replica (wrapped by ray.serve.deployment in `deployment`)."""

    def __init__(self, files, artifact: str, name: str, max_body_bytes: int, threads: int, token: str):
        import ray

        from .serving import Model

        if isinstance(files, ray.ObjectRef):
            files = ray.get(files)
        files_root(token).mkdir(exist_ok=True)
        self._dir = tempfile.TemporaryDirectory(dir=files_root(token))
        root = Path(self._dir.name)
        for rel, data in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        self.model = Model(root, artifact, threads=threads)
        self.model.check_golden()  # raises GoldenError: this replica never takes traffic
        self.name = name
        self.max_body = max_body_bytes
        self.log = logging.getLogger("ray.serve")

    def __del__(self):
        """Serve calls it when it stops a replica (scaling down, a cluster's `serve.delete`); the process then
        exits without the garbage collection that would remove the copy. A killed replica's copy is removed by
        the command that started it (`main`), on its own node."""
        if hasattr(self, "_dir"):
            self._dir.cleanup()

    async def __call__(self, request):
        from starlette.responses import JSONResponse, Response

        from .serving import RequestError

        try:
            status, body, content_type = await self._route(request)
            return Response(body, status_code=status, media_type=content_type)
        except RequestError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        except Exception as exc:  # a bug of ours or the runtime's: this request fails, the replica serves on
            self.log.exception("request failed")
            return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)

    async def _route(self, request) -> tuple[int, bytes, str]:
        from .serving import RequestError, decode_sagemaker, decode_v2, encode_sagemaker, encode_v2, v2_metadata

        parts = [p for p in request.url.path.split("/") if p]
        method = request.method
        ok = (200, b'{"status": "ok"}', "application/json")
        if parts in (["ping"], ["v2", "health", "live"], ["v2", "health", "ready"]):
            return self._only(method, "GET", ok)
        if parts == ["v2"]:
            return self._only(method, "GET", (200, json.dumps({"name": "converter", "version": "1",
                                                                 "extensions": []}).encode(), "application/json"))
        if parts == ["invocations"]:
            self._only(method, "POST", ok)
            body = await self._body(request)
            inputs = decode_sagemaker(self.model, body, request.headers.get("content-type", ""))
            outputs = await self._predict(inputs)
            data, content_type = encode_sagemaker(outputs, request.headers.get("accept", ""))
            return 200, data, content_type
        if len(parts) >= 3 and parts[:2] == ["v2", "models"]:
            if parts[2] != self.name:
                raise RequestError(f"no model {parts[2]!r} here; this endpoint serves {self.name!r}", status=404)
            rest = parts[3:]
            if len(rest) >= 2 and rest[0] == "versions":  # /versions/{v}/...: one version, whatever its name
                rest = rest[2:]
            if rest == []:
                return self._only(method, "GET", (200, json.dumps(v2_metadata(self.model, self.name)).encode(),
                                                  "application/json"))
            if rest == ["ready"]:
                return self._only(method, "GET", ok)
            if rest == ["infer"]:
                self._only(method, "POST", ok)
                inputs, doc = decode_v2(self.model, await self._body(request))
                return 200, encode_v2(self.name, await self._predict(inputs), doc), "application/json"
        raise RequestError(f"no route {request.url.path!r}: use /ping, /invocations, /v2/health/ready or "
                           f"/v2/models/{self.name}/infer", status=404)

    @staticmethod
    def _only(method: str, allowed: str, answer: tuple) -> tuple:
        from .serving import RequestError

        if method != allowed:
            raise RequestError(f"use {allowed} here, not {method}", status=405)
        return answer

    async def _body(self, request) -> bytes:
        from .serving import RequestError

        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body:
            raise RequestError(f"the body is {int(declared)} bytes; this endpoint takes at most {self.max_body}",
                               status=413)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > self.max_body:
                raise RequestError(f"the body is over {self.max_body} bytes, this endpoint's limit", status=413)
        return bytes(body)

    async def _predict(self, inputs):
        import asyncio

        return await asyncio.get_running_loop().run_in_executor(None, self.model.predict, inputs)


def deployment(args, files_ref, name: str, token: str):
    from ray import serve

    if args.autoscale:
        low, high = args.autoscale
        # Up within seconds of a burst (inference requests queue behind each other), down only after a quiet
        # minute (a replica costs a golden check and a model load to bring back).
        scaling = {"autoscaling_config": {"min_replicas": low, "max_replicas": high, "initial_replicas": max(low, 1),
                                          "target_ongoing_requests": 2, "upscale_delay_s": 3,
                                          "downscale_delay_s": 60}}
    else:
        scaling = {"num_replicas": args.replicas}
    threads = _threads(args)
    return serve.deployment(Endpoint, name="model", ray_actor_options={"num_cpus": threads}, max_ongoing_requests=8,
                            health_check_period_s=2, **scaling).bind(
        files_ref, args.artifact, name, int(args.max_body_mb * 1024**2), threads, token)


def _http_address(args) -> tuple[str, int]:
    """Where Serve's HTTP proxy listens: ours, unless the cluster ran Serve already (then its settings hold)."""
    try:
        from ray.serve.context import _get_global_client  # no public API says this

        config = _get_global_client().http_config
        return config.host, config.port
    except (ImportError, AttributeError, RuntimeError):
        return args.host, args.port


def _most_replicas(args) -> int:
    return args.autoscale[1] if args.autoscale else args.replicas


def _threads(args) -> int:
    """Per replica: --threads, else (embedded Ray) this machine's cores shared by the most replicas, else 1."""
    if args.threads:
        return args.threads
    return max(1, (os.cpu_count() or 1) // _most_replicas(args)) if args.address is None else 1


def main(args) -> int:
    folder: Path = args.dir
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder", stage=STAGE, hint="give a converted folder")
    files = folder_files(folder, args.artifact)
    name = args.name or folder.resolve().name
    if args.replicas < 1 or (args.threads is not None and args.threads < 1):
        raise UsageError("--replicas and --threads must be at least 1", stage=STAGE)
    if args.address is None:
        _require_free(args.host, args.port)
    metrics_port = args.metrics_port or (free_port() if args.address is None else 0)

    local = {"num_cpus": max(os.cpu_count() or 1, _most_replicas(args) * _threads(args)),
             "object_store_memory": max(OBJECT_STORE_BYTES, 3 * sum(map(len, files.values()))),
             "_metrics_export_port": metrics_port, "_system_config": {"metrics_report_interval_ms": 2000}}
    token = uuid.uuid4().hex[:12]
    try:
        with session(args.address, STAGE, local) as ray:
            from ray import serve

            try:
                _serve(args, serve, ray.put(files), name, metrics_port, token)
            except KeyboardInterrupt:
                print("stopping", flush=True)
                return 0
            finally:
                if args.address:  # on a cluster only our application goes; the embedded Ray goes whole
                    serve.delete(APP)
    finally:  # the copies of replicas that were killed, or stopped with the embedded Ray, on this node
        shutil.rmtree(files_root(token), ignore_errors=True)


def _serve(args, serve, files_ref, name: str, metrics_port: int, token: str) -> None:
    """Deploy, say where, and serve until interrupted."""
    serve.start(http_options={"host": args.host, "port": args.port},
                logging_config={"log_level": "WARNING", "enable_access_log": False})
    started = time.perf_counter()
    try:
        serve.run(deployment(args, files_ref, name, token), name=APP, route_prefix="/")
    except RuntimeError as exc:
        message = _deployment_message() or str(exc)
        hint = "the artifact no longer matches PyTorch's outputs in golden/: convert the model again" \
            if "GoldenError:" in message else "the replica's log is under /tmp/ray/session_latest/logs"
        raise ParityError(f"no replica would start: {_cause(message)}", stage=STAGE, hint=hint) from None
    host, port = _http_address(args)
    if (host, port) != (args.host, args.port):
        print(f"note: Serve already runs on this cluster, its HTTP proxy on {host}:{port}: --host and --port do "
              "not apply", flush=True)
    base = f"http://{host}:{port}"
    scale = f"{args.autoscale[0]}-{args.autoscale[1]} replicas (autoscaling)" if args.autoscale \
        else f"{args.replicas} replica{'s' * (args.replicas > 1)}"
    scale += f", {_threads(args)} thread{'s' * (_threads(args) > 1)} each"
    print(f"serving {args.dir} ({args.artifact}, {scale}) at {base} in {time.perf_counter() - started:.1f} s; "
          "every replica matched golden/", flush=True)
    print(f"  SageMaker: GET {base}/ping, POST {base}/invocations", flush=True)
    print(f"  KServe v2: GET {base}/v2/health/ready, POST {base}/v2/models/{name}/infer", flush=True)
    if args.address is None:
        print(f"  metrics:   http://127.0.0.1:{metrics_port}/metrics (Prometheus)", flush=True)
    print("Ctrl-C stops it", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop: the same clean shutdown
    while True:
        time.sleep(3600)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _deployment_message() -> str:
    """What Serve recorded about the deployment (a failed replica's traceback)."""
    from ray import serve

    try:
        return serve.status().applications[APP].deployments["model"].message
    except (KeyError, RuntimeError):
        return ""


def _cause(text: str) -> str:
    """The replica's own error out of Serve's deployment-failure message (which holds its traceback)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    golden = [line.split("GoldenError:", 1)[1].strip() for line in lines if "GoldenError:" in line]
    errors = [line for line in lines if "Error:" in line]
    return (golden or errors or lines or [text])[-1]


def _require_free(host: str, port: int) -> None:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}", stage=STAGE,
                             hint="choose another --port") from None


def free_port() -> int:
    """A TCP port nothing listens on now, on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
