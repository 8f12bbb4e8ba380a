"""The Android runtimes' desktop builds run on a converted folder's mobile artifacts: ExecuTorch's runtime
(the C++ runtime and XNNPACK delegate inside executorch-android) for the .pte, the lite interpreter (the C++
runtime inside pytorch_android_lite) for the .ptl, LiteRT for the .tflite files. Shared by the tests of this
folder and their fixtures."""

from __future__ import annotations

import pathlib
import subprocess
import tempfile
from dataclasses import dataclass

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[2]
ANDROID = REPO / "mobile" / "android"
# metadata.json artifact keys (= report.json stage names) of what the app runs (either of its two builds).
MOBILE_ARTIFACTS = ("executorch", "ptl", "tflite_fp32", "tflite_fp16")
# ExecuTorch needs numpy >= 2, the main environment has 1.26: its runtime runs in its own (scripts/setup.sh).
EXECUTORCH_PYTHON = REPO / ".venv-executorch" / "bin" / "python"

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
    runner = {".pte": _run_pte, ".ptl": _run_ptl, ".tflite": _run_tflite}[path.suffix]
    return runner(path, spec, cases)


# Runs in .venv-executorch: argv[1] the .pte, argv[2] an .npz of the inputs (case{i}_{k}, forward's order),
# argv[3] the .npz to write the outputs to (case{i}_{k}, torch.export's flattened order, Nones left out).
_PTE_SCRIPT = """
import sys
import numpy as np
import torch
from executorch.runtime import Runtime

method = Runtime.get().load_program(sys.argv[1]).load_method("forward")
feeds = np.load(sys.argv[2])
cases = sorted({key.split("_")[0] for key in feeds.files}, key=lambda c: int(c[4:]))
out = {}
for case in cases:
    count = len([k for k in feeds.files if k.startswith(case + "_")])
    values = method.execute([torch.from_numpy(feeds[f"{case}_{k}"]) for k in range(count)])
    for k, value in enumerate(v for v in values if v is not None):
        out[f"{case}_{k}"] = value.detach().numpy().copy()
np.savez(sys.argv[3], **out)
"""


def _run_pte(path: pathlib.Path, spec: dict, cases: list[Arrays]) -> list[Arrays]:
    """executorch.runtime: the same C++ runtime and XNNPACK delegate that executorch-android wraps, fed in
    forward's order as PteRunner.java feeds Module.forward."""
    assert EXECUTORCH_PYTHON.is_file(), f"{EXECUTORCH_PYTHON} is missing: bash scripts/setup.sh creates it"
    with tempfile.TemporaryDirectory() as tmp:
        feeds, fetched = pathlib.Path(tmp) / "in.npz", pathlib.Path(tmp) / "out.npz"
        np.savez(feeds, **{f"case{i}_{k}": case[b["name"]] for i, case in enumerate(cases)
                           for k, b in enumerate(spec["inputs"])})
        proc = subprocess.run([str(EXECUTORCH_PYTHON), "-c", _PTE_SCRIPT, str(path), str(feeds), str(fetched)],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        with np.load(fetched) as got:
            return [{b["name"]: got[f"case{i}_{k}"] for k, b in enumerate(spec["outputs"])} for i in range(len(cases))]


def executorch_version() -> str:
    """The executorch package of .venv-executorch (what wrote the .pte), without a local tag like +cpu."""
    proc = subprocess.run([str(EXECUTORCH_PYTHON), "-c", "from importlib import metadata; "
                           "print(metadata.version('executorch'))"], capture_output=True, text=True, check=True)
    return proc.stdout.strip().split("+")[0]


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
