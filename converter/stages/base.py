"""The stage interface: what every conversion step consumes, produces, and how its artifact is run."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Generic, TypeVar

import numpy as np

from ..layout import Binding
from ..loading import LoadedModel
from ..samples import Cases
from ..spec import Options, TensorSpec

Arrays = dict[str, np.ndarray]
T = TypeVar("T")


@dataclass(frozen=True)
class Handoff(Generic[T]):
    """A typed in-memory object one stage hands to a later one (a traced module, a TF function), so that
    nothing is built twice. It never leaves its process: a stage that takes one runs in its producer's worker."""

    name: str
    holds: str  # what the object is, for docs/architecture.md and error messages


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
    model_ref: tuple | None = None  # (source, weights, trust_model, folder): how a worker loads the model again
    reference: list[Arrays] = field(default_factory=list)  # PyTorch's outputs on the cases
    handoffs: dict[str, Any] = field(default_factory=dict)  # Handoff name -> object, in this process only

    def give(self, key: Handoff[T], value: T) -> None:
        self.handoffs[key.name] = value

    def take(self, key: Handoff[T]) -> T:
        return self.handoffs[key.name]

    def has(self, key: Handoff) -> bool:
        return key.name in self.handoffs

    def __getstate__(self) -> dict:
        # What a worker process receives: no model object (it loads its own) and no handoffs.
        return {**self.__dict__, "model": None, "handoffs": {}}

    def same_layout(self, names: dict[str, str] | None = None) -> tuple[list[Binding], list[Binding]]:
        """Bindings for an artifact that keeps PyTorch's names (or `names`), shapes and layouts."""
        names = names or {}

        def bind(spec: TensorSpec) -> Binding:
            return Binding(spec.name, names.get(spec.name, spec.name), list(spec.shape), spec.layout,
                           list(range(len(spec.shape))))

        return [bind(s) for s in self.inputs], [bind(s) for s in self.outputs]


class Skipped(Exception):
    """Raised by a stage's convert when it cannot run on this machine (a browser stage without Chromium): the
    stage is reported as skipped with this reason, and the run goes on."""


IO_RECORD = "converter_io.json"  # the name under which artifacts that can carry files carry io_record()


def io_record(ctx: Context, inputs: list[Binding], outputs: list[Binding]) -> str:
    """The model's tensors and this artifact's bindings (names, shapes, layouts, perms) as stable JSON, for
    embedding in the artifact itself: an artifact copied away from metadata.json still says its layouts."""
    return json.dumps({"format": 1, "model_inputs": [s.to_json() for s in ctx.inputs],
                       "model_outputs": [s.to_json() for s in ctx.outputs],
                       "inputs": [b.to_json() for b in inputs], "outputs": [b.to_json() for b in outputs]},
                      sort_keys=True)


class Stage:
    """One conversion step, declared for the stage graph (converter/graph.py):

    - `target`: the --targets name that selects it;
    - `after`: the stage whose artifact it converts ("pytorch" for the model); its outputs are compared with
      that stage's as well as PyTorch's;
    - `needs`: other stages whose artifacts it reads;
    - `uses`: stages whose artifacts it reads when the plan has them anyway (not built for it; the browser
      stage runs the TFLite file only when --targets asks for TFLite);
    - `takes` / `gives`: typed in-memory handoffs; a stage that takes one runs in the worker of the stage
      that gives it;
    - `default`: whether a run without --targets builds it;
    - `worker`: the process it runs in ("main" is the one that loaded the model); `env`: the virtual
      environment (a folder under the project root) that worker's Python comes from, None for this one.

    A stage is registered once, in converter/stages/__init__.py.
    """

    name: str
    target: str
    after: str = "pytorch"
    needs: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    takes: tuple[Handoff, ...] = ()
    gives: tuple[Handoff, ...] = ()
    worker: str = "main"
    env: str | None = None
    precision: str = "fp32"
    default: bool = True  # built when --targets is not given

    def configure(self, options: Options) -> Stage:
        """This stage as the options ask for it (the TF.js stage takes its precision from --quantize)."""
        return self

    def wanted(self, options: Options | None) -> bool:
        """Whether a run with these options builds this stage when its target is asked for (a quantized
        stage only with its --quantize). None: no options known (listing the plan), the stage's own default."""
        return True

    def gate(self, ctx: Context, result, outputs: dict) -> tuple[str, str] | None:
        """For an artifact that is meant to differ from PyTorch (a quantized one): judge it instead of the
        tolerance. `result` holds the comparisons already; `outputs` every finished stage's outputs by name.
        Return (status, reason) with status "passed", "degenerate" or "failed" (reason: the numbers), or None
        to let the tolerance decide."""
        return None

    def options_key(self, options: Options) -> dict:
        """The options its artifact depends on, beyond the model and the inputs: part of its cache key."""
        return {}

    def warm_up(self) -> None:
        """Import what the stage needs, in its worker, while the stages before it run elsewhere."""

    def convert(self, ctx: Context) -> Artifact:
        raise NotImplementedError

    def run(self, ctx: Context, artifact: Artifact, cases: list[Arrays]) -> list[Arrays]:
        """Run the artifact in its real runtime on inputs already in its layout, keyed by PyTorch names;
        return outputs keyed by PyTorch names, still in the artifact's layout. A stage that runs its artifact
        on several backends returns {backend: outputs}, its main one first."""
        raise NotImplementedError

    def start_run(self, ctx: Context, artifact: Artifact, cases: list[Arrays]) -> Callable[[], Any]:
        """Start `run` and return what waits for its result: a stage whose runtime is another process (Node.js)
        lets its worker convert the next stage meanwhile."""
        return lambda: self.run(ctx, artifact, cases)

    def tolerance_for(self, runtime: str, tolerance: float, options: Options) -> float:
        """The tolerance one runtime's outputs are held to (`runtime` as keyed by run's result); the stage's
        own by default. A stage that runs several artifacts (the browser stage) holds each to its precision's."""
        return tolerance

    def diagnose(self, ctx: Context, result) -> None:
        """Called in the stage's worker when it failed: attach what explains the failure to `result` (notes,
        extra report keys, a better error). Never raises."""
