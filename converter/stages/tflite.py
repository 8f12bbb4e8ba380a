"""SavedModel -> TFLite flatbuffers (fp32 and fp16 weights), run in the LiteRT interpreter."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import ConversionError, first_line
from ..fp16 import note, tflite_keep_fp32
from ..layout import Binding
from .base import Arrays, Artifact, Context, Stage
from .base import Handoff
from .saved_model import TF_MODEL, import_tensorflow

# The TF model retraced for TFLite with some ops built from elementary ones: the fp32 stage traces it, the fp16
# stage reuses it.
TFLITE_MODEL = Handoff("tflite_model", "(tf.Module holder, ConcreteFunction) with TFLite-less ops decomposed")


# TF ops that TFLite has no builtin for -> the symbol of onnx2tf's Keras op layer that calls it. The TFLite stages
# trace the model again with those layers computing _replacements()[symbol]. tests/test_tflite_builtins.py finds
# the ops that need one from onnx2tf's op modules and TFLite's converter.
ELEMENTARY = {"Acos": "math.acos", "Acosh": "math.acosh", "Asin": "math.asin", "Asinh": "math.asinh",
              "Atan": "math.atan", "Atanh": "math.atanh", "Cosh": "math.cosh", "Erf": "math.erf", "Sinh": "math.sinh",
              "Tan": "math.tan"}


def _replacements() -> dict:
    """Symbol -> the same function from ops TFLite has (ATAN2, EXP, LOG, SQRT, SIN, COS, ...), within float32
    rounding on the op's domain, NaN outside it."""
    import tensorflow as tf

    m = tf.math

    def erf(x):  # Abramowitz & Stegun 7.1.26, |error| < 1.5e-7 (exact GELU's core)
        a = m.abs(x)
        t = 1.0 / (1.0 + 0.3275911 * a)
        poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t
        return m.sign(x) * (1.0 - poly * m.exp(-a * a))

    def cos_of_asin(x):  # sqrt(1 - x^2), without the cancellation of 1 - x*x near |x| = 1
        return m.sqrt((1.0 - x) * (1.0 + x))

    return {
        "math.acos": lambda x: m.atan2(cos_of_asin(x), x),
        "math.acosh": lambda x: m.log(x + m.sqrt((x - 1.0) * (x + 1.0))),
        "math.asin": lambda x: m.atan2(x, cos_of_asin(x)),
        "math.asinh": lambda x: m.sign(x) * m.log(m.abs(x) + m.sqrt(x * x + 1.0)),
        "math.atan": lambda x: m.atan2(x, tf.ones_like(x)),
        "math.atanh": lambda x: 0.5 * m.log((1.0 + x) / (1.0 - x)),
        "math.cosh": lambda x: 0.5 * (m.exp(x) + m.exp(-x)),
        "math.erf": erf,
        "math.sinh": lambda x: 0.5 * (m.exp(x) - m.exp(-x)),
        "math.tan": lambda x: m.sin(x) / m.cos(x),
    }


class TfliteStage(Stage):
    target = "tflite"
    after = "saved_model"
    takes = (TF_MODEL,)
    gives = (TFLITE_MODEL,)
    worker = "tf"

    def __init__(self, precision: str) -> None:
        self.precision = precision
        self.name = f"tflite_{precision}"
        self.filename = f"model_{'float32' if precision == 'fp32' else 'float16'}.tflite"

    def convert(self, ctx: Context) -> Artifact:
        tf = import_tensorflow()
        source = ctx.artifacts["saved_model"]
        notes = []
        holder, concrete, keras_model = ctx.take(TF_MODEL)
        symbols = {getattr(layer, "symbol", None) for layer in keras_model.layers}
        decompose = sorted(op for op, symbol in ELEMENTARY.items() if symbol in symbols)
        if decompose:  # the same Keras model, traced again for TFLite alone (kept for the fp16 stage)
            if not ctx.has(TFLITE_MODEL):
                ctx.give(TFLITE_MODEL, _decomposed(ctx, decompose))
            holder, concrete = ctx.take(TFLITE_MODEL)
            notes.append(f"{', '.join(decompose)} built from elementary ops: TFLite has no such builtin")
        converter = lambda: tf.lite.TFLiteConverter.from_concrete_functions([concrete], holder)  # noqa: E731
        try:
            flatbuffer = self._convert(converter())
        except Exception as exc:
            missing = sorted(set(re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", str(exc))))
            raise ConversionError(f"TFLite has no kernel for: {', '.join(missing)}" if missing else
                                  f"TFLite conversion failed: {first_line(exc)}", stage=self.name,
                                  unsupported_ops=missing, hint="see the log; these ops need a rewrite "
                                  "in the model or TFLite's Flex delegate") from exc
        if self.precision == "fp16":
            try:
                flatbuffer, kept = tflite_keep_fp32(flatbuffer, lambda: self._fp32(ctx, converter))
            except ValueError as exc:  # the two graphs did not line up: the artifact stays TFLite's own
                kept = []
                notes.append(f"float16 constants not checked against float32: {exc}")
            if kept:
                notes.append(note(kept, "constant"))
        path = Path("tflite") / self.filename
        (ctx.work / path).parent.mkdir(exist_ok=True)
        (ctx.work / path).write_bytes(flatbuffer)
        # The TFLite signature keeps the SavedModel's names and layouts.
        copy = lambda b: Binding(b.name, b.artifact_name, list(b.shape), b.layout, list(b.perm))  # noqa: E731
        return Artifact(path, self.precision, [copy(b) for b in source.inputs], [copy(b) for b in source.outputs],
                        notes)

    def _convert(self, converter) -> bytes:
        import tensorflow as tf

        if self.precision == "fp16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        return converter.convert()

    @staticmethod
    def _fp32(ctx: Context, converter) -> bytes:
        """The same model without quantization: the fp32 stage's file when it wrote one in this run."""
        fp32 = ctx.artifacts.get("tflite_fp32")
        return (ctx.work / fp32.path).read_bytes() if fp32 is not None else converter().convert()

    def run(self, ctx: Context, artifact: Artifact, cases: list[Arrays]) -> list[Arrays]:
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(ctx.work / artifact.path))
        runner = interpreter.get_signature_runner("serving_default")
        return [{o.name: out[o.name] for o in ctx.outputs} for out in (runner(**case) for case in cases)]


def _decomposed(ctx: Context, ops: list[str]):
    """The SavedModel's function traced again with onnx2tf's layers for `ops` computing their elementary
    replacements: the same graph otherwise, in seconds (rebuilding with onnx2tf took minutes on transformers)."""
    import tensorflow as tf

    holder, _, keras_model = ctx.take(TF_MODEL)
    replacements = _replacements()
    replace = {ELEMENTARY[op]: replacements[ELEMENTARY[op]] for op in ops}
    layers = [layer for layer in keras_model.layers if getattr(layer, "symbol", None) in replace]
    originals = [layer.function for layer in layers]
    try:
        for layer in layers:
            layer.function = replace[layer.symbol]
        serving = holder.serving_default
        concrete = tf.function(serving.python_function, input_signature=serving.input_signature).get_concrete_function()
    finally:
        for layer, function in zip(layers, originals):
            layer.function = function
    return holder, concrete
