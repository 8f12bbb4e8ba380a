"""Int8 artifacts, built only with --quantize int8 or int8-dynamic (Stage.wanted), each judged by its accuracy
gate in its own runtime (converter/quantize.py) instead of the fp32 tolerance:

- onnx_int8 (static QDQ, calibrated; runs in ONNX Runtime and in ORT-web) and onnx_int8_dynamic
  (onnxruntime.quantization.quantize_dynamic: ConvInteger/MatMulInteger, which ORT-web lacks for Conv);
- executorch_int8 (pt2e with ExecuTorch's XNNPACKQuantizer: int8 weights per channel and int8 activations,
  calibrated) and executorch_int8_dynamic (int8 weights, activations quantized on the fly), lowered to the
  XNNPACK delegate like the fp32 .pte, in .venv-executorch;
- tflite_int8 (full integer, calibrated, float input and output; the ops whose calibrated range is narrower
  than TFLite's quantizer can resolve, quantize.TFLITE_MIN_RANGE, stay float) and tflite_int8_dynamic (dynamic
  range: int8 weights, float activations), both from the SavedModel's TF function like the fp32 TFLite.

A failed gate runs the sensitivity analysis in the same runtime (one layer float at a time).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .. import quantize as q
from ..errors import ConversionError
from ..layout import to_artifact
from .base import Arrays, Artifact, Context, Stage
from .executorch import ExecuTorchStage
from .onnx import OnnxStage
from .tflite import TfliteStage

SUFFIX = {"int8": "int8", "int8-dynamic": "int8_dynamic"}


class _Int8:
    """What both int8 stages share: planned only for their --quantize, gated, keyed by calibration."""

    precision: str

    def wanted(self, options) -> bool:
        return options is not None and options.quantize == self.precision

    def configure(self, options) -> Stage:
        q.check_options(options)
        return self

    def options_key(self, options) -> dict:
        return {"quantize": options.quantize, **q.calibration_key(options), "keep_float": list(options.keep_float),
                "gate": options.gate}

    def gate(self, ctx: Context, result, outputs: dict):
        return q.judge(ctx, result, outputs, self.name)

    def _calibration(self, ctx: Context, notes: list[str], extra: dict):
        batches, source, warned = q.calibration(ctx)
        notes.append(f"calibrated on {len(batches)} batches of {source}")
        extra["calibration"] = {"source": source, "batches": len(batches), "warnings": warned}
        for text in warned:
            warnings.warn(text, stacklevel=2)
        return batches

    def diagnose(self, ctx: Context, result) -> None:
        if not result.extra.get("gate") or result.extra["gate"].get("passed"):
            return
        analysis = self._sensitivity(ctx)
        if analysis is None:
            return
        result.extra["sensitivity"] = analysis
        if analysis["costliest"]:
            result.notes = [*result.notes, f"costliest layers in {analysis['runtime']}: "
                                           f"{', '.join(analysis['costliest'])}; try {analysis['suggest']}"]
            if result.error is not None:
                result.error.hint = f"{analysis['suggest']} (the sensitivity analysis in report.html)"

    def _sensitivity(self, ctx: Context):
        return None


class OnnxInt8Stage(_Int8, Stage):
    target = "onnx"
    after = "onnx"

    def __init__(self, mode: str) -> None:
        self.precision = mode
        self.name = f"onnx_{SUFFIX[mode]}"
        self.filename = f"model_{SUFFIX[mode]}.onnx"

    def convert(self, ctx: Context) -> Artifact:
        import onnx

        source = ctx.artifacts["onnx"]
        model = onnx.load(str(ctx.work / source.path))
        layers = q.onnx_layers(model)
        q.check_layers(ctx.options.keep_float, list(layers))
        exclude = q.onnx_nodes(model, ctx.options.keep_float)
        notes, extra = [], {"keep_float": list(ctx.options.keep_float), "layers": list(layers)}
        feeds = None
        if self.precision == "int8":
            feeds = [{b.artifact_name: case[b.name] for b in source.inputs}
                     for case in self._calibration(ctx, notes, extra)]
        q.onnx_quantize(ctx.work / source.path, ctx.work / self.filename, self.precision, feeds, exclude)
        ops = {n.op_type for n in onnx.load(str(ctx.work / self.filename)).graph.node}
        if self.precision == "int8":
            notes.append("static QDQ (QuantizeLinear/DequantizeLinear around int8 weights and activations): runs "
                         "in ONNX Runtime and in ORT-web (wasm); this is the ONNX int8 model for the browser")
        integer = sorted(ops & {"ConvInteger", "MatMulInteger", "DynamicQuantizeLinear"})
        if self.precision == "int8-dynamic":
            notes.append(f"dynamic quantization of {'/'.join(q.DYNAMIC_OPS)} ({', '.join(integer) or 'no integer ops'}); "
                         "Conv stays float: ConvInteger has no int8-weight kernel in ONNX Runtime's CPU provider and "
                         "none in ORT-web, so this model runs in both")
        if "ConvInteger" in ops:
            notes.append("ConvInteger: ONNX Runtime only, ORT-web cannot run it; use --quantize int8 (static QDQ)")
        if exclude:
            notes.append(f"kept float (--keep-float): {len(exclude)} nodes of {', '.join(ctx.options.keep_float)}")
        extra["ort_web"] = "ConvInteger" not in ops
        inputs, outputs = ctx.same_layout()
        return Artifact(Path(self.filename), self.precision, inputs, outputs, notes, extra)

    def run(self, ctx: Context, artifact: Artifact, cases: list[Arrays]) -> list[Arrays]:
        return OnnxStage.run(self, ctx, artifact, cases)

    def _sensitivity(self, ctx: Context):
        import tempfile

        import onnx

        source = ctx.artifacts["onnx"]
        model = onnx.load(str(ctx.work / source.path))
        layers = [name for name in q.onnx_layers(model) if name not in ctx.options.keep_float]
        feeds = None
        if self.precision == "int8":
            feeds = [{b.artifact_name: case[b.name] for b in source.inputs} for case in q.calibration(ctx)[0]]
        picked = q.subset(ctx)
        cases = [{b.artifact_name: ctx.cases.inputs[i][b.name] for b in source.inputs} for i in picked]
        names = [o.name for o in ctx.outputs]

        def measure(extra: list[str]):
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "m.onnx"
                q.onnx_quantize(ctx.work / source.path, path, self.precision, feeds and list(feeds),
                                q.onnx_nodes(model, [*ctx.options.keep_float, *extra]))
                return q.ort_run(path, cases, names)

        return q.sensitivity(ctx, layers, measure, "onnxruntime")


class TfliteInt8Stage(_Int8, TfliteStage):
    def __init__(self, mode: str) -> None:
        self.precision = mode
        self.name = f"tflite_{SUFFIX[mode]}"
        self.filename = f"model_{SUFFIX[mode]}.tflite"
        self._ctx = None
        self._calibrated = None
        self._narrow = {"ops": [], "ranges": {}, "outputs": {}}
        self._notes: list[str] = []
        self._extra: dict = {}

    def convert(self, ctx: Context) -> Artifact:
        self._ctx, self._notes, self._extra = ctx, [], {"keep_float": list(ctx.options.keep_float)}
        self._narrow = {"ops": [], "ranges": {}, "outputs": {}}
        artifact = TfliteStage.convert(self, ctx)
        artifact.notes = [*self._notes, *artifact.notes]
        artifact.extra = {**artifact.extra, **self._extra}
        return artifact

    def diagnose(self, ctx: Context, result) -> None:
        _Int8.diagnose(self, ctx, result)

    def gate(self, ctx: Context, result, outputs: dict):
        status, reason = q.judge(ctx, result, outputs, self.name)
        tiny = result.extra.get("narrow_range", {}).get("outputs")
        if tiny:  # whatever the gate says, say that the model's output scale is degenerate
            result.extra["gate"]["narrow_outputs"] = tiny
            if status == "failed":
                reason += "; " + "; ".join(q.narrow_output_text(n, s) for n, s in tiny.items())
        return status, reason

    def _dataset(self, ctx: Context, batches: list[Arrays]):
        perms = {b.name: b.perm for b in ctx.artifacts["saved_model"].inputs}

        def generate():
            for case in batches:
                yield [to_artifact(case[s.name], perms[s.name]) for s in ctx.inputs]

        return generate

    def _layers(self, ctx: Context) -> dict:
        import onnx

        return q.onnx_layers(onnx.load(str(ctx.work / ctx.artifacts["onnx"].path)))

    def _convert(self, converter) -> bytes:
        import tensorflow as tf

        ctx = self._ctx
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if self.precision == "int8-dynamic":
            self._notes.append("dynamic range: int8 weights, float activations (LiteRT quantizes activations on the "
                               "fly where a kernel supports it)")
            if ctx.options.keep_float:
                self._notes.append("--keep-float does not apply to dynamic-range TFLite: every weight is int8")
            return converter.convert()
        converter.representative_dataset = self._dataset(ctx, self._calibration(ctx, self._notes, self._extra))
        converter.experimental_new_quantizer = True
        converter._experimental_calibrate_only = True
        self._calibrated = converter.convert()
        layers = self._layers(ctx)
        q.check_layers(ctx.options.keep_float, list(layers))
        self._nodes = q.tflite_nodes(self._calibrated, layers)
        self._extra["layers"] = list(layers)
        self._extra["layers_found"] = sorted(self._nodes)
        denied = self._denied(ctx.options.keep_float)
        if ctx.options.keep_float:
            self._notes.append(f"kept float (--keep-float): {len(denied)} ops of {', '.join(ctx.options.keep_float)}")
        self._narrow = q.tflite_narrow(self._calibrated)
        self._report_narrow(self._narrow)
        self._notes.append("full integer: int8 weights and activations, float input and output (quantized and "
                           "dequantized at the edges)" + ("; except the ops kept float above" if self._narrow["ops"]
                                                          else ""))
        return self._quantize(denied)

    def _report_narrow(self, narrow: dict) -> None:
        """Say which ops stay float because their calibrated range is under TFLite's smallest int8 range, and
        warn when a model output is one of them: the model's scale, not int8, is what is odd then."""
        if not narrow["ops"]:
            return
        layers = [k for k, names in self._nodes.items() if set(names) & set(narrow["ops"])]
        self._extra["narrow_range"] = {**narrow, "layers": layers}
        widest = max(narrow["ranges"].values())
        count = len(narrow["ops"])
        self._notes.append(
            f"kept float: {count} op{'s' if count > 1 else ''} whose activations span at most {widest:.2g} in "
            f"calibration, under {q.TFLITE_MIN_RANGE:g}, the narrowest range TFLite's int8 quantizer keeps (it widens "
            f"a narrower one to about ±{q.TFLITE_MIN_RANGE:g}, which resolves the tensor into a few int8 steps or "
            "none)" + (f"; layers {', '.join(layers)}" if layers else ""))
        others = f"it and {count - 1} other op{'s' if count > 2 else ''} stay" if count > 1 else "it stays"
        for name, span in narrow["outputs"].items():
            warnings.warn(f"{q.narrow_output_text(name, span)}; {others} float in {self.name}", stacklevel=2)

    def _denied(self, layers) -> list[str]:
        missing = [n for n in layers if not any(k == n or k.startswith(n + ".") for k in self._nodes)]
        if missing:
            raise ConversionError(f"--keep-float: no TFLite op found for {', '.join(missing)}", stage=self.name,
                                  hint="the layer's weights were not found in the TFLite graph (folded into "
                                       "another op?); keep its parent module float instead")
        return [t for k, names in self._nodes.items() if any(k == n or k.startswith(n + ".") for n in layers)
                for t in names]

    def _quantize(self, denied: list[str]) -> bytes:
        from tensorflow.lite.python import convert

        # The ops whose range TFLite's quantizer cannot resolve stay float, whatever else is kept float.
        denied = list(dict.fromkeys([*denied, *self._narrow["ops"]]))
        return convert.mlir_quantize(self._calibrated, denylisted_nodes=denied or None)

    def _sensitivity(self, ctx: Context):
        if self._calibrated is None:
            return None
        from ai_edge_litert.interpreter import Interpreter

        picked = q.subset(ctx)
        perms = {b.name: b.perm for b in ctx.artifacts["saved_model"].inputs}
        bindings = ctx.artifacts[self.name].outputs
        cases = [{s.name: to_artifact(ctx.cases.inputs[i][s.name], perms[s.name]) for s in ctx.inputs} for i in picked]
        from ..layout import from_artifact

        def measure(extra: list[str]):
            model = self._quantize(self._denied([*ctx.options.keep_float, *extra]))
            runner = Interpreter(model_content=model).get_signature_runner("serving_default")
            outs = [runner(**case) for case in cases]
            return [{b.name: from_artifact(out[b.name], b.perm) for b in bindings} for out in outs]

        layers = [name for name in self._nodes if name not in ctx.options.keep_float]
        return q.sensitivity(ctx, layers, measure, "litert")


class ExecuTorchInt8Stage(_Int8, ExecuTorchStage):
    """The .pte with int8 kernels: torch.export, then torchao's pt2e flow with ExecuTorch's XNNPACKQuantizer
    (symmetric, weights per output channel), then the XNNPACK delegate; run in ExecuTorch's runtime."""

    def __init__(self, mode: str) -> None:
        self.precision = mode
        self.name = f"executorch_{SUFFIX[mode]}"
        self.filename = f"model_{SUFFIX[mode]}.pte"

    def _transform(self, ctx: Context, exported, args: tuple, dynamic, notes: list[str]):
        layers = _weighted_modules(ctx.model.module)
        q.check_layers(ctx.options.keep_float, layers)
        extra = {"keep_float": list(ctx.options.keep_float), "layers": layers}
        batches = self._calibration(ctx, notes, extra) if self.precision == "int8" else []
        self._extra = extra
        if self.precision == "int8":
            notes.append("static: int8 weights (per output channel) and int8 activations, calibrated; float input "
                         "and output")
        else:
            notes.append("dynamic: int8 weights (per output channel), activations quantized at run time")
        if ctx.options.keep_float:
            notes.append(f"kept float (--keep-float): {', '.join(ctx.options.keep_float)}")
        return _quantized_program(ctx, exported, args, dynamic, self.precision, batches, ctx.options.keep_float)

    def convert(self, ctx: Context) -> Artifact:
        artifact = ExecuTorchStage.convert(self, ctx)
        artifact.extra = {**artifact.extra, **self._extra}
        return artifact

    def _sensitivity(self, ctx: Context):
        import torch
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower
        from executorch.runtime import Runtime

        from .executorch import _dynamic_shapes, _example, execute

        dynamic, _ = _dynamic_shapes(ctx)
        args = tuple(torch.from_numpy(_example(ctx.cases.inputs[0][s.name], s.dynamic_axes)) for s in ctx.inputs)
        exported = torch.export.export(ctx.model.module, args, dynamic_shapes=dynamic)
        batches = q.calibration(ctx)[0] if self.precision == "int8" else []
        cases = [ctx.cases.inputs[i] for i in q.subset(ctx)]

        def measure(extra: list[str]):
            program = _quantized_program(ctx, exported, args, dynamic, self.precision, batches,
                                         [*ctx.options.keep_float, *extra])
            buffer = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch().buffer
            program = Runtime.get().load_program(buffer)  # kept referenced while its method runs
            return execute(program.load_method("forward"), ctx, cases, self.name)

        layers = [name for name in _weighted_modules(ctx.model.module) if name not in ctx.options.keep_float]
        return q.sensitivity(ctx, layers, measure, "executorch")


def _weighted_modules(module) -> list[str]:
    """The modules that hold a weight of two or more dimensions (convolutions, linear layers), in order."""
    return [name for name, m in module.named_modules() if name and getattr(m, "weight", None) is not None
            and getattr(m.weight, "ndim", 0) >= 2]


def _quantized_program(ctx: Context, exported, args: tuple, dynamic, mode: str, batches: list[Arrays],
                       keep_float) -> object:
    """`exported` quantized by XNNPACKQuantizer (the modules in keep_float left float), calibrated on `batches`,
    and exported again."""
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                        get_symmetric_quantization_config)
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import Quantizer

    class KeepFloat(Quantizer):
        """XNNPACKQuantizer's annotations, less those of the nodes inside the kept-float modules (its own
        set_module_name refuses a None config)."""

        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def transform_for_annotation(self, model):
            return self.inner.transform_for_annotation(model)

        def annotate(self, model):
            model = self.inner.annotate(model)
            for node in model.graph.nodes:
                paths = [path for path, _ in node.meta.get("nn_module_stack", {}).values()]
                if any(p == n or p.startswith(n + ".") for p in paths for n in keep_float):
                    node.meta.pop("quantization_annotation", None)
            return model

        def validate(self, model) -> None:
            self.inner.validate(model)

    quantizer = KeepFloat(XNNPACKQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True, is_dynamic=mode == "int8-dynamic")))
    prepared = prepare_pt2e(exported.module(), quantizer)
    with torch.no_grad():
        for batch in batches or [ctx.cases.inputs[0]]:
            prepared(*[torch.from_numpy(np.ascontiguousarray(batch[s.name])) for s in ctx.inputs])
        converted = convert_pt2e(prepared)
        return torch.export.export(converted, args, dynamic_shapes=dynamic)
