"""PyTorch -> TorchScript (`model.pt`, for C++ runtimes) and TorchScript Lite (`model.ptl`, for Android)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from ..errors import ConversionError, first_line
from ..samples import flatten_outputs
from .base import IO_RECORD, Arrays, Artifact, Context, Handoff, Stage, io_record

TRACED = Handoff("traced", "torch.jit.ScriptModule: the traced model, which the lite interpreter's export reuses")

# The Android runtime the sample app pins (mobile/android). Its loader accepts bytecode versions 4..9
# (caffe2/serialize/versions.h at that release: kMin/kMaxSupportedBytecodeVersion); 8 is what its own exporter
# produced, so a newer file is backported to 8.
ANDROID_LITE_RUNTIME = "org.pytorch:pytorch_android_lite:2.1.0"
ANDROID_LITE_LOADS_BYTECODE = range(4, 10)
ANDROID_LITE_BYTECODE = 8


def _torch_inputs(ctx: Context, case: Arrays) -> list:
    import torch

    return [torch.from_numpy(np.ascontiguousarray(case[s.name])) for s in ctx.inputs]


def _run_module(ctx: Context, module, cases: list[Arrays]) -> list[Arrays]:
    import torch

    results = []
    with torch.no_grad():
        for case in cases:
            flat = flatten_outputs(module(*_torch_inputs(ctx, case)))
            # TorchScript returns tuples where eager returned dicts: match by position.
            results.append({o.name: t.numpy() for o, t in zip(ctx.outputs, flat.values())})
    return results


@contextlib.contextmanager
def _traceable_checks():
    """F.max_unpool1d/2d/3d check the output size they compute from input.size(), which the tracer gives as
    tensors, with torch._check_value, which takes only a bool: every model with max unpooling failed to trace
    ("cond must be a bool, but got a Tensor"; pytorch/pytorch#189298). While tracing, the check reads the sizes as
    ints; it raises as before for a negative one."""
    import torch.nn.functional as F

    original = F._check_unpool_output_size
    F._check_unpool_output_size = lambda output_size, dim: original([int(d) for d in output_size], dim)
    try:
        yield
    finally:
        F._check_unpool_output_size = original


def _trace(module, example: tuple):
    import torch

    with torch.no_grad(), _traceable_checks():
        # strict=False lets dict outputs through (segmentation models return {"out": ...}).
        # check_trace re-runs the model to compare; the parity check does that properly.
        return torch.jit.trace(module, example, strict=False, check_trace=False)


def _trace_flat(module, example: tuple):
    """`module` traced through a wrapper that returns its outputs as one flat dict (flatten_outputs)."""
    import torch

    class FlatOutputs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.module = module

        def forward(self, *args):
            return flatten_outputs(self.module(*args))

    return _trace(FlatOutputs(), example)


class TorchScriptStage(Stage):
    name = target = "torchscript"
    gives = (TRACED,)

    def convert(self, ctx: Context) -> Artifact:
        import torch

        module = ctx.model.module
        notes = []
        if not isinstance(module, torch.jit.ScriptModule):
            example = tuple(_torch_inputs(ctx, ctx.cases.inputs[0]))
            try:
                module = _trace(module, example)
                notes.append("captured with torch.jit.trace on the first input case")
            except Exception as first:
                # The tracer takes tensors, tuples, lists and flat dicts; not nested or dataclass outputs
                # (Hugging Face's CLIPOutput holds two more ModelOutputs). The same tensors as one flat dict,
                # under the names every other artifact uses, trace.
                try:
                    module = _trace_flat(module, example)
                except Exception as exc:
                    raise ConversionError(f"torch.jit.trace failed: {first_line(first)}", stage=self.name,
                                          hint="make forward traceable (no data-dependent Python control flow)") from exc
                notes.append("captured with torch.jit.trace on the first input case, through a wrapper that "
                             f"returns the outputs as one flat dict ({first_line(first)[:80]})")
        ctx.give(TRACED, module)
        path = ctx.work / "model.pt"
        # Serialised in memory and written by Python: torch's own file writer aborts the whole process
        # (std::terminate) when the disk fills up, where Python's raises an OSError the pipeline reports.
        inputs, outputs = ctx.same_layout()
        buffer = io.BytesIO()
        torch.jit.save(module, buffer, _extra_files={IO_RECORD: io_record(ctx, inputs, outputs)})
        path.write_bytes(buffer.getvalue())
        return Artifact(Path("model.pt"), "fp32", inputs, outputs, notes)

    def run(self, ctx: Context, artifact: Artifact, cases: list[Arrays]) -> list[Arrays]:
        import torch

        return _run_module(ctx, torch.jit.load(str(ctx.work / artifact.path)), cases)


class LiteStage(Stage):
    name = target = "ptl"
    after = "torchscript"
    takes = (TRACED,)

    def convert(self, ctx: Context) -> Artifact:
        import torch

        from torch.jit.mobile import _backport_for_mobile, _get_model_bytecode_version

        traced = ctx.take(TRACED)
        notes = []
        # optimize_for_mobile needs XNNPACK, which this torch build lacks (it asserts even with every XNNPACK
        # pass blocklisted). torch.jit.freeze does the build-independent part of its work (conv-batchnorm
        # folding, constant propagation, dropout removal), so every build produces the same artifact.
        if hasattr(torch.backends, "xnnpack") and torch.backends.xnnpack.enabled:
            notes.append("torch build has XNNPACK, but optimize_for_mobile is left out so that every build "
                         "produces the same artifact")
        else:
            notes.append("optimize_for_mobile skipped: this torch build has no XNNPACK; applied torch.jit.freeze")
        try:
            frozen = torch.jit.freeze(traced.eval()) if hasattr(traced, "training") else traced
        except Exception as exc:
            frozen = traced
            notes.append(f"torch.jit.freeze failed ({first_line(exc)}); saved unfrozen")
        path = ctx.work / "model.ptl"
        inputs, outputs = ctx.same_layout()
        try:
            # In memory: see TorchScriptStage.convert. The app reads the layouts from the extra file too.
            data = frozen._save_to_buffer_for_lite_interpreter(_extra_files={IO_RECORD: io_record(ctx, inputs, outputs)})
        except Exception as exc:
            raise ConversionError(f"saving for the lite interpreter failed: {first_line(exc)}", stage=self.name,
                                  hint="the model uses an op the lite interpreter cannot serialise") from exc
        path.write_bytes(data)
        produced = _get_model_bytecode_version(str(path))
        version = produced
        if produced > ANDROID_LITE_BYTECODE:
            backported = path.with_suffix(".backport.ptl")
            if not _backport_for_mobile(str(path), str(backported), ANDROID_LITE_BYTECODE):
                raise ConversionError(f"cannot backport bytecode v{produced} to v{ANDROID_LITE_BYTECODE}",
                                      stage=self.name, hint=f"use a torch release whose lite format {ANDROID_LITE_RUNTIME} loads")
            backported.replace(path)
            version = _get_model_bytecode_version(str(path))
            notes.append(f"backported bytecode v{produced} -> v{version} for {ANDROID_LITE_RUNTIME}")
        extra = {"bytecode_version": version, "produced_bytecode_version": produced,
                 "android_runtime": ANDROID_LITE_RUNTIME, "android_max_bytecode_version": ANDROID_LITE_BYTECODE}
        return Artifact(Path("model.ptl"), "fp32", inputs, outputs, notes, extra)

    def run(self, ctx: Context, artifact: Artifact, cases: list[Arrays]) -> list[Arrays]:
        from torch.jit.mobile import _load_for_lite_interpreter

        return _run_module(ctx, _load_for_lite_interpreter(str(ctx.work / artifact.path)), cases)
