"""Turn the user's MODEL argument into an eval-mode nn.Module, without running code nobody asked for.

MODEL is one of:
- `path/to/file.py:callable` or `package.module:callable` (a function or class returning an nn.Module, or an
  nn.Module object): the user's own code, which they asked us to import;
- a `torch.export` archive (`.pt2`);
- a TorchScript archive (`.pt`, `.pth`, `.ptl`): its code runs inside TorchScript's interpreter, so it needs
  `--trust-model`;
- a full pickle of a module (`torch.save(model)`): unpickling runs arbitrary Python, so it needs
  `--trust-model` too. Without it, pickles only ever go through `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UsageError, first_line

STAGE = "load"
TRUST_HINT = "only if you trust where the file came from, add --trust-model (it lets the file run code)"


@dataclass
class LoadedModel:
    module: Any  # torch.nn.Module or torch.jit.ScriptModule
    source: str
    kind: str  # "python", "torchscript", "export", "pickle"
    input_names: list[str]
    metadata: dict = field(default_factory=dict)  # labels, preprocessing (CONVERTER_METADATA)
    required_inputs: int | None = None  # forward's arguments without a default, when known


def load_model(spec: str, *, weights: Path | None = None, trust_model: bool = False) -> LoadedModel:
    import torch

    path = Path(spec)
    if path.suffix == ".onnx":
        raise UsageError(f"{path} is an ONNX file; the converter starts from the PyTorch model", stage=STAGE,
                         hint="pass the PyTorch model that the ONNX file came from (file.py:build, .pt2 or .pt)")
    if path.suffix in {".pt", ".pth", ".ptl", ".pt2"} or (path.exists() and ":" not in spec):
        loaded = _load_file(path, trust_model)
    else:
        loaded = _load_callable(spec)
    # Checked before the weights go in: load_state_dict on something else would fail with an AttributeError.
    if not isinstance(loaded.module, torch.nn.Module):
        raise UsageError(
            f"{spec} gave a {type(loaded.module).__name__}, not a torch.nn.Module",
            stage=STAGE,
            hint="point MODEL at a function or class that returns an nn.Module",
        )
    if weights is not None:
        _load_weights(loaded.module, weights)
    loaded.module.eval()
    if loaded.required_inputs is None:
        loaded.required_inputs = _required_count(loaded.module, loaded.kind)
    return loaded


def _load_callable(spec: str) -> LoadedModel:
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise UsageError(
            f"cannot read MODEL {spec!r}",
            stage=STAGE,
            hint="use path/to/file.py:build, package.module:build, or a .pt/.pt2 file",
        )
    module = _import(target)
    if not hasattr(module, attr):
        raise UsageError(f"{target} has no attribute {attr!r}", stage=STAGE, hint="check the name after the colon")
    obj = getattr(module, attr)
    import torch

    if not isinstance(obj, torch.nn.Module) and callable(obj):
        try:
            obj = obj()
        except Exception as exc:
            raise UsageError(
                f"calling {spec} raised {type(exc).__name__}: {exc}",
                stage=STAGE,
                hint="the callable must build the model with no arguments",
            ) from exc
    metadata = dict(getattr(module, "CONVERTER_METADATA", {}) or {})
    return LoadedModel(obj, spec, "python", _forward_arg_names(obj), metadata)


def _import(target: str):
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise UsageError(f"no such file: {target}", stage=STAGE, hint="check the path before the colon")
        name = f"_converter_model_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        # Registered before it runs, as `import` does: dataclasses and pickling look the module up by name.
        sys.modules[name] = module
        # The file's own folder goes on the path so that it can import its sibling modules.
        sys.path.insert(0, str(path.resolve().parent))
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(name, None)
            raise UsageError(
                f"importing {target} raised {type(exc).__name__}: {exc}", stage=STAGE, hint="fix the error in that file"
            ) from exc
        finally:
            sys.path.remove(str(path.resolve().parent))
        return module
    try:
        return importlib.import_module(target)
    except Exception as exc:
        raise UsageError(
            f"importing {target} raised {type(exc).__name__}: {exc}",
            stage=STAGE,
            hint="check that the module is installed and imports cleanly",
        ) from exc


def _load_file(path: Path, trust_model: bool) -> LoadedModel:
    import torch

    if not path.is_file():
        raise UsageError(f"no such file: {path}", stage=STAGE, hint="check the MODEL path")
    if path.stat().st_size == 0:
        raise UsageError(f"{path} is empty", stage=STAGE, hint="re-export the model; the file holds no bytes")
    if path.suffix == ".pt2":
        try:
            program = torch.export.load(str(path))
        except Exception as exc:
            raise UsageError(
                f"{path} is not a readable torch.export archive ({type(exc).__name__}: {first_line(exc)})",
                stage=STAGE,
                hint="re-create it with torch.export.save(torch.export.export(model, args), path)",
            ) from exc
        names = [s.arg.name for s in program.graph_signature.input_specs if s.kind.name == "USER_INPUT"]
        return LoadedModel(program.module(), str(path), "export", names)
    if not zipfile.is_zipfile(path):
        raise UsageError(
            f"{path} is neither a TorchScript nor a torch.save archive (truncated or not a model file)",
            stage=STAGE,
            hint="check the file was copied whole; re-save it with torch.jit.save or torch.save",
        )
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    is_torchscript = any(n.split("/", 1)[-1].startswith(("code/", "constants.pkl")) for n in names)
    if is_torchscript:
        if not trust_model:
            raise UsageError(f"{path} is a TorchScript archive, which carries code", stage=STAGE, hint=TRUST_HINT)
        try:
            module = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:
            raise UsageError(
                f"{path} is a damaged TorchScript archive ({first_line(exc)})", stage=STAGE, hint="re-save the model"
            ) from exc
        names = [a.name for a in module.forward.schema.arguments[1:]]
        return LoadedModel(module, str(path), "torchscript", names)
    # A torch.save pickle: first try the safe loader, which accepts only tensors and plain containers.
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        if not trust_model:
            raise UsageError(
                f"{path} is a full pickle; loading it would run code from the file",
                stage=STAGE,
                hint=TRUST_HINT + ", or save a state dict and pass the architecture as file.py:build --weights",
            ) from exc
        try:
            module = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc2:
            raise UsageError(f"cannot unpickle {path}: {first_line(exc2)}", stage=STAGE) from exc2
        return LoadedModel(module, str(path), "pickle", _forward_arg_names(module))
    raise UsageError(
        f"{path} holds only weights ({type(state).__name__}), not a model",
        stage=STAGE,
        hint="pass the architecture as MODEL (file.py:build) and this file as --weights",
    )


def _load_weights(module, weights: Path) -> None:
    import torch

    if not weights.is_file():
        raise UsageError(f"no such weights file: {weights}", stage=STAGE, hint="check the --weights path")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UsageError(
            f"{weights} is not a state dict that loads safely ({first_line(exc)})",
            stage=STAGE,
            hint="save it with torch.save(model.state_dict(), path); full pickles are never unpickled here",
        ) from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UsageError(f"{weights} holds a {type(state).__name__}, not a state dict", stage=STAGE)
    try:
        module.load_state_dict(state)
    except Exception as exc:
        raise UsageError(
            f"{weights} does not fit the model: {first_line(exc)}",
            stage=STAGE,
            hint="check the weights belong to this architecture",
        ) from exc


def _required_count(module, kind: str) -> int | None:
    """How many of forward's arguments have no default (None when forward cannot be inspected)."""
    if kind == "torchscript":
        return sum(1 for a in module.forward.schema.arguments[1:] if not a.has_default_value())
    try:
        params = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError, AttributeError):
        return None
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return None
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty)


def _forward_arg_names(module) -> list[str]:
    try:
        params = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError, AttributeError):
        return []
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
