"""The conversion pipeline: an ordered list of stages, each converted, run in its real runtime, and compared
with PyTorch and with the stage it was made from."""

from __future__ import annotations

import errno
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import golden, resources
from .capture import captured
from .errors import ConversionError, ConverterError, ParityError, UsageError, interruption
from .graph import Workers, all_targets, plan
from .loading import LoadedModel, load_model
from .outdir import OutputFolder
from .parity import accuracy
from .report import FORMAT, StageResult, tool_versions, write_report
from .report_html import write_html
from .samples import input_specs, make_cases, reference_outputs
from .spec import Options
from .stages.base import Context


class Progress:
    """Our own short output: one line per stage with its time. Third-party output never reaches it."""

    def __init__(self, verbosity: int, stream=None) -> None:
        self.verbosity = verbosity
        self.stream = stream or sys.stdout

    def say(self, text: str, level: int = 1) -> None:
        if self.verbosity >= level:
            print(text, file=self.stream, flush=True)

    def stage_line(self, i: int, total: int, result: StageResult) -> None:
        self.say(f"[{i}/{total}] {result.name:<12} {_summary(result)}")


@dataclass
class Result:
    """What `convert` returns: where the folder went, the report, and the exit code the CLI uses."""

    path: Path
    report: dict
    exit_code: int
    error: ConverterError | None = None


def convert(model: str | LoadedModel, options: Options, *, weights: Path | None = None, trust_model: bool = False,
            progress: Progress | None = None) -> Result:
    """Convert `model` into every target in `options.targets`, checking parity at every stage.

    Raises UsageError for bad arguments or input files; conversion and parity failures come back in the
    Result (exit code 4 or 3) with the report written to `<out>.failed/`.
    """
    progress = progress or Progress(options.verbosity)
    for target in options.targets:
        if target not in all_targets():
            raise UsageError(f"unknown target {target!r}", stage="setup",
                             hint=f"use some of {', '.join(all_targets())}")
    started = time.perf_counter()
    with OutputFolder(options.out_dir, options.force) as folder:
        try:
            return _run(model, options, folder, weights, trust_model, progress, started)
        except KeyboardInterrupt as exc:
            # The commit holds Ctrl-C and SIGTERM back until the new folder is in place, so they land before or after.
            where = (f"the new folder was already in place at {folder.committed}" if folder.committed
                     else "the output folder was left as it was")
            raise interruption(exc, where, stage="pipeline") from None
        except OSError as exc:
            # Writing golden data, metadata, logs or the report (stages catch their own): a full disk, mostly.
            if exc.errno == errno.ENOSPC:
                raise ConversionError(f"no space left on the device ({exc.filename or folder.out.parent})",
                                      stage="output", hint="free some disk space, or choose an --out on another "
                                      "disk; the output folder was left as it was") from exc
            raise ConversionError(f"cannot write {exc.filename or folder.out}: {exc.strerror or exc}", stage="output",
                                  hint="check the disk and the folder's permissions") from exc


def _run(model, options: Options, folder: OutputFolder, weights, trust_model, progress: Progress,
         started: float) -> Result:
    work = folder.work
    stages = plan(options.targets, options)
    with Workers(stages, options, work / "logs") as workers:
        return _run_stages(model, options, folder, weights, trust_model, progress, started, stages, workers)


def _run_stages(model, options: Options, folder: OutputFolder, weights, trust_model, progress: Progress,
                started: float, stages, workers: Workers) -> Result:
    work = folder.work
    with captured(work / "logs" / "load.log"):
        if options.memory_check and not isinstance(model, LoadedModel):
            # Loading an archive holds it whole in memory: judge it by its size before reading it.
            resources.check(resources.file_bytes(model), what=str(model), targets=options.targets)
        loaded = model if isinstance(model, LoadedModel) else load_model(model, weights=weights, trust_model=trust_model)
        inputs = input_specs(loaded.input_names, options, required=loaded.required_inputs)
        if options.memory_check:
            data = resources.input_bytes(inputs, options.random_cases + len(options.sample_inputs))
            data += resources.file_bytes(options.eval_data) if options.eval_data else 0
            resources.check(resources.tensor_bytes(loaded.module), data, what=loaded.source, targets=options.targets)
        cases = make_cases(inputs, options)
        outputs, reference = reference_outputs(loaded.module, inputs, cases)
    model_ref = (loaded.source, weights, trust_model, os.getcwd()) if not isinstance(model, LoadedModel) else None
    ctx = Context(work, loaded, inputs, outputs, cases, options, model_ref=model_ref, reference=reference)
    versions = tool_versions()
    cache = _cache(folder, ctx, stages, loaded, weights, versions)
    progress.say(f"converting {loaded.source}: {len(stages)} stages, {len(cases.names)} input cases -> {folder.out}")
    results, outputs_by_stage = workers.run(ctx, progress, cache)
    accuracy_ref = accuracy(reference, cases.labels)
    golden.write_golden(ctx, reference)
    golden.write_metadata(ctx, _model_name(loaded))
    failures = [r for r in results.values() if r.status == "failed"]
    conversion_failed = [r for r in failures if not isinstance(r.error, ParityError)]
    # Degenerate stages keep exit code 0: nothing was found wrong, but the status and the summary say it was
    # not verified either.
    unverified = [r for r in results.values() if r.status == "degenerate"]
    exit_code = 4 if conversion_failed else 3 if failures else 0
    doc = {
        "format": FORMAT,
        "status": "failed" if failures else "degenerate" if unverified else "passed",
        "exit_code": exit_code,
        "model": {"source": loaded.source, "kind": loaded.kind, "name": _model_name(loaded)},
        "inputs": [s.to_json() for s in inputs],
        "outputs": [s.to_json() for s in outputs],
        "cases": {"names": cases.names, "golden": [cases.names[i] for i in cases.golden]},
        "tolerances": options.tolerances,
        "accuracy": {"pytorch": accuracy_ref, **{r.name: r.accuracy for r in results.values()}}
        if accuracy_ref is not None else None,
        "stages": [r.to_json() for r in results.values()],
        "artifacts": {name: a.to_json() for name, a in ctx.artifacts.items()},
        "versions": versions,
        "seconds_total": round(time.perf_counter() - started, 2),
    }
    cache.save(work, results, outputs_by_stage, ctx.artifacts)
    write_report(work / "report.json", doc)
    write_html(work / "report.html", doc)
    final = folder.commit(success=not failures)
    error = failures[0].error if failures else None
    if failures:
        for failed in failures:  # each one: the exit code comes from the worst, not from the first
            progress.say(f"FAILED: {failed.error}", level=0)
        progress.say(f"report and logs: {final}", level=0)
    elif unverified:
        for line in _unverified(unverified, len(results)):
            progress.say(line)
        progress.say(f"{len(results)} stages converted in {doc['seconds_total']:.1f} s; artifacts in {final}")
    else:
        ran = [r for r in results.values() if r.status != "skipped"]
        skipped = [r for r in results.values() if r.status == "skipped"]
        progress.say((f"all {len(ran)} stages passed" if not skipped else
                      f"{len(ran)} stages passed, {len(skipped)} skipped "
                      f"({'; '.join(f'{r.name}: {r.reason}' for r in skipped)})")
                     + f" in {doc['seconds_total']:.1f} s; artifacts in {final}")
        measured = [r for r in ran if r.accuracy is not None]
        if accuracy_ref is not None and measured:
            same = all(r.accuracy == accuracy_ref for r in measured)
            progress.say(f"top-1 accuracy on the eval data: {accuracy_ref:.2%} in PyTorch"
                         + (", the same in every artifact" if same else
                            "; " + ", ".join(f"{r.name} {r.accuracy:.2%}" for r in measured)))
        progress.say(f"report: {final / 'report.html'}")
    return Result(final, doc, exit_code, error)


def _summary(result: StageResult) -> str:
    if result.status == "failed":
        return f"FAILED  {result.seconds:5.1f} s  {result.error.message}"
    if result.status == "skipped":
        return f"skipped ({result.reason})"
    ref = result.vs("pytorch")
    size = f"{result.bytes / 1e6:.2f} MB" if result.bytes is not None else ""
    status = f"{result.status} (reused)" if result.cached else result.status
    nominal = result.extra.get("rounding_floor", {}).get("nominal_tolerance", result.tolerance)
    floor = ", rounding floor" if nominal != result.tolerance else ""
    text = (f"{status}  {result.seconds:5.1f} s  rel err {ref.max_rel_err:.1e} (tol {result.tolerance:.3g}{floor})  "
            f"{size}")
    gate = result.extra.get("gate")
    if gate:  # an int8 artifact: its gate decided (converter/quantize.py)
        text = f"{status}  {result.seconds:5.1f} s  rel err {ref.max_rel_err:.1e}  {size}  gate:"
        if gate.get("agreement") is not None:
            text += f" top-1 agreement {gate['agreement']:.2%}"
        if gate.get("accuracy_drop") is not None:
            text += f", accuracy {gate['accuracy']:.2%} (drop {gate['accuracy_drop'] * 100:.2f} points)"
        narrow = result.extra.get("narrow_range")
        if narrow:  # TfliteInt8Stage: ops whose calibrated range TFLite's int8 cannot resolve stayed float
            count = len(narrow["ops"])
            text += (f"; {count} op{'s' if count > 1 else ''} kept float (range under {narrow['min_range']:g}"
                     + (", the output's among them: a degenerate output scale" if narrow["outputs"] else "") + ")")
    if result.status == "degenerate":
        text += f"  unverified: {', '.join(o.name for o in ref.degenerate())}"
    return text


def _unverified(results: list[StageResult], stages: int) -> list[str]:
    """What the final summary says when no stage failed but some could not have: which outputs, why, where."""
    where: dict[str, list[str]] = {}
    for result in results:
        for o in result.vs("pytorch").degenerate():
            where.setdefault(f"{o.name}: {o.degenerate_reason}", []).append(result.name)
    lines = [f"parity UNVERIFIED in {len(results)} of {stages} stages: no artifact differs from PyTorch beyond its "
             "tolerance, but on these outputs the check could not have failed:"]
    for why, names in where.items():
        lines.append(f"  {why} ({'every stage' if len(names) == stages else ', '.join(names)})")
    lines.append("  try: real inputs with --sample-input or --eval-data, more --cases, or a model initialisation "
                 "that keeps its activations alive")
    return lines


def _cache(folder: OutputFolder, ctx: Context, stages, loaded: LoadedModel, weights, versions: dict):
    """The previous run's entries when it wrote into the same folder (a re-run with --force), else a fresh
    cache that only records this run's."""
    from .cache import Cache, model_digest

    with captured(ctx.work / "logs" / "load.log"):
        return Cache(folder.out, ctx, stages, model_digest(loaded, weights), versions)


def _model_name(loaded: LoadedModel) -> str:
    """The class name for Python models; the file name for archives, whose class is generic."""
    if loaded.kind in ("python", "pickle"):
        return type(loaded.module).__name__
    return Path(loaded.source).stem
