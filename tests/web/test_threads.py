"""Wasm threads in the real browser: `serve` makes the page cross-origin isolated (COOP/COEP), the demo runs
TF.js, ONNX Runtime Web and LiteRT.js on several threads and says how many; a host without those headers gets
one thread, and the page says why."""

from __future__ import annotations

import urllib.error
import urllib.request

from converter.serve import ISOLATION_HEADERS

# TF.js's wasm backend uses at most half of navigator.hardwareConcurrency: the page is told 4 cores (CDP), so
# that it runs 2 threads even on a 2-core machine.
CORES = 4


def headers_of(url: str) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return dict(response.headers)
    except urllib.error.HTTPError as err:  # a 404 must carry them too
        return dict(err.headers)


def test_serve_sends_the_isolation_headers(demo_url):
    root = demo_url.split("?")[0]
    for path in ("", "main.js", "tfjs-wasm/tfjs-backend-wasm-threaded-simd.wasm", "model/metadata.json", "nothing-here"):
        headers = headers_of(root + path)
        for name, value in ISOLATION_HEADERS.items():
            assert headers[name] == value, (path, name)


def test_isolated_page_runs_the_wasm_runtimes_on_threads(demo_url, run_browser):
    page = run_browser("threads", demo_url, hardwareConcurrency=CORES)

    assert page["problems"] == []  # no CSP violation from the runtimes' blob: workers
    assert page["crossOriginIsolated"] is True
    assert page["tfjs"] == CORES // 2 and page["ort"] == CORES and page["litert"] == CORES
    assert page["shown"].startswith(f"wasm threads: TF.js {CORES // 2}, ONNX Runtime Web {CORES}, LiteRT.js {CORES} "
                                    "(cross-origin isolated")
    assert page["golden"]["passed"], page["golden"]  # threads change nothing in the outputs


def test_threads_query_parameter_sets_the_count(demo_url, run_browser):
    page = run_browser("threads", demo_url + "&threads=1", hardwareConcurrency=CORES)
    assert page["crossOriginIsolated"] is True and page["tfjs"] == 1 and page["ort"] == 1 and page["litert"] == 1


def test_host_without_coop_coep_gets_one_thread_and_says_so(serve_folder, digits_dir, run_browser):
    with serve_folder(digits_dir, isolate=False) as url:
        page = run_browser("threads", url, hardwareConcurrency=CORES)

    assert page["problems"] == []
    assert page["crossOriginIsolated"] is False
    assert page["tfjs"] == 1 and page["ort"] == 1 and page["litert"] == 1
    assert "not cross-origin isolated" in page["shown"] and "COOP/COEP" in page["shown"]
    assert page["golden"]["passed"]
