"""What every TF.js backend can run, checked on the graph tensorflowjs wrote, and rewritten where it cannot.

The support table (converter/js/tfjs_support.json) is derived from the pinned @tensorflow packages by
converter/js/tfjs_support.mjs: per backend (cpu, wasm, webgl, webgpu) its registered kernels and, per fused
kernel, the fused activations it implements. tests/test_tfjs_audit.py re-derives it and fails when a new
package version changes it. Four checks:

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
3. Batched matmuls that broadcast over an inner batch axis. Every backend's BatchMatMul kernel flattens the
   batch dimensions of each operand into one and indexes operand X's matrices with `batch % batchSizeOfX`
   (tfjs-backend-cpu and -wasm kernels/BatchMatMul.js, webgl's mulmat_packed_gpu.js, webgpu's
   matmul_*_webgpu.js), which is right only when X's batch shape, padded with leading 1s, is 1s followed by
   the trailing dimensions of the output's batch shape. [24, 32, 1, 49] @ [24, 1, 49, 33] (timm
   efficientvit_b2) silently reads the wrong matrices of the second operand. Shapes come from TensorFlow's
   shape inference on the graph (model.json does not hold them), and such an operand gets a Tile over the
   batch axes it broadcasts (the kernel that TF.js's BroadcastTo op runs; the BroadcastTo op would need
   every output dimension, and --dynamic-batch leaves the batch unknown):

       before:  BatchMatMulV2([24, 32, 1, 49], [24, 1, 49, 33])
       after:   BatchMatMulV2([24, 32, 1, 49], Tile([24, 1, 49, 33], [1, 32, 1, 1]))

4. Control inputs that TF.js reads as data. tfjs-converter keeps a node's control inputs ("^name") in its input
   list, and ops whose inputs it reads to the end of that list, or counted from its end (AddN, ConcatV2, Pack,
   the fused ops, ...: derived from its op lists), take them for operands. Grappler's arithmetic optimizer gives
   the AddNs it builds in a while loop's body a control input from the loop (a bidirectional nn.GRU: "All
   tensors passed to tf.addN() must have the same dtype"); on ConcatV2 one would be read as the axis. Such
   a node drops its control inputs when one of its data inputs is not a constant: that input already makes it
   run after its producer and in its loop frame.

       before:  AddN(matmul_a, matmul_b, ^while/loop_body_control)
       after:   AddN(matmul_a, matmul_b)

5. Kernels that write into an input. The cpu backend's TensorScatterUpdate returns its `tensor` input's own
   buffer with the updates written into it (tfjs-backend-cpu kernels/TensorScatterUpdate.js: scatterImpl takes
   that input's TensorBuffer as its output). A constant input keeps the first run's updates, so every later run
   starts from them: a mixture-of-experts router, `zeros_like(w).scatter(-1, top_k_indices, top_k_weights)`,
   was right on the first case and off by rel 0.61 on the second; an activation input would change under its
   other readers. That input is copied first, by adding a zero (a new buffer on every backend):

       before:  TensorScatterUpdate(zeros, indices, updates)
       after:   TensorScatterUpdate(AddV2(zeros, 0), indices, updates)

6. Band parts. tfjs-converter reads MatrixBandPart's num_upper from the input that holds num_lower (its op
   list gives both `start: 1`), so every backend keeps the band [-num_lower, num_lower]: onnx2tf builds
   `y.tril(-1)` as `y - band_part(y, 0, -1)`, and TF.js kept only the diagonal (rel 0.83). A band part whose
   bounds are different constants becomes a select by its band, a constant mask (the last two dimensions from
   TensorFlow's shape inference):

       before:  MatrixBandPart(y, 0, -1)
       after:   SelectV2(Greater(band, 0.5), y, 0)

7. Kernels. The kernels a run dispatched (recorded by converter/js/run_tfjs.mjs) must be registered in every
   backend; what is missing is one error naming the nodes, kernels and backends.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import warnings
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
    backends: list[str]  # the backends that could not run it fused, or that compute it wrong
    fix: str = "unfused"  # "unfused": split off the fused op; "tiled": an operand tiled over its batch axes;
    # "dropped": control inputs taken off; "copied": an input the kernel writes into copied first; "masked": a band
    # part as a select

    def describe(self) -> str:
        if self.fix == "masked":
            return (f"{self.op} {self.node}: {self.what} as a select by its band (TF.js reads both bounds from the "
                    "first)")
        if self.fix == "copied":
            return f"{self.op} {self.node}: {self.what} copied ({', '.join(self.backends)} would write into it)"
        if self.fix == "dropped":
            return f"{self.op} {self.node}: {self.what} dropped (TF.js would read them as operands)"
        if self.fix == "tiled":
            return (f"{self.op} {self.node}: {self.what} ({', '.join(self.backends)} broadcast a batched matmul's "
                    "operand only over leading batch axes)")
        return f"{self.op} {self.node}: {self.what} unfused ({', '.join(self.backends)} lack it)"


class _Graph:
    """model.json's nodes and weights, with helpers to add nodes and constants (float scalars, int32 vectors)."""

    def __init__(self, model_json: dict) -> None:
        self.json = model_json
        self.nodes = model_json["modelTopology"]["node"]
        self.added: list[dict] = []
        self.constants: dict[str, np.ndarray] = {}
        self.shapes = {w["name"]: w["shape"] for g in model_json["weightsManifest"] for w in g["weights"]}

    def node(self, name: str, op: str, inputs: list[str], dtype: dict, **attrs) -> str:
        self.added.append({"name": name, "op": op, "input": inputs, "attr": {"T": dtype, **attrs}})
        return name

    def _constant(self, name: str, value: np.ndarray) -> str:
        if name not in self.constants:
            self.constants[name] = value
            tf_dtype = {"float32": "DT_FLOAT", "int32": "DT_INT32"}[value.dtype.name]
            shape = {"dim": [{"size": str(d)} for d in value.shape]} if value.shape else {}
            self.added.append({"name": name, "op": "Const", "attr": {
                "dtype": {"type": tf_dtype}, "value": {"tensor": {"dtype": tf_dtype, "tensorShape": shape}}}})
        return name

    def scalar(self, value: float) -> str:
        return self._constant(f"converter/rewrite_const/{float(value)!r}", np.array(value, dtype="<f4"))

    def zero(self, dtype: dict) -> str | None:
        """A scalar 0 of `dtype` (a node's "T" attribute), or None for a dtype other than float32 and int32."""
        numpy_dtype = {"DT_FLOAT": "<f4", "DT_INT32": "<i4"}.get(dtype.get("type"))
        return None if numpy_dtype is None else self._constant(f"converter/rewrite_const/zero/{dtype['type']}",
                                                                np.array(0, dtype=numpy_dtype))

    def ints(self, values: list[int]) -> str:
        """A 1-D int32 constant (a shape, Tile's multiples)."""
        return self._constant(f"converter/rewrite_const/int32/{'_'.join(map(str, values))}",
                              np.array(values, dtype="<i4"))

    def commit(self, folder: Path) -> None:
        """Put the added nodes into the graph and every constant so far into REWRITES_SHARD; again after more."""
        self.nodes.extend(self.added)
        self.added = []
        if self.constants:
            names = sorted(self.constants)
            (folder / REWRITES_SHARD).write_bytes(b"".join(self.constants[n].tobytes() for n in names))
            self.json["weightsManifest"][:] = [g for g in self.json["weightsManifest"] if g["paths"] != [REWRITES_SHARD]]
            self.json["weightsManifest"].append({"paths": [REWRITES_SHARD], "weights": [
                {"name": n, "shape": list(self.constants[n].shape), "dtype": self.constants[n].dtype.name}
                for n in names]})


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
    rewrites, impossible = _data_inputs_only(graph, list(backends))
    rewrites += _copied_inputs(graph, list(backends))
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
    # On the graph with its fused ops runnable: TensorFlow cannot infer shapes past a fused op with a tensor bias
    # (timm's lambda_resnet50ts: every batched matmul went unchecked, and one computed a quarter of its output).
    rewrites += _tile_broadcast_batches(graph, folder, list(backends))
    rewrites += _band_parts(graph, folder, list(backends))
    graph.commit(folder)
    return rewrites

def _data_inputs_only(graph: _Graph, backends: list[str]) -> tuple[list[Rewrite], list[str]]:
    """Drop the control inputs that TF.js would read as operands (module docstring, 4); the nodes where a control
    input is all that places them (their data inputs are constants) are returned as impossible."""
    reads_to_the_end = set(support()["inputs_to_the_end"])
    ops = {n["name"]: n["op"] for n in graph.nodes}
    rewrites, impossible = [], []
    for node in graph.nodes:
        control = [i for i in node.get("input", []) if i.startswith("^")]
        if node["op"] not in reads_to_the_end or not control:
            continue
        data = [i for i in node["input"] if not i.startswith("^")]
        if all(ops.get(i.split(":")[0]) == "Const" for i in data):
            impossible.append(f"{node['op']} {node['name']}: control inputs {', '.join(control)} on constant data")
            continue
        node["input"] = data
        rewrites.append(Rewrite(node["name"], node["op"], f"control inputs {', '.join(control)}", backends,
                                fix="dropped"))
    return rewrites, impossible



# The input each kernel writes into, and the backends whose kernel does (module docstring, 5).
WRITES_INTO_INPUT = {"TensorScatterUpdate": (0, ["cpu"])}


def _copied_inputs(graph: _Graph, backends: list[str]) -> list[Rewrite]:
    """Give the kernels that write into an input a copy of it (module docstring, 5)."""
    rewrites = []
    for node in graph.nodes:
        index, writers = WRITES_INTO_INPUT.get(node["op"], (0, []))
        writers = [b for b in writers if b in backends]
        dtype = node.get("attr", {}).get("T", {"type": "DT_FLOAT"})
        if not writers or graph.zero(dtype) is None:
            continue
        source = node["input"][index]
        node["input"][index] = graph.node(f"{node['name']}/input_copy", "AddV2", [source, graph.zero(dtype)], dtype)
        rewrites.append(Rewrite(node["name"], node["op"], f"input {source}", writers, fix="copied"))
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


# Graph ops that reach TF.js's BatchMatMul kernel with batch dimensions. (_FusedMatMul reaches it too, but
# TensorFlow's _FusedMatMul is MatMul's fusion and only ever 2-D: no batch to broadcast.)
BATCHED_MATMULS = ("BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")


def kernel_batch_tiles(operand: list[int], out: list[int]) -> list[int] | None:
    """Tile multiples over `operand`'s batch axes that make TF.js's BatchMatMul kernels read its matrices right
    for the output batch shape `out` (-1: unknown); [] when they already do, None when an unknown dimension
    hides what is needed.

    The kernels index the operand's flattened batch with `batch % size`, which is right when its batch shape,
    padded with leading 1s, is 1s followed by the trailing part of `out`: [32, 1] against [32, 24] is not,
    [1, 24] and [24] are. Every axis after the operand's first non-1 one where it is 1 and `out` is not gets
    tiled. An unknown operand dimension is taken for the output's (TensorFlow's broadcast allows only it or 1).
    """
    pad = len(out) - len(operand)
    padded = [1] * pad + list(operand)
    first = next((i for i, d in enumerate(padded) if d != 1), len(padded))
    tiles = []
    for i in range(first, len(out)):
        if padded[i] == 1 and out[i] != 1:
            if out[i] < 0:
                return None
            tiles.append((i - pad, out[i]))
    if not tiles:
        return []
    multiples = [1] * len(operand)
    for axis, n in tiles:
        multiples[axis] = n
    return multiples


def _tile_broadcast_batches(graph: _Graph, folder: Path, backends: list[str]) -> list[Rewrite]:
    """Tile the operands of batched matmuls that TF.js's kernels would broadcast wrong (module docstring, 3)."""
    names = [n["name"] for n in graph.nodes if n["op"] in BATCHED_MATMULS]
    if not names:
        return []
    shapes = _inferred_shapes(graph.json, folder, names)
    by_name = {n["name"]: n for n in graph.nodes}
    rewrites, unknown = [], []
    for name, (operands, out) in shapes.items():
        node = by_name[name]
        if any(s is None or len(s) < 2 for s in operands) or out is None or len(out) < 3:
            continue
        for k, shape in enumerate(operands):
            multiples = kernel_batch_tiles(shape[:-2], out[:-2])
            if multiples is None:
                unknown.append(f"{name} ({shape} for batch {out[:-2]})")
            if not multiples:
                continue
            lacking = [b for b in backends if "Tile" not in support()["backends"][b]["kernels"]]
            if lacking:
                raise ConversionError(f"{node['op']} {name} needs its operand tiled, and {', '.join(lacking)} "
                                      "have no Tile kernel", stage="tfjs", hint="report the model with this message")
            side = "ab"[k]
            tiled = graph.node(f"{name}/tile_{side}", "Tile", [node["input"][k], graph.ints(multiples + [1, 1])],
                               node["attr"].get("T", {"type": "DT_FLOAT"}), Tmultiples={"type": "DT_INT32"})
            node["input"][k] = tiled
            rewrites.append(Rewrite(name, node["op"], f"operand {side} {shape} tiled by {multiples + [1, 1]} for "
                                    f"the output batch {out[:-2]}", list(backends), fix="tiled"))
    if unknown:
        warnings.warn("TF.js may broadcast these batched matmuls wrong (an unknown dimension hides whether an "
                      "inner batch axis broadcasts): " + "; ".join(unknown))
    return rewrites


def _band_parts(graph: _Graph, folder: Path, backends: list[str]) -> list[Rewrite]:
    """Band parts with two different bounds as a select by their band (module docstring, 6)."""
    nodes = [n for n in graph.nodes if n["op"] == "MatrixBandPart"]
    if not nodes:
        return []
    from tensorflowjs.read_weights import read_weights

    values = {w["name"]: w["data"] for w in read_weights(graph.json["weightsManifest"], str(folder), flatten=True)}
    shapes = _inferred_shapes(graph.json, folder, [n["name"] for n in nodes])
    rewrites = []
    for node in nodes:
        bounds = [values.get(i.split(":")[0]) for i in node["input"][1:3]]
        out = shapes.get(node["name"], ([], None))[1]
        if any(b is None or np.size(b) != 1 for b in bounds) or out is None or None in out[-2:]:
            raise ConversionError(f"MatrixBandPart {node['name']}: TF.js computes a band part right only with equal "
                                  "bounds, and this one's bounds or matrix size are not constants", stage="tfjs",
                                  hint="report the model with this message")
        lower, upper = (int(np.ravel(b)[0]) for b in bounds)
        if lower == upper:
            continue
        rows, cols = np.arange(out[-2])[:, None], np.arange(out[-1])[None, :]
        band = ((lower < 0) | (rows - cols <= lower)) & ((upper < 0) | (cols - rows <= upper))
        dtype = node.get("attr", {}).get("T", {"type": "DT_FLOAT"})
        mask = graph._constant(f"converter/rewrite_const/band/{out[-2]}x{out[-1]}/{lower}_{upper}",
                               band.astype("<f4"))
        inside = graph.node(f"{node['name']}/inside", "Greater", [mask, graph.scalar(0.5)], {"type": "DT_FLOAT"})
        node.update(op="SelectV2", input=[inside, node["input"][0], graph.zero(dtype)], attr={"T": dtype})
        rewrites.append(Rewrite(node["name"], "MatrixBandPart", f"bounds {lower}, {upper}", list(backends),
                                fix="masked"))
    return rewrites


# Ops that tensorflowjs writes and TensorFlow does not register (fuse_depthwise_conv2d.py, fuse_prelu.py), and fused
# ops whose fused activation TensorFlow's CPU kernels may lack: tf_graph_def expands them into TensorFlow ops with
# the same math, the last of which keeps the node's name.
TFJS_ONLY = ("FusedDepthwiseConv2dNative", "Prelu")


def _prelu(graph: _Graph, x: str, alpha: str, name: str, t: dict, mid) -> str:  # relu(x) - alpha relu(-x)
    negative = graph.node(mid("relu_neg"), "Relu", [graph.node(mid("neg"), "Neg", [x], t)], t)
    positive = graph.node(mid("relu"), "Relu", [x], t)
    return graph.node(name, "Sub", [positive, graph.node(mid("scaled"), "Mul", [alpha, negative], t)], t)


def _expand(graph: _Graph, node: dict) -> None:
    """Add to `graph` TensorFlow ops computing what TF.js's fused or tensorflowjs-only `node` says it computes,
    the last one named as `node`. Raises ValueError for a fusion with no known expansion."""
    op, name, attrs = node["op"], node["name"], node["attr"]
    t = attrs.get("T", {"type": "DT_FLOAT"})
    data = [i for i in node.get("input", []) if not i.startswith("^")]
    controls = [i for i in node.get("input", []) if i.startswith("^")]
    step = iter(range(1000))

    def mid(suffix: str) -> str:
        return f"{name}/tf_expanded{next(step)}_{suffix}"

    if op == "Prelu":
        _prelu(graph, data[0], data[1], name, t, mid)
        return
    fused = _strings(attrs.get("fused_ops", {}))
    extra, activation = (fused + ["", ""])[:2]
    activation = activation.lower()
    if extra not in ("BiasAdd", "NoOp") or len(fused) > 2 or (activation not in ACTIVATIONS and activation
                                                               not in ("", "prelu")):
        raise ValueError(f"{op} {name}: no TensorFlow expansion for fused_ops {fused}")
    base = {k: v for k, v in attrs.items() if k not in FUSION_ATTRS and k != "T"}
    out = graph.node(name if extra == "NoOp" and not activation else mid("op"), UNFUSED[op], data[:2] + controls,
                     t, **base)
    args = data[2:]
    if extra == "BiasAdd":
        layout = {"data_format": attrs["data_format"]} if "data_format" in attrs else {}
        out = graph.node(mid("bias") if activation else name, "BiasAdd", [out, args.pop(0)], t, **layout)
    if activation == "prelu":
        _prelu(graph, out, args[0], name, t, mid)
    elif activation:
        _activation(graph, activation, out, name, t, attrs)


def tf_graph_def(model_json: dict, folder: Path, weights: str = "all"):
    """model.json's graph (in `folder`, beside its shards) as a TensorFlow GraphDef that computes what the TF.js
    graph says: fused ops (_FusedConv2D, FusedDepthwiseConv2dNative, _FusedMatMul) and Prelu expanded into
    TensorFlow ops with the same math (their last op keeps the node's name, so every model.json node is a
    TensorFlow op of the same name), and the constants' values from the shards, cast to their node's dtype
    (int32 weights of int64 constants; quantized weights dequantized). weights="all" loads every constant;
    "shapes" only those shape inference can need (non-float or at most 64 elements: large float weights read
    as zeros). Raises what TensorFlow raises for a graph it cannot read."""
    from .saved_model import import_tensorflow

    tf = import_tensorflow()  # first: it sets up the environment that importing tensorflowjs needs
    from google.protobuf import json_format
    from tensorflow.core.framework import graph_pb2
    from tensorflowjs.read_weights import read_weights

    topology = model_json["modelTopology"]
    existing = {n["name"] for n in topology["node"]}
    graph = _Graph({"modelTopology": {"node": []}, "weightsManifest": []})
    nodes = []
    for node in topology["node"]:
        if node["op"] in TFJS_ONLY or node["op"] in FUSED:
            graph.added = []
            try:
                _expand(graph, node)
            except ValueError:
                if node["op"] in TFJS_ONLY:
                    raise
                nodes.append(node)  # TensorFlow has the fused op itself (_FusedConv2D with FusedBatchNorm)
                continue
            # The rewrites' scalars may be in model.json already (make_runnable's, same name, same value).
            nodes += [n for n in graph.added if not (n["op"] == "Const" and n["name"] in existing)]
        else:
            nodes.append(node)
    graph_def = json_format.ParseDict({**{k: v for k, v in topology.items() if k in ("library", "versions")},
                                       "node": nodes}, graph_pb2.GraphDef())
    consts = {n.name: n for n in graph_def.node if n.op == "Const"}
    values = {w["name"]: w["data"] for w in read_weights(model_json["weightsManifest"], str(folder), flatten=True)}
    values.update(graph.constants)  # the expansions' own scalars
    for name, data in values.items():
        if name in consts and (weights == "all" or data.dtype.kind != "f" or data.size <= 64):
            dtype = tf.dtypes.as_dtype(consts[name].attr["dtype"].type)
            consts[name].attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.asarray(data).astype(dtype.as_numpy_dtype)))
    return graph_def


def _inferred_shapes(model_json: dict, folder: Path, names: list[str]) -> dict[str, tuple[list, list | None]]:
    """Node name -> ([its inputs' shapes], its output's shape), by TensorFlow's shape inference on model.json's
    graph (tf_graph_def) with its constants' values (-1: unknown dimension, None: unknown rank). {} with a
    warning when TensorFlow cannot import the graph."""
    from .saved_model import import_tensorflow

    tf = import_tensorflow()
    try:
        graph_def = tf_graph_def(model_json, folder, weights="shapes")
        graph = tf.Graph()
        with graph.as_default():
            tf.graph_util.import_graph_def(graph_def, name="")
    except Exception as exc:  # a graph TensorFlow cannot import is not for this check to reject
        warnings.warn(f"batched matmuls not checked for TF.js's batch broadcasting: TensorFlow could not infer the "
                      f"graph's shapes ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
        return {}

    def dims(tensor):
        return None if tensor.shape.rank is None else [-1 if d is None else int(d) for d in tensor.shape.as_list()]

    shapes = {}
    for name in names:
        op = graph.get_operation_by_name(name)
        shapes[name] = ([dims(t) for t in op.inputs[:2]], dims(op.outputs[0]))
    return shapes


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
