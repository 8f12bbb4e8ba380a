"""Browser latency and size benchmark of the converted mobilenet_v2 (issue 3, "Speed").

    python scripts/bench_web.py [--work build/bench_web] [--runs 30] [--reuse]

1. Converts the zoo's mobilenet_v2 (torchvision's architecture, random weights, BatchNorm statistics measured on a
   seeded random batch so that the output depends on the input; scripts/zoo_models.py) with our CLI three times: fp32, fp16 and uint8
   TF.js weights (the fp32 run also builds the TFLite files).
2. Builds the same architecture natively in Keras (`tf.keras.applications.MobileNetV2(weights=None)`),
   exports it and converts it with tensorflowjs directly: the best case TF.js can reach, no ONNX detour.
3. Times them, our model.onnx in ONNX Runtime Web and our model_float32.tflite in LiteRT.js, in one headless
   Chromium run: single-threaded wasm, median of N runs after warm-up, the models taking turns in blocks of
   runs (web-demo/bench.html).
4. Writes the results into docs/benchmarks.md, between markers, leaving the rest of the file alone.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import pathlib
import platform
import shutil
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "scripts")]  # also when a test loads this file by path

from benchdoc import write_section  # noqa: E402
from converter.serve import demo_server, running, url_of  # noqa: E402

MODEL = "scripts/zoo_models.py:mobilenet_v2"
INPUT_SHAPE = "1,3,224,224"
PRECISIONS = ("fp32", "fp16", "uint8")
SIZE_TARGETS = {"fp16": 0.5, "uint8": 0.25}  # at most this fraction of the fp32 bytes
OURS = "ours fp32"
# Ours (fp32, wasm) at most this multiple of the row's latency.
LATENCY_TARGETS = {"Keras-native": 1.0, "ours model.onnx": 0.75}
ARTIFACT_OF = {"onnx": "onnx", "litert.js": "tflite_fp32"}  # the metadata.json entry each runtime runs


def convert_ours(work: pathlib.Path, precision: str, reuse: bool) -> dict:
    """Our CLI on mobilenet_v2 with `precision` TF.js weights (fp32: TFLite too, for LiteRT.js); returns the
    folder's report.json. A parity failure (exit 3: uint8 weights on this model) is timed all the same, from the
    folder the CLI left, and the table's parity column says it failed."""
    out = work / precision
    targets = "tfjs,tflite" if precision == "fp32" else "tfjs"
    done = (out / "report.json").is_file() and (precision != "fp32" or (out / "tflite").is_dir())
    if not (reuse and done):
        command = [sys.executable, "-m", "converter", "convert", MODEL, "--input-shape", INPUT_SHAPE,
                   "--targets", targets, "--quantize", precision, "--out", str(out), "--force"]
        print("+", " ".join(command), flush=True)
        proc = subprocess.run(command, cwd=REPO)
        failed = out.with_name(out.name + ".failed")
        if proc.returncode == 3 and failed.is_dir():
            shutil.rmtree(out, ignore_errors=True)
            failed.rename(out)
        elif proc.returncode != 0:
            raise SystemExit(f"{' '.join(command)} exited {proc.returncode}")
    return json.loads((out / "report.json").read_text())


def build_keras_native(work: pathlib.Path, reuse: bool) -> None:
    """MobileNetV2 from Keras, exported as a SavedModel and converted by tensorflowjs with its defaults."""
    out = work / "keras"
    if reuse and (out / "tfjs" / "model.json").is_file():
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    from tensorflowjs.converters import tf_saved_model_conversion_v2 as tfjs_convert

    print("+ Keras MobileNetV2(weights=None) -> SavedModel -> tensorflowjs", flush=True)
    tf.keras.applications.MobileNetV2(weights=None).export(str(out / "saved_model"), verbose=False)
    tfjs_convert.convert_tf_saved_model(str(out / "saved_model"), str(out / "tfjs"), signature_def="serving_default")


def tfjs_entry(label: str, model_json: pathlib.Path, work: pathlib.Path, backend: str = "wasm") -> dict:
    """A bench.json entry for a graph model, fed through the node names of its own signature."""
    signature = json.loads(model_json.read_text())["signature"]
    inputs = [{"artifact_name": spec["name"], "dtype": "float32",
               # A dynamic batch (-1) is run with batch 1, like our converted model.
               "shape": [max(1, int(d["size"])) for d in spec["tensorShape"]["dim"]]}
              for spec in signature["inputs"].values()]
    outputs = [{"artifact_name": spec["name"]} for spec in signature["outputs"].values()]
    return {"label": label, "runtime": "tfjs", "backend": backend, "path": str(model_json.relative_to(work)),
            "inputs": inputs, "outputs": outputs}


def artifact_entry(label: str, folder: pathlib.Path, work: pathlib.Path, runtime: str = "onnx") -> dict:
    """A bench.json entry for a converted folder's model.onnx (ONNX Runtime Web) or model_float32.tflite
    (LiteRT.js), fed in the artifact's own layout."""
    artifact = json.loads((folder / "metadata.json").read_text())["artifacts"][ARTIFACT_OF[runtime]]
    inputs = [{"artifact_name": b["artifact_name"], "shape": b["shape"], "dtype": "float32"} for b in artifact["inputs"]]
    return {"label": label, "runtime": runtime, "path": str((folder / artifact["path"]).relative_to(work)),
            "inputs": inputs, "outputs": []}


def run_in_chromium(work: pathlib.Path, entries: list[dict], runs: int, threads: int = 1) -> dict:
    """Times `entries` on the bench page. `threads`: wasm threads for TF.js, ONNX Runtime Web and LiteRT.js
    alike (the server sends COOP/COEP; the page is told 2 x threads cores, since TF.js uses at most half of
    them)."""
    (work / "bench.json").write_text(json.dumps({"runs": runs, "threads": threads, "entries": entries}, indent=1))
    subprocess.run(["npm", "run", "build:web"], cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    with running(demo_server(work, 0)) as server:
        proc = subprocess.run(["node", "web-demo/headless.mjs", url_of(server, "bench.html"), "bench.result",
                               str(2 * threads)], cwd=REPO, check=True, capture_output=True, text=True)
    page = json.loads(proc.stdout.strip().splitlines()[-1])
    if page["problems"]:
        raise SystemExit("the benchmark page reported problems:\n" + "\n".join(page["problems"]))
    return page["result"]


def folder_bytes(folder: pathlib.Path) -> int:
    return sum(f.stat().st_size for f in folder.iterdir() if f.is_file())


def op_counts(model_json: pathlib.Path) -> str:
    """The graph's ops by count, weights (Const) and feeds left out: where a latency gap comes from."""
    ops = collections.Counter(node["op"] for node in json.loads(model_json.read_text())["modelTopology"]["node"])
    return ", ".join(f"{count} {op}" for op, count in ops.most_common() if op not in ("Const", "Placeholder"))


def tfjs_stage(report: dict) -> dict:
    return next(stage for stage in report["stages"] if stage["name"] == "tfjs")


def markdown(result: dict, reports: dict, work: pathlib.Path, command: str) -> str:
    ours = next(row for row in result["rows"] if row["label"] == OURS)["medianMs"]
    chromium = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True).stdout.strip()
    lines = [
        "## Web: mobilenet_v2 in headless Chromium" + (f", {result['threads']['tfjs']} wasm threads"
                                                         if result["threads"]["tfjs"] != 1 else ""),
        "",
        f"Command: `{command}`. Measured {datetime.date.today()} on {os.cpu_count()} CPU cores "
        f"({platform.machine()}; 1-minute load average {os.getloadavg()[0]:.1f} when the run ended, other work "
        f"included), {chromium}, headless. Wasm threads: TF.js {result['threads']['tfjs']}, ONNX Runtime Web "
        f"{result['threads']['ort']}, LiteRT.js {result['threads']['litert']} (cross-origin isolated: "
        f"{str(result['threads']['crossOriginIsolated']).lower()}), median of {result['runs']} runs "
        f"after {result['warmupRuns']} warm-up runs per model, the models of one backend taking turns in blocks of "
        f"{result['blockRuns']} runs after one untimed run (so load from other processes spreads over all of them), "
        "input upload and output "
        "download included. "
        "Random weights: the zoo's `mobilenet_v2` (torchvision's, BatchNorm statistics from a seeded random batch) "
        "through our CLI, Keras `MobileNetV2(weights=None)` "
        "exported with `model.export` and converted by `tensorflowjs` with its defaults.",
        "",
        f"| Model | Runtime | Median latency | {OURS} / this | Target | Downloaded |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        target = LATENCY_TARGETS.get(row["label"])
        ratio = ours / row["medianMs"]
        versus, goal = (f"{ratio:.2f}x", f"<= {target:.2f}x: {'met' if ratio <= target else 'missed'}") if target else ("", "")
        lines.append(f"| {row['label']} | {row['runtime']} ({row['backend']}) | {row['medianMs']:.1f} ms | {versus} "
                     f"| {goal} | {row['bytes'] / 1e6:.2f} MB |")
    fp32_bytes = folder_bytes(work / "fp32" / "tfjs")
    lines += [
        "",
        "WebGL rows run on Chromium's software renderer here (no GPU): reported, not tuned for.",
        "",
        "Ops in the TF.js graphs:",
        "",
        f"- {OURS}: {op_counts(work / 'fp32' / 'tfjs' / 'model.json')}",
        f"- Keras-native: {op_counts(work / 'keras' / 'tfjs' / 'model.json')}",
        "",
        "TF.js weight variants (our CLI, `--quantize`); parity is the converter's own check of the TF.js "
        "artifact against PyTorch (report.json, relative error):",
        "",
        "| Precision | model.json + shards | vs fp32 | Target | Parity (rel err vs tolerance) |",
        "|---|---|---|---|---|",
    ]
    for precision in PRECISIONS:
        size = folder_bytes(work / precision / "tfjs")
        stage = tfjs_stage(reports[precision])
        target = SIZE_TARGETS.get(precision)
        goal = f"<= {target:.2f}x: {'met' if size <= target * fp32_bytes else 'missed'}" if target else ""
        parity = f"{stage['status']}: {stage['max_rel_err']:.1e} vs {stage['tolerance']:.0e}"
        lines.append(f"| {precision} | {size / 1e6:.3f} MB | {size / fp32_bytes:.3f}x | {goal} | {parity} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=pathlib.Path, default=REPO / "build" / "bench_web", help="scratch folder")
    parser.add_argument("--runs", type=int, default=30, help="timed runs per model, after the warm-up")
    parser.add_argument("--reuse", action="store_true", help="keep models already converted in --work")
    parser.add_argument("--threads", type=int, default=1,
                        help="wasm threads for TF.js, ONNX Runtime Web and LiteRT.js alike")
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)

    reports = {precision: convert_ours(work, precision, args.reuse) for precision in PRECISIONS}
    build_keras_native(work, args.reuse)
    entries = [
        tfjs_entry("Keras-native", work / "keras" / "tfjs" / "model.json", work),
        tfjs_entry(OURS, work / "fp32" / "tfjs" / "model.json", work),
        artifact_entry("ours model.onnx", work / "fp32", work),
        artifact_entry("ours model_float32.tflite", work / "fp32", work, runtime="litert.js"),
        tfjs_entry("ours fp16", work / "fp16" / "tfjs" / "model.json", work),
        tfjs_entry("ours uint8", work / "uint8" / "tfjs" / "model.json", work),
        tfjs_entry(f"{OURS} on WebGL", work / "fp32" / "tfjs" / "model.json", work, backend="webgl"),
    ]
    result = run_in_chromium(work, entries, args.runs, args.threads)
    command = "python scripts/bench_web.py" + (f" --runs {args.runs}" if args.runs != 30 else "") + \
        (f" --threads {args.threads}" if args.threads != 1 else "")
    section = markdown(result, reports, work, command)
    write_section("bench_web" if args.threads == 1 else f"bench_web_threads_{args.threads}", section)
    print(section)


if __name__ == "__main__":
    main()
