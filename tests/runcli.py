"""The CLI as a user runs it, for tests at any depth. (Not in conftest.py: tests/mobile has a conftest too,
and `from conftest import ...` would pick whichever pytest imported first.)"""

from __future__ import annotations

import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
DIGITS = ["examples/digits/model.py:build", "--weights", "examples/digits/weights.pt", "--input-shape", "1,1,8,8"]


def run_cli(*args: str, timeout: float = 900, **kwargs) -> subprocess.CompletedProcess:
    """`python -m converter ARGS` from the repository root, output captured as text."""
    return subprocess.run([sys.executable, "-m", "converter", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, **kwargs)
