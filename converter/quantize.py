"""Int8 artifacts (--quantize int8 / int8-dynamic): calibration data, the accuracy gate, the model's layers as
PyTorch names them (and where they are in each format), and the sensitivity analysis that names the layers
whose quantization costs the most when a gate fails.

Layers are PyTorch module names (`features.0`, `classifier.3`): the ONNX export records each node's module
path (metadata `pkg.torch.onnx.name_scopes`); a TFLite op is found by its weights, which are the layer's.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

import numpy as np

from .errors import ConversionError, UsageError
from .parity import accuracy, compare

Arrays = dict[str, np.ndarray]

CALIBRATION_MAX = 200  # calibration batches at most (the first ones of the source)
SENSITIVITY_CASES = 64  # cases the sensitivity analysis measures on
SUGGEST_MAX = 3
DYNAMIC_OPS = ("MatMul", "Gemm")  # what onnx_int8_dynamic quantizes
ONNX_WEIGHTED = ("Conv", "ConvTranspose", "Gemm", "MatMul")
TFLITE_WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "BATCH_MATMUL", "CONV_3D")
# TFLite's int8 quantizer (the standard TFLiteConverter path and mlir_quantize alike, TF 2.19) widens an activation
# range narrower than this to about [-1e-6, 1e-6]: its int8 step is then ~8e-9 whatever the tensor's real values,
# so a tensor that spans 1e-8 gets one or two steps and one that spans 3e-9 quantizes to a single value.
# ONNX Runtime's quantizer has no such floor. tests/test_quantize.py checks that the floor is still there.
TFLITE_MIN_RANGE = 1e-6


# --- calibration data

def check_options(options) -> None:
    """Refuse an int8 run without calibration data before anything converts."""
    if options.quantize == "int8" and not (options.calibration_data or options.eval_data or options.sample_inputs
                                           or options.calibration_random):
        raise UsageError("--quantize int8 needs calibration data: none of --calibration-data, --eval-data or "
                         "--sample-input was given", stage="arguments",
                         hint="give real inputs with --calibration-data X.npz ('inputs'), or calibrate on random "
                              "data with --calibration-random (the report warns: the ranges will not be the real ones)")
    if options.calibration_data is not None and not Path(options.calibration_data).is_file():
        raise UsageError(f"--calibration-data {options.calibration_data}: no such file", stage="arguments")


def calibration(ctx) -> tuple[list[Arrays], str, list[str]]:
    """The calibration batches (PyTorch layout, keyed by input name), where they came from, and warnings."""
    options, specs = ctx.options, ctx.inputs
    warnings: list[str] = []
    if options.calibration_data is not None:
        path = Path(options.calibration_data)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {s.name: data[s.name] for s in specs} if all(s.name in data for s in specs) else (
                    {specs[0].name: data["inputs"]} if len(specs) == 1 else None)
        except Exception as exc:
            raise UsageError(f"cannot read {path}: {exc}", stage="calibration",
                             hint="an .npz with 'inputs' (N, ...) like --eval-data, or one array per input name") from exc
        if arrays is None:
            raise UsageError(f"{path} has no array per input ({', '.join(s.name for s in specs)})", stage="calibration")
        batch = specs[0].shape[0]
        count = min(len(a) for a in arrays.values()) // batch
        batches = [{s.name: arrays[s.name][i * batch:(i + 1) * batch].astype(s.dtype) for s in specs}
                   for i in range(count)]
        source = f"--calibration-data {path.name}"
    elif any(n.startswith("eval_") for n in ctx.cases.names):
        batches = [c for c, n in zip(ctx.cases.inputs, ctx.cases.names) if n.startswith("eval_")]
        source = "the inputs of --eval-data"
    elif any(n.startswith("sample_") for n in ctx.cases.names):
        batches = [c for c, n in zip(ctx.cases.inputs, ctx.cases.names) if n.startswith("sample_")]
        source = "--sample-input"
    elif options.calibration_random:
        batches = [c for c, n in zip(ctx.cases.inputs, ctx.cases.names) if n.startswith("random_")]
        source = "random inputs (--calibration-random)"
        warnings.append("calibrated on random inputs (--calibration-random): the activation ranges are not those "
                        "of real data, so the int8 artifact may be far less accurate than one calibrated on real inputs")
    else:
        raise ConversionError("no calibration data", stage="calibration",
                              hint="give --calibration-data, --eval-data or --sample-input, or --calibration-random")
    if not batches:
        raise UsageError(f"no calibration batch in {source}", stage="calibration")
    if len(batches) > CALIBRATION_MAX:
        batches = batches[:CALIBRATION_MAX]
        source += f" (the first {CALIBRATION_MAX} batches)"
    return batches, source, warnings


def calibration_key(options) -> dict:
    """What calibration depends on beyond the cases (which the cache key holds already)."""
    digest = None
    if options.calibration_data is not None and Path(options.calibration_data).is_file():
        digest = hashlib.sha256(Path(options.calibration_data).read_bytes()).hexdigest()
    return {"calibration_data": digest, "calibration_random": options.calibration_random}


# --- the gate

def judge(ctx, result, outputs: dict, name: str) -> tuple[str, str]:
    """The gate of an int8 artifact: top-1 agreement with PyTorch fp32 over every case, the accuracy drop on
    --eval-data, and (when --gate names it) the error relative to the output's scale. Fills
    result.extra["gate"]; returns (status, reason)."""
    gate = ctx.options.gate
    reference, got = outputs["pytorch"], outputs[name]
    ref_acc = accuracy(reference, ctx.cases.labels)
    comparisons = [c for c in result.comparisons if c.against == "pytorch"]
    agreements = [o.top1_agreement for c in comparisons for o in c.outputs if o.top1_agreement is not None]
    agreement = min(agreements) if agreements else None
    rel_err = max((c.max_rel_err for c in comparisons), default=None)
    golden = ctx.cases.golden
    golden_cmp = compare([reference[i] for i in golden], [got[i] for i in golden], result.tolerance or 1.0,
                         "pytorch") if golden else None
    golden_agreement = None
    if golden_cmp is not None:
        values = [o.top1_agreement for o in golden_cmp.outputs if o.top1_agreement is not None]
        golden_agreement = min(values) if values else None
    drop = None if ref_acc is None or result.accuracy is None else ref_acc - result.accuracy
    doc = {"agreement": agreement, "agreement_min": gate.get("agreement"), "cases": len(got),
           "golden_agreement": golden_agreement,
           "golden_max_rel_err": golden_cmp.max_rel_err if golden_cmp is not None else None,
           "max_rel_err": rel_err, "rel_err_max": gate.get("rel_err"),
           "accuracy": result.accuracy, "accuracy_pytorch": ref_acc, "accuracy_drop": drop,
           "accuracy_drop_max": gate.get("accuracy_drop")}
    failures, measured = [], []
    if agreement is not None and gate.get("agreement") is not None:
        measured.append(f"top-1 agreement {agreement:.2%}")
        if agreement < gate["agreement"]:
            failures.append(f"top-1 agreement with PyTorch fp32 {agreement:.2%} < {gate['agreement']:.2%} "
                            f"({len(got)} cases)")
    if drop is not None and gate.get("accuracy_drop") is not None:
        measured.append(f"accuracy {result.accuracy:.2%} (PyTorch {ref_acc:.2%})")
        if drop > gate["accuracy_drop"] + 1e-12:
            failures.append(f"accuracy {result.accuracy:.2%} vs {ref_acc:.2%} in PyTorch: a drop of "
                            f"{drop * 100:.2f} points > {gate['accuracy_drop'] * 100:.2f}")
    if rel_err is not None and gate.get("rel_err") is not None:
        measured.append(f"error {rel_err:.3g} of the output's scale")
        if rel_err > gate["rel_err"]:
            failures.append(f"error relative to the output's scale {rel_err:.3g} > {gate['rel_err']:g}")
    doc["passed"] = not failures
    result.extra["gate"] = doc
    if failures:
        doc["hint"] = ("see the sensitivity analysis in report.html; keep the costliest layers in float with "
                       "--keep-float, calibrate on more representative data, or loosen --gate")
        return "failed", "; ".join(failures)
    if not measured:
        return "degenerate", ("the gate measured nothing: no score output for top-1 agreement and no --eval-data; "
                              "give --gate rel_err=X")
    return "passed", ""


def parse_gate(text: str) -> dict[str, float]:
    from .spec import DEFAULT_GATE

    gate = dict(DEFAULT_GATE)
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key not in ("agreement", "accuracy_drop", "rel_err"):
            raise ValueError(f"{part!r}: use agreement=0.99, accuracy_drop=0.01 or rel_err=0.1")
        number = float(value)
        if not number >= 0:
            raise ValueError(f"{part!r}: must be a number >= 0")
        gate[key] = number
    return gate


# --- layers

def _scopes(node) -> list[str]:
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            try:
                return list(ast.literal_eval(prop.value))
            except (ValueError, SyntaxError):
                return []
    return []


def onnx_layers(model) -> dict[str, list[np.ndarray]]:
    """The layers that hold weights, in graph order: PyTorch module name -> its weight arrays."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    layers: dict[str, list[np.ndarray]] = {}
    for node in model.graph.node:
        scopes = _scopes(node)
        if node.op_type not in ONNX_WEIGHTED or len(scopes) < 2:
            continue
        weights = [numpy_helper.to_array(inits[i]) for i in node.input if i in inits and len(inits[i].dims) >= 2]
        if weights:
            layers.setdefault(scopes[-2], []).extend(weights)
    return layers


def onnx_nodes(model, layers) -> list[str]:
    """The ONNX nodes that belong to these modules (a container names all its children)."""
    wanted = set(layers)
    return [n.name for n in model.graph.node if wanted & set(_scopes(n)[1:])]


def check_layers(names, known) -> None:
    unknown = [n for n in names if not any(k == n or k.startswith(n + ".") for k in known)]
    if unknown:
        raise ConversionError(f"--keep-float names no layer of the model: {', '.join(unknown)}", stage="quantize",
                              hint=f"layers with weights: {', '.join(known) or 'none'}")


def tflite_nodes(model_content: bytes, layers: dict[str, list[np.ndarray]]) -> dict[str, list[str]]:
    """Each layer's TFLite ops (their output tensor names, which TFLite's quantizer can leave float): the op
    whose weight holds the layer's weight values (layouts differ, so sorted values are compared; in order of
    the weighted ops when the values do not match, e.g. a folded BatchNorm), and the single-input ops that
    follow it alone (a slice, a reshape, an activation)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=model_content)
    details = {t["index"]: t for t in interp.get_tensor_details()}
    ops = interp._get_ops_details()
    consumers: dict[int, list[dict]] = {}
    for op in ops:
        for t in op["inputs"]:
            consumers.setdefault(int(t), []).append(op)

    def constant(t: int):
        try:
            return interp.get_tensor(int(t))
        except ValueError:
            return None

    weighted = [op for op in ops if op["op_name"] in TFLITE_WEIGHTED]
    values = {}
    for op in weighted:
        w = constant(op["inputs"][1]) if len(op["inputs"]) > 1 and op["inputs"][1] >= 0 else None
        values[op["index"]] = None if w is None or w.dtype.kind != "f" else np.sort(w.ravel().astype(np.float32))
    found: dict[str, dict] = {}
    for layer, weights in layers.items():
        want = np.sort(weights[0].ravel().astype(np.float32))
        for op in weighted:
            got = values[op["index"]]
            if got is not None and got.shape == want.shape and np.allclose(got, want, rtol=1e-5, atol=1e-6) \
                    and all(op is not f for f in found.values()):
                found[layer] = op
                break
    if len(found) < len(layers) and len(weighted) == len(layers):
        found = dict(zip(layers, weighted))
    names: dict[str, list[str]] = {}
    for layer, op in found.items():
        chain = [op]
        while True:
            out = int(chain[-1]["outputs"][0])
            after = consumers.get(out, [])
            if len(after) != 1 or after[0]["op_name"] in TFLITE_WEIGHTED:
                break
            nxt = after[0]
            dynamic = [t for t in nxt["inputs"] if t >= 0 and constant(t) is None]
            if len(dynamic) != 1:
                break
            chain.append(nxt)
        names[layer] = [details[int(o["outputs"][0])]["name"] for o in chain]
    return names


def tflite_calibrated_ranges(model_content: bytes) -> tuple[dict[str, tuple[float, float]], dict[str, str]]:
    """A calibrated (not yet quantized) TFLite model's statistics: each op output's calibrated (min, max), by
    tensor name (which is also the op's name for mlir_quantize's denylist), and the signature's output names ->
    their tensor names. Per-tensor statistics only (that is what calibration records for activations)."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(model_content, 0)
    index = model.SignatureDefs(0).SubgraphIndex() if model.SignatureDefsLength() else 0
    graph = model.Subgraphs(index)
    ranges: dict[str, tuple[float, float]] = {}
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        for j in range(op.OutputsLength()):
            if op.Outputs(j) < 0:
                continue
            tensor = graph.Tensors(op.Outputs(j))
            stats = tensor.Quantization()
            if stats is not None and stats.MinLength() == 1 and stats.MaxLength() == 1:
                ranges[tensor.Name().decode()] = (float(stats.Min(0)), float(stats.Max(0)))
    outputs = {}
    if model.SignatureDefsLength():
        signature = model.SignatureDefs(0)
        for k in range(signature.OutputsLength()):
            entry = signature.Outputs(k)
            outputs[entry.Name().decode()] = graph.Tensors(entry.TensorIndex()).Name().decode()
    else:  # no signature: the graph's outputs, by tensor name
        names = [graph.Tensors(graph.Outputs(k)).Name().decode() for k in range(graph.OutputsLength())]
        outputs = dict(zip(names, names))
    return ranges, outputs


def tflite_narrow(model_content: bytes) -> dict:
    """The op outputs of a calibrated TFLite model whose calibrated range is narrower than TFLITE_MIN_RANGE, which
    full-integer TFLite cannot resolve (see TFLITE_MIN_RANGE): {"ops": tensor names, in graph order, "ranges":
    name -> max - min, "outputs": model output name -> its range, for the outputs among them}."""
    ranges, outputs = tflite_calibrated_ranges(model_content)
    narrow = {name: hi - lo for name, (lo, hi) in ranges.items() if hi - lo <= TFLITE_MIN_RANGE}
    return {"min_range": TFLITE_MIN_RANGE, "ops": list(narrow), "ranges": narrow,
            "outputs": {out: narrow[t] for out, t in outputs.items() if t in narrow}}


def narrow_output_text(name: str, span: float) -> str:
    """What to say of a model output whose calibrated range is under TFLite's smallest int8 range."""
    step = 2 * TFLITE_MIN_RANGE / 255
    steps = "less than one int8 step" if span < step else f"about {span / step:.0f} int8 steps"
    return (f"output '{name}' spans only {span:.2g} in calibration, under {TFLITE_MIN_RANGE:g}, the narrowest range "
            f"TFLite's int8 quantizer keeps: quantized, it would be {steps} (of ~{step:.2g}). An output this small is "
            "a degenerate scale, usually random weights whose activations die out layer by layer: int8 results on "
            "such a model say little about the trained one")


# --- ONNX Runtime quantization

class _Reader:
    def __init__(self, feeds: list[Arrays]) -> None:
        self.feeds = iter(feeds)

    def get_next(self):
        return next(self.feeds, None)

    def rewind(self):  # some versions ask
        pass


def onnx_quantize(source: Path, target: Path, mode: str, feeds: list[Arrays] | None, exclude: list[str]) -> None:
    import logging

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static

    import tempfile

    import onnx

    logging.getLogger().setLevel(logging.ERROR)  # "consider pre-processing": the graph is ours, as exported
    if mode == "int8-dynamic":
        # The exporter's value_info disagrees with ONNX's shape inference once quantize_dynamic has rewritten a
        # Gemm ("differ in dimension 0: (512) vs (64)" on digits): quantize a copy without it.
        model = onnx.load(str(source))
        del model.graph.value_info[:]
        with tempfile.TemporaryDirectory() as tmp:
            onnx.save(model, f"{tmp}/model.onnx")
            # MatMul and Gemm only: ConvInteger has no kernel for int8 weights in ONNX Runtime's CPU provider.
            quantize_dynamic(f"{tmp}/model.onnx", str(target), weight_type=QuantType.QInt8, per_channel=False,
                             nodes_to_exclude=exclude, op_types_to_quantize=list(DYNAMIC_OPS))
        return

    class Reader(_Reader, CalibrationDataReader):
        pass

    quantize_static(str(source), str(target), Reader(feeds), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, nodes_to_exclude=exclude)


def ort_run(path: Path, cases: list[Arrays], output_names: list[str]) -> list[Arrays]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return [dict(zip(output_names, session.run(names, case))) for case in cases]


# --- sensitivity

def subset(ctx) -> list[int]:
    """The cases the sensitivity analysis measures on: the golden ones, then eval cases, SENSITIVITY_CASES
    at most."""
    golden = list(ctx.cases.golden)
    rest = [i for i in range(len(ctx.cases.inputs)) if i not in golden]
    return (golden + rest)[:SENSITIVITY_CASES]


def score(ctx, picked: list[int], outs: list[Arrays]) -> dict:
    reference = [ctx.reference[i] for i in picked]
    cmp = compare(reference, outs, 1.0, "pytorch")
    agreements = [o.top1_agreement for o in cmp.outputs if o.top1_agreement is not None]
    return {"agreement": min(agreements) if agreements else None, "max_rel_err": cmp.max_rel_err,
            "accuracy": accuracy(outs, [ctx.cases.labels[i] for i in picked])}


def sensitivity(ctx, layers: list[str], measure, runtime: str) -> dict:
    """Keep one layer float at a time (besides --keep-float), measure on the subset with `measure(extra_layers)
    -> outputs`, rank the layers by how much keeping them float recovers, and suggest --keep-float."""
    picked = subset(ctx)
    base = score(ctx, picked, measure([]))
    rows = []
    for layer in layers:
        try:
            row = {"layer": layer, **score(ctx, picked, measure([layer]))}
        except Exception as exc:  # one layer that cannot be left float does not end the analysis
            row = {"layer": layer, "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
        rows.append(row)

    def gain(row):
        if "error" in row:
            return (-1.0, -1.0)
        a = (row["agreement"] or 0.0) - (base["agreement"] or 0.0) if base["agreement"] is not None else 0.0
        return (a, base["max_rel_err"] - row["max_rel_err"])

    rows.sort(key=gain, reverse=True)
    for row in rows:
        if "error" not in row:
            row["agreement_gain"], row["rel_err_reduction"] = gain(row)
    best = [r for r in rows if "error" not in r and (r["agreement_gain"] > 0 or r["rel_err_reduction"] > 0)]
    suggest = best[:1] + [r for r in best[1:SUGGEST_MAX] if r["agreement_gain"] >= best[0]["agreement_gain"] / 2
                          and r["rel_err_reduction"] >= best[0]["rel_err_reduction"] / 2]
    keep = [*ctx.options.keep_float, *(r["layer"] for r in suggest)]
    return {"runtime": runtime, "cases": len(picked), "baseline": base, "layers": rows,
            "costliest": [r["layer"] for r in suggest],
            "suggest": f"--keep-float {','.join(keep)}" if suggest else None}
