"""`python -m converter batch MODELS.txt --out-root DIR`: many conversions as Ray tasks, here or on a cluster.

MODELS.txt holds one model per line, `NAME: MODEL [convert options]`, split like a shell line; blank lines and
`#` comments are ignored. `--max-rss-gb G` and `--timeout S` in a line are that model's limits (instead of the
batch's), not convert options; `--out` has no place in a line: the model's folder is OUT_ROOT/NAME.

Each model is one `python -m converter convert MODEL OPTIONS --out OUT_ROOT/NAME --force` process, run by a
Ray task (never retried) that kills the process group when the whole process tree (TensorFlow's worker, TF.js's
Node child) uses more memory than the limit or runs past the time limit. The memory limit is also the task's
Ray `memory` resource, so Ray starts no more conversions on a node than its memory holds (clamped to the largest
node's, or a machine smaller than the limit could run nothing). At most --workers conversions are in flight.

What it writes: the converter's output in OUT_ROOT/NAME (or OUT_ROOT/NAME.failed), the converter's terminal
output in OUT_ROOT/.batch/NAME.log, each model's result row in OUT_ROOT/.batch/NAME.json, and every row in
OUT_ROOT/batch.json. A row's status: passed; failed or degenerate (report.json's own status: a stage failed, or
parity could not fail on some output), with the stage that decided it and its error; crashed (the converter, or
Ray's worker under it, ended without a report); killed (at its memory or time limit); skipped (passed before).

A re-run skips a model whose last run of the same model and options passed and whose report.json still says so
(its limits are not compared: they decide whether a run may finish, not what it produces); a changed line runs
again, into the same folder, so the converter's cache reuses the stages the change did not touch. A skipped model
is not checked against changes to the converter or the model's code: delete OUT_ROOT/.batch/NAME.json to run it.

Ray started here keeps to itself (converter/raysession.py). Ctrl-C stops the conversions in flight (exit 130).

On a cluster (--address), OUT_ROOT must be a path that every node and this machine see (shared storage), and
every node needs this package and its tools installed, as here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import UsageError, first_line, interruption
from .raysession import session

STAGE = "batch"
# The converter processes never reach the network (models build from code and configs).
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
SUMMARY = "batch.json"
STATE = ".batch"  # per model: NAME.log (the converter's output) and NAME.json (its last row)
LINE_FORMAT = "write each line as `NAME: MODEL [convert options] [--max-rss-gb G] [--timeout S]`"
LIMITS = {"--max-rss-gb": "max_rss_gb", "--timeout": "timeout_s"}
OBJECT_STORE_BYTES = 100 * 2**20  # the tasks pass only their rows through Ray
# Seconds a conversion stopped by its time limit, or by a Ctrl-C on the driver (which waits 10 s for its tasks),
# has to tidy up after SIGTERM before SIGKILL.
STOP_GRACE_S = {"limit": 20.0, "cancel": 5.0}


@dataclass(frozen=True)
class Job:
    """One model of a batch: what `convert` gets (besides --out and --force) and the limits it runs under."""

    name: str
    model: str
    options: tuple[str, ...]
    max_rss_gb: float
    timeout_s: float
    line: int | None = None  # its line in MODELS.txt

    def text(self) -> str:
        """The job as a MODELS.txt line."""
        return f"{self.name}: " + shlex.join([self.model, *self.options, "--max-rss-gb", f"{self.max_rss_gb:g}",
                                              "--timeout", f"{self.timeout_s:g}"])

    def convert_args(self, out: Path) -> list[str]:
        return ["convert", self.model, *self.options, "--out", str(out), "--force"]


def main(args) -> int:
    """The `batch` subcommand: 0 when every model passed (now or before), 1 otherwise."""
    _positive("--max-rss-gb", args.max_rss_gb, "the command line")
    _positive("--timeout", args.timeout, "the command line")
    jobs = parse_models(args.models, args.max_rss_gb, args.timeout)
    rows = run_jobs(jobs, args.out_root, address=args.address, workers=args.workers, models_file=args.models)
    return exit_code(rows)


def exit_code(rows: list[dict]) -> int:
    return 0 if all(r["status"] in ("passed", "skipped") for r in rows) else 1


# --- MODELS.txt -------------------------------------------------------------------------------------------------

def parse_models(path: Path, max_rss_gb: float, timeout_s: float) -> list[Job]:
    """The jobs of a MODELS.txt; a malformed line is a UsageError that names it."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}", stage=STAGE,
                         hint="give a text file with one `NAME: MODEL [convert options]` per line") from None
    jobs: list[Job] = []
    first_seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        where = f"{path}, line {number}"
        try:
            tokens = shlex.split(raw, comments=True)
        except ValueError as exc:
            raise UsageError(f"{where}: {exc} (it is split like a shell line)", stage=STAGE, hint=LINE_FORMAT) from None
        if not tokens:
            continue
        if not tokens[0].endswith(":") or len(tokens) < 2:
            raise UsageError(f"{where}: expected `NAME: MODEL ...`, got {raw.strip()!r}", stage=STAGE, hint=LINE_FORMAT)
        name = tokens[0][:-1]
        if not NAME.fullmatch(name) or name.endswith(".failed") or name == SUMMARY:
            raise UsageError(f"{where}: {name!r} is not a safe folder name", stage=STAGE,
                             hint="a name is up to 100 letters, digits, '.', '_' and '-', starting with a letter or "
                                  f"digit, not ending in .failed and not {SUMMARY}")
        if name in first_seen:
            raise UsageError(f"{where}: the name {name!r} again (first on line {first_seen[name]})", stage=STAGE,
                             hint="every model needs its own name: it is its folder")
        first_seen[name] = number
        options, limits = _take_limits(tokens[2:], where)
        job = Job(name, tokens[1], tuple(options), limits.get("max_rss_gb", max_rss_gb),
                  limits.get("timeout_s", timeout_s), number)
        _check_convert_args(job, where)
        jobs.append(job)
    if not jobs:
        raise UsageError(f"{path} names no model", stage=STAGE, hint=LINE_FORMAT)
    return jobs


def _take_limits(tokens: list[str], where: str) -> tuple[list[str], dict[str, float]]:
    """Split a line's options into convert's and the batch's own limits (`--timeout 60` or `--timeout=60`)."""
    options: list[str] = []
    limits: dict[str, float] = {}
    rest = iter(tokens)
    for token in rest:
        flag, eq, value = token.partition("=")
        if len(flag) > 2 and "--out".startswith(flag):  # argparse would take an abbreviation too
            raise UsageError(f"{where}: {token} in a line: the batch decides where each model goes "
                             "(OUT_ROOT/NAME)", stage=STAGE, hint="remove it; the folder is --out-root's NAME")
        if flag not in LIMITS:
            options.append(token)
            continue
        if not eq:
            value = next(rest, "")
        limits[LIMITS[flag]] = _positive(flag, value, where)
    return options, limits


def _positive(flag: str, value, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not 0 < number < float("inf"):
        raise UsageError(f"{where}: {flag} {value!r} is not a positive number", stage=STAGE)
    return number


def _check_convert_args(job: Job, where: str) -> None:
    """Refuse a line that `convert` would refuse (an unknown option, a bad shape), before anything runs."""
    from .cli import build_parser

    refused = ""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            build_parser().parse_args(job.convert_args(Path(job.name)))
        except UsageError as exc:
            refused = exc.message
        except SystemExit:  # -h or --help
            refused = "a line cannot ask for help"
    if refused:
        raise UsageError(f"{where}: convert would refuse these options: {refused}", stage=STAGE,
                         hint="`python -m converter convert --help` lists them")


# --- running ----------------------------------------------------------------------------------------------------

def run_jobs(jobs: list[Job], out_root: Path, *, address: str | None = None, workers: int = 1,
             skip_passed: bool = True, cwd: Path | None = None, on_row: Callable[[dict], None] | None = None,
             models_file: Path | None = None) -> list[dict]:
    """Convert `jobs` as Ray tasks, at most `workers` at once, and return their rows in the jobs' order.

    Prints a line per model as it starts and finishes and a table at the end, writes OUT_ROOT/batch.json, and
    calls `on_row(row)` as each model finishes. With `skip_passed`, a model that passed before with the same
    model and options is not run again (its row says so). Model paths are relative to `cwd` (default: here).
    Ray starts here unless `address` names a cluster, and only when some model is left to run.
    """
    if workers < 1:
        raise UsageError(f"--workers {workers}: give at least 1", stage=STAGE)
    started_at = _now()
    started = time.perf_counter()
    out_root = out_root.resolve()
    (out_root / STATE).mkdir(parents=True, exist_ok=True)
    count = len(jobs)
    rows: dict[str, dict] = {}

    def finish(index: int, row: dict) -> None:
        rows[row["name"]] = row
        said = f" ({row['stage'] + ': ' if row['stage'] else ''}{row['error']})" if row["error"] else ""
        print(f"[{index}/{count}] {row['name']}: {row['status']} in {row['seconds']:.0f} s{said[:300]}", flush=True)
        if on_row is not None:
            on_row(row)

    todo = deque()
    for index, job in enumerate(jobs, 1):
        before = _passed_before(job, out_root) if skip_passed else None
        if before is None:
            todo.append((index, job))
            continue
        rows[job.name] = {**before, "line": job.line, "status": "skipped", "seconds": 0.0,
                          "previous_seconds": before["seconds"]}
        print(f"[{index}/{count}] {job.name}: skipped (passed before)", flush=True)
    if todo:
        local = {"num_cpus": max(workers, 1), "object_store_memory": OBJECT_STORE_BYTES}
        with session(address, STAGE, local) as ray:
            _run_on_ray(ray, todo, out_root, workers, Path(cwd or Path.cwd()).resolve(), count, finish)
    ordered = [rows[job.name] for job in jobs]
    summary = {"format": 1, "models_file": str(models_file) if models_file else None, "out_root": str(out_root),
               "address": address or "local", "workers": workers, "started": started_at,
               "seconds": round(time.perf_counter() - started, 1), "exit_code": exit_code(ordered), "rows": ordered}
    (out_root / SUMMARY).write_text(json.dumps(summary, indent=1) + "\n")
    print(format_table(ordered))
    print(f"rows: {out_root / SUMMARY}", flush=True)
    return ordered


def _run_on_ray(ray, todo: deque, out_root: Path, workers: int, cwd: Path, count: int, finish) -> None:
    task = ray.remote(max_retries=0)(run_task)
    largest = max((n["Resources"].get("memory", 0) for n in ray.nodes() if n.get("Alive")), default=0)
    # Ray sets OMP_NUM_THREADS=1 in its workers; the converter gets the threads it would get from a shell.
    threads = os.environ.get("OMP_NUM_THREADS")
    in_flight: dict = {}
    try:
        while todo or in_flight:
            while todo and len(in_flight) < workers:
                index, job = todo.popleft()
                memory = min(job.max_rss_gb * 1e9, largest)
                for stale in (out_root / STATE / f"{job.name}.json", out_root / f"{job.name}.failed"):
                    _remove(stale)
                options = {"memory": int(memory)} if memory else {}
                ref = task.options(name=f"convert {job.name}", **options).remote(job, out_root, cwd, threads)
                in_flight[ref] = (index, job, round(memory / 1e9, 2))
                print(f"[{index}/{count}] {job.name}: started", flush=True)
            done, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in done:
                index, job, ray_memory_gb = in_flight.pop(ref)
                try:
                    row = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the worker or its node died under the task
                    row = _row(job, out_root, [], None, 0.0, 0.0)
                    row.update(status="crashed", error=f"the Ray task failed: {first_line(exc)}")
                row["limits"]["ray_memory_gb"] = ray_memory_gb
                (out_root / STATE / f"{job.name}.json").write_text(json.dumps(row, indent=1) + "\n")
                finish(index, row)
    except KeyboardInterrupt as exc:
        for ref in in_flight:  # the task's own KeyboardInterrupt kills its process group
            ray.cancel(ref)
        ray.wait(list(in_flight), num_returns=len(in_flight), timeout=10)
        raise interruption(exc, f"{len(in_flight)} conversion(s) in flight were stopped", stage=STAGE) from None


def run_task(job: Job, out_root: Path, cwd: Path, threads: str | None) -> dict:
    """One conversion, inside a Ray task: the converter's process group, watched and killed past its limits."""
    out = out_root / job.name
    log = out_root / STATE / f"{job.name}.log"
    command = [sys.executable, "-m", "converter", *job.convert_args(out)]
    env = {**os.environ, **OFFLINE}
    env.pop("OMP_NUM_THREADS", None)
    if threads is not None:
        env["OMP_NUM_THREADS"] = threads
    started = time.perf_counter()
    with open(log, "w") as log_file:
        log_file.write(shlex.join(command) + "\n")
        log_file.flush()
        proc = subprocess.Popen(command, cwd=cwd if cwd.is_dir() else None, stdout=log_file,
                                stderr=subprocess.STDOUT, start_new_session=True, env=env)
        try:
            killed, peak = watch(proc, job.timeout_s, job.max_rss_gb * 1e9)
        finally:  # cancelled (Ctrl-C on the driver): the conversion goes with the task
            if proc.poll() is None:
                _stop_group(proc, grace=STOP_GRACE_S["cancel"])
    row = _row(job, out_root, command, proc.returncode, time.perf_counter() - started, peak)
    if killed:
        row.update(status="killed", error=killed)
        return row
    report = out / "report.json" if proc.returncode == 0 else out.with_name(out.name + ".failed") / "report.json"
    if not report.is_file():
        stage, _, message = said(log).partition("] ")
        row.update(status="crashed", error=f"the converter exited {proc.returncode} without a report: {said(log)}")
        if stage.startswith("error: [") and message:
            row["stage"] = stage.removeprefix("error: [")
        return row
    doc = json.loads(report.read_text())
    row.update(report=str(report), status=doc["status"], **_first_problem(doc["stages"]))
    return row


def _row(job: Job, out_root: Path, command: list[str], exit_code: int | None, seconds: float, peak: float) -> dict:
    return {"name": job.name, "line": job.line, "model": job.model, "options": list(job.options),
            "command": shlex.join(command), "limits": {"max_rss_gb": job.max_rss_gb, "timeout_s": job.timeout_s},
            "node": platform.node(), "exit_code": exit_code, "status": "crashed", "seconds": round(seconds, 1),
            "peak_rss_gb": round(peak / 1e9, 2), "stage": "", "error": "", "report": None,
            "log": str(out_root / STATE / f"{job.name}.log")}


def _first_problem(stages: list[dict]) -> dict:
    """The stage that decided a report's status: the first that failed, else the first that did not pass."""
    bad = [s for s in stages if s["status"] not in ("passed", "skipped")]
    failed = [s for s in bad if s["status"] == "failed"]
    if not bad:
        return {"stage": "", "error": ""}
    stage = (failed or bad)[0]
    return {"stage": stage["name"], "error": (stage["error"] or {}).get("message") or stage["reason"]}


def _passed_before(job: Job, out_root: Path) -> dict | None:
    """The row of this model's last run when it passed with the same model and options and its report.json
    still says passed; else None."""
    try:
        row = json.loads((out_root / STATE / f"{job.name}.json").read_text())
        report = json.loads((out_root / job.name / "report.json").read_text())
    except (OSError, ValueError):
        return None
    same = row.get("model") == job.model and row.get("options") == list(job.options)
    return row if same and row.get("status") == "passed" and report.get("status") == "passed" else None


def watch(proc: subprocess.Popen, timeout: float, max_rss: float) -> tuple[str, float]:
    """Wait for `proc`, killing its process group past the time or memory limit. Returns (why killed, peak)."""
    import psutil

    deadline = time.monotonic() + timeout
    peak = 0.0
    try:
        parent = psutil.Process(proc.pid)
    except psutil.NoSuchProcess:
        parent = None
    while proc.poll() is None:
        rss = 0.0
        if parent is not None:
            try:
                for p in [parent, *parent.children(recursive=True)]:
                    rss += p.memory_info().rss
            except psutil.Error:
                pass
        peak = max(peak, rss)
        why = ""
        if rss > max_rss:
            why = f"killed: memory above {max_rss / 1e9:g} GB"
        elif time.monotonic() > deadline:
            why = f"killed: over the {timeout:.0f} s time limit"
        if why:
            # Past the time limit the conversion is stopped as Ctrl-C stops it, so that it tidies its folder and
            # children; past the memory limit at once.
            _stop_group(proc, grace=STOP_GRACE_S["limit"] if rss <= max_rss else 0)
            return why, peak
        time.sleep(1.0)
    return "", peak


def _stop_group(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM to `proc`'s process group, then SIGKILL if it still runs after `grace` seconds."""
    if grace > 0:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            pass
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def said(log: Path) -> str:
    """The converter's own error line from its output (`error: ...`), else the output's last line."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()] \
        if log.is_file() else []
    errors = [line for line in lines if line.startswith(("error:", "FAILED:"))]
    return (errors or lines or [""])[-1][:300]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


# --- the table --------------------------------------------------------------------------------------------------

def format_table(rows: list[dict]) -> str:
    header = ("name", "status", "seconds", "peak RSS GB", "stage", "error")
    lines = [header]
    for r in rows:
        skipped = r["status"] == "skipped"
        lines.append((r["name"], "skipped (passed before)" if skipped else r["status"],
                      "" if skipped else f"{r['seconds']:.0f}", "" if skipped else f"{r['peak_rss_gb']:.2f}",
                      r["stage"], r["error"][:120]))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    text = ["  ".join([*(line[i].ljust(w) for i, w in enumerate(widths)), line[-1]]).rstrip() for line in lines]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return "\n".join([*text, ", ".join(f"{n} {status}" for status, n in counts.items())])


def _now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")
