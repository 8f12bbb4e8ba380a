"""The output folder is replaced whole or not at all.

Work happens in a hidden sibling folder (same filesystem, so the final move is one rename). On success it
replaces DIR; on failure DIR stays as it was and the run's report and logs go to `DIR.failed`. A lock file
beside DIR makes a second conversion into the same DIR fail at once instead of mixing files.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from pathlib import Path

from .errors import UsageError

STAGE = "output"


class OutputFolder:
    def __init__(self, out: Path, force: bool) -> None:
        self.out = out.resolve()
        self.force = force
        self.work: Path | None = None
        self._lock_path = self.out.parent / f".{self.out.name}.lock"
        self._lock_fd: int | None = None

    def __enter__(self) -> OutputFolder:
        out = self.out
        if out.exists() and not out.is_dir():
            raise UsageError(f"{out} exists and is not a folder", stage=STAGE, hint="choose another --out")
        if out.exists() and not self.force:
            raise UsageError(f"{out} already exists", stage=STAGE, hint="add --force to replace it, or choose another --out")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create {out.parent}: {exc.strerror}", stage=STAGE, hint="choose a writable --out") from exc
        if not os.access(out.parent, os.W_OK | os.X_OK):
            raise UsageError(f"{out.parent} is not writable", stage=STAGE, hint="choose a writable --out")
        self._lock_fd = os.open(self._lock_path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise UsageError(f"another conversion is writing {out} right now", stage=STAGE,
                             hint="wait for it to finish, or choose another --out") from None
        self.work = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        return self

    def commit(self, success: bool) -> Path:
        """Move the finished work into place; returns where it went."""
        assert self.work is not None
        target = self.out if success else self.out.parent / f"{self.out.name}.failed"
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.old-", dir=self.out.parent))
            target.rename(old / "previous")
        try:
            self.work.rename(target)
        except OSError:
            if old is not None:
                (old / "previous").rename(target)
            raise
        self.work = None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return target

    def __exit__(self, *exc_info) -> None:
        if self.work is not None:
            shutil.rmtree(self.work, ignore_errors=True)
        if self._lock_fd is not None:
            # Unlink before unlocking, so no one can lock a file that is about to disappear.
            try:
                self._lock_path.unlink()
            except FileNotFoundError:
                pass
            os.close(self._lock_fd)
