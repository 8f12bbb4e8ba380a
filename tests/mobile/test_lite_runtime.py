"""The mobile artifacts in the desktop builds of the Android runtimes, against golden.json: the .pte in
ExecuTorch's runtime (the C++ runtime and XNNPACK delegate inside executorch-android), the .ptl in the lite
interpreter (the C++ runtime inside pytorch_android_lite) and the .tflite files in LiteRT."""

from __future__ import annotations

import re

import pytest

from converter.layout import from_artifact
from converter.parity import compare
from converter.stages.executorch import (ANDROID_PTE_IDENTIFIER, ANDROID_RUNTIME, EXECUTORCH_VERSION,
                                        EXTENDED_HEADER_MAGIC)
from converter.stages.torchscript import ANDROID_LITE_LOADS_BYTECODE, ANDROID_LITE_RUNTIME
from mobile_runtimes import ANDROID, MOBILE_ARTIFACTS, executorch_version, golden_arrays


def test_app_pins_the_runtime_the_converter_targets():
    gradle = (ANDROID / "app" / "build.gradle").read_text()
    pinned = re.findall(r'ptlImplementation "(org\.pytorch:pytorch_android_lite:[^"]+)"', gradle)
    assert pinned == [ANDROID_LITE_RUNTIME]


def test_app_pins_the_executorch_runtime_of_the_exporter():
    """The executorch flavor's AAR is the release of the Python package that wrote the .pte."""
    gradle = (ANDROID / "app" / "build.gradle").read_text()
    pinned = re.findall(r'(\w+)Implementation "(org\.pytorch:executorch-android:[^"]+)"', gradle)
    assert pinned == [("executorch", ANDROID_RUNTIME)]
    assert ANDROID_RUNTIME.rsplit(":", 1)[1] == EXECUTORCH_VERSION == executorch_version()
    # The PyTorch runtimes live in separate flavors: never both in one APK.
    assert not re.search(r'^\s*implementation "org\.pytorch:', gradle, re.MULTILINE)


def test_ptl_bytecode_is_one_the_android_runtime_loads(digits_dir, metadata):
    from torch.jit.mobile import _get_model_bytecode_version

    version = _get_model_bytecode_version(str(digits_dir / metadata["artifacts"]["ptl"]["path"]))
    assert version in ANDROID_LITE_LOADS_BYTECODE, f"bytecode v{version}; {ANDROID_LITE_RUNTIME} loads {ANDROID_LITE_LOADS_BYTECODE}"


@pytest.mark.parametrize("key", [k for k in MOBILE_ARTIFACTS if k.startswith("tflite")])
def test_tflite_signature_is_what_metadata_says(digits_dir, metadata, key):
    """The app feeds and fetches by signature key and sizes its buffers from metadata.json's shapes."""
    from ai_edge_litert.interpreter import Interpreter

    spec = metadata["artifacts"][key]
    interpreter = Interpreter(model_path=str(digits_dir / spec["path"]))
    (signature,) = interpreter.get_signature_list().values()
    assert sorted(signature["inputs"]) == sorted(b["artifact_name"] for b in spec["inputs"])
    assert sorted(signature["outputs"]) == sorted(b["artifact_name"] for b in spec["outputs"])
    runner = interpreter.get_signature_runner()
    for side, bindings in (("inputs", spec["inputs"]), ("outputs", spec["outputs"])):
        details = runner.get_input_details() if side == "inputs" else runner.get_output_details()
        for b in bindings:
            assert list(details[b["artifact_name"]]["shape"]) == b["shape"], (side, b["name"])
            assert details[b["artifact_name"]]["dtype"].__name__ == "float32", (side, b["name"])


def test_pte_is_one_the_android_runtime_loads(digits_dir, pte):
    head = (digits_dir / pte["path"]).read_bytes()[:12]
    assert head[4:8] == ANDROID_PTE_IDENTIFIER and head[8:12] == EXTENDED_HEADER_MAGIC
    assert pte["precision"] == "fp32"
    assert all(b["perm"] == list(range(len(b["shape"]))) for b in pte["inputs"] + pte["outputs"])


@pytest.mark.parametrize("key", MOBILE_ARTIFACTS)
def test_mobile_artifact_matches_golden(mobile_runs, golden, key):
    run = mobile_runs[key]
    perms = {b["name"]: b["perm"] for b in run.spec["outputs"]}
    got = [{name: from_artifact(y, perms[name]) for name, y in case.items()} for case in run.outputs]
    tolerance = golden["tolerances"][run.spec["precision"]]
    result = compare(golden_arrays(golden, "outputs"), got, tolerance, against="pytorch")
    print(f"{key}: " + "; ".join(o.describe() for o in result.outputs) + f" (tolerance {tolerance})")
    assert result.passed, "; ".join(o.describe() for o in result.failures())
