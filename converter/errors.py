"""Typed errors. Each carries the stage it came from, what went wrong, and what to try next.

The CLI turns them into one short message and an exit code; nothing else in the package decides exit codes.
"""

from __future__ import annotations

import contextlib
import signal
import threading


class ConverterError(Exception):
    """Base class: `stage` names the pipeline step, `hint` says what to try next."""

    exit_code = 1

    def __init__(self, message: str, *, stage: str = "setup", hint: str = "") -> None:
        super().__init__(message)
        self.stage = stage
        self.message = message
        self.hint = hint

    def __reduce__(self):
        # Errors travel from worker processes to the main one; the keyword-only arguments need this.
        return _rebuild, (type(self), dict(self.__dict__))

    def __str__(self) -> str:
        text = f"[{self.stage}] {self.message}"
        if self.hint:
            text += f"\n  try: {self.hint}"
        return text


class UsageError(ConverterError):
    """Bad arguments or bad input files (exit code 2)."""

    exit_code = 2


class ParityError(ConverterError):
    """An artifact computes something else than the PyTorch reference (exit code 3)."""

    exit_code = 3


class ConversionError(ConverterError):
    """A converter could not produce an artifact, e.g. unsupported ops (exit code 4)."""

    exit_code = 4

    def __init__(self, message: str, *, stage: str, hint: str = "", unsupported_ops: list[str] | None = None) -> None:
        super().__init__(message, stage=stage, hint=hint)
        self.unsupported_ops = sorted(set(unsupported_ops or []))


class Interrupted(ConverterError):
    """The user stopped the run (Ctrl-C); exit code 130 like a shell."""

    exit_code = 130


class Terminated(Interrupted):
    """The run was sent SIGTERM (kill, timeout(1), a CI job's cancel); exit code 143 like a shell."""

    exit_code = 143


class TermSignal(KeyboardInterrupt):
    """SIGTERM, raised where the process was (stop_on_sigterm), so that it unwinds as Ctrl-C does: stages stop
    their children, temporary folders go, and the output folder is left as it was."""


@contextlib.contextmanager
def stop_on_sigterm():
    """Inside the block a SIGTERM raises TermSignal in the main thread; Python's default ends the process at
    once, leaving a half-written folder and orphaned Node.js and Chromium processes behind."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers
        return

    def raise_term(signum, frame):
        raise TermSignal

    previous = signal.signal(signal.SIGTERM, raise_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interruption(exc: KeyboardInterrupt, message: str, stage: str) -> Interrupted:
    """The error for a run stopped by Ctrl-C or SIGTERM (`exc`): "interrupted; MESSAGE" or "terminated; ..."."""
    if isinstance(exc, TermSignal):
        return Terminated(f"terminated (SIGTERM); {message}", stage=stage)
    return Interrupted(f"interrupted; {message}", stage=stage)


def _rebuild(cls: type, state: dict) -> ConverterError:
    error = cls.__new__(cls)
    Exception.__init__(error, state["message"])
    error.__dict__.update(state)
    return error


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text: third-party messages can run to pages."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
