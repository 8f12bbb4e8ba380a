"""The output folder is replaced whole or not at all.

Work happens in a hidden sibling folder (same filesystem, so the final move is one rename). On success it
replaces DIR; on failure DIR stays as it was and the run's report and logs go to `DIR.failed`. A lock file
beside DIR makes a second conversion into the same DIR fail at once instead of mixing files.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path

from .errors import ConversionError, UsageError

STAGE = "output"


@contextlib.contextmanager
def _signals_held():
    """Hold Ctrl-C and SIGTERM back while the folder is between two states (a rename pair, the cleanup); one
    that arrives meanwhile is delivered right after. A Python-level handler, not a signal mask: torch and
    TensorFlow run threads, and the kernel hands a process's signal to any thread that does not block it."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers, and only it receives KeyboardInterrupt
        return
    pending: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, lambda signum, frame: pending.append(signum)) for signum in held}
    try:
        yield
    finally:
        for signum in held:
            signal.signal(signum, previous[signum])
        if pending:
            signum = pending[0]
            if callable(previous[signum]):
                previous[signum](signum, None)  # Python's default SIGINT handler raises KeyboardInterrupt
            elif previous[signum] == signal.SIG_DFL:
                os.kill(os.getpid(), signum)


class OutputFolder:
    def __init__(self, out: Path, force: bool) -> None:
        self.out = out.resolve()
        self.force = force
        self.work: Path | None = None
        self.committed: Path | None = None
        self._lock_path = self.out.parent / f".{self.out.name}.lock"
        self._lock_fd: int | None = None

    def __enter__(self) -> OutputFolder:
        out = self.out
        self._check_target()
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create {out.parent}: {exc.strerror}", stage=STAGE, hint="choose a writable --out") from exc
        if not os.access(out.parent, os.W_OK | os.X_OK):
            raise UsageError(f"{out.parent} is not writable", stage=STAGE, hint="choose a writable --out")
        self._lock()
        try:
            # Checked again under the lock: a run that finished meanwhile may have created DIR.
            self._check_target()
            self._recover()
            self.work = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        except BaseException as exc:
            self.__exit__(None, None, None)
            if isinstance(exc, OSError):  # read-only or immutable folder (os.access cannot see all), disk full
                raise _write_error(exc, out.parent) from exc
            raise
        return self

    def _check_target(self) -> None:
        out = self.out
        if out.exists() and not out.is_dir():
            raise UsageError(f"{out} exists and is not a folder", stage=STAGE, hint="choose another --out")
        if out.exists() and not self.force:
            raise UsageError(f"{out} already exists", stage=STAGE, hint="add --force to replace it, or choose another --out")

    def _lock(self) -> None:
        while True:
            try:
                fd = os.open(self._lock_path, os.O_CREAT | os.O_RDWR, 0o644)
            except OSError as exc:
                raise _write_error(exc, self.out.parent) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise UsageError(f"another conversion is writing {self.out} right now", stage=STAGE,
                                 hint="wait for it to finish, or choose another --out") from None
            # A run that just finished unlinks the lock file before unlocking it: if we opened that file, we
            # now hold a lock nobody else can see. Lock whatever file the path names now instead.
            try:
                if os.stat(self._lock_path).st_ino == os.fstat(fd).st_ino:
                    self._lock_fd = fd
                    return
            except FileNotFoundError:
                pass
            os.close(fd)

    def _recover(self) -> None:
        """Tidy what a killed run (SIGKILL, power loss) left: we hold the lock, so no live run owns it. A
        folder that was moved aside for a commit that never finished goes back to its place."""
        parent, name = self.out.parent, self.out.name
        # startswith, not glob: DIR's name may hold glob characters.
        leftovers = [p for p in parent.iterdir() if p.is_dir() and not p.is_symlink()
                     and p.name.startswith((f".{name}.old-", f".{name}.partial-"))]
        for old in leftovers:
            if old.name.startswith(f".{name}.old-"):
                for previous in old.iterdir():
                    if not (parent / previous.name).exists():
                        previous.rename(parent / previous.name)
            shutil.rmtree(old, ignore_errors=True)

    def commit(self, success: bool) -> Path:
        """Move the finished work into place; returns where it went."""
        assert self.work is not None
        target = self.out if success else self.out.parent / f"{self.out.name}.failed"
        # mkdtemp made the work folder private (0700); the result gets the permissions of any new folder.
        umask = os.umask(0)
        os.umask(umask)
        self.work.chmod(0o777 & ~umask)
        old = None
        with _signals_held():
            try:
                if target.exists():
                    old = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.old-", dir=self.out.parent))
                    target.rename(old / target.name)
                self.work.rename(target)
            except OSError as exc:
                if old is not None and not target.exists():
                    (old / target.name).rename(target)
                    shutil.rmtree(old, ignore_errors=True)
                raise _write_error(exc, self.out.parent) from exc
            self.work = None
            self.committed = target
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        return target

    def __exit__(self, *exc_info) -> None:
        with _signals_held():  # a second Ctrl-C must not leave the cleanup half done
            if self.work is not None:
                shutil.rmtree(self.work, ignore_errors=True)
                self.work = None
            if self._lock_fd is not None:
                # Unlink before unlocking, so no one can lock a file that is about to disappear.
                try:
                    self._lock_path.unlink()
                except FileNotFoundError:
                    pass
                os.close(self._lock_fd)
                self._lock_fd = None


def _write_error(exc: OSError, where: Path) -> UsageError | ConversionError:
    if exc.errno == errno.ENOSPC:
        return ConversionError(f"no space left on the device while writing in {where}", stage=STAGE,
                               hint="free some disk space, or choose an --out on another disk")
    return UsageError(f"cannot write in {where}: {exc.strerror or exc}", stage=STAGE, hint="choose a writable --out")
