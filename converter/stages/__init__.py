"""The registered stages. Adding one: a module with a Stage subclass (stages/base.py says what it declares)
and one `register` line below; the plan, --targets and the report follow from the declarations
(converter/graph.py).

The order of registration is the order within a worker when nothing else decides it: the ONNX export
first, since the TensorFlow branch waits for it; TF.js before TFLite, since its check runs in Node.js
while TFLite converts.
"""

from __future__ import annotations

from .base import Stage
from .browser import BrowserStage
from .executorch import ExecuTorchStage
from .onnx import OnnxStage
from .quantized import ExecuTorchInt8Stage, OnnxInt8Stage, TfliteInt8Stage
from .saved_model import SavedModelStage
from .tfjs import TfjsStage
from .tflite import TfliteStage
from .torchscript import LiteStage, TorchScriptStage

REGISTRY: list[Stage] = []


def register(stage: Stage) -> Stage:
    if any(s.name == stage.name for s in REGISTRY):
        raise ValueError(f"a stage named {stage.name!r} is registered already")
    REGISTRY.append(stage)
    return stage


def unregister(name: str) -> None:
    REGISTRY[:] = [s for s in REGISTRY if s.name != name]


def targets(default_only: bool = False) -> tuple[str, ...]:
    """The --targets names, in registration order (those a run without --targets builds)."""
    return tuple(dict.fromkeys(s.target for s in REGISTRY if s.default or not default_only))


register(OnnxStage())
register(SavedModelStage())
register(TfjsStage())  # before TFLite: its Node.js check runs while TFLite converts
register(TfliteStage("fp32"))
register(TfliteStage("fp16"))
register(TorchScriptStage())
register(LiteStage())
# Only with --quantize int8 / int8-dynamic (Stage.wanted): int8 artifacts, each judged by its accuracy gate.
register(OnnxInt8Stage("int8"))
register(OnnxInt8Stage("int8-dynamic"))
register(TfliteInt8Stage("int8"))
register(TfliteInt8Stage("int8-dynamic"))
register(ExecuTorchStage())
register(ExecuTorchInt8Stage("int8"))
register(ExecuTorchInt8Stage("int8-dynamic"))
register(BrowserStage())  # the artifacts in headless Chromium: every backend, timed (--no-browser: off)
