"""The artifacts in a real browser: headless Chromium, driven through playwright-core, loads the converted folder
from the project's own server (converter/serve.py: COOP/COEP, so wasm threads work) and runs every case on
every runtime and backend it has: TF.js on wasm with one thread and with N, WebGL and WebGPU; model.onnx in
ONNX Runtime Web on wasm with one thread and with N, and WebGPU; the TFLite file the Android app ships
(tflite/model_float32.tflite, when --targets builds it) in LiteRT.js on wasm with one thread and with N, and
WebGPU. WebGPU runs where the browser offers an adapter; without a GPU, Chromium's is SwiftShader on the CPU,
which checks the WebGPU kernels' numbers but not their speed. Each is compared with PyTorch at its artifact's
tolerance, and timed: cold start (runtime start, model download and first inference), warm median latency,
bytes downloaded. The records go into report.json (`browser`) and report.html.

On by default when Chromium is installed; `--no-browser` leaves it out. Without Chromium (or Node.js,
node_modules, the built page) the stage is skipped and says why; under CI=true that is a failure instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

from ..errors import ConversionError
from .base import Arrays, Artifact, Context, Skipped, Stage

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "converter" / "js" / "run_browser.mjs"
PAGE = "check.html"
RECORDS = "browser.json"  # the stage's artifact: what ran where, and the measurements
WARM_RUNS = 20  # timed runs after warm-up, per runtime and backend
# On a software renderer (WebGL or WebGPU on SwiftShader, without a GPU) the timings say nothing of a GPU and
# one run of a mobilenet takes seconds (WebGPU: 5 to 15 s here): those backends run the cases for parity, and
# nothing is timed after them.
SOFTWARE_RUNS = 0
FEEDABLE = {"float32": "float32", "int32": "int32", "int64": "int64"}  # what the page can feed (as typed arrays)
TFLITE = "tflite_fp32"  # the stage whose file LiteRT.js runs: the Android app's
LITERT_FEEDABLE = ("float32", "int32")  # the input dtypes LiteRT.js makes tensors of (web-demo/src/litertRuntime.js)
# Runtimes held to the fp32 tolerance whatever --quantize gives TF.js: model.onnx and model_float32.tflite.
FP32_RUNTIMES = ("onnx", "litert.js")
# Test hook: a combination key whose outputs the page perturbs after the runtime computed them (a planted
# fault, for the test that a failing backend is named). Never set outside tests.
PLANT_ENV = "CONVERTER_BROWSER_PLANT"
STOP_GRACE_S = 5.0  # how long the Node.js driver gets to close Chromium when the stage stops early (workers get 10)


def chromium_path() -> Path | None:
    """$CHROMIUM when set (and only it, like tests/web), else Debian's /usr/bin/chromium or one on PATH."""
    named = os.environ.get("CHROMIUM")
    candidates = [named] if named else ["/usr/bin/chromium", shutil.which("chromium") or "",
                                        shutil.which("chromium-browser") or ""]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def thread_count() -> int:
    """N for the threaded runs: the machine's logical cores, at least 2 (so that threads are exercised)."""
    return max(2, os.cpu_count() or 1)


def combos(ctx: Context, threads: int) -> list[dict]:
    """(runtime, backend, threads) per page load, each with the artifact it runs (metadata.json's entry)."""
    tfjs = ctx.artifacts["tfjs"].to_json()
    out = [
        {"key": "tfjs_wasm", "runtime": "tfjs", "backend": "wasm", "threads": 1, "artifact": tfjs},
        {"key": "tfjs_wasm_threads", "runtime": "tfjs", "backend": "wasm", "threads": threads, "artifact": tfjs},
        {"key": "tfjs_webgl", "runtime": "tfjs", "backend": "webgl", "threads": None, "artifact": tfjs},
        {"key": "tfjs_webgpu", "runtime": "tfjs", "backend": "webgpu", "threads": None, "artifact": tfjs},
    ]
    if "onnx" in ctx.artifacts:
        onnx = ctx.artifacts["onnx"].to_json()
        out += [
            {"key": "onnx_wasm", "runtime": "onnx", "backend": "wasm", "threads": 1, "artifact": onnx},
            {"key": "onnx_wasm_threads", "runtime": "onnx", "backend": "wasm", "threads": threads, "artifact": onnx},
            {"key": "onnx_webgpu", "runtime": "onnx", "backend": "webgpu", "threads": None, "artifact": onnx},
        ]
    if litert_absent(ctx) is None:
        tflite = ctx.artifacts[TFLITE].to_json()
        out += [
            {"key": "litert.js_wasm", "runtime": "litert.js", "backend": "wasm", "threads": 1, "artifact": tflite},
            {"key": "litert.js_wasm_threads", "runtime": "litert.js", "backend": "wasm", "threads": threads,
             "artifact": tflite},
            {"key": "litert.js_webgpu", "runtime": "litert.js", "backend": "webgpu", "threads": None,
             "artifact": tflite},
        ]
    return out


def litert_absent(ctx: Context) -> str | None:
    """Why LiteRT.js does not run in this conversion, or None when it does."""
    if TFLITE not in ctx.artifacts:
        return f"LiteRT.js did not run: there is no {TFLITE} artifact (--targets without tflite, or it failed)"
    odd = [f"{s.name} ({s.dtype})" for s in ctx.inputs if s.dtype not in LITERT_FEEDABLE]
    if odd:
        return f"LiteRT.js did not run: it takes {' and '.join(LITERT_FEEDABLE)} inputs, not {', '.join(odd)}"
    dynamic = [s.name for s in ctx.inputs if s.dynamic_axes]
    if dynamic:  # its runtime compares a tensor's type with the model's exactly, -1 included, and cannot resize
        return (f"LiteRT.js did not run: input {', '.join(dynamic)} has a dynamic axis (--dynamic-batch), and "
                "LiteRT.js 2.5 takes only tensors of the model's declared shape (no input resizing)")
    return None


class BrowserStage(Stage):
    name = target = "browser"
    after = "tfjs"
    needs = ("onnx",)
    uses = (TFLITE,)
    worker = "browser"

    def __init__(self, precision: str = "fp32") -> None:
        self.precision = precision  # the TF.js weights' (--quantize); ONNX Runtime's runs are held to fp32

    def configure(self, options) -> Stage:
        from .tfjs import TfjsStage

        return BrowserStage(TfjsStage().configure(options).precision)

    def options_key(self, options) -> dict:
        return {"tfjs": self.precision, "tolerances": dict(options.tolerances), "runs": WARM_RUNS}

    def tolerance_for(self, runtime: str, tolerance: float, options) -> float:
        if runtime.startswith(FP32_RUNTIMES):
            return options.tolerances["fp32"]
        if runtime == "tfjs_webgl":  # 16-bit floats on many GPUs: the demo's rule too (web-demo/src/golden.js)
            return max(tolerance, options.tolerances["fp16"])
        return tolerance

    def convert(self, ctx: Context) -> Artifact:
        missing = _missing_tools()
        if missing:
            why = f"{missing}: the artifacts were not run in a browser"
            hint = "install it (bash scripts/setup.sh), or convert with --no-browser"
            if in_ci():
                raise ConversionError(f"{missing} (CI=true: the browser check must run)", stage=self.name, hint=hint)
            raise Skipped(f"{why}; {hint}")
        odd = [f"{s.name} ({s.dtype})" for s in ctx.inputs if s.dtype not in FEEDABLE]
        if odd:
            raise Skipped(f"the browser page feeds float32, int32 and int64 inputs, not {', '.join(odd)}")
        inputs, outputs = ctx.same_layout()
        planned = combos(ctx, thread_count())
        doc = {"format": 1, "page": PAGE, "runs": [{k: c[k] for k in ("key", "runtime", "backend", "threads")}
                                                   for c in planned], "records": []}
        (ctx.work / RECORDS).write_text(json.dumps(doc, indent=1) + "\n")
        n, absent = thread_count(), litert_absent(ctx)
        litert = "" if absent else f"LiteRT.js wasm 1 and {n} threads, WebGPU when offered; "
        notes = [f"headless Chromium ({chromium_path()}) on the converter's own server (COOP/COEP): TF.js wasm "
                 f"1 and {n} threads, WebGL, WebGPU when offered; ONNX Runtime Web wasm 1 and {n} threads, WebGPU when "
                 "offered; "
                 f"{litert}median of {WARM_RUNS} warm runs (on a software renderer, parity only)",
                 *([absent] if absent else [])]
        return Artifact(Path(RECORDS), self.precision, inputs, outputs, notes, {"browser": []})

    def run(self, ctx: Context, artifact: Artifact, cases: list[Arrays]) -> dict[str, list[Arrays]]:
        return self.start_run(ctx, artifact, cases)()

    def start_run(self, ctx: Context, artifact: Artifact, cases: list[Arrays]):
        return start_in_chromium(ctx, artifact, cases, self)


def _missing_tools() -> str | None:
    from ..serve import DEMO_DIR

    if chromium_path() is None:
        where = os.environ.get("CHROMIUM") or "/usr/bin/chromium or chromium on PATH"
        return f"Chromium is not installed (looked for {where})"
    if shutil.which("node") is None:
        return "Node.js is not installed"
    if not (ROOT / "node_modules" / "playwright-core").is_dir():
        return "node_modules has no playwright-core (run npm ci)"
    if not (DEMO_DIR / PAGE).is_file():
        return f"the web page is not built ({DEMO_DIR / PAGE} is missing; run npm run build:web)"
    return None


def start_in_chromium(ctx: Context, artifact: Artifact, cases: list[Arrays], stage: BrowserStage):
    """Serve the work folder, start the Node.js driver, and return what waits for it: {key: outputs per case}
    (PyTorch layout), with the measurements put into artifact.extra["browser"] and browser.json."""
    from ..serve import demo_server, url_of

    # Scratch: the cases, the outputs, Chromium's profile and its temporary files, removed after Node.js ends. In
    # the system's temporary folder, not the work folder: Chromium puts a Unix socket there, whose path may not be
    # longer than 107 bytes.
    tmp = Path(tempfile.mkdtemp(prefix="browser-run-"))
    server = demo_server(ctx.work, 0)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    threads = thread_count()
    log = ctx.work / "logs" / "browser.node.log"
    try:
        request = {"url": url_of(server, PAGE), "chromium": str(chromium_path()), "profile": str(tmp / "chromium"),
                   "runs": WARM_RUNS,
                   "software_runs": SOFTWARE_RUNS,
                   # TF.js's wasm backend uses half of navigator.hardwareConcurrency: tell the page 2N cores.
                   "hardwareConcurrency": 2 * threads, "combos": combos(ctx, threads), "cases": [],
                   "out_prefix": str(tmp / "out"), "plant": os.environ.get(PLANT_ENV) or None}
        for i, case in enumerate(cases):
            feeds = []
            for b in artifact.inputs:
                spec = next(s for s in ctx.inputs if s.name == b.name)
                array = np.ascontiguousarray(case[b.name])
                dtype = FEEDABLE[spec.dtype]
                file = tmp / f"in_{i}_{len(feeds)}.bin"
                # The page holds int64 as float64 (exact below 2**53), like the demo (artifactIo.js).
                array.astype("float64" if dtype == "int64" else dtype).tofile(file)
                feeds.append({"name": b.name, "dtype": dtype, "shape": list(array.shape), "file": str(file)})
            request["cases"].append(feeds)
        (tmp / "request.json").write_text(json.dumps(request))
        with open(log, "a") as log_file:
            # TMPDIR: Playwright's and Chromium's own temporary files go into the scratch folder too.
            process = subprocess.Popen(["node", str(RUNNER), str(tmp / "request.json")], stdout=subprocess.PIPE,
                                       stderr=log_file, text=True, cwd=str(RUNNER.parent),
                                       env={**os.environ, "TMPDIR": str(tmp)})
    except BaseException:
        server.shutdown()
        server.server_close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    def wait() -> dict[str, list[Arrays]]:
        try:
            stdout, _ = process.communicate()
            if process.returncode != 0:
                said = log.read_text(errors="replace").strip().splitlines()[-1:] if log.is_file() else []
                raise ConversionError(f"the browser driver failed (exit {process.returncode})"
                                      + (f": {said[0]}" if said else ""), stage="browser",
                                      hint="see logs/browser.node.log")
            reply = json.loads(stdout.strip().splitlines()[-1])
            return _results(ctx, artifact, stage, reply, request["combos"])
        finally:
            _stop(process)
            server.shutdown()
            server.server_close()
            shutil.rmtree(tmp, ignore_errors=True)

    return wait


def _stop(process: subprocess.Popen) -> None:
    """End the Node.js driver when the stage unwinds early (Ctrl-C, SIGTERM, an error): SIGTERM lets it close
    Chromium first (run_browser.mjs); SIGKILL only if it has not ended after STOP_GRACE_S."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _results(ctx: Context, artifact: Artifact, stage: BrowserStage, reply: dict, planned: list[dict]):
    from ..parity import compare

    tolerance = ctx.options.tolerances.get(stage.precision)
    precision = {"tfjs": stage.precision, **dict.fromkeys(FP32_RUNTIMES, "fp32")}
    # WebGPU on a software adapter (SwiftShader) is advisory: where it breaks, the emulator cannot be told from
    # the runtime, so its record and a note say so and the stage does not fail on it. (LiteRT.js 2.5's WebGPU
    # path was off by 8% on tests/models/small.py:attention_block there, and threw on :resizes, while TF.js
    # and ONNX Runtime Web on the same adapter matched PyTorch.) On a GPU it is held to its tolerance.
    advisory = bool((reply.get("probe") or {}).get("webgpuSoftware"))
    records, results, failed = [], {}, []
    for combo in planned:
        raw = reply["records"].get(combo["key"])
        if raw is None:  # a GPU backend this browser does not offer
            records.append({"key": combo["key"], "runtime": combo["runtime"], "backend": combo["backend"],
                            "status": "unavailable", "reason": f"this Chromium offers no {combo['backend']}"})
            continue
        record = {"key": combo["key"], "runtime": combo["runtime"], "backend": raw.get("backend", combo["backend"]),
                  "precision": precision[combo["runtime"]], "threads": raw.get("threads"),
                  "tolerance": stage.tolerance_for(combo["key"], tolerance, ctx.options)}
        soft = advisory and combo["backend"] == "webgpu"
        if "error" in raw:
            record.update(status="failed", error=raw["error"], **({"advisory": True} if soft else {}))
            if soft:
                artifact.notes.append(f"advisory, {combo['key']} on a software WebGPU adapter failed: {raw['error']}")
            else:
                failed.append(f"{combo['key']}: {raw['error']}")
            records.append(record)
            continue
        outputs = []
        for i, files in enumerate(raw["outputs"]):
            case = {}
            for b, file in zip(artifact.outputs, files):
                shape = np.shape(ctx.reference[i][b.name])
                case[b.name] = np.fromfile(file, dtype=np.float32).reshape(shape)
            outputs.append(case)
        parity = compare(ctx.reference, outputs, record["tolerance"], "pytorch", combo["key"])
        record.update(status="passed" if parity.passed else "failed", max_abs_err=parity.max_abs_err,
                      max_rel_err=parity.max_rel_err, cold_start_ms=round(raw["coldMs"], 2),
                      warm_median_ms=None if raw["warmMedianMs"] is None else round(raw["warmMedianMs"], 3),
                      warm_runs=raw["warmRuns"],
                      bytes_downloaded=raw["bytes"], model_bytes=raw["modelBytes"])
        if raw.get("problems"):
            record["problems"] = raw["problems"]
        records.append(record)
        if soft and not parity.passed:
            record["advisory"] = True
            artifact.notes.append(f"advisory, {combo['key']} on a software WebGPU adapter differs from PyTorch: "
                                  f"rel {parity.max_rel_err:.3g} (tolerance {record['tolerance']:g}); check it on "
                                  "a GPU")
            continue
        results[combo["key"]] = outputs
    artifact.extra["browser"] = records
    artifact.extra["browser_env"] = {"chromium": reply.get("chromium"), "user_agent": reply.get("userAgent"),
                                     **(reply.get("probe") or {})}
    doc = json.loads((ctx.work / RECORDS).read_text())
    doc.update(records=records, environment=artifact.extra["browser_env"])
    (ctx.work / RECORDS).write_text(json.dumps(doc, indent=1) + "\n")
    if failed:
        raise ConversionError("in Chromium, " + "; ".join(failed), stage="browser",
                              hint="see logs/browser.node.log; the other backends' records are in report.json")
    if not results:
        raise ConversionError("no runtime ran in Chromium", stage="browser", hint="see logs/browser.node.log")
    return results
