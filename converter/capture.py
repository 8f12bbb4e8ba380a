"""Route third-party noise (TensorFlow's C++ logs, tool banners, deprecation warnings) into a log file.

TensorFlow and onnx2tf write straight to file descriptors 1 and 2 from C++, so redirecting sys.stdout is
not enough: the descriptors themselves are pointed at the log file for the duration of a stage.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from pathlib import Path


@contextlib.contextmanager
def captured(log_path: Path):
    """Everything written to stdout/stderr, Python warnings and log records go to `log_path`.

    Yields the list of warning messages seen, so the report can carry them.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    seen: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    with open(log_path, "a", buffering=1, encoding="utf-8", errors="replace") as log:
        saved = [os.dup(1), os.dup(2)]
        old_streams = sys.stdout, sys.stderr
        handler = logging.StreamHandler(log)
        root = logging.getLogger()
        old_level = root.level
        try:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            sys.stdout = sys.stderr = log
            root.addHandler(handler)
            root.setLevel(logging.INFO)
            with warnings.catch_warnings():
                warnings.simplefilter("always")

                def record(message, category, filename, lineno, file=None, line=None):
                    text = f"{category.__name__}: {message}"
                    if text not in seen:
                        seen.append(text)
                    log.write(f"{filename}:{lineno}: {text}\n")

                warnings.showwarning = record
                yield seen
        finally:
            try:
                log.flush()
            except OSError:  # a full disk: the log loses its tail, but the terminal must come back
                pass
            root.removeHandler(handler)
            root.setLevel(old_level)
            sys.stdout, sys.stderr = old_streams
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            try:
                log.close()  # here, so that a failing close cannot hide the stage's own error
            except OSError:
                pass
