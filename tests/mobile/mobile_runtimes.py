"""The Android runtimes' desktop builds run on a converted folder's mobile artifacts: the lite interpreter
(the C++ runtime inside pytorch_android_lite) for the .ptl, LiteRT for the .tflite files. Shared by the
tests of this folder and their fixtures."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[2]
ANDROID = REPO / "mobile" / "android"
# metadata.json artifact keys (= report.json stage names) of what the app runs.
MOBILE_ARTIFACTS = ("ptl", "tflite_fp32", "tflite_fp16")

Arrays = dict[str, np.ndarray]


@dataclass
class MobileRun:
    """One artifact run on every golden case; tensors keyed by PyTorch name, in the artifact's layout."""

    key: str
    spec: dict  # metadata.json's artifacts[key]
    inputs: list[Arrays]
    outputs: list[Arrays]


def golden_arrays(golden: dict, side: str) -> list[Arrays]:
    """golden.json's flat lists as arrays of their PyTorch shapes, one dict per case."""
    specs = golden[side]
    return [{s["name"]: np.asarray(case[side][s["name"]], np.float32).reshape(s["shape"]) for s in specs}
            for case in golden["cases"]]


def run_artifact(path: pathlib.Path, spec: dict, cases: list[Arrays]) -> list[Arrays]:
    """Runs the artifact in the runtime its file type needs; inputs and outputs in its layout."""
    return (_run_ptl if path.suffix == ".ptl" else _run_tflite)(path, spec, cases)


def _run_ptl(path: pathlib.Path, spec: dict, cases: list[Arrays]) -> list[Arrays]:
    """torch.jit.mobile's loader is the C++ lite interpreter that pytorch_android_lite wraps."""
    import torch
    from torch.jit.mobile import _load_for_lite_interpreter

    module = _load_for_lite_interpreter(str(path))
    results = []
    with torch.no_grad():
        for case in cases:
            out = module(*(torch.from_numpy(case[b["name"]]) for b in spec["inputs"]))
            # Several outputs come back as a tuple, one as a bare tensor (PtlRunner.java does the same).
            out = out if isinstance(out, (tuple, list)) else (out,)
            results.append({b["name"]: t.numpy() for b, t in zip(spec["outputs"], out)})
    return results


def _run_tflite(path: pathlib.Path, spec: dict, cases: list[Arrays]) -> list[Arrays]:
    """By signature key, as TfliteRunner.java does with Interpreter.runSignature."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path)).get_signature_runner()
    results = []
    for case in cases:
        out = runner(**{b["artifact_name"]: case[b["name"]] for b in spec["inputs"]})
        results.append({b["name"]: out[b["artifact_name"]] for b in spec["outputs"]})
    return results
