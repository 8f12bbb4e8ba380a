"""The "drop into the app" step: copy a converted folder's mobile artifacts into the Android sample.

`python -m converter android-assets DIR [--app mobile/android/app]` calls `install_assets`. It copies
metadata.json (labels, layouts), golden/golden.json and the .pte/.ptl/.tflite files into the app's
assets/model/, keeping the folder's relative paths so that every path in metadata.json is also an asset
path. A folder with a failed stage, or whose mobile artifacts were not verified, is refused: the app must
never ship numbers that the pipeline did not check.

The app has two builds (mobile/README.md): `executorch` runs model.pte and the .tflite files, `ptl` (deprecated)
runs model.ptl and the .tflite files. So the float32 .tflite is required, and at least one of model.pte and
model.ptl; each of those, and the float16 .tflite, comes along when its stage passed.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from .errors import UsageError
from .golden import read_metadata
from .stages.executorch import ANDROID_PTE_IDENTIFIER, ANDROID_RUNTIME, EXTENDED_HEADER_MAGIC
from .stages.torchscript import ANDROID_LITE_LOADS_BYTECODE, ANDROID_LITE_RUNTIME

STAGE = "android-assets"

# Artifacts the app runs, by stage name (= metadata.json artifact key). Both builds need the float32 .tflite;
# each needs its PyTorch runtime's artifact (executorch: model.pte, ptl: model.ptl), at least one of which
# must have passed. Optional ones come along when their stage passed.
REQUIRED_STAGES = ("tflite_fp32",)
PYTORCH_RUNTIME_STAGES = ("executorch", "ptl")
OPTIONAL_STAGES = ("executorch", "ptl", "tflite_fp16")
DATA_FILES = ("metadata.json", "golden/golden.json")

ASSETS = Path("src/main/assets/model")


def install_assets(converted_dir: Path, app_dir: Path) -> list[Path]:
    """Copy the mobile artifacts of `converted_dir` into `app_dir`'s assets; return the installed files.

    All or nothing: the files are staged in a temporary folder beside assets/model/ and swapped in by
    renames, so the app never holds a .ptl from one conversion and golden data from another.
    """
    converted_dir, app_dir = Path(converted_dir), Path(app_dir)
    if not (app_dir / "src" / "main" / "AndroidManifest.xml").is_file():
        raise UsageError(f"{app_dir} is not an Android app module (no src/main/AndroidManifest.xml)",
                         stage=STAGE, hint="pass --app mobile/android/app")
    stages = _stage_status(converted_dir)
    failed = sorted(name for name, status in stages.items() if status == "failed")
    if failed:
        raise UsageError(f"{converted_dir}: stage(s) {', '.join(failed)} failed; refusing to put its artifacts in the app",
                         stage=STAGE, hint="see report.html for the failure, fix it and convert again")
    unverified = [name for name in REQUIRED_STAGES if stages.get(name) != "passed"]
    if not any(stages.get(name) == "passed" for name in PYTORCH_RUNTIME_STAGES):
        unverified.append(" or ".join(PYTORCH_RUNTIME_STAGES))
    if unverified:
        statuses = [f"{n}: {stages.get(n, 'absent')}" for n in (*REQUIRED_STAGES, *PYTORCH_RUNTIME_STAGES)]
        raise UsageError(f"{converted_dir}: the app needs {', '.join(unverified)}, which did not pass "
                         f"({', '.join(statuses)})",
                         stage=STAGE,
                         hint="parity was not verified (a reference that does not vary across the input cases): "
                              "convert again with real --sample-input or --eval-data, or more --cases"
                         if any(stages.get(n) == "degenerate" for n in (*REQUIRED_STAGES, *PYTORCH_RUNTIME_STAGES))
                         else "convert with the executorch and tflite targets (ptl too for the deprecated build)")
    artifacts = read_metadata(converted_dir / "metadata.json").get("artifacts", {})
    stage_names = [*REQUIRED_STAGES, *(n for n in OPTIONAL_STAGES if stages.get(n) == "passed")]
    files = [*DATA_FILES, *(artifacts[n]["path"] for n in stage_names if n in artifacts)]
    missing = [f for f in files if not (converted_dir / f).is_file()]
    missing += [f"metadata.json artifacts.{n}" for n in stage_names if n not in artifacts]
    if missing:
        raise UsageError(f"{converted_dir} lacks {', '.join(missing)}", stage=STAGE,
                         hint="convert again into a fresh folder; the folder may be incomplete")
    if "ptl" in stage_names:
        _check_bytecode(converted_dir / artifacts["ptl"]["path"])
    if "executorch" in stage_names:
        _check_pte(converted_dir / artifacts["executorch"]["path"])
    return _swap_in(converted_dir, files, app_dir / ASSETS)


def _stage_status(converted_dir: Path) -> dict[str, str]:
    report = _read_json(converted_dir / "report.json")
    return {stage["name"]: stage["status"] for stage in report.get("stages", [])}


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist", stage=STAGE,
                         hint="pass the folder that `python -m converter convert --out DIR` wrote") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not valid JSON ({exc})", stage=STAGE, hint="convert again") from None


def _check_bytecode(ptl: Path) -> None:
    """The pipeline backports the .ptl for the pinned runtime; this guards against a folder made otherwise."""
    from torch.jit.mobile import _get_model_bytecode_version

    version = _get_model_bytecode_version(str(ptl))
    if version not in ANDROID_LITE_LOADS_BYTECODE:
        raise UsageError(f"{ptl} has bytecode v{version}; {ANDROID_LITE_RUNTIME} loads "
                         f"v{ANDROID_LITE_LOADS_BYTECODE.start}..v{ANDROID_LITE_LOADS_BYTECODE.stop - 1}",
                         stage=STAGE, hint="convert again with this converter, which backports the .ptl")


def _check_pte(pte: Path) -> None:
    """The executorch stage refuses to write a .pte its pinned Android runtime cannot load; this guards against
    a folder made otherwise (another exporter, a damaged copy) with the checks that need no executorch here."""
    with pte.open("rb") as f:
        head = f.read(12)
    if head[4:8] != ANDROID_PTE_IDENTIFIER or head[8:12] != EXTENDED_HEADER_MAGIC:
        raise UsageError(f"{pte} is not an ExecuTorch program that {ANDROID_RUNTIME} loads (file identifier "
                         f"{head[4:8]!r}, header {head[8:12]!r}; expected {ANDROID_PTE_IDENTIFIER!r}, "
                         f"{EXTENDED_HEADER_MAGIC!r})", stage=STAGE,
                         hint="convert again with this converter's executorch target")


def _swap_in(source: Path, files: list[str], target: Path) -> list[Path]:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".model-new-", dir=target.parent))
    retired = None
    try:
        for name in files:
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, staging / name)
        if target.exists():
            retired = Path(tempfile.mkdtemp(prefix=".model-old-", dir=target.parent))
            target.rename(retired / "model")
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if retired is not None and not target.exists():
            (retired / "model").rename(target)  # put the previous install back
        raise
    finally:
        if retired is not None and target.exists():
            shutil.rmtree(retired, ignore_errors=True)
    return [target / name for name in files]
