"""What the page shows when it cannot, or must not, load a model."""

from __future__ import annotations

import shutil


def test_broken_model_folder_shows_the_error(digits_dir, tmp_path, serve_folder, run_browser, artifacts_dir):
    broken = tmp_path / "broken"
    shutil.copytree(digits_dir, broken)
    (broken / "tfjs" / "model.json").write_text("{ this is not a graph model")
    screenshot = artifacts_dir / "web-demo-broken-folder.png"
    with serve_folder(broken) as url:
        page = run_browser("error", url, screenshot=str(screenshot))

    assert "Could not load the TF.js model tfjs/model.json" in page["error"]
    assert page["status"] == "failed to load"
    assert not page["appVisible"]
    assert screenshot.stat().st_size > 0


def test_missing_model_folder_shows_the_error(demo_url, run_browser):
    page = run_browser("error", demo_url.replace("?model=model/", "?model=no-such-folder/"))
    assert "metadata.json not found" in page["error"] and "HTTP 404" in page["error"]


def test_model_from_another_origin_is_refused(demo_url, run_browser):
    page = run_browser("error", demo_url.replace("?model=model/", "?model=http://models.example/digits/"))
    assert page["error"].startswith("Refused to load a model from http://models.example")
    # Refused before any request: nothing failed on the network.
    assert page["problems"] == []
