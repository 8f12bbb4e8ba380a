"""The stage interface: what every conversion step consumes, produces, and how its artifact is run."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..layout import Binding
from ..loading import LoadedModel
from ..samples import Cases
from ..spec import Options, TensorSpec

Arrays = dict[str, np.ndarray]


@dataclass
class Artifact:
    path: Path  # relative to the output folder
    precision: str
    inputs: list[Binding]
    outputs: list[Binding]
    notes: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # stage-specific facts for the report (opset, bytecode version)
    bundle: Path | None = None  # the folder that ships with `path` (model.json and its shards), if any

    def to_json(self) -> dict:
        return {"path": str(self.path), "precision": self.precision,
                "inputs": [b.to_json() for b in self.inputs], "outputs": [b.to_json() for b in self.outputs]}


@dataclass
class Context:
    work: Path  # the temporary output folder
    model: LoadedModel
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    cases: Cases
    options: Options
    artifacts: dict[str, Artifact] = field(default_factory=dict)
    # In-process objects one stage hands to a later one (the traced module), so nothing is built twice.
    shared: dict[str, Any] = field(default_factory=dict)

    def same_layout(self, names: dict[str, str] | None = None) -> tuple[list[Binding], list[Binding]]:
        """Bindings for an artifact that keeps PyTorch's names (or `names`), shapes and layouts."""
        names = names or {}

        def bind(spec: TensorSpec) -> Binding:
            return Binding(spec.name, names.get(spec.name, spec.name), list(spec.shape), spec.layout,
                           list(range(len(spec.shape))))

        return [bind(s) for s in self.inputs], [bind(s) for s in self.outputs]


IO_RECORD = "converter_io.json"  # the name under which artifacts that can carry files carry io_record()


def io_record(ctx: Context, inputs: list[Binding], outputs: list[Binding]) -> str:
    """The model's tensors and this artifact's bindings (names, shapes, layouts, perms) as stable JSON, for
    embedding in the artifact itself: an artifact copied away from metadata.json still says its layouts."""
    return json.dumps({"format": 1, "model_inputs": [s.to_json() for s in ctx.inputs],
                       "model_outputs": [s.to_json() for s in ctx.outputs],
                       "inputs": [b.to_json() for b in inputs], "outputs": [b.to_json() for b in outputs]},
                      sort_keys=True)


class Stage:
    """One conversion step. `after` names the stage whose artifact it consumes ("pytorch" for the model)."""

    name: str
    after: str
    precision: str = "fp32"

    def convert(self, ctx: Context) -> Artifact:
        raise NotImplementedError

    def run(self, ctx: Context, artifact: Artifact, cases: list[Arrays]) -> list[Arrays]:
        """Run the artifact in its real runtime on inputs already in its layout, keyed by PyTorch names;
        return outputs keyed by PyTorch names, still in the artifact's layout."""
        raise NotImplementedError
