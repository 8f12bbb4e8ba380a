"""The stage graph: which stages a run needs (derived from what each stage declares), which process each runs
in, and the loop that runs them there.

Stages of the "main" worker run in this process, which loaded the model. Every other worker is a child
process (`python -m converter.worker`, from the stage's own virtual environment when it declares one),
started at once so that its imports (TensorFlow: seconds) overlap the main worker's stages. A worker runs its
stages in plan order; a stage whose prerequisite belongs to another worker waits for that stage's result,
which this process forwards. A worker's memory goes back to the system when its last stage ends.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from . import resources
from .capture import captured
from .errors import ConversionError, ConverterError, ParityError, UsageError, first_line
from .layout import from_artifact, to_artifact
from .parity import accuracy, compare
from .precision import FLOOR_MARGIN, PRECISIONS, Floor, NotMeasured, rounding_floor
from .report import StageResult, folder_bytes
from .stages.base import Context, Skipped, Stage

MAIN = "main"
ROOT = Path(__file__).resolve().parent.parent


def registered() -> list[Stage]:
    from .stages import REGISTRY

    return list(REGISTRY)


def all_targets() -> tuple[str, ...]:
    from .stages import targets

    return targets()


def default_targets() -> tuple[str, ...]:
    from .stages import targets

    return targets(default_only=True)


def prerequisites(stage: Stage, stages: Iterable[Stage], optional: bool = True) -> list[str]:
    """The stages whose artifacts or handoffs `stage` consumes, of `stages` (the plan): with the ones it `uses`
    where the plan has them, unless `optional` is False."""
    stages = list(stages)
    names = [stage.after, *stage.needs] if stage.after != "pytorch" else list(stage.needs)
    for handoff in stage.takes:
        names += [s.name for s in stages if handoff in s.gives and s.name != stage.name]
    if optional:
        names += [name for name in stage.uses if any(s.name == name for s in stages)]
    return list(dict.fromkeys(names))


def plan(targets: Iterable[str], options=None) -> list[Stage]:
    """The stages that build `targets` and everything they consume, prerequisites first, configured for
    `options`. Where the declarations leave the order open, registration order decides."""
    stages = registered()
    known = all_targets()
    targets = tuple(targets)
    unknown = [t for t in targets if t not in known]
    if unknown:
        raise UsageError(f"unknown target(s) {', '.join(map(repr, unknown))}", stage="setup",
                         hint=f"use some of {', '.join(known)}")
    by_name = {s.name: s for s in stages}
    wanted: dict[str, Stage] = {}

    def want(stage: Stage) -> None:
        if stage.name in wanted:
            return
        for name in prerequisites(stage, stages, optional=False):
            if name not in by_name:
                raise ValueError(f"stage {stage.name!r} consumes {name!r}, which no registered stage produces")
            want(by_name[name])
        wanted[stage.name] = stage

    for stage in stages:
        if stage.target in targets and stage.wanted(options):
            want(stage)
    for stage in wanted.values():
        for handoff in stage.takes:
            for giver in (s for s in wanted.values() if handoff in s.gives and s is not stage):
                if (giver.worker, giver.env) != (stage.worker, stage.env):
                    raise ValueError(f"stage {stage.name!r} takes {handoff.name!r} from {giver.name!r}, which runs in "
                                     f"another worker: in-memory handoffs stay in one process")
    ordered: list[Stage] = []
    placed: set[str] = set()
    pending = [s for s in stages if s.name in wanted]
    while pending:  # registration order, each stage after its prerequisites
        stage = next(s for s in pending if set(prerequisites(s, pending + ordered)) <= placed)
        ordered.append(stage)
        placed.add(stage.name)
        pending.remove(stage)
    return [s.configure(options) if options is not None else s for s in ordered]


def workers(stages: list[Stage]) -> dict[str, list[Stage]]:
    groups: dict[str, list[Stage]] = {}
    for stage in stages:
        groups.setdefault(stage.worker, []).append(stage)
    return groups


# --- running one worker's stages (in this process or in a worker process)

class Board:
    """What one process knows of the run: every finished stage's result and outputs. `pump` blocks until
    something new arrives from elsewhere."""

    def __init__(self, ctx: Context, pump: Callable[[], None]) -> None:
        self.ctx = ctx
        self.results: dict[str, StageResult] = {}
        self.outputs: dict[str, list] = {"pytorch": ctx.reference}
        self.pump = pump

    def record(self, result: StageResult, outputs: list | None, artifact) -> None:
        self.results[result.name] = result
        if outputs is not None:
            self.outputs[result.name] = outputs
        if artifact is not None:
            self.ctx.artifacts[result.name] = artifact

    def wait(self, names: Iterable[str]) -> None:
        while any(n not in self.results for n in names):
            self.pump()


class Running:
    """A stage converted and started in its runtime, its check not yet finished."""

    def __init__(self, stage: Stage, result: StageResult, finish: Callable[[], object] | None) -> None:
        self.stage, self.result, self.finish = stage, result, finish


def run_stages(stages: list[Stage], all_stages: list[Stage], board: Board, announce: Callable, cache=None,
               starting: Callable[[str], None] = lambda name: None) -> None:
    """Run `stages` (one worker's) in order; `starting` hears of each stage before it converts. A stage whose
    runtime is another process (its start_run is its own) keeps running while the next stage converts, unless
    that one consumes it. Between stages, handoffs that no stage still to run needs are dropped and the memory
    goes back to the system."""
    ctx = board.ctx
    open_runs: list[Running] = []
    for stage in stages:
        needed = prerequisites(stage, all_stages)
        for running in [r for r in open_runs if r.stage.name in needed]:
            _finish(running, board, announce)
            open_runs.remove(running)
        board.wait(needed)
        result = StageResult(stage.name, stage.after, precision=stage.precision,
                             tolerance=ctx.options.tolerances.get(stage.precision))
        result.worker = stage.worker
        # A stage it only `uses` may have failed: it then runs without that artifact.
        missing = [n for n in prerequisites(stage, all_stages, optional=False) if board.results[n].artifact is None]
        if missing:
            result.reason = f"{', '.join(missing)} produced no artifact"
            board.record(result, None, None)
            announce(result)
            continue
        if cache is not None and cache.reuse(stage, result, board):
            announce(result)
            continue
        starting(stage.name)
        running = _start(stage, result, board)
        if running.finish is not None and type(stage).start_run is not Stage.start_run:
            open_runs.append(running)
        else:
            _finish(running, board, announce)
        _release(stages, board)
    for running in open_runs:
        _finish(running, board, announce)
    _release(stages, board)


def _release(stages: list[Stage], board: Board) -> None:
    """Drop each handoff once every stage here that gives or takes it has finished; free the memory."""
    for handoff in {h for s in stages for h in (*s.gives, *s.takes)}:
        users = [s for s in stages if handoff in s.gives or handoff in s.takes]
        if all(s.name in board.results for s in users):
            board.ctx.handoffs.pop(handoff.name, None)
    resources.release()


def _start(stage: Stage, result: StageResult, board: Board) -> Running:
    ctx = board.ctx
    started = time.perf_counter()
    resources.reset_peak()
    finish = None
    with captured(ctx.work / "logs" / f"{stage.name}.log") as seen:
        try:
            artifact = stage.convert(ctx)
            ctx.artifacts[stage.name] = artifact
            result.artifact = str(artifact.path)
            result.bytes = folder_bytes(ctx.work / (artifact.bundle or artifact.path))
            result.notes, result.extra = artifact.notes, artifact.extra
            feeds = [{b.name: to_artifact(case[b.name], b.perm) for b in artifact.inputs} for case in ctx.cases.inputs]
            finish = stage.start_run(ctx, artifact, feeds)
        except Skipped as exc:
            result.status, result.reason = "skipped", str(exc)
        except BaseException as exc:
            _failed(stage, result, exc, ctx)
    result.warnings = list(seen)
    result.seconds = time.perf_counter() - started
    result.peak_rss_mb = resources.peak_mb()
    return Running(stage, result, finish)


def _finish(running: Running, board: Board, announce: Callable) -> None:
    stage, result, ctx = running.stage, running.result, board.ctx
    outputs = None
    if running.finish is not None:
        t0 = time.perf_counter()
        with captured(ctx.work / "logs" / f"{stage.name}.log") as seen:
            try:
                outputs = _check(stage, result, running.finish(), board)
            except BaseException as exc:
                _failed(stage, result, exc, ctx)
        result.warnings += [w for w in seen if w not in result.warnings]
        result.seconds += time.perf_counter() - t0
        result.peak_rss_mb = max(result.peak_rss_mb or 0.0, resources.peak_mb() or 0.0) or None
    if result.status == "failed":
        with captured(ctx.work / "logs" / f"{stage.name}.log"):
            try:
                stage.diagnose(ctx, result)
            except Exception as exc:  # a diagnosis only
                result.notes = [*result.notes, f"diagnosis failed: {type(exc).__name__}: {first_line(exc)}"]
    board.record(result, outputs, ctx.artifacts.get(stage.name) if result.artifact else None)
    announce(result)


def _failed(stage: Stage, result: StageResult, exc: BaseException, ctx: Context) -> None:
    if isinstance(exc, KeyboardInterrupt):
        raise exc
    result.status = "failed"
    if isinstance(exc, ConverterError):
        result.error = exc
    elif isinstance(exc, OSError):
        result.error = ConversionError(f"{exc.strerror or exc} ({exc.filename or 'while writing'})",
                                       stage=stage.name, hint="check free disk space and permissions")
    else:  # a converter's own bug or limitation: keep going with the other stages
        result.error = ConversionError(f"{type(exc).__name__}: {first_line(exc)}", stage=stage.name,
                                       hint=f"see logs/{stage.name}.log")
        import traceback

        traceback.print_exception(exc)  # into the stage's log


def _check(stage: Stage, result: StageResult, raw, board: Board) -> list:
    """Compare a stage's outputs with PyTorch's (on every runtime it ran on) and with its source stage's."""
    ctx = board.ctx
    artifact = ctx.artifacts[stage.name]
    runs = raw if isinstance(raw, dict) else {"": raw}
    tolerance = result.tolerance
    outputs = None
    candidates = {}
    for i, (runtime, run) in enumerate(runs.items()):
        outs = candidates[runtime] = [{b.name: from_artifact(case[b.name], b.perm) for b in artifact.outputs}
                                      for case in run]
        own = stage.tolerance_for(runtime, tolerance, ctx.options)
        result.comparisons.append(compare(board.outputs["pytorch"], outs, own, "pytorch", runtime))
        if i == 0:
            outputs = outs
            if stage.after in board.outputs and stage.after != "pytorch":
                result.comparisons.append(compare(board.outputs[stage.after], outs, tolerance, stage.after, runtime))
            result.accuracy = accuracy(outs, ctx.cases.labels)
    verdict = stage.gate(ctx, result, {**board.outputs, stage.name: outputs})
    if verdict is not None:  # a quantized artifact: its gate decides, not the tolerance
        result.status, result.reason = verdict
        if result.status == "failed":
            result.status = "skipped"  # _failed sets it
            raise ParityError(f"{stage.name} failed its gate: {verdict[1]}", stage=stage.name,
                              hint=result.extra.get("gate", {}).get("hint") or "see report.html")
        return outputs
    failed = _failed_vs_pytorch(result)
    if failed and stage.precision in PRECISIONS:
        failed = _judge_at_floor(stage, result, candidates, board)
    if failed:
        bad = "; ".join((f"{c.runtime}" + (f" (tolerance {c.tolerance:g})" if c.tolerance != tolerance else "") + ": "
                         if c.runtime else "") + "; ".join(o.describe() for o in c.failures()) for c in failed)
        floor = result.extra.get("rounding_floor")
        beyond = (f", and beyond {floor['tolerance']:.3g}, {FLOOR_MARGIN:g} x what rounding to {floor['precision']} "
                  f"moves this model by in PyTorch" if floor and floor["tolerance"] > tolerance else "")
        raise ParityError(f"{stage.name} differs from PyTorch beyond tolerance {tolerance:g}{beyond}: {bad}",
                          stage=stage.name, hint="see report.html; loosen with --tolerance only if the difference "
                                                 "is expected")
    # Within tolerance; but if the reference hardly varies, the check could not have failed (parity.py).
    unverified = result.vs("pytorch").degenerate()
    if unverified and stage.precision in PRECISIONS:
        unverified = _verify_at_floor(stage, result, candidates, board)
    result.status = "degenerate" if unverified else "passed"
    result.reason = "; ".join(f"{o.name}: {o.degenerate_reason}" for o in unverified)
    return outputs


def _failed_vs_pytorch(result: StageResult) -> list:
    return [c for c in result.comparisons if c.against == "pytorch" and not c.passed]


def _measured_floor(stage: Stage, result: StageResult, board: Board) -> Floor | None:
    """The rounding floor of the stage's precision for the run's model; None (and a note saying why) when it
    cannot be measured."""
    try:
        return rounding_floor(board.ctx, stage.precision)
    except NotMeasured as exc:
        result.notes = [*result.notes, f"{stage.precision} rounding floor not measured: {exc}"]
        return None


def _judge_at_floor(stage: Stage, result: StageResult, candidates: dict, board: Board) -> list:
    """Judge the comparisons with PyTorch that failed their tolerance again at the model's rounding floor of the
    stage's precision (converter/precision.py); the ones that still fail."""
    floor = _measured_floor(stage, result, board)
    if floor is None:
        return _failed_vs_pytorch(result)
    nominal = result.tolerance
    raised = floor.tolerance(nominal)
    result.extra = {**result.extra, "rounding_floor": floor.to_json(nominal)}
    if raised > nominal:
        result.comparisons = [compare(board.outputs["pytorch"], candidates[c.runtime], max(c.tolerance, raised),
                                      "pytorch", c.runtime)
                              if c.against == "pytorch" and not c.passed else c for c in result.comparisons]
    failed = _failed_vs_pytorch(result)
    text = f"{floor.how}: rel {floor.rel_err:.3g}"
    if failed:
        result.notes = [*result.notes, f"{text}, so this model's rounding explains up to "
                                       f"{floor.at_margin():.3g}; the artifact is further off: the "
                                       "conversion adds error"]
    else:
        result.tolerance = raised
        result.notes = [*result.notes, f"past the {stage.precision} tolerance {nominal:g} but within {FLOOR_MARGIN:g} "
                                       f"x this model's own rounding ({text}): judged at {raised:.3g}"]
    return failed


def _verify_at_floor(stage: Stage, result: StageResult, candidates: dict, board: Board) -> list:
    """A stage within its tolerance whose check could not have failed there, judged again at FLOOR_MARGIN x its
    model's rounding floor where that is tighter (converter/precision.py). Returns the outputs still unverified:
    none when every comparison with PyTorch at the stage's tolerance passes at the tighter one and its reference
    varies enough for that one (the stage's tolerance is then the tighter one)."""
    unverified = result.vs("pytorch").degenerate()
    if any(o.reference_spread is None for o in unverified):  # a single case: no tolerance can help
        return unverified
    floor = _measured_floor(stage, result, board)
    if floor is None or floor.at_margin() >= result.tolerance:
        return unverified
    nominal, tight = result.tolerance, floor.at_margin()
    judged = [compare(board.outputs["pytorch"], candidates[c.runtime], tight, "pytorch", c.runtime)
              if c.against == "pytorch" and c.tolerance == nominal else c for c in result.comparisons]
    vs_pytorch = [c for c in judged if c.against == "pytorch"]
    text = f"{FLOOR_MARGIN:g} x this model's own rounding ({floor.how}: rel {floor.rel_err:.3g})"
    within = all(c.passed for c in vs_pytorch)
    if within and not any(c.degenerate() for c in vs_pytorch):
        result.comparisons, result.tolerance = judged, tight
        result.extra = {**result.extra, "rounding_floor": floor.to_json(nominal, tight)}
        result.notes = [*result.notes, f"the reference varies too little for the {stage.precision} tolerance "
                                       f"{nominal:g} to fail; judged at {tight:.3g}, {text}, where it can"]
        return []
    why = "the reference varies too little for that too" if within else "the artifact is further off"
    result.notes = [*result.notes, f"not verified at {tight:.3g} either, {text}: {why}"]
    return unverified


# --- worker processes, seen from the main process

class WorkerProcess:
    """A child process running one worker's stages; messages travel as frames on its stdin and stdout
    (converter/worker.py). It starts warming up (imports) at once; `start` gives it the run's context."""

    def __init__(self, name: str, env: str | None, stages: list[Stage], all_stages: list[Stage], logs: Path,
                 inbox: queue.Queue) -> None:
        from .worker import Channel

        self.name, self.stages = name, stages
        python = sys.executable if env is None else str(ROOT / env / "bin" / "python")
        if not Path(python).exists():
            raise ConversionError(f"the {name} worker needs the virtual environment {env}, which is missing",
                                  stage=stages[0].name, hint="run `bash scripts/setup.sh`")
        logs.mkdir(parents=True, exist_ok=True)
        # A worker of this environment imports what this process can (a stage defined in a test module); one
        # of another environment gets only the project, never this environment's packages.
        paths = [p for p in sys.path if p and Path(p).is_dir()] if env is None else [str(ROOT)]
        environ = {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys([str(ROOT), *paths]))}
        self.process = subprocess.Popen([python, "-m", "converter.worker", str(logs / f"worker-{name}.log")],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=str(ROOT), env=environ)
        self.channel = Channel(self.process.stdout, self.process.stdin)
        self.send(("warm", stages, all_stages))
        self.reader = threading.Thread(target=self._read, args=(inbox,), daemon=True)
        self.reader.start()

    def start(self, ctx: Context, cache) -> None:
        self.send(("init", ctx, cache))

    def _read(self, inbox: queue.Queue) -> None:
        try:
            while True:
                message = self.channel.receive()
                inbox.put((self.name, message))
                if message[0] in ("done", "crashed"):
                    return
        except Exception as exc:  # it died (EOF), or sent what cannot be read: either way its stages failed
            try:
                code = self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                code = self.process.wait()
            said = f"exit {code}" if code else f"{type(exc).__name__}: {first_line(exc)}"
            inbox.put((self.name, ("crashed", said)))

    def send(self, message) -> None:
        try:
            self.channel.send(message)
        except (BrokenPipeError, OSError):
            pass  # it ended; its reader reports how

    def close(self, stopped: bool = False) -> None:
        if self.process.poll() is None:
            self.send(("stop",))
            if stopped:
                self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Workers:
    """The worker processes of a plan, started before the model loads so that their imports (TensorFlow:
    seconds) overlap the loading, the PyTorch reference and the main worker's stages. A context manager:
    every process has ended when it exits."""

    def __init__(self, stages: list[Stage], options, logs: Path) -> None:
        self.stages = stages
        self.inbox: queue.Queue = queue.Queue()
        self.remote: dict[str, WorkerProcess] = {}
        try:
            for name, group in workers(stages).items():
                if name != MAIN and (options.workers or group[0].env is not None):
                    self.remote[name] = WorkerProcess(name, group[0].env, group, stages, logs, self.inbox)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(stopped=exc_type is not None)

    def close(self, stopped: bool = False) -> None:
        """`stopped`: the run ended early (Ctrl-C, SIGTERM, an error); workers still busy in a stage are told to
        stop it (SIGTERM), which lets the stage stop its own children, instead of being waited for."""
        for worker in self.remote.values():
            worker.close(stopped)

    def run(self, ctx: Context, progress, cache=None) -> tuple[dict[str, StageResult], dict]:
        """Run every stage of the plan in its worker; return the results in plan order and the outputs by
        stage."""
        stages, remote = self.stages, {}
        here = [s for s in stages if not any(s in w.stages for w in self.remote.values())]
        for name, worker in self.remote.items():
            if cache is not None and all(cache.hit(s.name) for s in worker.stages):
                worker.close()  # everything reused: copying the files runs here
                here += worker.stages
            else:
                remote[name] = worker
        here.sort(key=stages.index)
        done: set[str] = set()
        count = [0]

        def announce(result: StageResult) -> None:
            count[0] += 1
            progress.stage_line(count[0], len(stages), result)
            for worker in remote.values():
                if any(result.name in prerequisites(s, stages) for s in worker.stages):
                    worker.send(("result", result, board.outputs.get(result.name), ctx.artifacts.get(result.name)))

        def starting(name: str) -> None:
            progress.say(f"[{count[0] + 1}/{len(stages)}] {name:<12} ...", level=2)

        def pump() -> None:
            name, message = self.inbox.get()
            if name not in remote:
                return  # a closed worker's last words
            if message[0] == "start":
                starting(message[1])
            elif message[0] == "result":
                _, result, outputs, artifact = message
                board.record(result, outputs, artifact)
                announce(result)
            elif message[0] == "done":
                done.add(name)
            elif message[0] == "crashed":
                done.add(name)
                for stage in remote[name].stages:
                    if stage.name not in board.results:
                        result = StageResult(stage.name, stage.after, status="failed", precision=stage.precision,
                                             tolerance=ctx.options.tolerances.get(stage.precision))
                        result.worker = name
                        result.error = ConversionError(f"the {name} worker process ended ({message[1]})",
                                                       stage=stage.name,
                                                       hint=f"see logs/worker-{name}.log and logs/{stage.name}.log")
                        board.record(result, None, None)
                        announce(result)

        board = Board(ctx, pump)
        for worker in remote.values():
            worker.start(ctx, cache)
        run_stages(here, stages, board, announce, cache, starting)
        while len(done) < len(remote):
            pump()
        return {s.name: board.results[s.name] for s in stages}, board.outputs
