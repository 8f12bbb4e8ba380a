"""Convert PyTorch models to ONNX, TF SavedModel, TF.js, TFLite, TorchScript and TorchScript Lite, with
numerical parity measured against PyTorch at every stage.

    from converter import convert, Options
    result = convert("examples/digits/model.py:build", Options([(1, 1, 8, 8)], Path("out/digits")),
                     weights=Path("examples/digits/weights.pt"))
    result.exit_code, result.report["stages"]

The heavy frameworks load only when `convert` runs.
"""

from .errors import ConversionError, ConverterError, ParityError, UsageError
from .spec import Options


def convert(*args, **kwargs):
    from .pipeline import convert as _convert

    return _convert(*args, **kwargs)


__all__ = ["convert", "Options", "ConverterError", "ConversionError", "ParityError", "UsageError"]
