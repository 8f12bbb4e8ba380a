"""`python -m converter serve DIR`: routes, headers and refusals of the demo's local server."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from converter import serve as serve_module
from converter.errors import UsageError

# `-m converter` must resolve to this checkout's package.
REPO = serve_module.DEMO_DIR.parents[1]


def fetch(url: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), b""


def test_serves_the_demo_and_the_folder_from_one_origin(demo_url, digits_dir):
    root = demo_url.split("?")[0]
    status, headers, body = fetch(root)
    assert status == 200 and b"Content-Security-Policy" in body
    assert headers["Cache-Control"] == "no-store"

    status, headers, body = fetch(root + "model/metadata.json")
    assert status == 200 and body == (digits_dir / "metadata.json").read_bytes()
    status, headers, _ = fetch(root + "tfjs-wasm/tfjs-backend-wasm-simd.wasm")
    assert status == 200 and headers["Content-type"] == "application/wasm"


@pytest.mark.parametrize("path", ["model/", "model/../../etc/passwd", "model/%2e%2e/%2e%2e/etc/passwd", "nothing-here"])
def test_no_listings_and_no_way_out_of_the_roots(path, demo_url):
    status, _, _ = fetch(demo_url.split("?")[0] + path)
    assert status == 404


def test_unbuilt_demo_is_a_usage_error(tmp_path, monkeypatch, digits_dir):
    monkeypatch.setattr(serve_module, "DEMO_DIR", tmp_path / "dist")
    with pytest.raises(UsageError) as error:
        serve_module.make_server(digits_dir, 0)
    assert error.value.stage == "serve" and "npm run build:web" in error.value.hint


def test_folder_without_metadata_is_a_usage_error(tmp_path, demo_built):
    with pytest.raises(UsageError, match="not a converted folder"):
        serve_module.make_server(tmp_path, 0)


def test_cli_prints_one_url_and_stops_on_ctrl_c(digits_dir, demo_built):
    proc = subprocess.Popen(
        [sys.executable, "-m", "converter", "serve", str(digits_dir), "--port", "0"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/?model=model/")
        assert fetch(url)[0] == 200
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    assert out == "" and proc.returncode in (0, 130), err
