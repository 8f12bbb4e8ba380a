"""Where a TF.js graph model starts to compute something else than its own graph says: the first diverging node.

The tfjs stage's counterpart of converter/diverge.py (the saved_model stage's first diverging onnx2tf op). Both
sides run the same tfjs/model.json on one input case with every node's output exposed: TensorFlow, on the graph
rebuilt from model.json (tfjs_audit.tf_graph_def: tensorflowjs's own ops and the fused ops expanded into
TensorFlow ops with the same math, the weights read from the shards), and TF.js in Node.js on each backend the
stage checks (converter/js/run_tfjs.mjs asked for every node's tensor, a batch at a time). The tensors are
compared in topological order, by the error relative to TensorFlow's tensor's scale like every other parity
check here (docs/artifacts.md); the first one past the stage's tolerance names the node to blame, and the
backends on which it diverges. When none diverges, TF.js runs the graph as TensorFlow would, and the graph
itself is what differs (tensorflowjs's conversion or the converter's rewrites): the note says how far
TensorFlow's run of it is from PyTorch.
"""

from __future__ import annotations

import heapq
import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .parity import SCALE_FLOOR

BATCH = 64  # tensors TF.js fetches per execution of the graph: what it holds at once
SKIPPED_OPS = ("Const", "Placeholder", "NoOp")  # weights and inputs agree by construction; NoOp has no output
SEARCHED_CASES = 4  # the cases annotate searches, one after another, for the one that shows the fault


@dataclass
class DivergingNode:
    node: str  # the model.json node's name
    op: str
    output: str  # the tensor that diverged ("name:0")
    shape: list[int]  # TensorFlow's
    max_abs_err: float  # the worst of the diverging backends
    max_rel_err: float
    reference_scale: float  # max |TensorFlow's tensor|
    backends: list[str]  # the backends on which it diverges
    errors: dict[str, dict]  # backend -> {max_abs_err, max_rel_err, shape}, every backend that ran
    checked: int  # how many tensors were compared, this one included

    def to_json(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        def numbers(e: dict) -> str:
            if not np.isfinite(e["max_abs_err"]):
                return "NaN or Inf where TensorFlow has none" if e["shape"] == self.shape else f"shape {e['shape']}"
            return f"max abs {e['max_abs_err']:.3g}, rel {e['max_rel_err']:.3g}"

        return (f"first diverging TF.js node: {self.op} node {self.node!r} (output {self.output}, shape {self.shape}) "
                "differs from TensorFlow's run of the same model.json on "
                + " and ".join(f"{b} ({numbers(self.errors[b])})" for b in self.backends))


@dataclass
class NodeSearch:
    first: DivergingNode | None
    checked: int  # tensors compared
    backends: list[str]  # the backends that ran
    failed: dict[str, str] = field(default_factory=dict)  # backend -> why it did not run
    unfetched: list[str] = field(default_factory=list)  # tensors TF.js could not compute when asked for
    tf_values: dict[str, np.ndarray] = field(default_factory=dict)  # TensorFlow's value of every tensor in `also`


def topological(nodes: list[dict]) -> list[dict]:
    """model.json's nodes, producers before consumers (control inputs included), otherwise in file order:
    tensorflowjs writes them in no guaranteed order, and the rewrites append theirs at the end."""
    index = {n["name"]: i for i, n in enumerate(nodes)}
    needs = [{index[_node_of(x)] for x in n.get("input", []) if _node_of(x) in index} - {i} for i, n in enumerate(nodes)]
    users: list[list[int]] = [[] for _ in nodes]
    for i, producers in enumerate(needs):
        for p in producers:
            users[p].append(i)
    waiting = [len(p) for p in needs]
    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for u in users[i]:
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, u)
    placed = set(order)
    order += [i for i in range(len(nodes)) if i not in placed]  # a cycle (control flow): file order
    return [nodes[i] for i in order]


def _node_of(tensor: str) -> str:
    return tensor.lstrip("^").split(":")[0]


def _tensor(name: str) -> str:
    return name if ":" in name else f"{name}:0"


def search(model_json_path: Path, feeds: dict[str, np.ndarray], tolerance: float, log: Path,
           backends=None, also: tuple[str, ...] | list[str] = (), batch: int = BATCH) -> NodeSearch:
    """Compare every float tensor of model.json's nodes, TF.js (each of `backends`, default the stage's) against
    TensorFlow, on one case: `feeds` maps graph input names ("x:0") to arrays in the graph's layout. `also`:
    tensors whose TensorFlow value to return (the signature's outputs). Raises when TensorFlow cannot build
    or run the graph, or Node.js does not start."""
    from .stages.saved_model import import_tensorflow
    from .stages.tfjs import NODE_BACKENDS, read_tensor, start_node_request
    from .stages.tfjs_audit import tf_graph_def

    tf = import_tensorflow()
    backends = list(backends or NODE_BACKENDS)
    model_json = json.loads(model_json_path.read_text())
    nodes = topological(model_json["modelTopology"]["node"])
    graph_def = tf_graph_def(model_json, model_json_path.parent)
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")

    # Output 0 of every node, and any other output that a node or the signature reads.
    read = {_tensor(x) for n in nodes for x in n.get("input", []) if not x.startswith("^")} | {_tensor(a) for a in also}
    candidates: list[tuple[dict, str]] = []
    for node in nodes:
        if node["op"] in SKIPPED_OPS:
            continue
        outputs = graph.get_operation_by_name(node["name"]).outputs
        for k, t in enumerate(outputs):
            if (k == 0 or t.name in read) and t.dtype.is_floating:
                candidates.append((node, t.name))
    names = [t for _, t in candidates]
    feed_dict = {}
    for name, value in feeds.items():
        placeholder = graph.get_tensor_by_name(_tensor(name))
        feed_dict[placeholder] = np.asarray(value).astype(placeholder.dtype.as_numpy_dtype)
    config = tf.compat.v1.ConfigProto()
    config.graph_options.rewrite_options.disable_meta_optimizer = True  # every node computes what it says

    # TF.js writes every tensor to files in one Node.js process (holding `batch` at a time); TensorFlow computes
    # them `batch` at a time in the same order, and the walk stops at the first divergence: the memory held is a
    # batch's, whatever the model's size.
    with tempfile.TemporaryDirectory(prefix="tfjs-diverge-") as folder, \
            tf.compat.v1.Session(graph=graph, config=config) as session:
        reply = start_node_request(model_json_path, [list(feeds.items())], names, log, batch=batch,
                                   backends=backends, folder=Path(folder))()
        metas, failed = {}, {}
        for backend in backends:
            run = reply["backends"].get(backend, {"error": "did not run"})
            if "error" in run:
                failed[backend] = run["error"]
            else:
                metas[backend] = dict(zip(names, run["cases"][0]["outputs"]))
        unfetched = sorted({n for m in metas.values() for n, meta in m.items() if "file" not in meta})
        tf_values = {a: np.asarray(v) for a, v in zip(also, session.run([_tensor(a) for a in also], feed_dict))}
        found, checked = None, 0
        for start in range(0, len(candidates), batch) if metas else []:
            chunk = candidates[start:start + batch]
            expected = session.run([t for _, t in chunk], feed_dict)
            for (node, name), want in zip(chunk, expected):
                want = np.asarray(want)
                errors = {b: _error(want, read_tensor(m[name])) for b, m in metas.items() if "file" in m[name]}
                if not errors:
                    continue
                checked += 1
                diverging = [b for b, e in errors.items()
                             if not np.isfinite(e["max_abs_err"]) or e["max_rel_err"] > tolerance]
                if diverging:
                    worst = max(diverging, key=lambda b: (errors[b]["max_rel_err"], errors[b]["max_abs_err"]))
                    found = DivergingNode(node["name"], node["op"], name, list(want.shape), errors[worst]["max_abs_err"],
                                          errors[worst]["max_rel_err"], _scale(want), diverging, errors, checked)
                    break
            if found is not None:
                break
    return NodeSearch(found, checked, list(metas), failed, unfetched, tf_values)


def find_first_diverging_node(model_json_path: Path, feeds: dict[str, np.ndarray], tolerance: float, log: Path,
                              backends=None) -> DivergingNode | None:
    """The first node (topologically) whose TF.js output differs from TensorFlow's beyond `tolerance` (relative
    to TensorFlow's tensor's scale) on any of `backends`; None when every tensor agrees."""
    return search(model_json_path, feeds, tolerance, log, backends).first


def _scale(want: np.ndarray) -> float:
    finite = np.abs(want[np.isfinite(want)].astype(np.float64))
    return float(finite.max()) if finite.size else 0.0


def _error(want: np.ndarray, have: np.ndarray) -> dict:
    """{max_abs_err, max_rel_err, shape} of TF.js's `have` against TensorFlow's `want`. NaN or Inf where TensorFlow
    has the same counts as agreement; a different element count (or any other NaN/Inf) is an infinite error."""
    shape = list(have.shape)
    if have.size != want.size:
        return {"max_abs_err": float("inf"), "max_rel_err": float("inf"), "shape": shape}
    w, h = want.astype(np.float64).ravel(), have.astype(np.float64).ravel()
    with np.errstate(invalid="ignore"):
        same = (w == h) | (np.isnan(w) & np.isnan(h))
        diff = np.where(same, 0.0, np.abs(h - w))
    diff[np.isnan(diff)] = np.inf
    max_abs = float(diff.max()) if diff.size else 0.0
    return {"max_abs_err": max_abs, "max_rel_err": max_abs / max(_scale(want), SCALE_FLOOR), "shape": shape}


def annotate(ctx, result) -> None:
    """Name the first diverging TF.js node in a tfjs stage result that failed parity: report key
    `first_diverging_node` (null when every node matched) and a line in its notes (report.html shows notes).
    Never raises: a failure to locate it becomes a note."""
    from .errors import first_line
    from .layout import from_artifact, to_artifact

    artifact = ctx.artifacts.get("tfjs")
    if artifact is None:
        return
    # Case by case (up to SEARCHED_CASES) until one shows the fault: TF.js may compute one case right and another
    # wrong (a mixture of experts' top-k routing on the cpu backend).
    cases = ctx.cases.inputs[:SEARCHED_CASES]
    for index, case in enumerate(cases):
        feeds = {b.artifact_name: to_artifact(case[b.name], b.perm) for b in artifact.inputs}
        try:
            found = search(ctx.work / artifact.path, feeds, result.tolerance, ctx.work / "logs" / "tfjs.node.log",
                           also=[b.artifact_name for b in artifact.outputs])
            graph_error = None
            if found.first is None and index < len(ctx.reference or []):
                errors = []
                for b in artifact.outputs:
                    want = np.asarray(ctx.reference[index][b.name])
                    errors.append(_error(want, from_artifact(found.tf_values[b.artifact_name], b.perm))["max_rel_err"])
                graph_error = max(errors, default=0.0)
        except (Exception, SystemExit) as exc:
            result.notes = [*result.notes, f"first diverging TF.js node: not located ({type(exc).__name__}: "
                                           f"{first_line(exc)})"]
            return
        if found.first is not None or not found.backends or graph_error is None or graph_error > result.tolerance:
            break
    which = "the first case" if index == 0 else f"case {index + 1} of {len(cases)}"
    notes = [f"first diverging TF.js node: {b} did not run ({why})" for b, why in found.failed.items()]
    if found.unfetched:
        notes.append(f"first diverging TF.js node: TF.js could not return {len(found.unfetched)} tensors alone "
                     f"(not compared), e.g. {found.unfetched[0]}")
    if not found.backends:
        result.notes = [*result.notes, *notes]
        return
    if found.first is not None:
        result.extra = {**result.extra, "first_diverging_node": found.first.to_json()}
        result.notes = [*result.notes, *notes, found.first.describe() + ("" if index == 0 else f" ({which})")]
        return
    line = (f"first diverging TF.js node: none; all {found.checked} node outputs matched TensorFlow running the same "
            f"model.json on {which} ({', '.join(found.backends)})")
    if graph_error is not None:
        line += (f", and TensorFlow's run of that graph is off from PyTorch by rel {graph_error:.3g}, so the graph "
                 "itself computes something else (tensorflowjs's conversion or the converter's rewrites)"
                 if graph_error > result.tolerance else
                 f", and TensorFlow's run of that graph matches PyTorch there (rel {graph_error:.3g}), on every case: "
                 "run one by one, the nodes compute what the whole model did not")
    result.extra = {**result.extra, "first_diverging_node": None}
    result.notes = [*result.notes, *notes, line]
