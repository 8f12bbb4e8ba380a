"""SavedModel -> TF.js graph model with tensorflowjs, run in TF.js under Node.js (the pure-JS/wasm backends:
tfjs-node would need a native download)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import ConversionError, first_line
from ..layout import Binding
from .base import IO_RECORD, Arrays, Artifact, Context, Stage, io_record
from .saved_model import import_tensorflow

RUNNER = Path(__file__).resolve().parent.parent / "js" / "run_tfjs.mjs"
QUANTIZATION = {"fp32": None, "fp16": {"float16": "*"}, "uint8": {"uint8": "*"}}
NODE_BACKEND = "wasm"


class TfjsStage(Stage):
    name = "tfjs"
    after = "saved_model"

    def __init__(self, precision: str = "fp32") -> None:
        self.precision = precision

    def convert(self, ctx: Context) -> Artifact:
        import_tensorflow()
        from tensorflowjs.converters import tf_saved_model_conversion_v2 as tfjs_convert

        source = ctx.artifacts["saved_model"]
        out = ctx.work / "tfjs"
        try:
            tfjs_convert.convert_tf_saved_model(
                str(ctx.work / source.path), str(out), signature_def="serving_default",
                quantization_dtype_map=QUANTIZATION[self.precision],
            )
        except ValueError as exc:
            text = str(exc)
            if "Unsupported Ops" in text:
                ops = sorted({op.strip() for op in text.splitlines()[-1].split(",") if op.strip()})
                raise ConversionError(f"TF.js cannot run these ops: {', '.join(ops)}", stage=self.name,
                                      unsupported_ops=ops, hint=_hint_for(ops)) from exc
            raise ConversionError(f"tensorflowjs failed: {first_line(exc)}", stage=self.name) from exc
        model_json = json.loads((out / "model.json").read_text())
        unfused = unfuse_tensor_biases(model_json)
        signature = model_json["signature"]
        # The graph model feeds and fetches node names ("x:0", "Identity:0"); map them to PyTorch's names.
        rename = lambda b, side: Binding(b.name, signature[side][b.name]["name"], list(b.shape), b.layout,  # noqa: E731
                                         list(b.perm))
        inputs = [rename(b, "inputs") for b in source.inputs]
        outputs = [rename(b, "outputs") for b in source.outputs]
        # userDefinedMetadata is TF.js's slot for such data (GraphModel.metadata in the browser).
        model_json["userDefinedMetadata"] = {IO_RECORD: json.loads(io_record(ctx, inputs, outputs))}
        # tensorflowjs writes protobuf maps (node attributes, signature entries) in hash order, which changes
        # from run to run: sorted keys make the same model give the same bytes. Key order means nothing to
        # TF.js's loader.
        (out / "model.json").write_text(json.dumps(model_json, sort_keys=True))
        notes = [f"TF.js in Node.js, {NODE_BACKEND} backend"]
        if unfused:
            notes.append(f"{unfused} fused conv/matmul ops whose 'bias' is a tensor split back into op + add "
                         "(TF.js's wasm and WebGL kernels take only a 1-D bias)")
        return Artifact(Path("tfjs/model.json"), self.precision, inputs, outputs, notes, bundle=Path("tfjs"))

    def run(self, ctx: Context, artifact: Artifact, cases: list[Arrays]) -> list[Arrays]:
        return run_in_node(ctx.work / artifact.path, artifact, cases, log=ctx.work / "logs" / "tfjs.node.log")


# Grappler's remapper (run by tensorflowjs) fuses Conv2D/MatMul + Add into one op with fused_ops=[BiasAdd]
# even when the addend is a whole tensor (maxvit's residual branch: conv(avgpool(x)) + conv(...)), not a
# per-channel vector. TF.js's wasm backend then stops: "FusedConv2D only supports rank-1 bias but got rank
# 4" (the same remapper pattern as tensorflow/tensorflow#126661).
FUSED = {"_FusedConv2D": "Conv2D", "FusedDepthwiseConv2dNative": "DepthwiseConv2dNative", "_FusedMatMul": "MatMul"}
ACTIVATIONS = {"Relu", "Relu6", "Elu", "Selu", "Sigmoid", "Tanh"}
FUSION_ATTRS = {"fused_ops", "num_args", "epsilon", "leakyrelu_alpha", "num_host_args", "filter_format"}


def unfuse_tensor_biases(model_json: dict) -> int:
    """Split every fused op whose bias is not a 1-D constant back into the op, an AddV2 and its activation,
    in place. Returns how many were split."""
    import base64

    nodes = model_json["modelTopology"]["node"]
    shapes = {w["name"]: w["shape"] for group in model_json["weightsManifest"] for w in group["weights"]}
    added, count = [], 0
    for node in nodes:
        if node["op"] not in FUSED:
            continue
        fused = [base64.b64decode(v).decode() for v in node["attr"].get("fused_ops", {}).get("list", {}).get("s", [])]
        if not fused or fused[0] != "BiasAdd" or any(op not in ACTIVATIONS for op in fused[1:]) or len(fused) > 2:
            continue
        bias = node["input"][2]
        if len(shapes.get(bias.split(":")[0], [0, 0])) == 1:
            continue  # a per-channel constant: what every backend's fused kernel takes
        name, attrs = node["name"], {k: v for k, v in node["attr"].items() if k not in FUSION_ATTRS}
        node.update(name=f"{name}/unfused_op", op=FUSED[node["op"]], input=node["input"][:2], attr=attrs)
        dtype = {"T": attrs["T"]} if "T" in attrs else {}
        add_name = f"{name}/unfused_add" if len(fused) > 1 else name
        added.append({"name": add_name, "op": "AddV2", "input": [node["name"], bias], "attr": dict(dtype)})
        if len(fused) > 1:
            added.append({"name": name, "op": fused[1], "input": [add_name], "attr": dict(dtype)})
        count += 1
    nodes.extend(added)
    return count


def run_in_node(model_json: Path, artifact: Artifact, cases: list[Arrays], log: Path) -> list[Arrays]:
    """One Node.js process runs every case; tensors travel as raw little-endian files."""
    node = shutil.which("node")
    if node is None:
        raise ConversionError("Node.js is not installed", stage="tfjs", hint="install Node.js 20 and run npm install")
    with tempfile.TemporaryDirectory(prefix="tfjs-run-") as tmp:
        request = {"model": str(model_json), "backend": NODE_BACKEND, "cases": [],
                   "outputs": [b.artifact_name for b in artifact.outputs]}
        for i, case in enumerate(cases):
            feeds = []
            for b in artifact.inputs:
                array = np.ascontiguousarray(case[b.name])
                dtype = "int32" if array.dtype.kind in "iub" else "float32"
                file = Path(tmp) / f"in_{i}_{len(feeds)}.bin"
                array.astype(dtype).tofile(file)
                feeds.append({"name": b.artifact_name, "shape": list(array.shape), "dtype": dtype, "file": str(file)})
            request["cases"].append({"inputs": feeds, "out_prefix": str(Path(tmp) / f"out_{i}")})
        (Path(tmp) / "request.json").write_text(json.dumps(request))
        start = log.stat().st_size if log.is_file() else 0
        with open(log, "a") as log_file:
            done = subprocess.run([node, str(RUNNER), str(Path(tmp) / "request.json")], stdout=subprocess.PIPE,
                                  stderr=log_file, text=True, cwd=str(RUNNER.parent))
        if done.returncode != 0:
            with open(log, "rb") as log_file:  # the JS error's first line, e.g. a kernel the backend lacks
                log_file.seek(start)
                said = next((line.strip() for line in log_file.read().decode(errors="replace").splitlines()
                             if line.strip()), "")
            raise ConversionError(f"TF.js in Node.js failed (exit {done.returncode})" + (f": {said}" if said else ""),
                                  stage="tfjs",
                                  hint=f"see {log.name}; run `npm ci` at the project root if @tensorflow/tfjs is missing")
        reply = json.loads(done.stdout.strip().splitlines()[-1])
        results = []
        for i, case_reply in enumerate(reply["cases"]):
            outs = {}
            for b, meta in zip(artifact.outputs, case_reply["outputs"]):
                data = np.fromfile(meta["file"], dtype=meta["dtype"])
                outs[b.name] = data.reshape(meta["shape"])
            results.append(outs)
        return results


def _hint_for(ops: list[str]) -> str:
    if "Erfc" in ops:
        return "exact GELU became Erfc: use nn.GELU(approximate='tanh'), or keep --opset below 20"
    return "replace those ops in the model, or convert with --targets onnx,tflite,ptl"

