"""The output folder: replaced whole or not at all, whatever goes wrong around it (a full disk, a read-only
folder, a crash in the middle of the swap, a run killed earlier)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from converter.outdir import OutputFolder
from faults import MODELS, assert_error, assert_intact, convert_here, litter, make_previous, snapshot

MLP = [f"{MODELS}:mlp", "--input-shape", "1,16", "--cases", "1"]


@pytest.fixture
def tmpfs(tmp_path):
    """A mount point; the test mounts a tmpfs of the size it wants with mount(size)."""
    mounted = []

    def mount(size: str, options: str = "") -> Path:
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}{options}", "tmpfs", str(point)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root and mount rights): {done.stderr.strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], check=False)


def test_disk_full(tmpfs, capsys):
    """A 24 kB disk: the previous folder fits, the new artifacts do not."""
    disk = tmpfs("24k")
    out = disk / "out"
    before = make_previous(out)
    outcome = convert_here(capsys, *MLP, "--targets", "ptl", "--out", out, "--force")
    assert_error(outcome, 4, "output", "no space left on the device")
    assert_intact(out, before)
    assert sorted(p.name for p in disk.iterdir()) == ["out"]  # no DIR.failed either: it could not be written


def test_read_only_folder(tmpfs, capsys):
    """A folder remounted read-only stops root too (chmod would not)."""
    disk = tmpfs("1m")
    out = disk / "out"
    before = make_previous(out)
    if subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True).returncode != 0:
        pytest.skip("cannot remount the tmpfs read-only")
    outcome = convert_here(capsys, *MLP, "--out", out, "--force")
    assert_error(outcome, 2, "output", "is not writable")
    assert_intact(out, before)


def test_immutable_folder(tmp_path, capsys):
    """chattr +i: writable as far as the mode bits go, but nothing can be created in it."""
    parent = tmp_path / "locked"
    out = parent / "out"
    before = make_previous(out)
    if subprocess.run(["chattr", "+i", str(parent)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not supported on this filesystem")
    try:
        outcome = convert_here(capsys, *MLP, "--out", out, "--force")
    finally:
        subprocess.run(["chattr", "-i", str(parent)], check=True)
    assert_error(outcome, 2, "output", "not writable")
    assert_intact(out, before)


def test_success_replaces_the_folder_whole(tmp_path, capsys):
    out = tmp_path / "out"
    make_previous(out)
    outcome = convert_here(capsys, *MLP, "--targets", "torchscript", "--out", out, "--force", "-q")
    assert outcome.code == 0, outcome.text
    assert not (out / "tfjs").exists() and (out / "model.onnx").exists() is False  # nothing of the old one
    assert (out / "model.pt").is_file() and (out / "report.json").is_file()
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's private 0700
    assert litter(out) == []


def test_failed_swap_puts_the_previous_folder_back(tmp_path, monkeypatch):
    out = tmp_path / "out"
    before = make_previous(out)
    real = Path.rename

    def rename(self, target):
        if self.name.startswith(".out.partial-"):
            raise OSError(5, "Input/output error")
        return real(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(Exception) as error:
        with OutputFolder(out, force=True) as folder:
            (folder.work / "model.onnx").write_bytes(b"new")
            folder.commit(success=True)
    assert "[output]" in str(error.value) and "Input/output error" in str(error.value)
    assert_intact(out, before)


def test_ctrl_c_during_the_swap_is_held_back(tmp_path, monkeypatch):
    """SIGINT between the two renames would leave no folder at all: it is delivered after the swap."""
    out = tmp_path / "out"
    make_previous(out)
    real = Path.rename

    def rename(self, target):
        result = real(self, target)
        if self.name == "out":  # the previous folder was just moved aside
            os.kill(os.getpid(), signal.SIGINT)
        return result

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        with OutputFolder(out, force=True) as folder:
            (folder.work / "model.onnx").write_bytes(b"new")
            folder.commit(success=True)
    assert (out / "model.onnx").read_bytes() == b"new" and not (out / "tfjs").exists()
    assert folder.committed == out.resolve()
    assert litter(out) == []


def test_leftovers_of_a_killed_run_are_recovered(tmp_path, capsys):
    """A run killed mid-swap (SIGKILL, power loss) left the previous folder moved aside and its work folder:
    the next run into the same folder puts the previous one back and removes the rest, even if it fails."""
    out = tmp_path / "out"
    before = make_previous(out)
    aside = tmp_path / ".out.old-x1y2"
    aside.mkdir()
    out.rename(aside / "out")
    (tmp_path / ".out.partial-a1b2" / "logs").mkdir(parents=True)
    (tmp_path / ".out.lock").write_text("")  # its lock file; the lock itself died with the process
    outcome = convert_here(capsys, f"{MODELS}:raises", "--input-shape", "1,16", "--out", out, "--force")
    assert_error(outcome, 2, "pytorch")
    assert_intact(out, before)


def test_second_run_fails_while_the_folder_is_locked(tmp_path, capsys):
    out = tmp_path / "out"
    before = make_previous(out)
    with OutputFolder(out, force=True):
        outcome = convert_here(capsys, *MLP, "--out", out, "--force")
    assert_error(outcome, 2, "output", "another conversion is writing")
    assert_intact(out, before)
