"""Drive the ExecuTorch stage by itself, in .venv-executorch, the way the pipeline drives a stage: load the model,
make the input cases and PyTorch's reference outputs, convert, run in ExecuTorch's runtime, compare. Prints one
JSON object on stdout; everything the libraries print goes to OUT/logs/executorch.log.

    .venv-executorch/bin/python tests/executorch_drive.py MODEL --input-shape 1,1,8,8 --out DIR
        [--weights FILE] [--cases N] [--dynamic-batch] [--tamper identifier] [--tamper schema]

--tamper makes the exporter produce a file the pinned Android runtime cannot load (another file identifier,
or a newer schema version) and reports, per kind, the error convert raised and whether model.pte was written,
instead of parity numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--input-shape", action="append", required=True)
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--cases", type=int, default=2)
    parser.add_argument("--dynamic-batch", action="store_true")
    parser.add_argument("--tamper", choices=("identifier", "schema"), action="append", default=[])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    from converter.capture import captured
    from converter.errors import ConverterError
    from converter.loading import load_model
    from converter.parity import compare
    from converter.samples import input_specs, make_cases, reference_outputs
    from converter.spec import Options
    from converter.stages import executorch as stage_module
    from converter.stages.base import Context

    work = args.out
    work.mkdir(parents=True, exist_ok=True)
    options = Options(input_shapes=[tuple(int(d) for d in s.split(",")) for s in args.input_shape], out_dir=work,
                      targets=("executorch",), random_cases=args.cases, dynamic_batch=args.dynamic_batch)
    stage = stage_module.ExecuTorchStage()
    doc: dict = {}
    with captured(work / "logs" / f"{stage.name}.log"):
        loaded = load_model(args.model, weights=args.weights)
        inputs = input_specs(loaded.input_names, options, required=loaded.required_inputs)
        cases = make_cases(inputs, options)
        outputs, reference = reference_outputs(loaded.module, inputs, cases)
        ctx = Context(work, loaded, inputs, outputs, cases, options)
        t0 = time.perf_counter()
        stage.warm_up()
        doc["import_s"] = round(time.perf_counter() - t0, 3)
        for how in args.tamper:
            with _tampered(how, stage_module):
                try:
                    stage.convert(ctx)
                    doc.setdefault("refused", {})[how] = None
                except ConverterError as exc:
                    doc.setdefault("refused", {})[how] = _error(exc)
                doc.setdefault("written", {})[how] = (work / stage_module.PTE).exists()
        if not args.tamper:
            try:
                t0 = time.perf_counter()
                artifact = stage.convert(ctx)
                t1 = time.perf_counter()
                got = stage.run(ctx, artifact, cases.inputs)
                t2 = time.perf_counter()
            except ConverterError as exc:
                doc["error"] = _error(exc)
            else:
                comparison = compare(reference, got, options.tolerances[stage.precision], "pytorch")
                doc.update({
                    "convert_s": round(t1 - t0, 3), "run_s": round(t2 - t1, 3), "artifact": str(artifact.path),
                    "bytes": (work / artifact.path).stat().st_size, "notes": artifact.notes, "extra": artifact.extra,
                    "cases": cases.names,
                    "outputs": {o.name: {"max_rel_err": o.max_rel_err, "max_abs_err": o.max_abs_err,
                                         "rel_spread": o.rel_spread, "passed": o.passed} for o in comparison.outputs},
                    "max_rel_err": max(o.max_rel_err for o in comparison.outputs),
                })
    doc["pte_exists"] = (work / stage_module.PTE).exists()
    print(json.dumps(doc))
    return 0


def _error(exc) -> dict:
    return {"type": type(exc).__name__, "stage": exc.stage, "message": exc.message, "hint": exc.hint}


@contextlib.contextmanager
def _tampered(how: str, stage_module):
    if how == "identifier":
        original = stage_module._program_bytes

        def other_identifier(program) -> bytes:
            data = bytearray(original(program))
            data[4:8] = b"ET13"
            return bytes(data)

        stage_module._program_bytes = other_identifier
        try:
            yield
        finally:
            stage_module._program_bytes = original
    else:
        # A newer exporter: Program.version as the next release that changes the format would stamp it.
        from executorch.exir.emit import _emit_program

        original = _emit_program.EXECUTORCH_SCHEMA_VERSION
        _emit_program.EXECUTORCH_SCHEMA_VERSION = stage_module.ANDROID_MAX_SCHEMA_VERSION + 1
        try:
            yield
        finally:
            _emit_program.EXECUTORCH_SCHEMA_VERSION = original


if __name__ == "__main__":
    sys.exit(main())
