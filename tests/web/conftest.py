"""Fixtures for the web demo's browser tests: the built demo, a local server for the real converted digits
folder (`digits_dir`, tests/conftest.py: the converter CLI on the bundled example, once per session), and a
runner that drives Debian's headless Chromium through playwright-core (browser.mjs)."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import subprocess

import pytest

from converter.serve import make_server, running, url_of

REPO = pathlib.Path(__file__).resolve().parents[2]
RUNNER = pathlib.Path(__file__).with_name("browser.mjs")
CHROMIUM = pathlib.Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = REPO / "test-artifacts"
BROWSER_TIMEOUT_S = 240


@pytest.fixture(scope="session")
def browser_tools() -> None:
    missing = [
        what
        for what, ok in (
            (f"Chromium at {CHROMIUM} (apt-get install chromium)", CHROMIUM.exists()),
            ("node", shutil.which("node") is not None),
            ("node_modules (npm install)", (REPO / "node_modules" / "playwright-core").is_dir()),
        )
        if not ok
    ]
    if missing:
        pytest.skip("browser tests need " + ", ".join(missing))


@pytest.fixture(scope="session")
def demo_built(browser_tools) -> None:
    """Builds web-demo/dist from the current sources, so the tests never run a stale bundle."""
    proc = subprocess.run(["npm", "run", "build:web"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@contextlib.contextmanager
def serving(directory: pathlib.Path, isolate: bool = True):
    """converter.serve's server on a free loopback port; yields the URL `serve` prints. isolate=False leaves
    out the COOP/COEP headers, like a plain static host."""
    with running(make_server(directory, 0, isolate=isolate)) as server:
        yield url_of(server)


@pytest.fixture(scope="session")
def serve_folder(demo_built):
    """`with serve_folder(directory) as url:` serves another folder (e.g. a broken one) beside the demo."""
    return serving


@pytest.fixture(scope="session")
def demo_url(serve_folder, digits_dir) -> str:
    with serve_folder(digits_dir) as url:
        yield url


@pytest.fixture(scope="session")
def golden(digits_dir) -> dict:
    return json.loads((digits_dir / "golden" / "golden.json").read_text())


@pytest.fixture(scope="session")
def torch_model(digits_dir):
    """The PyTorch reference: the folder's own TorchScript model."""
    import torch

    return torch.jit.load(str(digits_dir / "model.pt")).eval()


@pytest.fixture(scope="session")
def artifacts_dir() -> pathlib.Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def run_browser(browser_tools):
    """run_browser(scenario, url, **args) -> the JSON browser.mjs printed. One Chromium at a time."""

    def run(scenario: str, url: str, **args) -> dict:
        request = json.dumps({"scenario": scenario, "url": url, **args})
        proc = subprocess.run(
            ["node", str(RUNNER), request], cwd=REPO, capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S
        )
        assert proc.returncode == 0, f"browser scenario {scenario} failed:\n{proc.stderr}"
        return json.loads(proc.stdout.strip().splitlines()[-1])

    return run
