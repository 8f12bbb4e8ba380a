"""Shared fixtures: the bundled digits example converted once per session, through the CLI. And the rule that
CI does not pass by skipping: under CI=true a fixture's skip for a missing tool fails the test instead."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess

import pytest

from runcli import DIGITS, run_cli

# Fixtures that skip their tests when a tool is missing from the machine (tests/web/conftest.py,
# tests/mobile/test_jvm.py), and what CI must install so that they run.
TOOL_FIXTURES = {
    "browser_tools": "Chromium, Node.js and node_modules (scripts/setup.sh installs them)",
    "jdk": "a JDK (openjdk-17-jdk-headless, which scripts/setup.sh installs)",
    "qemu": "QEMU's user-mode emulator (qemu-user, which scripts/setup.sh installs)",
}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def skipping_tool_fixture(excinfo) -> str | None:
    """The TOOL_FIXTURES fixture whose frame raised this skip, if any. A session- or module-scoped fixture
    re-raises its cached exception for later tests: the traceback still holds the fixture's frame."""
    if excinfo is None or not excinfo.errisinstance(pytest.skip.Exception):
        return None
    return next((entry.name for entry in excinfo.traceback if entry.name in TOOL_FIXTURES), None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Locally a missing Chromium, JDK or Node.js skips whole areas; under CI=true that is a failure."""
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and in_ci()):
        return
    fixture = skipping_tool_fixture(call.excinfo)
    if fixture is not None:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = f"CI=true, and {reason}: CI must run these tests, not skip them. Install " \
                          f"{TOOL_FIXTURES[fixture]}; without CI=true the test skips."


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory) -> tuple[pathlib.Path, subprocess.CompletedProcess]:
    """The bundled digits example through the real converter CLI, with its labelled test set."""
    out = tmp_path_factory.mktemp("converted") / "digits"
    proc = run_cli("convert", *DIGITS, "--eval-data", "examples/digits/test.npz", "--out", out)
    assert proc.returncode == 0, f"conversion failed:\n{proc.stdout}\n{proc.stderr}"
    return out, proc


@pytest.fixture(scope="session")
def digits_dir(digits_run) -> pathlib.Path:
    return digits_run[0]


@pytest.fixture(scope="session")
def digits_report(digits_dir) -> dict:
    return json.loads((digits_dir / "report.json").read_text())
