"""What every TF.js backend can run, checked on the graph tensorflowjs wrote, and rewritten where it cannot.

The support table (converter/js/tfjs_support.json) is derived from the pinned @tensorflow packages by
converter/js/tfjs_support.mjs: per backend (cpu, wasm, webgl, webgpu) its registered kernels and, per fused
kernel, the fused activations it implements. tests/test_tfjs_audit.py re-derives it and fails when a new
package version changes it. Three checks, in order:

1. Host-specific ops. TensorFlow's oneDNN rewrites (`_MklLayerNorm`, `_Mkl*`) depend on the CPU that
   converts and exist in no TF.js backend: an error, never a rewrite (converter/stages/tfjs.py keeps them
   out by converting with oneDNN off).
2. Fused ops (_FusedConv2D, FusedDepthwiseConv2dNative, _FusedMatMul). Grappler fuses the bias add and the
   activation into the op; a backend whose fused kernel lacks that activation stops at run time
   ("tanh activation not yet supported for FusedConv2D in the wasm backend"). The activation is split
   into its own nodes when any backend lacks it (or TF.js's converter does not read its parameter: the
   alpha of a LeakyRelu fused into FusedDepthwiseConv2dNative gave NaN on cpu), and a bias that is not a 1-D constant (maxvit's residual
   conv, tensorflow/tensorflow#126661) is split off as well:

       before:  _FusedConv2D(x, w, b; fused_ops=[BiasAdd, _FusedHardSwish]) -> consumer
       after:   _FusedConv2D(x, w, b; fused_ops=[BiasAdd]) -> AddV2(3) -> Relu6 -> Mul(x) -> Mul(1/6) -> consumer

   The last node of the rewrite takes the fused node's name, so consumers and output names stay.
3. Kernels. The kernels a run dispatched (recorded by converter/js/run_tfjs.mjs) must be registered in every
   backend; what is missing is one error naming the nodes, kernels and backends.
"""

from __future__ import annotations

import base64
import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConversionError

SUPPORT_FILE = Path(__file__).resolve().parent.parent / "js" / "tfjs_support.json"
BACKENDS = ("wasm", "webgl", "webgpu", "cpu")  # what the web demo offers
REWRITES_SHARD = "group-rewrites.bin"  # the constants that rewritten activations need

# Graph op -> the TF.js kernel that runs it, where the names differ.
FUSED = {"_FusedConv2D": "FusedConv2D", "FusedDepthwiseConv2dNative": "FusedDepthwiseConv2D",
         "_FusedMatMul": "_FusedMatMul"}
UNFUSED = {"_FusedConv2D": "Conv2D", "FusedDepthwiseConv2dNative": "DepthwiseConv2dNative", "_FusedMatMul": "MatMul"}
KERNEL_ALIASES = {"AddV2": "Add", "BatchMatMulV2": "BatchMatMul", **FUSED}
FUSION_ATTRS = {"fused_ops", "num_args", "epsilon", "leakyrelu_alpha", "num_host_args", "filter_format", "TArgs"}


@functools.cache
def support() -> dict:
    return json.loads(SUPPORT_FILE.read_text())


@dataclass
class Rewrite:
    node: str
    op: str
    what: str  # e.g. "activation tanh", "rank-4 bias"
    backends: list[str]  # the backends that could not run it fused

    def describe(self) -> str:
        return f"{self.op} {self.node}: {self.what} unfused ({', '.join(self.backends)} lack it)"


class _Graph:
    """model.json's nodes and weights, with helpers to add nodes and scalar constants."""

    def __init__(self, model_json: dict) -> None:
        self.json = model_json
        self.nodes = model_json["modelTopology"]["node"]
        self.added: list[dict] = []
        self.constants: dict[str, float] = {}
        self.shapes = {w["name"]: w["shape"] for g in model_json["weightsManifest"] for w in g["weights"]}

    def node(self, name: str, op: str, inputs: list[str], dtype: dict, **attrs) -> str:
        self.added.append({"name": name, "op": op, "input": inputs, "attr": {"T": dtype, **attrs}})
        return name

    def scalar(self, value: float) -> str:
        name = f"converter/rewrite_const/{float(value)!r}"
        if name not in self.constants:
            self.constants[name] = float(value)
            self.added.append({"name": name, "op": "Const", "attr": {
                "dtype": {"type": "DT_FLOAT"}, "value": {"tensor": {"dtype": "DT_FLOAT", "tensorShape": {}}}}})
        return name

    def commit(self, folder: Path) -> None:
        self.nodes.extend(self.added)
        if self.constants:
            names = sorted(self.constants)
            np.array([self.constants[n] for n in names], dtype="<f4").tofile(folder / REWRITES_SHARD)
            self.json["weightsManifest"].append({"paths": [REWRITES_SHARD], "weights": [
                {"name": n, "shape": [], "dtype": "float32"} for n in names]})


def _hardswish(g: _Graph, x: str, name: str, t: dict, mid) -> str:  # x * relu6(x + 3) / 6
    gated = g.node(mid("mul"), "Mul", [x, g.node(mid("relu6"), "Relu6", [g.node(mid("add"), "AddV2", [x, g.scalar(3.0)], t)], t)], t)
    return g.node(name, "Mul", [gated, g.scalar(1 / 6)], t)


def _gelu_exact(g: _Graph, x: str, name: str, t: dict, mid) -> str:  # x * (1 + erf(x / sqrt 2)) / 2
    erf = g.node(mid("erf"), "Erf", [g.node(mid("scale"), "Mul", [x, g.scalar(1 / math.sqrt(2))], t)], t)
    one = g.node(mid("add"), "AddV2", [erf, g.scalar(1.0)], t)
    return g.node(name, "Mul", [g.node(mid("mul"), "Mul", [x, one], t), g.scalar(0.5)], t)


def _gelu_tanh(g: _Graph, x: str, name: str, t: dict, mid) -> str:  # x * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2
    cube = g.node(mid("cube"), "Mul", [g.node(mid("square"), "Mul", [x, x], t), x], t)
    inner = g.node(mid("inner"), "AddV2", [x, g.node(mid("c"), "Mul", [cube, g.scalar(0.044715)], t)], t)
    tanh = g.node(mid("tanh"), "Tanh", [g.node(mid("s"), "Mul", [inner, g.scalar(math.sqrt(2 / math.pi))], t)], t)
    one = g.node(mid("add"), "AddV2", [tanh, g.scalar(1.0)], t)
    return g.node(name, "Mul", [g.node(mid("mul"), "Mul", [x, one], t), g.scalar(0.5)], t)


def _single(op: str):
    return lambda g, x, name, t, mid: g.node(name, op, [x], t)


def _swish(g: _Graph, x: str, name: str, t: dict, mid) -> str:  # x * sigmoid(x)
    return g.node(name, "Mul", [x, g.node(mid("sigmoid"), "Sigmoid", [x], t)], t)


def _mish(g: _Graph, x: str, name: str, t: dict, mid) -> str:  # x * tanh(softplus(x))
    return g.node(name, "Mul", [x, g.node(mid("tanh"), "Tanh", [g.node(mid("softplus"), "Softplus", [x], t)], t)], t)


# A fused activation (lowercased, as TF.js reads fused_ops) -> the nodes that compute it unfused. LeakyRelu
# needs the fused op's alpha and is built in _unfuse; Prelu needs the op's second argument and stays fused.
ACTIVATIONS = {
    "relu": _single("Relu"), "relu6": _single("Relu6"), "elu": _single("Elu"), "selu": _single("Selu"),
    "sigmoid": _single("Sigmoid"), "tanh": _single("Tanh"), "softplus": _single("Softplus"),
    "swish": _swish, "_mklswish": _swish, "_fusedswish": _swish, "hardswish": _hardswish,
    "_fusedhardswish": _hardswish, "mish": _mish, "gelu": _gelu_exact, "geluexact": _gelu_exact,
    "geluapproximate": _gelu_tanh, "leakyrelu": None,
}


# Activations with a parameter, and the fused op's attribute that carries it.
PARAMETERS = {"leakyrelu": "leakyrelu_alpha"}


def _activation(graph: _Graph, key: str, x: str, name: str, dtype: dict, fused_attrs: dict) -> str:
    """Nodes computing activation `key` of `x`; the last one is called `name`."""
    if key == "leakyrelu":
        alpha = fused_attrs.get("leakyrelu_alpha", {}).get("f", 0.2)
        return graph.node(name, "LeakyRelu", [x], dtype, alpha={"f": alpha})
    step = iter(range(100))
    return ACTIVATIONS[key](graph, x, name, dtype, lambda suffix: f"{name}/act{next(step)}_{suffix}")


def _strings(attr: dict) -> list[str]:
    return [base64.b64decode(v).decode() for v in attr.get("list", {}).get("s", [])]


def host_ops(model_json: dict) -> list[tuple[str, str]]:
    """(node, op) for every op that exists only in some host's TensorFlow build (oneDNN's `_Mkl*`)."""
    return [(n["name"], n["op"]) for n in model_json["modelTopology"]["node"] if n["op"].startswith("_Mkl")]


def make_runnable(model_json: dict, folder: Path, backends=BACKENDS) -> list[Rewrite]:
    """Check `model_json` (in `folder`, beside its shards) against every backend and rewrite in place what some
    backend cannot run fused. Raises ConversionError listing every node it can neither run nor rewrite."""
    host = host_ops(model_json)
    if host:
        raise ConversionError(
            "the graph holds ops of this machine's TensorFlow build, which no TF.js backend has: "
            + ", ".join(f"{op} ({node})" for node, op in host), stage="tfjs", unsupported_ops=sorted({o for _, o in host}),
            hint="TensorFlow was imported with oneDNN on before the converter ran: set TF_ENABLE_ONEDNN_OPTS=0 "
                 "before importing tensorflow, or run the conversion in its own process")
    table, converter_attrs = support()["backends"], support()["converter_attrs"]
    graph = _Graph(model_json)
    rewrites, impossible = [], []
    for node in graph.nodes:
        if node["op"] not in FUSED:
            continue
        op, name = node["op"], node["name"]
        fused = _strings(node["attr"].get("fused_ops", {}))
        extra, activation = (fused + ["", ""])[:2]
        activation = activation.lower()
        if extra not in ("BiasAdd", "NoOp") or len(fused) > 2:
            impossible.append(f"{op} {name} with fused_ops {fused}")
            continue
        lacking = [b for b in backends if activation and activation not in table[b]["fused"][FUSED[op]]]
        if PARAMETERS.get(activation, "") not in converter_attrs[op] + [""]:
            lacking = list(backends)  # TF.js would run it with its parameter undefined
        bias = node["input"][2] if extra == "BiasAdd" else None
        bias_rank = len(graph.shapes.get(bias.split(":")[0], [0, 0])) if bias else 1
        if not lacking and bias_rank == 1:
            continue
        if activation not in ACTIVATIONS and activation:
            impossible.append(f"{op} {name}: activation {activation} (lacking in {', '.join(lacking)})")
            continue
        rewrites += _unfuse(graph, node, extra, activation, bias_rank, lacking, list(backends))
    if impossible:
        raise ConversionError("TF.js backends cannot run these fused ops and no rewrite is known: "
                              + "; ".join(impossible), stage="tfjs",
                              hint="report the model with this message; meanwhile --targets onnx,tflite,torchscript "
                                   "skips TF.js")
    graph.commit(folder)
    return rewrites


def _unfuse(graph: _Graph, node: dict, extra: str, activation: str, bias_rank: int, lacking: list[str],
            backends: list[str]) -> list[Rewrite]:
    op, name, dtype = node["op"], node["name"], node["attr"].get("T", {"type": "DT_FLOAT"})
    fused_attrs = dict(node["attr"])
    out, done = f"{name}/unfused_op", []
    if bias_rank == 1:  # keep the per-channel bias (or NoOp, no bias) fused: every backend takes it
        node["attr"]["fused_ops"] = {"list": {"s": [base64.b64encode(extra.encode()).decode()]}}
        node["name"] = out
    else:
        bias = node["input"][2]
        node.update(name=out, op=UNFUSED[op], input=node["input"][:2],
                    attr={k: v for k, v in node["attr"].items() if k not in FUSION_ATTRS})
        out = graph.node(f"{name}/unfused_add" if activation else name, "AddV2", [out, bias], dtype)
        done.append(Rewrite(name, op, f"rank-{bias_rank} bias", backends))
    if activation:
        _activation(graph, activation, out, name, dtype, fused_attrs)
        if lacking:
            done.append(Rewrite(name, op, f"activation {activation}", lacking))
    return done


def missing_kernels(kernels: list[str], backends=BACKENDS) -> dict[str, list[str]]:
    """Kernel -> the backends that have not registered it, for the kernels a run dispatched."""
    table = support()["backends"]
    missing = {k: [b for b in backends if k not in table[b]["kernels"]] for k in kernels}
    return {k: b for k, b in missing.items() if b}


def raise_for_missing(missing: dict[str, list[str]], model_json: dict) -> None:
    """One error naming, for every kernel some backend lacks, the nodes that dispatch it and those backends."""
    if not missing:
        return
    by_kernel: dict[str, list[str]] = {}
    for node in model_json["modelTopology"]["node"]:
        by_kernel.setdefault(KERNEL_ALIASES.get(node["op"], node["op"]), []).append(node["name"])
    parts = []
    for kernel, backends in sorted(missing.items()):
        nodes = by_kernel.get(kernel, [])
        where = (", ".join(nodes[:3]) + (f" and {len(nodes) - 3} more" if len(nodes) > 3 else "")) if nodes \
            else "dispatched inside another op"
        parts.append(f"{kernel} ({where}): not in {', '.join(backends)}")
    raise ConversionError("TF.js backends have no kernel for: " + "; ".join(parts), stage="tfjs",
                          unsupported_ops=sorted(missing),
                          hint="replace those layers in the model with ones the backends run, or convert with "
                               "--targets onnx,tflite,torchscript to skip TF.js")
