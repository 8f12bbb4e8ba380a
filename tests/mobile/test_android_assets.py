"""`install_assets` / `python -m converter android-assets`: the converted folder's mobile artifacts into the
app's assets, all or nothing, and never from a folder whose checks failed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from converter.android import ASSETS, install_assets
from converter.errors import UsageError
from mobile_runtimes import ANDROID, REPO

EXPECTED = ["metadata.json", "golden/golden.json", "model.pte", "model.ptl", "tflite/model_float32.tflite",
            "tflite/model_float16.tflite"]


@pytest.fixture
def app(tmp_path):
    """An app module with the sample's manifest, so installs never touch the checkout's assets."""
    app = tmp_path / "app"
    (app / "src" / "main").mkdir(parents=True)
    shutil.copy(ANDROID / "app" / "src" / "main" / "AndroidManifest.xml", app / "src" / "main")
    return app


@pytest.fixture
def folder(tmp_path, digits_dir):
    """A copy of the converted folder that a test may damage."""
    return shutil.copytree(digits_dir, tmp_path / "digits")


def _edit_report(folder, stage, status):
    report = json.loads((folder / "report.json").read_text())
    for s in report["stages"]:
        if s["name"] == stage:
            s["status"] = status
    (folder / "report.json").write_text(json.dumps(report))


def test_installs_the_mobile_artifacts_with_their_relative_paths(digits_dir, app):
    installed = install_assets(digits_dir, app)
    root = app / ASSETS
    assert sorted(p.relative_to(root).as_posix() for p in installed) == sorted(EXPECTED)
    for name in EXPECTED:
        assert (root / name).read_bytes() == (digits_dir / name).read_bytes(), name
    # Every artifact path the app looks up in metadata.json resolves inside the assets.
    artifacts = json.loads((root / "metadata.json").read_text())["artifacts"]
    assert all((root / artifacts[k]["path"]).is_file() for k in ("executorch", "ptl", "tflite_fp32", "tflite_fp16"))
    assert [p.name for p in root.parent.iterdir()] == ["model"], "staging folders left behind"


def test_reinstall_replaces_the_whole_set(digits_dir, app):
    install_assets(digits_dir, app)
    stale = app / ASSETS / "tflite" / "model_old.tflite"
    stale.write_bytes(b"from an earlier conversion")
    install_assets(digits_dir, app)
    assert not stale.exists()
    assert (app / ASSETS / "model.ptl").is_file()


def test_refuses_a_folder_with_a_failed_stage_and_keeps_the_previous_install(digits_dir, folder, app):
    install_assets(digits_dir, app)
    before = {p: p.read_bytes() for p in (app / ASSETS).rglob("*") if p.is_file()}
    _edit_report(folder, "tfjs", "failed")
    with pytest.raises(UsageError) as caught:
        install_assets(folder, app)
    assert caught.value.stage == "android-assets"
    assert "tfjs" in caught.value.message and caught.value.hint
    assert {p: p.read_bytes() for p in (app / ASSETS).rglob("*") if p.is_file()} == before


def test_refuses_when_the_float32_tflite_was_not_verified(folder, app):
    _edit_report(folder, "tflite_fp32", "skipped")
    with pytest.raises(UsageError, match="needs tflite_fp32"):
        install_assets(folder, app)
    assert not (app / ASSETS).exists()


def test_refuses_when_neither_pytorch_runtime_artifact_was_verified(folder, app):
    """The executorch build needs the .pte, the (deprecated) ptl build the .ptl: one of them must have passed."""
    _edit_report(folder, "executorch", "degenerate")
    _edit_report(folder, "ptl", "skipped")
    with pytest.raises(UsageError, match="needs executorch or ptl") as caught:
        install_assets(folder, app)
    assert "executorch: degenerate" in caught.value.message and "--sample-input" in caught.value.hint
    assert not (app / ASSETS).exists()


def test_without_a_pte_the_ptl_alone_is_enough(folder, app):
    _edit_report(folder, "executorch", "skipped")
    names = {p.relative_to(app / ASSETS).as_posix() for p in install_assets(folder, app)}
    assert names == set(EXPECTED) - {"model.pte"}


def test_without_a_ptl_the_pte_alone_is_enough(folder, app):
    """The deprecated .ptl is optional: a folder converted without the ptl target installs for the
    executorch build."""
    _edit_report(folder, "ptl", "skipped")
    names = {p.relative_to(app / ASSETS).as_posix() for p in install_assets(folder, app)}
    assert names == set(EXPECTED) - {"model.ptl"}


def test_refuses_when_only_the_ptl_was_there_and_it_did_not_pass(folder, app):
    _edit_report(folder, "executorch", "skipped")
    _edit_report(folder, "ptl", "skipped")
    with pytest.raises(UsageError, match="needs executorch or ptl"):
        install_assets(folder, app)
    assert not (app / ASSETS).exists()


def test_refuses_a_pte_the_pinned_android_runtime_cannot_load(folder, app):
    pte = folder / "model.pte"
    data = bytearray(pte.read_bytes())
    data[4:8] = b"ET99"
    pte.write_bytes(bytes(data))
    with pytest.raises(UsageError, match="not an ExecuTorch program that org.pytorch:executorch-android"):
        install_assets(folder, app)


def test_leaves_out_a_float16_model_whose_stage_was_skipped(folder, app):
    _edit_report(folder, "tflite_fp16", "skipped")
    names = {p.name for p in install_assets(folder, app)}
    assert "model_float16.tflite" not in names and "model_float32.tflite" in names


def test_refuses_a_folder_missing_an_artifact(folder, app):
    (folder / "model.ptl").unlink()
    with pytest.raises(UsageError, match="lacks model.ptl"):
        install_assets(folder, app)


def test_refuses_what_is_not_an_app_or_not_a_converted_folder(digits_dir, tmp_path, app):
    with pytest.raises(UsageError, match="not an Android app module"):
        install_assets(digits_dir, tmp_path)
    with pytest.raises(UsageError, match="report.json does not exist"):
        install_assets(tmp_path, app)


def test_cli_installs_and_refuses_with_exit_code_2(digits_dir, folder, app):
    ok = subprocess.run([sys.executable, "-m", "converter", "android-assets", str(digits_dir), "--app", str(app)],
                        cwd=REPO, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert (app / ASSETS / "model.ptl").is_file()
    _edit_report(folder, "ptl", "failed")
    refused = subprocess.run([sys.executable, "-m", "converter", "android-assets", str(folder), "--app", str(app)],
                             cwd=REPO, capture_output=True, text=True)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "android-assets" in refused.stderr + refused.stdout
