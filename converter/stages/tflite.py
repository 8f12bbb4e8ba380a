"""SavedModel -> TFLite flatbuffers (fp32 and fp16 weights), run in the LiteRT interpreter."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import ConversionError, first_line
from ..layout import Binding
from .base import Arrays, Artifact, Context, Stage
from .base import Handoff
from .saved_model import TF_MODEL, build_tf_model, import_tensorflow

# The TF model rebuilt for TFLite with some ops decomposed: the fp32 stage builds it, the fp16 stage reuses it.
TFLITE_MODEL = Handoff("tflite_model", "(tf.Module holder, ConcreteFunction, how it was rebuilt)")

# TF ops that TFLite has no builtin for, but that onnx2tf can build from elementary ops. Erf is exact GELU's
# core; its replacement is a polynomial approximation with |error| < 1.5e-7 (Abramowitz & Stegun 7.1.26).
PSEUDO_OPS = {"Erf"}


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
        holder, concrete = ctx.take(TF_MODEL)
        try:
            flatbuffer = self._convert(tf.lite.TFLiteConverter.from_concrete_functions([concrete], holder))
        except Exception as exc:
            missing = set(re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", str(exc)))
            if not missing or not missing <= PSEUDO_OPS:
                raise ConversionError(f"TFLite has no kernel for: {', '.join(sorted(missing))}" if missing else
                                      f"TFLite conversion failed: {first_line(exc)}", stage=self.name,
                                      unsupported_ops=sorted(missing), hint="see the log; these ops need a rewrite "
                                      "in the model or TFLite's Flex delegate") from exc
            # Rebuild the TF model for TFLite alone, with those ops decomposed (cached for the fp16 stage).
            if not ctx.has(TFLITE_MODEL):
                ctx.give(TFLITE_MODEL, _rebuild(ctx, tuple(sorted(missing))))
            holder, concrete, how = ctx.take(TFLITE_MODEL)
            flatbuffer = self._convert(tf.lite.TFLiteConverter.from_concrete_functions([concrete], holder))
            notes.append(f"{', '.join(sorted(missing))} built from elementary ops: TFLite has no such builtin ({how})")
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

    def run(self, ctx: Context, artifact: Artifact, cases: list[Arrays]) -> list[Arrays]:
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(ctx.work / artifact.path))
        runner = interpreter.get_signature_runner("serving_default")
        return [{o.name: out[o.name] for o in ctx.outputs} for out in (runner(**case) for case in cases)]


def _rebuild(ctx: Context, ops: tuple[str, ...]):
    """The TF model again, with `ops` built from elementary ones. onnx2tf's strict mode took minutes on a
    transformer the first time (swin_t: 6 of its 15 minutes, twice); the SavedModel's model is the check
    instead: the fast rebuild is kept when it computes what that model computes on the first case, within
    the fp32 tolerance, and otherwise redone in strict mode."""
    import numpy as np

    from ..layout import to_artifact
    from ..parity import SCALE_FLOOR

    _, reference = ctx.take(TF_MODEL)
    case = ctx.cases.inputs[0]
    perms = {b.name: b.perm for b in ctx.artifacts["saved_model"].inputs}
    args = [to_artifact(case[s.name], perms[s.name]) for s in ctx.inputs]
    want = {k: v.numpy() for k, v in reference(*args).items()}
    try:
        holder, function, _, _ = build_tf_model(ctx, ops, strict=False)
    except ConversionError:  # some graphs convert only in strict mode (convnext_tiny)
        holder, function, _, _ = build_tf_model(ctx, ops)
        return holder, function, "rebuilt in onnx2tf's strict mode: the fast rebuild failed"
    got = {k: v.numpy() for k, v in function(*args).items()}
    tolerance = ctx.options.tolerances["fp32"]
    agree = all(got[k].shape == w.shape and np.isfinite(got[k]).all()
                and np.max(np.abs(got[k] - w), initial=0.0) <= tolerance * max(np.max(np.abs(w), initial=0.0),
                                                                             SCALE_FLOOR)
                for k, w in want.items())
    if agree:
        return holder, function, "rebuilt without onnx2tf's strict mode, checked against the SavedModel's model"
    holder, function, _, _ = build_tf_model(ctx, ops)
    return holder, function, "rebuilt in onnx2tf's strict mode: the fast rebuild differed from the SavedModel"
