"""Helpers for the error suite: run the CLI (in this process or as a user would), and check what a failure
must leave behind: one clear message, the exit code, the previous output folder byte for byte, no litter."""

from __future__ import annotations

import hashlib
import pathlib
import subprocess
import sys
from dataclasses import dataclass

REPO = pathlib.Path(__file__).resolve().parents[2]
MODELS = "tests/models/faulty.py"


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def convert_here(capsys, *args) -> Outcome:
    """`python -m converter convert ARGS` in this process (torch is imported once for the whole file)."""
    from converter.cli import main

    capsys.readouterr()
    code = main(["convert", *map(str, args)])
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def convert_cli(*args, timeout: float = 600, **kwargs) -> Outcome:
    """The CLI as a separate process, from the repository root."""
    proc = subprocess.run([sys.executable, "-m", "converter", "convert", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, **kwargs)
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def snapshot(folder: pathlib.Path) -> dict[str, str]:
    """Every file and folder under `folder` with its content's hash: equal snapshots, same folder."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def make_previous(out: pathlib.Path) -> dict[str, str]:
    """A previous conversion's folder (stand-in contents); returns its snapshot."""
    (out / "tfjs").mkdir(parents=True)
    (out / "model.onnx").write_bytes(b"previous onnx")
    (out / "tfjs" / "model.json").write_text('{"previous": true}')
    (out / "report.json").write_text('{"status": "passed"}')
    return snapshot(out)


def litter(out: pathlib.Path) -> list[str]:
    """Temporary folders and lock files of a run into `out`, left beside it."""
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def assert_error(outcome: Outcome, code: int, stage: str, *words: str, verbose: bool = False) -> None:
    """One message `error: [stage] ...` with a `try:` line and the given words; a traceback only with -v."""
    text = outcome.text
    assert outcome.code == code, f"exit {outcome.code}, wanted {code}:\n{text}"
    assert f"[{stage}]" in text, f"stage [{stage}] not named:\n{text}"
    assert "try:" in text, f"no hint:\n{text}"
    for word in words:
        assert word in text, f"{word!r} not in:\n{text}"
    assert ("Traceback" in text) == verbose, text


def assert_intact(out: pathlib.Path, before: dict[str, str] | None) -> None:
    """The previous folder (or its absence) is exactly as it was, and nothing was left beside it."""
    if before is None:
        assert not out.exists(), f"{out} was created by a failed run"
    else:
        assert snapshot(out) == before, f"{out} changed"
    assert litter(out) == [], f"left behind: {litter(out)}"
