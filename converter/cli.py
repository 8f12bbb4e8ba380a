"""Command line: `python -m converter convert|serve|endpoint|package|batch|android-assets|android-check ...`.

Imports nothing heavy at module level, so `--help` answers at once; the pipeline (and with it torch,
TensorFlow, onnx2tf) is imported only when a conversion runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import ConverterError, TermSignal, UsageError, stop_on_sigterm
from .spec import DEFAULT_GATE, DEFAULT_TOLERANCES, QUANTIZE

EPILOG = """exit codes: 0 every stage passed (or was within tolerance on a degenerate reference, which the
output says); 2 bad usage or input; 3 an artifact failed parity or its int8 accuracy gate;
4 a conversion failed (e.g. unsupported ops); 130 interrupted; 143 terminated (SIGTERM). Details: README.md, "Errors and exit codes"."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 with usage, which matches our "bad usage" code
        raise UsageError(message, stage="arguments", hint=f"see `{self.prog} --help`")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m converter", description="Convert PyTorch models for the browser and Android, "
                     "with numerical parity measured at every stage.", epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    c = sub.add_parser("convert", help="convert a model", epilog=EPILOG)
    c.add_argument("model", help="path/to/file.py:callable, package.module:callable, a TorchScript .pt or a .pt2")
    c.add_argument("--input-shape", action="append", type=_shape, required=True, metavar="1,3,224,224",
                   help="one per model input, in forward's order")
    c.add_argument("--input-dtype", action="append", default=[], metavar="DTYPE",
                   help="float32 (default), float16, int64, int32, bool; one for all inputs or one per input")
    c.add_argument("--out", type=Path, required=True, help="output folder (replaced whole, only with --force)")
    c.add_argument("--weights", type=Path, help="a state dict, loaded with torch.load(weights_only=True)")
    c.add_argument("--trust-model", action="store_true",
                   help="allow TorchScript archives and full pickles, which run code from the file: only for "
                        "files you trust")
    from .graph import default_targets

    c.add_argument("--targets", type=_targets, default=default_targets(), metavar=",".join(default_targets()),
                   help="targets to build (their prerequisites are built too); default: "
                        f"{','.join(default_targets())}; also: {','.join(t for t in all_targets() if t not in default_targets())}")
    c.add_argument("--no-browser", action="store_true",
                   help="leave out the browser stage (the artifacts in headless Chromium, on every backend)")
    c.add_argument("--quantize", choices=QUANTIZE, default="fp32",
                   help="fp16, uint8: TF.js weight storage; int8-dynamic (int8 weights) or int8 (full integer, "
                        "calibrated): int8 ONNX and TFLite artifacts besides the float ones, each gated on accuracy")
    c.add_argument("--calibration-data", type=Path, metavar="X.npz",
                   help="int8 calibration inputs ('inputs' like --eval-data); default: --eval-data's inputs, "
                        "else --sample-input")
    c.add_argument("--calibration-random", action="store_true",
                   help="allow calibrating int8 on the random cases when there is no real data (the report warns)")
    c.add_argument("--gate", type=_gate, default=None, metavar="agreement=0.99,accuracy_drop=0.01",
                   help="the int8 accuracy gate: min top-1 agreement with PyTorch fp32, max accuracy drop "
                        "(fractions), optional rel_err (max error relative to the output's scale)")
    c.add_argument("--keep-float", type=_names, default=(), metavar="LAYER,...",
                   help="PyTorch module names that int8 artifacts keep in float (the sensitivity analysis suggests them)")
    c.add_argument("--tolerance", action="append", default=[], type=_tolerance, metavar="PRECISION=REL",
                   help=f"override a relative tolerance, e.g. fp32=1e-3 (defaults: {DEFAULT_TOLERANCES})")
    c.add_argument("--sample-input", action="append", default=[], type=Path, metavar="X.npy",
                   help="real input data, one .npy per input (repeat for more cases)")
    c.add_argument("--eval-data", type=Path, metavar="DATA.npz",
                   help="labelled data ('inputs', 'labels'): top-1 accuracy is measured in every runtime")
    c.add_argument("--dynamic-batch", action="store_true",
                   help="make axis 0 of every input (and output) dynamic; parity is also checked at another batch size")
    c.add_argument("--cases", type=int, default=2, help="seeded random input cases (default 2)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--int-high", type=int, default=2, help="random integer inputs are drawn from [0, N)")
    c.add_argument("--force", action="store_true", help="replace an existing output folder")
    c.add_argument("--no-memory-check", action="store_true",
                   help="convert even when the memory estimate exceeds what is available")
    c.add_argument("-v", "--verbose", action="count", default=0, help="more output; tracebacks on errors")
    c.add_argument("-q", "--quiet", action="store_true", help="only errors")

    s = sub.add_parser("serve", help="serve a converted folder with the web demo on localhost")
    s.add_argument("dir", type=Path)
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--host", default="127.0.0.1")

    e = sub.add_parser("endpoint", help="serve a converted folder's model over HTTP on Ray Serve (SageMaker and "
                       "KServe v2 protocols, Prometheus metrics)",
                       epilog="exit codes: 0 stopped by Ctrl-C; 2 bad usage, folder or cluster address; "
                              "3 a replica refused to start (its outputs on golden/ broke tolerance)")
    e.add_argument("dir", type=Path, help="a converted folder (model.onnx or model.pt, metadata.json, golden/)")
    e.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080)")
    e.add_argument("--host", default="127.0.0.1", help="HTTP host (default 127.0.0.1; 0.0.0.0 for every interface)")
    e.add_argument("--address", help="a Ray cluster's address (ray://host:10001 or host:6379); default: start Ray "
                   "here, embedded")
    scale = e.add_mutually_exclusive_group()
    scale.add_argument("--replicas", type=int, default=1, help="a fixed number of replicas (default 1)")
    scale.add_argument("--autoscale", type=_min_max, metavar="MIN,MAX",
                       help="autoscale between MIN and MAX replicas on ongoing requests")
    e.add_argument("--artifact", choices=("onnx", "torchscript"), default="onnx",
                   help="what the replicas run: model.onnx on ONNX Runtime (default) or model.pt on TorchScript")
    e.add_argument("--threads", type=int, help="inference threads per replica, and the CPUs Ray reserves for it "
                   "(default: this machine's cores divided by the most replicas)")
    e.add_argument("--name", help="the model's name in /v2/models/{name} (default: the folder's name)")
    e.add_argument("--max-body-mb", type=float, default=64.0,
                   help="larger request bodies get 413 (default 64)")
    e.add_argument("--metrics-port", type=int, default=0,
                   help="Prometheus metrics port of the embedded Ray (default: a free one, printed at start)")

    g = sub.add_parser("package", help="package a converted folder for a cloud service")
    g.add_argument("dir", type=Path)
    g.add_argument("--sagemaker", type=Path, required=True, metavar="OUT.tar.gz",
                   help="write the model archive SageMaker's framework containers load (artifact + code/inference.py)")
    g.add_argument("--artifact", choices=("onnx", "torchscript"), default="onnx",
                   help="what inference.py runs: model.onnx (ONNX Runtime, named in code/requirements.txt) or "
                        "model.pt (TorchScript, in the PyTorch container itself)")

    b = sub.add_parser("batch", help="convert many models as Ray tasks (locally, or on a cluster)",
                       epilog="exit codes: 0 every model passed (or passed before with the same line, and was "
                              "skipped); 1 some model failed, crashed or was killed at its limits; 2 bad usage, "
                              "a malformed MODELS.txt (its line is named) or an unreachable --address. Each row is "
                              "in OUT_ROOT/batch.json.")
    b.add_argument("models", type=Path, metavar="MODELS.txt",
                   help="one model per line: NAME: MODEL [convert options] [--max-rss-gb G] [--timeout S] (a "
                        "line's own limits); '#' starts a comment")
    b.add_argument("--out-root", type=Path, required=True, help="each model's folder is OUT_ROOT/NAME")
    b.add_argument("--address", help="a Ray cluster's address; default: start Ray here, embedded")
    b.add_argument("--workers", type=int, default=1, help="conversions at once (default 1)")
    b.add_argument("--max-rss-gb", type=float, default=10.0,
                   help="memory limit of one conversion's process tree (default 10)")
    b.add_argument("--timeout", type=int, default=1800, help="seconds per conversion (default 1800)")

    a = sub.add_parser("android-assets", help="copy a converted folder's mobile artifacts into the Android app")
    a.add_argument("dir", type=Path)
    a.add_argument("--app", type=Path, default=Path("mobile/android/app"))

    k = sub.add_parser("android-check", help="check that an .apk, .aab, .aar or .so is 16 KB page-aligned",
                       epilog="exit codes: 0 every native library is 16 KB-aligned; 2 the file cannot be read; "
                              "3 a library (or its place in the APK) is not 16 KB-aligned")
    k.add_argument("file", type=Path, help="an .apk, .aab, .aar or .so")
    return parser


def all_targets() -> tuple[str, ...]:
    from .graph import all_targets as registered  # the stages' declarations; light (no framework imports)

    return registered()


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape like 1,3,224,224") from None
    if not dims or any(d <= 0 for d in dims):
        raise argparse.ArgumentTypeError(f"{text!r}: every dimension must be a positive integer")
    return dims


def _min_max(text: str) -> tuple[int, int]:
    low, sep, high = text.partition(",")
    try:
        pair = (int(low), int(high))
    except ValueError:
        pair = None
    if not sep or pair is None or not 0 <= pair[0] <= pair[1] or pair[1] < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give MIN,MAX replicas with 0 <= MIN <= MAX and MAX >= 1")
    return pair


def _targets(text: str) -> tuple[str, ...]:
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    unknown = [t for t in names if t not in all_targets()]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown target(s) {unknown or text!r}; choose from {','.join(all_targets())}")
    return names


def _gate(text: str) -> dict[str, float]:
    from .quantize import parse_gate

    try:
        return parse_gate(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"{text!r}: give module names like features.0,classifier.3")
    return names


def _tolerance(text: str) -> tuple[str, float]:
    precision, sep, value = text.partition("=")
    if not sep or precision not in DEFAULT_TOLERANCES:
        raise argparse.ArgumentTypeError(f"{text!r}: use PRECISION=REL with PRECISION one of {list(DEFAULT_TOLERANCES)}")
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: tolerance {value!r} is not a number") from None
    if not (number > 0 and number < float("inf")):
        raise argparse.ArgumentTypeError(f"{text!r}: tolerance must be a positive finite number")
    return precision, number


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Counted by hand: the parser may be what fails. -vv and --verbose count too.
    verbose = any(a == "--verbose" or (a.startswith("-v") and set(a[1:]) == {"v"}) for a in argv)
    try:
        args = build_parser().parse_args(argv)
        return _dispatch(args)
    except ConverterError as exc:
        if verbose:
            import traceback

            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:  # outside the pipeline's own handling (loading, the parser)
        print(f"error: [pipeline] {'terminated (SIGTERM)' if isinstance(exc, TermSignal) else 'interrupted'}; "
              "the output folder was left as it was", file=sys.stderr)
        return 143 if isinstance(exc, TermSignal) else 130
    except Exception as exc:  # a bug of ours or a tool's: still one message, the traceback only with -v
        if verbose:
            import traceback

            traceback.print_exc()
        print(f"error: [internal] {type(exc).__name__}: {exc}\n  try: run again with -v for the traceback, "
              "and report it with the model", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "serve":
        from .serve import serve

        serve(args.dir, args.port, args.host)
        return 0
    if args.command == "endpoint":
        from .endpoint import main as endpoint

        return endpoint(args)
    if args.command == "package":
        from .errors import ParityError
        from .serving import GoldenError, package_sagemaker

        try:
            path = package_sagemaker(args.dir, args.sagemaker, args.artifact)
        except (FileNotFoundError, ValueError) as exc:
            raise UsageError(str(exc), stage="package") from None
        except GoldenError as exc:
            raise ParityError(str(exc), stage="package", hint="convert the model again") from None
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
        return 0
    if args.command == "batch":
        from .batch import main as batch

        with stop_on_sigterm():
            return batch(args)
    if args.command == "android-assets":
        from .android import install_assets

        copied = install_assets(args.dir, args.app)
        print(f"copied {len(copied)} files into {args.app}")
        return 0
    if args.command == "android-check":
        from .android_check import check_file, format_report, require_aligned

        report = check_file(args.file)
        print(format_report(report))
        require_aligned(report)
        return 0
    from .pipeline import convert
    from .spec import Options

    options = Options(
        input_shapes=args.input_shape, out_dir=args.out, input_dtypes=args.input_dtype,
        targets=tuple(t for t in args.targets if not (args.no_browser and t == "browser")),
        quantize=args.quantize, tolerances={**DEFAULT_TOLERANCES, **dict(args.tolerance)}, random_cases=args.cases,
        seed=args.seed, int_high=args.int_high, sample_inputs=args.sample_input, eval_data=args.eval_data, dynamic_batch=args.dynamic_batch,
        calibration_data=args.calibration_data, calibration_random=args.calibration_random,
        gate=args.gate or dict(DEFAULT_GATE), keep_float=args.keep_float,
        force=args.force, verbosity=0 if args.quiet else 1 + args.verbose, memory_check=not args.no_memory_check,
    )
    with stop_on_sigterm():
        result = convert(args.model, options, weights=args.weights, trust_model=args.trust_model)
    if result.exit_code == 0 and not args.quiet and "tfjs" in args.targets:
        print(f"open it in a browser: {_python()} -m converter serve {result.path} --port 8000")
    return result.exit_code


def _python() -> str:
    """How the user can name this interpreter again: relative when it lives below the working directory."""
    path = Path(sys.executable)
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else "python"


def run() -> None:
    """Entry point of `python -m converter` and `torch-convert`: main(), then exit.

    With TensorFlow and torch loaded, an ordinary interpreter exit spends seconds tearing their threads and
    static objects down (4 s measured here). Everything we write is closed by now, so after flushing our own
    streams the process leaves at once; in-process callers use main(), which returns normally.
    """
    code = main()
    if "tensorflow" in sys.modules or "torch" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
