"""When a reduced-precision artifact fails parity: how much of its difference the precision alone explains.

An fp16 artifact computes with weights rounded to fp16. On some models (deep random networks, whose
normalisation amplifies small changes) that rounding alone moves the output past the fp16 tolerance, and the
conversion is not to blame. PyTorch itself, with the same rounding, says which it is.
"""

from __future__ import annotations

from .errors import ParityError, first_line
from .parity import compare


def annotate_fp16(ctx, result, reference: list) -> None:
    """Add to a failed fp16 stage's error and notes how far PyTorch moves when its own floating-point weights
    and buffers are rounded to fp16 (report key `fp16_weights_in_pytorch_rel_err`). Never raises."""
    import copy

    import torch

    from .samples import reference_outputs

    try:
        rounded = copy.deepcopy(ctx.model.module)
        with torch.no_grad():
            for tensor in [*rounded.parameters(), *rounded.buffers()]:
                if tensor.is_floating_point():
                    tensor.copy_(tensor.to(torch.float16).to(tensor.dtype))
        _, outputs = reference_outputs(rounded, ctx.inputs, ctx.cases)
        own = compare(reference, outputs, result.tolerance, "pytorch").max_rel_err
    except Exception as exc:  # a diagnosis only: the stage has failed either way
        result.notes = [*result.notes, f"fp16 rounding in PyTorch: not measured ({type(exc).__name__}: "
                                       f"{first_line(exc)})"]
        return
    artifact = result.vs("pytorch").max_rel_err
    if own >= 0.5 * artifact:
        text = (f"PyTorch with its weights rounded to fp16 differs from fp32 PyTorch by rel {own:.3g} (the artifact "
                f"by {artifact:.3g}): the difference is fp16's precision on this model, not the conversion")
        hint = "use the fp32 artifact, or accept the loss with --tolerance fp16=..."
    else:
        text = (f"PyTorch with its weights rounded to fp16 differs from fp32 PyTorch by rel {own:.3g} only (the "
                f"artifact by {artifact:.3g}): the conversion adds error beyond fp16's rounding")
        hint = result.error.hint
    result.extra = {**result.extra, "fp16_weights_in_pytorch_rel_err": own}
    result.notes = [*result.notes, text]
    result.error = ParityError(f"{result.error.message}; {text}", stage=result.error.stage, hint=hint)
