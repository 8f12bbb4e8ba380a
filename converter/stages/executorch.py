"""PyTorch -> ExecuTorch (`model.pte`, fp32, the XNNPACK delegate on CPU), run in ExecuTorch's own runtime.

ExecuTorch is PyTorch's supported on-device runtime (the lite interpreter behind model.ptl is deprecated).
executorch needs numpy >= 2 and onnx2tf pins numpy 1.26, so this stage runs in its own virtual environment,
`.venv-executorch` (scripts/setup.sh, constraints-executorch.txt): `worker` and `env` below say so to the stage
graph. Nothing here imports torch or executorch at module level; the main environment can import this file.

What convert needs from the Context: ctx.model.module (the PyTorch module, loaded in this process),
ctx.inputs (names, shapes, dtypes; dynamic_axes for --dynamic-batch), ctx.outputs (names, in flatten_outputs
order), ctx.cases.inputs[0] (the example for torch.export) and ctx.work (where model.pte goes).
run needs ctx.work, ctx.inputs and ctx.outputs.
"""

from __future__ import annotations

import traceback
from pathlib import Path

import numpy as np

from ..errors import ConversionError, first_line
from .base import Arrays, Artifact, Context, Stage

STAGE = "executorch"
PTE = "model.pte"

# The exporter this stage was written and tested against (constraints-executorch.txt pins it), and the Android
# runtime built from the same release, which the sample app pins (mobile/android). ExecuTorch publishes the AAR
# under the release's version.
EXECUTORCH_VERSION = "1.5.1"
ANDROID_RUNTIME = f"org.pytorch:executorch-android:{EXECUTORCH_VERSION}"

# What that runtime loads, from its sources at that release:
# - runtime/executor/program.cpp refuses a Program flatbuffer whose file identifier (bytes 4..8) is not the one
#   its schema/program.fbs declares: "ET12" (unchanged from 0.4 through 1.5);
# - runtime/executor/program.h: Program::kMaxSupportedSchemaVersion = 0, the highest Program.version it reads
#   (exir/version.py EXECUTORCH_SCHEMA_VERSION is what the exporter stamps);
# - schema/extended_header.h: the extended header after the identifier starts with "eh00";
# - backends/xnnpack/runtime: a delegate blob starts with the XNNHeader magic "XH00" (XNNHeader.h) and holds a
#   flatbuffer whose identifier is "XN00" or "XN01" (XNNCompiler.cpp); the backend is registered as
#   "XnnpackBackend". The executorch 1.5.1 wheel's own libexecutorch.so and libexecutorch_backend_xnnpack.so
#   carry the same constants.
ANDROID_PTE_IDENTIFIER = b"ET12"
ANDROID_MAX_SCHEMA_VERSION = 0
EXTENDED_HEADER_MAGIC = b"eh00"
XNNPACK_BACKEND = "XnnpackBackend"
XNNPACK_HEADER_MAGIC = b"XH00"
XNNPACK_IDENTIFIERS = (b"XN00", b"XN01")

# ExecuTorch plans every buffer for the largest shape the program accepts, and an unbounded batch dimension is
# silently fixed at the example's size: --dynamic-batch gets batches up to this many rows.
DYNAMIC_BATCH_MAX = 32


class ExecuTorchStage(Stage):
    name = STAGE
    target = "executorch"
    after = "pytorch"
    precision = "fp32"
    worker = "executorch"
    env = ".venv-executorch"
    default = False  # its own environment and ~1 s per MB of weights: asked for by name, for now
    filename = PTE

    def warm_up(self) -> None:
        import executorch.runtime  # noqa: F401
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner  # noqa: F401
        from executorch.exir import to_edge_transform_and_lower  # noqa: F401

    def convert(self, ctx: Context) -> Artifact:
        import torch
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower

        module = ctx.model.module
        if isinstance(module, torch.jit.ScriptModule):
            raise ConversionError("torch.export cannot capture a TorchScript module", stage=self.name,
                                  hint="convert from the Python model (file.py:build) or a torch.export archive (.pt2)")
        dynamic, max_batch = _dynamic_shapes(ctx)
        args = tuple(torch.from_numpy(_example(ctx.cases.inputs[0][s.name], s.dynamic_axes)) for s in ctx.inputs)
        notes = []
        try:
            with torch.no_grad():
                exported = torch.export.export(module, args, dynamic_shapes=dynamic)
        except Exception as exc:
            traceback.print_exc()  # the exporter's whole story, into the stage's log
            hint = "make forward capturable by torch.export (logs/executorch.log shows where it stopped)"
            if "data-dependent" in str(exc) or "GuardOnDataDependent" in type(exc).__name__:
                hint = ("the model branches on a tensor's value, which torch.export cannot capture: make that "
                        "branch depend on shapes or flags only (logs/executorch.log shows the line)")
            raise ConversionError(f"torch.export.export failed: {first_line(exc)}", stage=self.name, hint=hint) from exc
        exported = self._transform(ctx, exported, args, dynamic, notes)
        try:
            edge = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])
        except Exception as exc:
            traceback.print_exc()
            # The edge dialect's verifier stops at the first op outside core ATen: list them all at once.
            ops = _non_core_ops(exported)
            what = f"ops outside core ATen: {', '.join(ops)}" if ops else first_line(exc)
            hint = ("replace those ops in the model, or decompose them into core ATen ops" if ops else
                    "see logs/executorch.log for the step that failed")
            raise ConversionError(f"to_edge_transform_and_lower (edge dialect, XNNPACK partitioning) failed: {what}",
                                  stage=self.name, hint=hint, unsupported_ops=ops) from exc
        kernels = _kernel_counts(edge.exported_program().graph_module)
        try:
            program = edge.to_executorch()
        except Exception as exc:
            traceback.print_exc()
            raise ConversionError(f"to_executorch (out variants, memory planning) failed: {first_line(exc)}",
                                  stage=self.name,
                                  hint="an op left outside XNNPACK has no ExecuTorch kernel; see "
                                       "logs/executorch.log") from exc
        data = _program_bytes(program)
        formats = check_loadable(data)  # before writing: a file the pinned Android runtime refuses never lands
        (ctx.work / self.filename).write_bytes(data)
        version = _installed_version()
        if version != EXECUTORCH_VERSION:
            notes.append(f"exported with executorch {version}, not {EXECUTORCH_VERSION} (constraints-executorch.txt); "
                         f"the format checks for {ANDROID_RUNTIME} passed")
        if max_batch:
            notes.append(f"batch axis dynamic up to {max_batch} rows (ExecuTorch plans its buffers for the largest)")
        if kernels["portable"]:
            notes.append(f"{kernels['portable_ops']} op(s) outside XNNPACK run on ExecuTorch's portable kernels: "
                         + ", ".join(f"{op} x{n}" for op, n in kernels["portable"].items()))
        inputs, outputs = ctx.same_layout()
        extra = {"executorch_version": version, **formats, "xnnpack_subgraphs": kernels["subgraphs"],
                 "xnnpack_ops": kernels["xnnpack_ops"], "portable_ops": kernels["portable_ops"],
                 "ops": {"xnnpack": kernels["xnnpack"], "portable": kernels["portable"]},
                 "android_runtime": ANDROID_RUNTIME,
                 "android_loads": {"pte_identifier": ANDROID_PTE_IDENTIFIER.decode(),
                                   "max_schema_version": ANDROID_MAX_SCHEMA_VERSION,
                                   "xnnpack_identifiers": [i.decode() for i in XNNPACK_IDENTIFIERS]}}
        if max_batch:
            extra["max_batch"] = max_batch
        return Artifact(Path(self.filename), self.precision, inputs, outputs, notes, extra)

    def _transform(self, ctx: Context, exported, args: tuple, dynamic, notes: list[str]):
        """The exported program as it is lowered: unchanged here; quantized by the int8 stages."""
        return exported

    def run(self, ctx: Context, artifact: Artifact, cases: list[Arrays]) -> list[Arrays]:
        import torch
        from executorch.runtime import Runtime

        path = ctx.work / artifact.path
        try:
            program = Runtime.get().load_program(str(path))  # kept referenced while its method runs
            method = program.load_method("forward")
        except Exception as exc:
            raise ConversionError(f"ExecuTorch's runtime cannot load {artifact.path}: {first_line(exc)}",
                                  stage=self.name, hint="see logs/executorch.log for the runtime's own error") from exc
        results = execute(method, ctx, cases, self.name)
        del method, program
        return results


def execute(method, ctx: Context, cases: list[Arrays], stage: str) -> list[Arrays]:
    """A loaded program's forward on every case, its outputs named as PyTorch's."""
    import torch

    results = []
    for case in cases:
        args = [torch.from_numpy(np.ascontiguousarray(case[s.name])) for s in ctx.inputs]
        try:
            values = method.execute(args)
        except Exception as exc:
            shapes = ", ".join(f"{s.name} {list(case[s.name].shape)}" for s in ctx.inputs)
            raise ConversionError(f"ExecuTorch's runtime failed on inputs {shapes}: {first_line(exc)}",
                                  stage=stage, hint="see logs/executorch.log for the runtime's own error") from exc
        # The program returns torch.export's flattened outputs, None entries included; flatten_outputs
        # leaves those out, and the rest come in the same order.
        tensors = [v for v in values if v is not None]
        if len(tensors) != len(ctx.outputs) or not all(isinstance(t, torch.Tensor) for t in tensors):
            raise ConversionError(f"the program returned {len(tensors)} value(s), PyTorch {len(ctx.outputs)} "
                                  "tensor(s)", stage=stage, hint="return tensors only from forward")
        # Copies: the runtime's outputs live in its planned memory, which the next execute reuses.
        results.append({o.name: t.detach().numpy().copy() for o, t in zip(ctx.outputs, tensors)})
    return results


def _dynamic_shapes(ctx: Context):
    """torch.export's dynamic shapes (one shared, bounded batch dimension) and the bound; (None, 0) if static."""
    if not any(s.dynamic_axes for s in ctx.inputs):
        return None, 0
    from torch.export import Dim

    largest = max(s.shape[axis] for s in ctx.inputs for axis in s.dynamic_axes)
    bound = max(DYNAMIC_BATCH_MAX, largest + 2)  # the pipeline also checks a batch 2 rows larger
    batch = Dim("batch", max=bound)
    return tuple({axis: batch for axis in s.dynamic_axes} for s in ctx.inputs), bound


def _example(array: np.ndarray, dynamic_axes: tuple[int, ...]) -> np.ndarray:
    """The export example: torch.export specialises a dimension of size 1 to a constant, so a dynamic axis of
    size 1 is given twice (the rows repeated; the values only steer the capture, never the graph)."""
    for axis in dynamic_axes:
        if array.shape[axis] == 1:
            array = np.concatenate([array, array], axis=axis)
    return np.ascontiguousarray(array)


def _non_core_ops(exported) -> list[str]:
    """The ops left outside core ATen once the standard decompositions ran (what the edge dialect refuses)."""
    import torch

    try:
        graph = exported.run_decompositions().graph
    except Exception:
        return []
    return sorted({str(node.target) for node in graph.nodes if node.op == "call_function"
                   and isinstance(node.target, torch._ops.OpOverload) and torch.Tag.core not in node.target.tags})


def _program_bytes(program) -> bytes:
    """The serialised program (a function, so that a test can hand convert a file of another format)."""
    return bytes(program.buffer)


def _kernel_counts(graph_module) -> dict:
    """Which ops the XNNPACK delegate took and which stay on ExecuTorch's portable kernels, counted per op."""
    from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(graph_module)
    xnnpack, portable = {}, {}
    for op, row in sorted(info.delegation_by_operator.items()):
        if op == "getitem":  # tuple unpacking of a delegate's results, no kernel
            continue
        if row.delegated:
            xnnpack[op] = row.delegated
        if row.non_delegated:
            portable[op] = row.non_delegated
    return {"subgraphs": info.num_delegated_subgraphs, "xnnpack": xnnpack, "portable": portable,
            "xnnpack_ops": sum(xnnpack.values()), "portable_ops": sum(portable.values())}


def check_loadable(data: bytes) -> dict:
    """The .pte's format facts; ConversionError if ANDROID_RUNTIME would refuse to load it."""
    refuse = f"the pinned Android runtime {ANDROID_RUNTIME} cannot load this .pte"
    hint = (f"export with executorch {EXECUTORCH_VERSION} (bash scripts/setup.sh builds .venv-executorch from "
            "constraints-executorch.txt), or move the app and ANDROID_RUNTIME to a runtime that reads this format")
    if len(data) < 16:
        raise ConversionError(f"{refuse}: {len(data)} bytes is no program", stage=STAGE, hint=hint)
    identifier = bytes(data[4:8])
    if identifier != ANDROID_PTE_IDENTIFIER:
        raise ConversionError(f"{refuse}: its file identifier is {identifier!r}, the runtime reads "
                              f"{ANDROID_PTE_IDENTIFIER!r} only", stage=STAGE, hint=hint)
    version = _root_uint(data, 0)  # Program.version, field 0 of the root table (schema/program.fbs)
    if version > ANDROID_MAX_SCHEMA_VERSION:
        raise ConversionError(f"{refuse}: its schema version is {version}, the runtime reads up to "
                              f"{ANDROID_MAX_SCHEMA_VERSION}", stage=STAGE, hint=hint)
    facts = {"pte_identifier": identifier.decode(), "pte_schema_version": version,
             "pte_extended_header": bytes(data[8:12]).decode("ascii", "replace")}
    if bytes(data[8:12]) != EXTENDED_HEADER_MAGIC:
        raise ConversionError(f"{refuse}: its extended header is {bytes(data[8:12])!r}, not {EXTENDED_HEADER_MAGIC!r}",
                              stage=STAGE, hint=hint)
    facts["delegates"] = _delegate_formats(data, refuse, hint)
    return facts


def _delegate_formats(data: bytes, refuse: str, hint: str) -> dict:
    """{backend: [formats]} of the delegate blobs; refuses a backend or blob format the runtime lacks."""
    from executorch.exir._serialize._program import deserialize_pte_binary

    try:
        program = deserialize_pte_binary(data).program
    except Exception as exc:
        raise ConversionError(f"the written .pte does not parse: {first_line(exc)}", stage=STAGE, hint=hint) from exc
    found: dict[str, list[str]] = {}
    for plan in program.execution_plan:
        for delegate in plan.delegates:
            if delegate.id != XNNPACK_BACKEND:
                raise ConversionError(f"{refuse}: it delegates to {delegate.id!r}, which the app's runtime does not "
                                      f"register", stage=STAGE, hint=hint)
            blob = bytes(program.backend_delegate_data[delegate.processed.index].data)
            if blob[4:8] == XNNPACK_HEADER_MAGIC:
                start = int.from_bytes(blob[10:14], "little")  # XNNHeader: the flatbuffer's offset
                identifier = blob[start + 4:start + 8]
            else:
                identifier = blob[4:8]  # a blob without the header is the flatbuffer itself
            if identifier not in XNNPACK_IDENTIFIERS:
                raise ConversionError(f"{refuse}: an XNNPACK blob has the identifier {identifier!r}, the runtime "
                                      f"reads {', '.join(map(repr, XNNPACK_IDENTIFIERS))}", stage=STAGE, hint=hint)
            found.setdefault(delegate.id, []).append(identifier.decode())
    return {backend: sorted(set(formats)) for backend, formats in found.items()}


def _root_uint(data: bytes, field: int) -> int:
    """A uint32 field of a flatbuffer's root table, read as the C++ runtime reads it (0 when absent, the
    schema default, which flatbuffers leave out of the file)."""
    root = int.from_bytes(data[0:4], "little")
    vtable = root - int.from_bytes(data[root:root + 4], "little", signed=True)
    vtable_size = int.from_bytes(data[vtable:vtable + 2], "little")
    slot = 4 + 2 * field
    if slot + 2 > vtable_size:
        return 0
    offset = int.from_bytes(data[vtable + slot:vtable + slot + 2], "little")
    return int.from_bytes(data[root + offset:root + offset + 4], "little") if offset else 0


def _installed_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("executorch")
    except metadata.PackageNotFoundError:
        return "unknown"
