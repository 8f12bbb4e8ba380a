"""Inference on a converted folder, for servers: request decoding and validation, the golden check a server
runs before it takes traffic, and the SageMaker serving contract (`model_fn`, `input_fn`, `predict_fn`,
`output_fn`).

Self-contained on purpose (the standard library, numpy, and onnxruntime or torch imported lazily): `python -m
converter package DIR --sagemaker OUT.tar.gz` copies this file into the archive as `code/inference.py`, where
SageMaker's framework container imports it without the converter installed. The Ray Serve endpoint
(converter/endpoint.py) uses the same code, so the two cannot drift apart.

Request formats (README, "Serving"):
- SageMaker `/invocations`: `application/json`, an object {input name: nested list} (a one-input model also takes
  the bare nested list), answered with {output name: nested list}; `application/x-npy` (one input, one output:
  np.save's bytes) and `application/x-npz` (np.savez, keyed by name) both ways.
- KServe open inference protocol v2: `{"inputs": [{"name", "shape", "datatype", "data"}]}`, answered with
  `{"model_name", "outputs": [{"name", "shape", "datatype", "data"}]}`.
Inputs are checked against metadata.json: every name, the shape (the axes the folder was converted with as dynamic,
`--dynamic-batch`'s axis 0, take any size) and the dtype. A bad request raises RequestError with an HTTP status.
"""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

import numpy as np

try:  # inside SageMaker's containers: its toolkit turns these errors into responses with their own status
    from sagemaker_inference.errors import BaseInferenceToolkitError as _ToolkitError
except ImportError:
    _ToolkitError = None

ARTIFACTS = {"onnx": "model.onnx", "torchscript": "model.pt"}
PLATFORMS = {"onnx": "onnxruntime_onnx", "torchscript": "pytorch_torchscript"}
# KServe v2 datatypes <-> numpy
V2_TYPES = {"BOOL": "bool", "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64", "UINT8": "uint8",
            "FP16": "float16", "FP32": "float32", "FP64": "float64"}
V2_NAMES = {v: k for k, v in V2_TYPES.items()}
SCALE_FLOOR = 1e-12  # as converter/parity.py: the error is relative to the reference's largest magnitude
NPY, NPZ, JSON = "application/x-npy", "application/x-npz", "application/json"


class RequestError(Exception if _ToolkitError is None else _ToolkitError):
    """A request the model cannot take: `status` is the HTTP status (400, 404, 406, 413, 415)."""

    def __init__(self, message: str, status: int = 400):
        if _ToolkitError is None:
            Exception.__init__(self, message)
        else:
            _ToolkitError.__init__(self, status, message, "Bad Request" if status == 400 else "Client Error")
        self.status = status
        self.message = message

    def __str__(self) -> str:
        return self.message


class GoldenError(RuntimeError):
    """The artifact's outputs on golden/ are outside tolerance: a server must not take traffic with it."""


class Model:
    """A converted folder's model.onnx (ONNX Runtime) or model.pt (TorchScript), with its input contract."""

    def __init__(self, folder: str | os.PathLike, artifact: str = "onnx", threads: int | None = None):
        self.folder = Path(folder)
        if artifact not in ARTIFACTS:
            raise ValueError(f"artifact must be one of {sorted(ARTIFACTS)}, not {artifact!r}")
        self.artifact = artifact
        self.path = self.folder / ARTIFACTS[artifact]
        meta_path = self.folder / "metadata.json"
        if not meta_path.is_file() or not self.path.is_file():
            missing = meta_path if not meta_path.is_file() else self.path
            raise FileNotFoundError(f"{missing} is missing: is {self.folder} a folder `python -m converter "
                                    f"convert` wrote (with the {artifact} target)?")
        self.metadata = json.loads(meta_path.read_text())
        self.inputs: list[dict] = self.metadata["inputs"]
        self.outputs: list[dict] = self.metadata["outputs"]
        self._run = self._load_onnx(threads) if artifact == "onnx" else self._load_torchscript(threads)

    # --- the runtimes
    def _load_onnx(self, threads: int | None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        names = [i.get("artifact_name", i["name"]) for i in self.metadata["artifacts"]["onnx"]["inputs"]] \
            if "onnx" in self.metadata.get("artifacts", {}) else [i.name for i in session.get_inputs()]

        def run(arrays: list[np.ndarray]) -> list[np.ndarray]:
            return session.run(None, dict(zip(names, arrays)))

        return run

    def _load_torchscript(self, threads: int | None):
        import torch

        if threads:
            torch.set_num_threads(threads)
        module = torch.jit.load(str(self.path), map_location="cpu").eval()

        def run(arrays: list[np.ndarray]) -> list[np.ndarray]:
            with torch.no_grad():
                result = module(*(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays))
            return [t.numpy() for t in _leaves(result, torch.Tensor)]

        return run

    # --- inference
    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs by name for validated inputs (see `validate`)."""
        arrays = self._run([inputs[spec["name"]] for spec in self.inputs])
        return {spec["name"]: np.asarray(a) for spec, a in zip(self.outputs, arrays)}

    def validate(self, inputs: dict[str, object], strict_dtype: bool) -> dict[str, np.ndarray]:
        """Every declared input, by name, as an array of its declared shape and dtype. `strict_dtype`: the data
        came typed (.npy, a v2 datatype) and must have the declared dtype; otherwise (JSON numbers) it must be
        representable in it (no fractions for integers, only true/false for bool)."""
        expected = [spec["name"] for spec in self.inputs]
        unknown = sorted(set(inputs) - set(expected))
        if unknown:
            raise RequestError(f"unknown input(s) {unknown}; this model takes {expected}")
        missing = [name for name in expected if name not in inputs]
        if missing:
            raise RequestError(f"missing input(s) {missing}; this model takes {expected}")
        return {spec["name"]: self._check(spec, inputs[spec["name"]], strict_dtype) for spec in self.inputs}

    def _check(self, spec: dict, value: object, strict_dtype: bool) -> np.ndarray:
        name, dtype = spec["name"], np.dtype(spec["dtype"])
        try:
            array = np.asarray(value)
        except ValueError:
            raise RequestError(f"input {name!r} is not a rectangular array") from None
        if strict_dtype:
            if array.dtype != dtype:
                raise RequestError(f"input {name!r} has dtype {array.dtype}, this model takes {dtype}")
        else:
            array = _from_json_numbers(name, array, dtype)
        dynamic = set(spec.get("dynamic_axes", ()))
        shape = spec["shape"]
        if array.ndim != len(shape) or any(a != s and i not in dynamic for i, (a, s) in enumerate(zip(array.shape,
                                                                                                      shape))):
            raise RequestError(f"input {name!r} has shape {list(array.shape)}, this model takes "
                               f"{self.shape_text(spec)}")
        if any(array.shape[i] == 0 for i in dynamic):
            raise RequestError(f"input {name!r} has an empty batch")
        return array

    def shape_text(self, spec: dict) -> str:
        dynamic = set(spec.get("dynamic_axes", ()))
        return "[" + ", ".join("?" if i in dynamic else str(s) for i, s in enumerate(spec["shape"])) + "]"

    def v2_shape(self, spec: dict) -> list[int]:
        dynamic = set(spec.get("dynamic_axes", ()))
        return [-1 if i in dynamic else s for i, s in enumerate(spec["shape"])]

    def check_golden(self) -> None:
        """Run every golden case; raise GoldenError when an output is outside the fp32 tolerance relative to
        PyTorch's scale."""
        golden = self.folder / "golden"
        doc = json.loads((golden / "golden.json").read_text())
        tolerance = float(doc["tolerances"]["fp32"])
        for case in doc["cases"]:
            inputs = {s["name"]: np.load(golden / f"input_{s['name']}_{case['name']}.npy") for s in self.inputs}
            got = self.predict(inputs)
            for spec in self.outputs:
                want = np.load(golden / f"output_{spec['name']}_{case['name']}.npy")
                scale = max(float(np.max(np.abs(want), initial=0.0)), SCALE_FLOOR)
                err = float(np.max(np.abs(got[spec["name"]].astype(np.float64) - want), initial=0.0)) / scale \
                    if got[spec["name"]].shape == want.shape else math.inf
                if not err <= tolerance:
                    raise GoldenError(f"{self.path.name} on golden case {case['name']!r}, output {spec['name']!r}: "
                                      f"error {err:.3g} of PyTorch's scale, tolerance {tolerance:g}")


def _leaves(value, tensor_type) -> list:
    """Tensors of a (nested) tuple, list or dict result, depth first, None left out: the converter's output order."""
    if isinstance(value, tensor_type):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    return [leaf for item in (value or ()) if item is not None for leaf in _leaves(item, tensor_type)]


def _from_json_numbers(name: str, array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    kind = array.dtype.kind
    if kind not in "biuf":
        raise RequestError(f"input {name!r} holds {'text or nulls' if kind in 'OUS' else array.dtype}, "
                           f"not numbers of dtype {dtype}")
    if dtype.kind == "b":
        if kind != "b":
            raise RequestError(f"input {name!r} must hold true/false (dtype bool)")
    elif dtype.kind in "iu":
        if kind == "b" or (kind == "f" and not np.all(np.isfinite(array) & (array == np.round(array)))):
            raise RequestError(f"input {name!r} must hold integers (dtype {dtype})")
        info = np.iinfo(dtype)
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise RequestError(f"input {name!r} has values outside {dtype}'s range")
    elif kind == "b":
        raise RequestError(f"input {name!r} must hold numbers (dtype {dtype}), not true/false")
    return array.astype(dtype)


# --- the SageMaker contract
def decode_sagemaker(model: Model, body: bytes, content_type: str) -> dict[str, np.ndarray]:
    content_type = (content_type or JSON).split(";")[0].strip().lower()
    names = [spec["name"] for spec in model.inputs]
    if content_type == JSON:
        doc = _json(body)
        if not isinstance(doc, dict):
            if len(names) != 1:
                raise RequestError(f"send an object keyed by input name: this model takes {names}")
            doc = {names[0]: doc}
        return model.validate(doc, strict_dtype=False)
    if content_type in (NPY, NPZ):
        try:
            loaded = np.load(io.BytesIO(body), allow_pickle=False)
            archive = isinstance(loaded, np.lib.npyio.NpzFile)
            arrays = {k: loaded[k] for k in loaded.files} if archive else {names[0]: loaded}
        except (ValueError, OSError, EOFError, KeyError) as exc:
            raise RequestError(f"the body is not a valid {content_type} file: {exc}") from None
        if not archive and len(names) != 1:
            raise RequestError(f"{NPY} carries one array and this model takes {names}: send {NPZ}")
        return model.validate(arrays, strict_dtype=True)
    raise RequestError(f"content type {content_type!r} is not supported: use {JSON}, {NPY} or {NPZ}", status=415)


def encode_sagemaker(outputs: dict[str, np.ndarray], accept: str) -> tuple[bytes, str]:
    accept = (accept or JSON).split(",")[0].split(";")[0].strip().lower()
    if accept in (JSON, "*/*", ""):
        return json.dumps({k: _jsonable(v) for k, v in outputs.items()}).encode(), JSON
    buffer = io.BytesIO()
    if accept == NPY:
        if len(outputs) != 1:
            raise RequestError(f"{NPY} carries one array and this model has outputs {list(outputs)}: accept {NPZ}",
                               status=406)
        np.save(buffer, next(iter(outputs.values())), allow_pickle=False)
        return buffer.getvalue(), NPY
    if accept == NPZ:
        np.savez(buffer, **outputs)
        return buffer.getvalue(), NPZ
    raise RequestError(f"accept {accept!r} is not supported: use {JSON}, {NPY} or {NPZ}", status=406)


def _jsonable(array: np.ndarray) -> list:
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        return np.where(np.isfinite(array), array, None).tolist()  # JSON has no NaN or Inf: null
    return array.tolist()


def _json(body: bytes):
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(f"the body is not valid JSON: {exc}") from None


# --- KServe open inference protocol v2
def decode_v2(model: Model, body: bytes) -> tuple[dict[str, np.ndarray], dict]:
    """(validated inputs, the request document)."""
    doc = _json(body)
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list):
        raise RequestError('a v2 request is an object with "inputs": [{"name", "shape", "datatype", "data"}]')
    arrays = {}
    for i, tensor in enumerate(doc["inputs"]):
        if not isinstance(tensor, dict) or not {"name", "shape", "datatype", "data"} <= set(tensor):
            raise RequestError(f'inputs[{i}] needs "name", "shape", "datatype" and "data"')
        name, shape, datatype = tensor["name"], tensor["shape"], tensor["datatype"]
        if datatype not in V2_TYPES:
            raise RequestError(f"inputs[{i}] ({name!r}): datatype {datatype!r} is not one of {sorted(V2_TYPES)}")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise RequestError(f"inputs[{i}] ({name!r}): shape must be a list of sizes")
        spec = next((s for s in model.inputs if s["name"] == name), None)
        if spec is not None and V2_TYPES[datatype] != spec["dtype"]:
            raise RequestError(f"input {name!r} has datatype {datatype}, this model takes "
                               f"{V2_NAMES.get(spec['dtype'], spec['dtype'])}")
        data = _from_json_numbers(name, _flatten(tensor["data"], name), np.dtype(V2_TYPES[datatype]))
        if data.size != math.prod(shape):
            raise RequestError(f"input {name!r}: {data.size} values do not fill shape {shape}")
        arrays[name] = data.reshape(shape)
    return model.validate(arrays, strict_dtype=True), doc


def _flatten(data, name: str) -> np.ndarray:
    try:
        return np.asarray(data).reshape(-1)
    except ValueError:
        raise RequestError(f"input {name!r}: data is not a rectangular array") from None


def encode_v2(model_name: str, outputs: dict[str, np.ndarray], request: dict) -> bytes:
    wanted = [o.get("name") for o in request.get("outputs") or [] if isinstance(o, dict)]
    unknown = [n for n in wanted if n not in outputs]
    if unknown:
        raise RequestError(f"unknown output(s) {unknown}; this model has {list(outputs)}")
    doc = {"model_name": model_name, "outputs": [
        {"name": name, "shape": list(array.shape), "datatype": V2_NAMES.get(str(array.dtype), str(array.dtype)),
         "data": _jsonable(array.reshape(-1))}
        for name, array in outputs.items() if not wanted or name in wanted]}
    if "id" in request:
        doc["id"] = request["id"]
    return json.dumps(doc).encode()


def v2_metadata(model: Model, name: str) -> dict:
    def tensors(specs):
        return [{"name": s["name"], "datatype": V2_NAMES.get(s["dtype"], s["dtype"]), "shape": model.v2_shape(s)}
                for s in specs]

    return {"name": name, "versions": ["1"], "platform": PLATFORMS[model.artifact],
            "inputs": tensors(model.inputs), "outputs": tensors(model.outputs)}


# --- SageMaker's handler functions (the framework container calls these four)
def model_fn(model_dir: str) -> Model:
    """Load the archive's artifact and refuse to serve if it breaks tolerance on golden/."""
    config = Path(model_dir) / "code" / "serving.json"
    artifact = json.loads(config.read_text())["artifact"] if config.is_file() else "onnx"
    model = Model(model_dir, artifact)
    model.check_golden()
    return model


def input_fn(input_data: bytes, content_type: str) -> dict:
    """The body as it came: the toolkit gives input_fn no model, so predict_fn decodes and validates it against
    the model's inputs."""
    return {"body": bytes(input_data), "content_type": content_type}


def predict_fn(data: dict, model: Model) -> dict[str, np.ndarray]:
    return model.predict(decode_sagemaker(model, data["body"], data["content_type"]))


def output_fn(prediction: dict[str, np.ndarray], accept: str) -> tuple[bytes, str]:
    return encode_sagemaker(prediction, accept)


def package_sagemaker(folder: Path, out: Path, artifact: str = "onnx") -> Path:
    """OUT.tar.gz as SageMaker's framework containers load it: the artifact, metadata.json and golden/ at the top,
    code/inference.py (this file), code/serving.json (which artifact) and code/requirements.txt."""
    import tarfile
    import tempfile

    folder, out = Path(folder), Path(out)
    Model(folder, artifact).check_golden()  # refuses a folder whose artifact is broken, before anything is written
    if not out.name.endswith(".tar.gz"):
        raise ValueError(f"{out}: the archive's name must end in .tar.gz")
    requirements = _requirement(artifact)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}.", delete=False) as tmp:
        try:
            with tarfile.open(fileobj=tmp, mode="w:gz") as tar:
                tar.add(folder / ARTIFACTS[artifact], ARTIFACTS[artifact])
                tar.add(folder / "metadata.json", "metadata.json")
                tar.add(folder / "golden", "golden")
                tar.add(Path(__file__), "code/inference.py")
                _add_text(tar, "code/serving.json", json.dumps({"artifact": artifact}) + "\n")
                _add_text(tar, "code/requirements.txt", requirements)
            tmp.flush()
            os.replace(tmp.name, out)  # nothing half-written under the name asked for
        except BaseException:
            os.unlink(tmp.name)
            raise
    return out


def _requirement(artifact: str) -> str:
    """code/requirements.txt: the runtime the container lacks, at the version this folder was checked with."""
    if artifact == "torchscript":
        return ""  # the PyTorch container runs TorchScript itself
    from importlib.metadata import version

    return f"onnxruntime=={version('onnxruntime')}\n"


def _add_text(tar, name: str, text: str) -> None:
    import tarfile
    import time

    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), int(time.time())
    tar.addfile(info, io.BytesIO(data))
