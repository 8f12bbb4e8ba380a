"""A worker process: `python -m converter.worker LOG`, started by converter/graph.py, possibly from another
virtual environment (one with another numpy or torch).

The interface, one frame per message on stdin (from the main process) and stdout (to it):
- in:  ("warm", stages, all_stages): this worker's stages, whose warm_up it runs at once; ("init", ctx,
       cache): the run's Context (without the model object) and the cache; then ("result", StageResult,
       outputs, artifact) for every stage of another worker that one of these consumes; ("stop",) to end
       early, at any point.
- out: ("result", StageResult, outputs, artifact) per stage, in order; ("done",) at the end.
Frames are pickles in which numpy arrays travel as (dtype, shape, bytes), so that numpy 1.x and 2.x read
each other. The worker's own stdout and stderr go to LOG, and each stage's to logs/<stage>.log as in-process.
A stage here that reads ctx.model gets the model loaded again from its source, on first use.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import signal
import struct
import sys
from pathlib import Path

from .errors import TermSignal


def _array(dtype: str, shape: tuple, data: bytes):
    import numpy as np

    return np.frombuffer(data, dtype=np.dtype(dtype)).reshape(shape).copy()


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj):
        numpy = sys.modules.get("numpy")
        if numpy is not None and type(obj) is numpy.ndarray and obj.dtype.kind in "biufc":
            return _array, (obj.dtype.str, obj.shape, numpy.ascontiguousarray(obj).tobytes())
        return NotImplemented


class Channel:
    """Length-prefixed pickle frames over a pair of binary streams."""

    def __init__(self, reader, writer) -> None:
        self.reader, self.writer = reader, writer

    def send(self, message) -> None:
        buffer = io.BytesIO()
        _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(message)
        data = buffer.getvalue()
        self.writer.write(struct.pack("<Q", len(data)) + data)
        self.writer.flush()

    def receive(self):
        head = self.reader.read(8)
        if len(head) < 8:
            raise EOFError("the other end closed the channel")
        (size,) = struct.unpack("<Q", head)
        data = self.reader.read(size)
        if len(data) < size:
            raise EOFError("the other end closed the channel mid-frame")
        return pickle.loads(data)


class LazyModel:
    """The model, loaded again from its source the first time a stage in this worker needs it. It loads in the
    folder the user ran the converter in (`folder`), where a relative path or a module name means what it
    meant there: a worker runs in the project's root."""

    def __init__(self, source: str, weights, trust_model: bool, folder: str) -> None:
        self.source, self.weights, self.trust_model, self.folder = source, weights, trust_model, folder
        self._loaded = None

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        if self._loaded is None:
            from .loading import load_model

            sys.path.insert(0, self.folder)  # as `python -m converter` has the folder it ran in
            try:
                with contextlib.chdir(self.folder):
                    self._loaded = load_model(self.source, weights=self.weights, trust_model=self.trust_model)
            finally:
                sys.path.remove(self.folder)
        return getattr(self._loaded, name)


def _stop_once() -> None:
    """Ctrl-C or SIGTERM (the main process stops a worker busy in a stage with it) unwinds the stage, whose
    cleanup stops its own children (Node.js, Chromium); a second signal, by either route, cannot cut that short."""
    def stop(signum, frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise TermSignal if signum == signal.SIGTERM else KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def main(log_path: str) -> int:
    # The protocol keeps the original descriptors; everything else written to 1 and 2 goes to the log.
    channel = Channel(os.fdopen(os.dup(0), "rb"), os.fdopen(os.dup(1), "wb"))
    log = open(log_path, "a", buffering=1)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    _stop_once()

    from .graph import Board, run_stages

    kind, stages, all_stages = channel.receive()
    assert kind == "warm", kind
    for stage in stages:
        try:
            stage.warm_up()
        except Exception as exc:  # the stage itself will fail and say why
            print(f"warm-up of {stage.name} failed: {exc!r}", flush=True)
    message = channel.receive()
    if message[0] == "stop":
        return 0
    _, ctx, cache = message
    ctx.model = LazyModel(*ctx.model_ref) if ctx.model_ref else None

    def pump() -> None:
        message = channel.receive()
        if message[0] == "stop":
            raise SystemExit(0)
        _, result, outputs, artifact = message
        board.record(result, outputs, artifact)

    def announce(result) -> None:
        channel.send(("result", result, board.outputs.get(result.name), ctx.artifacts.get(result.name)))

    board = Board(ctx, pump)
    run_stages(stages, all_stages, board, announce, cache, lambda name: channel.send(("start", name)))
    channel.send(("done",))
    return 0


if __name__ == "__main__":
    # Through the package's module, not __main__: what this process pickles must name importable functions.
    from converter import worker

    sys.exit(worker.main(sys.argv[1]))
