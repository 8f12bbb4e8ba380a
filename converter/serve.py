"""`python -m converter serve DIR`: the web demo and one converted folder on a local HTTP server.

The demo (web-demo/dist, built by `npm run build:web`) is served at `/` and the folder at `/model/`, so the
page loads the model from its own origin, as its Content-Security-Policy requires. Standard library only:
this command must start instantly and must not import the conversion stack.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import pathlib
import threading
from collections.abc import Iterator

from converter.errors import UsageError

DEMO_DIR = pathlib.Path(__file__).resolve().parent.parent / "web-demo" / "dist"
MODEL_PREFIX = "/model/"
# What a page needs for wasm threads; a static host serving the demo must send the same (docs/artifacts.md).
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class DemoHandler(http.server.SimpleHTTPRequestHandler):
    """Static files from the demo, or from the model folder for paths under MODEL_PREFIX."""

    # Python's mimetypes table lacks or varies on these; wasm needs its exact type for streaming compilation.
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".wasm": "application/wasm",
        ".json": "application/json",
        ".onnx": "application/octet-stream",
        ".bin": "application/octet-stream",
    }

    def __init__(self, *args, model_dir: pathlib.Path, isolate: bool = True, **kwargs) -> None:
        self.model_dir = model_dir
        self.isolate = isolate
        super().__init__(*args, directory=str(DEMO_DIR), **kwargs)

    def translate_path(self, path: str) -> str:
        # The parent's translation drops '..' segments, so each root stays a jail.
        if path.startswith(MODEL_PREFIX):
            self.directory = str(self.model_dir)
            path = path[len(MODEL_PREFIX) - 1 :]
        return super().translate_path(path)

    def list_directory(self, path):  # noqa: ANN001 - signature of the parent
        self.send_error(404, "No directory listings")
        return None

    def end_headers(self) -> None:
        # A re-converted folder must never be mixed with cached files of the previous one.
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        # Cross-origin isolation: without these two the browser withholds SharedArrayBuffer, and the wasm
        # runtimes (TF.js, ONNX Runtime Web, LiteRT.js) run on one thread. CORP lets every file load into
        # such a page (and into no other site's).
        for name, value in ISOLATION_HEADERS.items() if self.isolate else ():
            self.send_header(name, value)
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - parent's parameter name
        """Quiet: the command's output is the URL line; failed requests show on the page instead."""


def demo_server(root: pathlib.Path, port: int, host: str = "127.0.0.1", isolate: bool = True) -> http.server.ThreadingHTTPServer:
    """The built demo at `/` and any folder `root` at MODEL_PREFIX, bound but not yet serving (port 0 picks
    a free port). scripts/bench_web.py serves a folder of several models this way. `isolate=False` leaves
    the COOP/COEP headers out (what a plain static host does: the page then runs on one thread)."""
    if not (DEMO_DIR / "index.html").is_file():
        raise UsageError(f"the web demo is not built ({DEMO_DIR} is missing)", stage="serve", hint="run: npm run build:web")
    handler = functools.partial(DemoHandler, model_dir=pathlib.Path(root).resolve(), isolate=isolate)
    return http.server.ThreadingHTTPServer((host, port), handler)


def make_server(directory: pathlib.Path, port: int, host: str = "127.0.0.1",
                isolate: bool = True) -> http.server.ThreadingHTTPServer:
    """demo_server for one converted folder, checked first so a wrong path fails here, not in the browser."""
    if not (pathlib.Path(directory) / "metadata.json").is_file():
        raise UsageError(
            f"{directory} is not a converted folder (no metadata.json)",
            stage="serve",
            hint="pass the --out folder of `python -m converter convert`",
        )
    return demo_server(directory, port, host, isolate)


def url_of(server: http.server.ThreadingHTTPServer, page: str = "") -> str:
    """The URL of `page` (the demo by default) with the served folder as its model."""
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/{page}?model={MODEL_PREFIX.lstrip('/')}"


@contextlib.contextmanager
def running(server: http.server.ThreadingHTTPServer) -> Iterator[http.server.ThreadingHTTPServer]:
    """Serves from a background thread for the duration of the block (browser tests, the web benchmark)."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def serve(directory: pathlib.Path, port: int, host: str = "127.0.0.1") -> None:
    """Serve until Ctrl-C, after printing the one URL to open."""
    with make_server(directory, port, host) as server:
        print(url_of(server), flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
