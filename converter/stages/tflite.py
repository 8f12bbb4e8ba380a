"""SavedModel -> TFLite flatbuffers (fp32 and fp16 weights), run in the LiteRT interpreter."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConversionError, first_line
from ..layout import Binding
from .base import Arrays, Artifact, Context, Stage
from .saved_model import import_tensorflow


class TfliteStage(Stage):
    after = "saved_model"

    def __init__(self, precision: str) -> None:
        self.precision = precision
        self.name = f"tflite_{precision}"
        self.filename = f"model_{'float32' if precision == 'fp32' else 'float16'}.tflite"

    def convert(self, ctx: Context) -> Artifact:
        tf = import_tensorflow()
        source = ctx.artifacts["saved_model"]
        converter = tf.lite.TFLiteConverter.from_saved_model(str(ctx.work / source.path))
        if self.precision == "fp16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        try:
            flatbuffer = converter.convert()
        except Exception as exc:
            raise ConversionError(f"TFLite conversion failed: {first_line(exc)}", stage=self.name,
                                  hint="see the log for the ops TFLite lacks") from exc
        path = Path("tflite") / self.filename
        (ctx.work / path).parent.mkdir(exist_ok=True)
        (ctx.work / path).write_bytes(flatbuffer)
        # The TFLite signature keeps the SavedModel's names and layouts.
        copy = lambda b: Binding(b.name, b.artifact_name, list(b.shape), b.layout, list(b.perm))  # noqa: E731
        return Artifact(path, self.precision, [copy(b) for b in source.inputs], [copy(b) for b in source.outputs])

    def run(self, ctx: Context, artifact: Artifact, cases: list[Arrays]) -> list[Arrays]:
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(ctx.work / artifact.path))
        runner = interpreter.get_signature_runner("serving_default")
        return [{o.name: out[o.name] for o in ctx.outputs} for out in (runner(**case) for case in cases)]
