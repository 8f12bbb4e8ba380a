"""SavedModel -> TF.js graph model with tensorflowjs, run in TF.js under Node.js (the pure-JS/wasm backends:
tfjs-node would need a native download)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..errors import ConversionError, first_line
from ..fp16 import note, tfjs_keep_fp32, tfjs_kept
from ..layout import Binding
from .base import IO_RECORD, Arrays, Artifact, Context, Stage, io_record
from .saved_model import import_tensorflow
from .tfjs_audit import BACKENDS, make_runnable, missing_kernels, raise_for_missing, support

RUNNER = Path(__file__).resolve().parent.parent / "js" / "run_tfjs.mjs"
QUANTIZATION = {"fp32": None, "fp16": {"float16": "*"}, "uint8": {"uint8": "*"}}
# Parity runs on both backends that run in Node.js; the first is the one the demo uses by default.
NODE_BACKENDS = ("wasm", "cpu")
CHILD_ERROR = "converter-error: "  # how write_graph_model's child process hands its error back


def _weights(options) -> str:
    """TF.js weight storage: --quantize fp16 or uint8; the int8 values make other artifacts (quantized.py)."""
    return options.quantize if options.quantize in ("fp16", "uint8") else "fp32"


class TfjsStage(Stage):
    name = target = "tfjs"
    after = "saved_model"
    worker = "tf"

    def __init__(self, precision: str = "fp32") -> None:
        self.precision = precision

    def configure(self, options) -> Stage:
        return TfjsStage(_weights(options))

    def options_key(self, options) -> dict:
        return {"quantize": _weights(options)}

    def warm_up(self) -> None:
        import_tensorflow()
        from tensorflowjs.converters import tf_saved_model_conversion_v2  # noqa: F401

    def diagnose(self, ctx: Context, result) -> None:
        from ..errors import ParityError
        from ..tfjs_diverge import annotate  # runs every node in TensorFlow and TF.js: only on failure

        if isinstance(result.error, ParityError):
            annotate(ctx, result)

    def convert(self, ctx: Context) -> Artifact:
        source = ctx.artifacts["saved_model"]
        out = ctx.work / "tfjs"
        write_graph_model(ctx.work / source.path, out, self.precision)
        model_json = json.loads((out / "model.json").read_text())
        rewrites = make_runnable(model_json, out)
        signature = model_json["signature"]

        # The graph model feeds and fetches node names ("x:0", "Identity:0"); map them to PyTorch's names.
        # tensorflowjs keys a signature's entries by the tensor's name, but only where it could match the
        # frozen graph's tensor with the SavedModel's; the others it keys by the tensor name ("x:0",
        # "Identity_7:0"). The function's outputs are a dict, which TensorFlow flattens in sorted key order
        # and names Identity, Identity_1, ... in that order.
        order = sorted(b.name for b in source.outputs)

        def rename(b: Binding, side: str) -> Binding:
            entry = signature[side].get(b.name) or signature[side].get(f"{b.name}:0")
            if entry is None and side == "outputs":
                k = order.index(b.name)
                entry = signature[side].get(f"Identity{f'_{k}' if k else ''}:0")
            dims = [int(d.get("size", -1)) for d in (entry or {}).get("tensorShape", {}).get("dim", [])]
            if entry is None or any(d not in (-1, s) for d, s in zip(dims, b.shape)) or len(dims) != len(b.shape):
                raise ConversionError(f"cannot tell which TF.js {side[:-1]} is {b.name!r} {list(b.shape)}: "
                                      f"{sorted(signature[side])}", stage=self.name, hint="report the model")
            return Binding(b.name, entry["name"], list(b.shape), b.layout, list(b.perm))

        inputs = [rename(b, "inputs") for b in source.inputs]
        outputs = [rename(b, "outputs") for b in source.outputs]
        # userDefinedMetadata is TF.js's slot for such data (GraphModel.metadata in the browser).
        model_json["userDefinedMetadata"] = {IO_RECORD: json.loads(io_record(ctx, inputs, outputs))}
        # tensorflowjs writes protobuf maps (node attributes, signature entries) in hash order, which changes
        # from run to run: sorted keys make the same model give the same bytes. Key order means nothing to
        # TF.js's loader.
        (out / "model.json").write_text(json.dumps(model_json, sort_keys=True))
        notes = [f"TF.js in Node.js, parity on the {' and '.join(NODE_BACKENDS)} backends; kernels and fused "
                 f"activations audited for {', '.join(BACKENDS)} (TF.js {support()['tfjs']})"]
        notes += [f"rewritten: {r.describe()}" for r in rewrites]
        kept = tfjs_kept(model_json) if self.precision == "fp16" else []
        if kept:
            notes.append(note(kept, "weight"))
        extra = {"rewrites": [vars(r) for r in rewrites]}
        return Artifact(Path("tfjs/model.json"), self.precision, inputs, outputs, notes, extra, bundle=Path("tfjs"))

    def run(self, ctx: Context, artifact: Artifact, cases: list[Arrays]) -> dict[str, list[Arrays]]:
        return self.start_run(ctx, artifact, cases)()

    def start_run(self, ctx: Context, artifact: Artifact, cases: list[Arrays]):
        return start_in_node(ctx.work / artifact.path, artifact, cases, log=ctx.work / "logs" / "tfjs.node.log",
                             scratch=ctx.work)


def write_graph_model(saved_model: Path, out: Path, precision: str) -> None:
    """tensorflowjs's conversion of `saved_model` into `out`, with TensorFlow's oneDNN rewrites off.

    Grappler, which tensorflowjs runs, applies oneDNN's rewrites when they are on, and those depend on the
    CPU (_MklLayerNorm on AVX-512, fused hard-swish, tanh). TensorFlow decides once per process: when this
    process already has them on (TensorFlow was imported before the converter set TF_ENABLE_ONEDNN_OPTS=0),
    the conversion runs in a child process that has them off, so every machine writes the same graph.
    """
    from . import saved_model as tf_side

    import_tensorflow()
    if tf_side.ONEDNN_MAYBE_ON:
        env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0"}
        done = subprocess.run([sys.executable, "-m", "converter.stages.tfjs", str(saved_model), str(out), precision],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        sys.stderr.write(done.stdout)  # into the stage's log
        if done.returncode != 0:
            error = next((json.loads(line[len(CHILD_ERROR):]) for line in reversed(done.stdout.splitlines())
                          if line.startswith(CHILD_ERROR)), None)
            if error is not None:  # our own error, with its ops and hint
                raise ConversionError(error["message"], stage="tfjs", hint=error["hint"],
                                      unsupported_ops=error["unsupported_ops"])
            said = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else f"exit {done.returncode}"
            raise ConversionError(f"tensorflowjs failed in a child process: {said}", stage="tfjs",
                                  hint="see logs/tfjs.log")
        return
    from tensorflowjs.converters import tf_saved_model_conversion_v2 as tfjs_convert

    run_grappler = tfjs_convert._run_grappler

    def grappler_and_rewrites(config, graph_def, graph, signature_def):
        fusing = "remap" in config.graph_options.rewrite_options.optimizers  # the second pass fuses
        if not fusing:
            bias_adds(graph_def)
        optimized = run_grappler(config, graph_def, graph, signature_def)
        if fusing:  # the remapper fuses no convolution with explicit padding: after it
            pads_into_convs(optimized)
        return optimized

    tfjs_convert._run_grappler = grappler_and_rewrites
    try:
        with tfjs_keep_fp32():
            tfjs_convert.convert_tf_saved_model(str(saved_model), str(out), signature_def="serving_default",
                                                quantization_dtype_map=QUANTIZATION[precision])
    except ValueError as exc:
        text = str(exc)
        if "Unsupported Ops" in text:
            ops = sorted({op.strip() for op in text.splitlines()[-1].split(",") if op.strip()})
            raise ConversionError(f"TF.js cannot run these ops: {', '.join(ops)}", stage="tfjs",
                                  unsupported_ops=ops, hint=_hint_for(ops)) from exc
        raise ConversionError(f"tensorflowjs failed: {first_line(exc)}", stage="tfjs") from exc
    finally:
        tfjs_convert._run_grappler = run_grappler


def bias_adds(graph_def) -> int:
    """Turn each Add of a rank-1 constant onto a Conv2D, DepthwiseConv2dNative or MatMul with that many output
    channels into a BiasAdd, in place; returns how many.

    onnx2tf adds a convolution's bias with tf.add. Grappler's first pass (tensorflowjs runs its arithmetic
    optimizer before the remapper fuses biases and activations) regroups conv + bias + residual as
    AddN(conv, residual) + bias, so the remapper finds no bias to fuse: mobilenet_v2's 10 residual blocks ran
    Conv2D, AddN and AddV2 instead of one fused conv and one AddV2. A BiasAdd is not an addition that
    regrouping touches, and the remapper fuses it."""
    nodes = {node.name: node for node in graph_def.node}
    producer = lambda ref, through_identity=False: _producer(nodes, ref, through_identity)  # noqa: E731

    def const_shape(node) -> list[int] | None:
        return [d.size for d in node.attr["value"].tensor.tensor_shape.dim] if node is not None and \
            node.op == "Const" else None

    def channels(node) -> int | None:
        weights = const_shape(producer(node.input[1], True)) if node is not None and len(node.input) > 1 else None
        if node.op in ("Conv2D", "DepthwiseConv2dNative") and weights and len(weights) == 4 \
                and node.attr["data_format"].s in (b"", b"NHWC"):
            return weights[3] if node.op == "Conv2D" else weights[2] * weights[3]
        if node.op == "MatMul" and weights and len(weights) == 2:
            return weights[0] if node.attr["transpose_b"].b else weights[1]
        return None

    count = 0
    for node in graph_def.node:
        if node.op not in ("Add", "AddV2") or len(node.input) != 2:
            continue
        for value, bias in (node.input, node.input[::-1]):
            shape = const_shape(producer(bias, True))
            if shape is not None and len(shape) == 1 and producer(value) is not None \
                    and shape[0] == channels(producer(value)):
                del node.input[:]
                node.input.extend([value, bias])
                node.op = "BiasAdd"
                node.attr["data_format"].s = b"NHWC"
                count += 1
                break
    return count


def _node_name(ref: str) -> str:
    """The node an input reference names: "name:1" and "^name" (a control input) are node "name"."""
    return ref.lstrip("^").split(":")[0]


def _producer(nodes: dict, ref: str, through_identity: bool = False):
    """The node an input reference ("name:1", "^name") names; past Identity nodes (inlined function inputs)."""
    node = nodes.get(_node_name(ref))
    while through_identity and node is not None and node.op == "Identity":
        node = nodes.get(_node_name(node.input[0]))
    return node


def pads_into_convs(graph_def) -> int:
    """Fold each zero Pad of the spatial axes whose only readers are VALID convolutions (Conv2D, _FusedConv2D,
    DepthwiseConv2dNative, NHWC) into their explicit padding, in place; returns how many Pads went.

    PyTorch pads a strided convolution on both sides, which TF's SAME does not, so onnx2tf writes a Pad and a
    VALID convolution: a copy of the whole input before 5 of mobilenet_v2's convolutions. TF.js's convolutions
    take explicit padding (tfjs-converter reads `explicit_paddings`), and so does XNNPACK under its wasm backend.
    Grappler's remapper fuses no convolution with explicit padding, so this runs after it."""
    import tensorflow as tf

    nodes = {node.name: node for node in graph_def.node}
    readers: dict[str, list] = {}
    for node in graph_def.node:
        for ref in node.input:
            readers.setdefault(_node_name(ref), []).append((node, ref))
    folded = []
    for pad in graph_def.node:
        paddings = _producer(nodes, pad.input[1], True) if pad.op == "Pad" and len(pad.input) == 2 else None
        if paddings is None or paddings.op != "Const":
            continue
        amounts = tf.make_ndarray(paddings.attr["value"].tensor)
        convs = [node for node, ref in readers.get(pad.name, [])]
        if amounts.shape != (4, 2) or (amounts < 0).any() or amounts[0].any() or amounts[3].any() or not convs \
                or any(node.op not in ("Conv2D", "_FusedConv2D", "DepthwiseConv2dNative") or ref != node.input[0]
                       or node.attr["padding"].s != b"VALID" or node.attr["data_format"].s not in (b"", b"NHWC")
                       for node, ref in readers[pad.name]):
            continue
        for conv in convs:
            conv.input[0] = pad.input[0]
            conv.attr["padding"].s = b"EXPLICIT"
            conv.attr["explicit_paddings"].list.i[:] = [int(v) for v in amounts.flatten()]
        folded.append(pad)
    for pad in folded:
        graph_def.node.remove(pad)
        paddings = nodes[_node_name(pad.input[1])]
        if paddings.op == "Const" and len(readers[paddings.name]) == 1:  # read by this Pad alone
            graph_def.node.remove(paddings)
    return len(folded)


def run_in_node(model_json: Path, artifact: Artifact, cases: list[Arrays], log: Path) -> dict[str, list[Arrays]]:
    return start_in_node(model_json, artifact, cases, log)()


def start_in_node(model_json: Path, artifact: Artifact, cases: list[Arrays], log: Path, scratch: Path | None = None):
    """Start one Node.js process that runs every case on every backend of NODE_BACKENDS (tensors travel as
    raw little-endian files) and return what waits for it. The wait returns each backend's outputs; it raises
    for a kernel that any backend of BACKENDS lacks (from the kernels the run dispatched), then for a backend
    whose run failed."""
    feeds = [[(b.artifact_name, case[b.name]) for b in artifact.inputs] for case in cases]
    wait = start_node_request(model_json, feeds, [b.artifact_name for b in artifact.outputs], log, scratch=scratch)

    def results() -> dict[str, list[Arrays]]:
        reply = wait()
        raise_for_missing(missing_kernels(reply["kernels"]), json.loads(model_json.read_text()))
        failed = {b: r["error"] for b, r in reply["backends"].items() if "error" in r}
        if failed:
            raise ConversionError("TF.js in Node.js failed on " + "; ".join(f"{b}: {e}" for b, e in failed.items()),
                                  stage="tfjs", hint=f"see logs/{log.name}; every kernel the model uses is "
                                  "registered in every backend, so this is a TF.js limitation: report it with the model")
        return {backend: [{b.name: meta["array"] for b, meta in zip(artifact.outputs, case_reply["outputs"])}
                          for case_reply in reply["backends"][backend]["cases"]] for backend in NODE_BACKENDS}

    return results


def start_node_request(model_json: Path, cases: list[list[tuple[str, np.ndarray]]], outputs: list[str], log: Path,
                       batch: int = 0, backends=NODE_BACKENDS, folder: Path | None = None,
                       scratch: Path | None = None):
    """Start converter/js/run_tfjs.mjs on `model_json` for `cases` (each a list of (graph input name, array)),
    fetching the graph tensors `outputs` ("Identity:0"; any node's), on `backends`, and return what waits for its
    reply: {"kernels": [...], "backends": {backend: {"cases": [{"outputs": [meta]}]} or {"error": text}}}, each
    meta holding the tensor as "array" (or an "error" where `batch` asked for `batch` tensors per execution and
    TF.js could not compute this one). With `folder`, the tensors stay there as files ("file", "dtype", "shape";
    read them with read_tensor) and the caller removes them. Otherwise they go into a folder made in `scratch`
    (a conversion's work folder, so that a run killed outright leaves nothing outside it; default: the system's
    temporary folder) and removed after. Raises ConversionError when Node.js or TF.js did not start."""
    node = shutil.which("node")
    if node is None:
        raise ConversionError("Node.js is not installed", stage="tfjs", hint="install Node.js 20 and run npm ci")
    tmp = tempfile.mkdtemp(prefix=".tfjs-run-", dir=folder or scratch)
    try:
        # cpu first: it registers the most kernels, so the audit sees the whole model before wasm may stop.
        request = {"model": str(model_json), "backends": sorted(backends, key=lambda b: b != "cpu"),
                   "cases": [], "outputs": list(outputs), "batch": batch}
        for i, case in enumerate(cases):
            feeds = []
            for name, value in case:
                array = np.ascontiguousarray(value)
                dtype = "int32" if array.dtype.kind in "iub" else "float32"
                file = Path(tmp) / f"in_{i}_{len(feeds)}.bin"
                array.astype(dtype).tofile(file)
                feeds.append({"name": name, "shape": list(array.shape), "dtype": dtype, "file": str(file)})
            request["cases"].append({"inputs": feeds, "out_prefix": str(Path(tmp) / f"out_{i}")})
        (Path(tmp) / "request.json").write_text(json.dumps(request))
        start = log.stat().st_size if log.is_file() else 0
        with open(log, "a") as log_file:
            process = subprocess.Popen([node, str(RUNNER), str(Path(tmp) / "request.json")], stdout=subprocess.PIPE,
                                       stderr=log_file, text=True, cwd=str(RUNNER.parent))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    def wait() -> dict:
        try:
            stdout, _ = process.communicate()
            return _node_reply(process.returncode, stdout, log, start, read=folder is None)
        finally:
            if process.poll() is None:
                process.kill()
            if folder is None:
                shutil.rmtree(tmp, ignore_errors=True)

    return wait


def read_tensor(meta: dict) -> np.ndarray:
    return np.fromfile(meta["file"], dtype=meta["dtype"]).reshape(meta["shape"])


def _node_reply(returncode: int, stdout: str, log: Path, start: int, read: bool = True) -> dict:
    if returncode != 0:  # TF.js itself did not start
        with open(log, "rb") as log_file:
            log_file.seek(start)
            said = next((line.strip() for line in log_file.read().decode(errors="replace").splitlines()
                         if line.strip()), "")
        hint = "run `npm ci` at the project root" if "Cannot find" in said else f"see logs/{log.name}"
        raise ConversionError(f"TF.js in Node.js failed (exit {returncode})" + (f": {said}" if said else ""),
                              stage="tfjs", hint=hint)
    reply = json.loads(stdout.strip().splitlines()[-1])
    for run in reply["backends"].values():
        for case_reply in run.get("cases", []) if read else []:
            for meta in case_reply["outputs"]:
                if "file" in meta:  # read before the folder goes
                    meta["array"] = read_tensor(meta)
    return reply


def _hint_for(ops: list[str]) -> str:
    if "Erfc" in ops:
        return "exact GELU became Erfc: use nn.GELU(approximate='tanh'), or keep --opset below 20"
    return "replace those ops in the model, or convert with --targets onnx,tflite,ptl"



if __name__ == "__main__":  # write_graph_model's child process: SAVED_MODEL OUT PRECISION
    try:
        write_graph_model(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
    except ConversionError as exc:
        print(CHILD_ERROR + json.dumps({"message": exc.message, "hint": exc.hint,
                                        "unsupported_ops": exc.unsupported_ops}), flush=True)
        sys.exit(1)
