"""Constants that float16 cannot hold stay float32 in the fp16 artifacts (TFLite fp16, TF.js `--quantize fp16`).

Both converters store every float32 constant as float16. A constant outside float16's range then changes
meaning, not only precision: F.normalize's eps 1e-12 becomes 0, so a zero vector (a window's padding, a masked
token) divides 0 by 0; an attention mask's -1e9 or float32's lowest becomes -inf, and 0 x -inf is NaN
(tensorflow#43719, DistilBERT). torchvision's swin_v2_t gave NaN in TFLite fp16 this way: its key bias is
zero, so the rows padding the last stage's 7x7 windows to 8x8 normalise to 0 / 0.

A constant keeps float32 when float16 turns one of its finite values to inf, or when it is small (at most
SMALL elements: an eps, a mask fill, a scale) and its largest magnitude is under float16's smallest normal
number, where it would lose its precision or vanish. A large tensor that far down is a layer's weights scaled
down (torchvision's convnext_tiny folds its random layer scale, 1e-6, into them: 26 MB of them), whose part in
the output is as small as its values: it stays float16, as the converters store it (convnext_tiny's TFLite fp16
error is 5.5e-4 either way, its file 57 MB instead of 83 MB).
"""

from __future__ import annotations

import contextlib
from typing import Callable

import numpy as np

TINY = float(np.finfo(np.float16).tiny)  # 6.1e-5, the smallest normal float16
SMALL = 1024  # elements: a constant this small is an eps, a fill or a scale, not a layer's weights


def holds(values: np.ndarray) -> bool:
    """Whether these float32 values may be stored as float16 (the module's rule)."""
    finite = np.abs(values[np.isfinite(values)])
    if finite.size == 0 or finite.max() == 0:
        return True
    with np.errstate(over="ignore"):
        if not np.isfinite(finite.astype(np.float16)).all():
            return False
    return bool(finite.max() >= TINY or values.size > SMALL)


def note(kept: list[str], what: str) -> str:
    """The stage note naming the constants kept in float32."""
    names = ", ".join(kept[:5]) + (", ..." if len(kept) > 5 else "")
    return (f"{len(kept)} {what}{'s' * (len(kept) > 1)} kept in float32, which float16 cannot hold (an eps under "
            f"its range, a mask value over it): {names}")


# --- TFLite: undo the float16 storage of the constants it cannot hold

def tflite_keep_fp32(fp16: bytes, fp32: Callable[[], bytes]) -> tuple[bytes, list[str]]:
    """The fp16 flatbuffer with each float16 constant that cannot hold its float32 value (read from `fp32()`,
    the same model converted without quantization, asked for only when a float16 constant looks out of range)
    put back as that float32 constant, its DEQUANTIZE op gone; and the names of those constants. The same bytes
    when every constant fits."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(fp16))
    reference = None
    kept: list[str] = []
    for index, graph in enumerate(model.subgraphs):
        dequantized = {}  # the fp32 tensor a DEQUANTIZE writes -> (that op, the float16 constant it reads)
        for op in graph.operators:
            source = graph.tensors[op.inputs[0]] if len(op.inputs) else None
            if _code(model, op) == schema.BuiltinOperator.DEQUANTIZE and source is not None \
                    and source.type == schema.TensorType.FLOAT16 and _data(model, source) is not None:
                dequantized[int(op.outputs[0])] = (op, int(op.inputs[0]))
        suspects = {t for t, (_, c) in dequantized.items() if _suspect(_data(model, graph.tensors[c]))}
        if not suspects:
            continue
        if reference is None:
            reference = flatbuffer_utils.read_model_from_bytearray(bytearray(fp32()))
        original = _originals(model, index, reference, dequantized, suspects)
        restore = {t: found for t, found in original.items() if not holds(found[0])}
        for tensor, (values, name) in restore.items():
            op, _ = dequantized[tensor]
            buffer = schema.BufferT()
            buffer.data = np.frombuffer(values.astype("<f4").tobytes(), np.uint8)
            model.buffers.append(buffer)
            graph.tensors[tensor].buffer = len(model.buffers) - 1
            graph.operators.remove(op)
            kept.append(f"{name} = {values.flat[0]:.3g}" if values.size == 1 else
                        f"{name} (max |value| {np.abs(values[np.isfinite(values)]).max(initial=0):.3g})")
        # A float16 constant may feed several DEQUANTIZEs (one constant, deduplicated): it goes, with its data,
        # once no op reads it.
        read = {int(i) for op in graph.operators for i in op.inputs if i >= 0} | {int(i) for i in graph.outputs}
        unread = {dequantized[t][1] for t in restore} - read
        buffers = {graph.tensors[c].buffer for c in unread}
        _drop_tensors(model, index, unread)
        used = {t.buffer for g in model.subgraphs for t in g.tensors}  # TFLite shares a buffer among equal constants
        for buffer in buffers - used:
            model.buffers[buffer].data = None
    if not kept:
        return fp16, []
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), kept


def _code(model, op) -> int:
    code = model.operatorCodes[op.opcodeIndex]
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def _data(model, tensor):
    buffer = model.buffers[tensor.buffer]
    return None if buffer.data is None or len(buffer.data) == 0 else np.asarray(buffer.data, np.uint8)


def _suspect(raw: np.ndarray) -> bool:
    """A float16 constant that may stand for float32 values it cannot hold: inf, or small with nothing above its
    normals."""
    half = raw.view("<f2")
    return bool(np.isinf(half).any() or (half.size <= SMALL and np.abs(half[np.isfinite(half)]).max(initial=0) < TINY))


def _originals(model, index: int, model32, dequantized: dict, suspects: set[int]) -> dict:
    """The float32 values and names of the suspect constants of subgraph `index`, read where the unquantized model's
    matching op reads them. The two flatbuffers come from one graph: the same ops in the same order, apart from
    the DEQUANTIZEs."""
    graph, reference = model.subgraphs[index], model32.subgraphs[index]
    ops = [op for op in graph.operators if dequantized.get(int(op.outputs[0]), (None,))[0] is not op]
    if [_code(model, op) for op in ops] != [_code(model32, op) for op in reference.operators]:
        raise ValueError("the fp16 and fp32 TFLite graphs differ beyond their DEQUANTIZE ops")
    found = {}
    for op, op32 in zip(ops, reference.operators):
        for mine, theirs in zip(op.inputs, op32.inputs):
            if int(mine) in suspects:
                raw = _data(model32, reference.tensors[theirs])
                values = raw.view("<f4") if raw is not None else None
                half = _data(model, graph.tensors[dequantized[int(mine)][1]]).view("<u2")
                if values is None or not np.array_equal(values.astype("<f2").view("<u2"), half):
                    raise ValueError(f"no float32 constant in the fp32 graph matches {graph.tensors[mine].name}")
                found[int(mine)] = (values.reshape(reference.tensors[theirs].shape),
                                    reference.tensors[theirs].name.decode())
    return found


def _drop_tensors(model, index: int, drop: set[int]) -> None:
    """Remove tensors nothing reads any more from subgraph `index`, renumbering every reference to the others."""
    if not drop:
        return
    graph = model.subgraphs[index]
    new = {}
    tensors = []
    for old, tensor in enumerate(graph.tensors):
        if old not in drop:
            new[old] = len(tensors)
            tensors.append(tensor)
    graph.tensors = tensors
    renumber = lambda refs: None if refs is None else [new[int(r)] if r >= 0 else -1 for r in refs]  # noqa: E731
    for op in graph.operators:
        op.inputs, op.outputs = renumber(op.inputs), renumber(op.outputs)
        op.intermediates = renumber(op.intermediates)
    graph.inputs, graph.outputs = renumber(graph.inputs), renumber(graph.outputs)
    for signature in model.signatureDefs or []:
        if signature.subgraphIndex == index:
            for entry in (signature.inputs or []) + (signature.outputs or []):
                entry.tensorIndex = new[entry.tensorIndex]


# --- TF.js: weights that float16 cannot hold are written as float32

@contextlib.contextmanager
def tfjs_keep_fp32():
    """While tensorflowjs writes weights, a float16 quantization of one that float16 cannot hold is skipped
    (the weight is written as float32; model.json's manifest shows which, without `quantization`)."""
    from tensorflowjs import write_weights

    quantize = write_weights._quantize_entry

    def guarded(entry, dtype):
        data = entry["data"]
        if np.dtype(dtype) == np.float16 and data.dtype == np.float32 and not holds(data):
            return entry
        return quantize(entry, dtype)

    write_weights._quantize_entry = guarded
    try:
        yield
    finally:
        write_weights._quantize_entry = quantize


def tfjs_kept(model_json: dict) -> list[str]:
    """The float32 weights of a float16-quantized TF.js model: those tfjs_keep_fp32 kept."""
    return [w["name"] for group in model_json.get("weightsManifest", []) for w in group["weights"]
            if w.get("dtype") == "float32" and "quantization" not in w]
