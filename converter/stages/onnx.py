"""PyTorch -> ONNX with torch.onnx.export(dynamo=True), run in ONNX Runtime."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import ConversionError, first_line
from .base import Arrays, Artifact, Context, Stage

# Opset 18: new enough for LayerNorm as one op, old enough that exact GELU stays Erf-based (opset 20's Gelu
# makes onnx2tf emit Erfc, which TF.js cannot run), and supported by onnx2tf 1.29, ONNX Runtime and ORT-web.
OPSET = 18


class OnnxStage(Stage):
    name = "onnx"
    after = "pytorch"

    def convert(self, ctx: Context) -> Artifact:
        import torch

        path = ctx.work / "model.onnx"
        args = tuple(torch.from_numpy(np.ascontiguousarray(ctx.cases.inputs[0][s.name])) for s in ctx.inputs)
        try:
            torch.onnx.export(
                ctx.model.module, args, str(path), dynamo=True, opset_version=OPSET,
                input_names=[s.name for s in ctx.inputs], output_names=[s.name for s in ctx.outputs],
                external_data=False, optimize=True, verbose=False,
            )
        except Exception as exc:
            ops = _unsupported_ops(str(exc))
            what = f"unsupported ops: {', '.join(ops)}" if ops else first_line(exc)
            raise ConversionError(f"torch.onnx.export failed: {what}", stage=self.name, unsupported_ops=ops,
                                  hint="replace those ops in the model, or register a custom translation "
                                       "(torch.onnx.export(custom_translation_table=...))") from exc
        inputs, outputs = ctx.same_layout()
        return Artifact(Path("model.onnx"), "fp32", inputs, outputs, [], {"opset": OPSET})

    def run(self, ctx: Context, artifact: Artifact, cases: list[Arrays]) -> list[Arrays]:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(str(ctx.work / artifact.path), options, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        return [dict(zip([o.name for o in ctx.outputs], session.run(names, case))) for case in cases]


def _unsupported_ops(text: str) -> list[str]:
    """Op names from the dynamo exporter's 'Unsupported FX nodes' / missing-decomposition messages."""
    found = re.findall(r"(?:aten|prims|torchvision|[a-z_]+)::[A-Za-z0-9_.]+|(?:aten|prims)\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+", text)
    return sorted(set(found))
