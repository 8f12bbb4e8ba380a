"""The "drop into the app" step: copy a converted folder's mobile artifacts into the Android sample.

`python -m converter android-assets DIR [--app mobile/android/app]` calls `install_assets`. It copies
metadata.json (labels, layouts), golden/golden.json and the .ptl/.tflite files into the app's
assets/model/, keeping the folder's relative paths so that every path in metadata.json is also an asset
path. A folder with a failed stage, or whose mobile artifacts were not verified, is refused: the app must
never ship numbers that the pipeline did not check.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from .errors import UsageError
from .golden import read_metadata
from .stages.torchscript import ANDROID_LITE_LOADS_BYTECODE, ANDROID_LITE_RUNTIME

STAGE = "android-assets"

# Artifacts the app runs, by stage name (= metadata.json artifact key). The app's switch needs the .ptl and
# the float32 .tflite; the float16 one comes along when its stage passed.
REQUIRED_STAGES = ("ptl", "tflite_fp32")
OPTIONAL_STAGES = ("tflite_fp16",)
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
    if unverified:
        raise UsageError(f"{converted_dir}: the app needs {', '.join(unverified)}, which did not pass "
                         f"(status: {', '.join(stages.get(n, 'absent') for n in unverified)})",
                         stage=STAGE,
                         hint="parity was not verified (a reference that does not vary across the input cases): "
                              "convert again with real --sample-input or --eval-data, or more --cases"
                         if any(stages.get(n) == "degenerate" for n in unverified)
                         else "convert with the ptl and tflite targets")
    artifacts = read_metadata(converted_dir / "metadata.json").get("artifacts", {})
    stage_names = [*REQUIRED_STAGES, *(n for n in OPTIONAL_STAGES if stages.get(n) == "passed")]
    files = [*DATA_FILES, *(artifacts[n]["path"] for n in stage_names if n in artifacts)]
    missing = [f for f in files if not (converted_dir / f).is_file()]
    missing += [f"metadata.json artifacts.{n}" for n in stage_names if n not in artifacts]
    if missing:
        raise UsageError(f"{converted_dir} lacks {', '.join(missing)}", stage=STAGE,
                         hint="convert again into a fresh folder; the folder may be incomplete")
    _check_bytecode(converted_dir / artifacts["ptl"]["path"])
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
