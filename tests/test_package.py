"""`python -m converter package DIR --sagemaker OUT.tar.gz` on the converted digits folder: the archive is unpacked
as SageMaker's framework container unpacks it (/opt/ml/model), and its code/inference.py is imported as the
container imports it (code/ on sys.path, `import inference`), in a fresh interpreter where the converter package
cannot be imported, and driven through model_fn, input_fn, predict_fn and output_fn against golden/."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from importlib.metadata import version

import numpy as np
import pytest

from runcli import DIGITS, REPO, run_cli

# The container's side: a fresh interpreter; converter imports are made to fail, as they would there.
CONTAINER = r"""
import io, json, sys
import numpy as np

class NoConverter:
    def find_spec(self, name, path=None, target=None):
        if name == "converter" or name.startswith("converter."):
            raise ImportError("the SageMaker container has no converter package")

sys.meta_path.insert(0, NoConverter())
model_dir, artifact = sys.argv[1], sys.argv[2]
sys.path.insert(0, model_dir + "/code")
import inference

model = inference.model_fn(model_dir)
assert model.artifact == artifact
doc = json.load(open(model_dir + "/golden/golden.json"))
results = []
for case in doc["cases"]:
    x = np.load(f"{model_dir}/golden/input_x_{case['name']}.npy")
    want = np.load(f"{model_dir}/golden/output_output_{case['name']}.npy")
    body, content_type = inference.output_fn(
        inference.predict_fn(inference.input_fn(json.dumps({"x": x.tolist()}).encode(), "application/json"), model),
        "application/json")
    got = np.asarray(json.loads(body)["output"])
    npy = io.BytesIO(); np.save(npy, x)
    body2, type2 = inference.output_fn(
        inference.predict_fn(inference.input_fn(npy.getvalue(), "application/x-npy"), model), "application/x-npy")
    got2 = np.load(io.BytesIO(body2))
    results.append({"content_type": content_type, "type2": type2,
                    "rel": float(np.max(np.abs(got - want)) / np.max(np.abs(want))),
                    "rel2": float(np.max(np.abs(got2 - want)) / np.max(np.abs(want)))})
errors = {}
for what, body, ctype in [("shape", b'{"x": [[1.0, 2.0]]}', "application/json"), ("json", b"{bad", "application/json"),
                          ("type", b"1,2", "text/csv")]:
    try:
        inference.predict_fn(inference.input_fn(body, ctype), model)
    except inference.RequestError as exc:
        errors[what] = [exc.status, exc.message]
print(json.dumps({"results": results, "errors": errors, "converter_imported": "converter" in sys.modules}))
"""


def _package(digits_dir, tmp_path, *extra: str):
    out = tmp_path / "model.tar.gz"
    proc = run_cli("package", digits_dir, "--sagemaker", out, *extra, timeout=300)
    return out, proc


def _unpack(archive, where):
    where.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(where, filter="data")
    return where


@pytest.mark.parametrize("artifact", ["onnx", "torchscript"])
def test_inference_py_answers_like_pytorch_inside_the_container(digits_dir, tmp_path, artifact):
    out, proc = _package(digits_dir, tmp_path, "--artifact", artifact)
    assert proc.returncode == 0, proc.stderr
    names = set(tarfile.open(out).getnames())
    model_file = {"onnx": "model.onnx", "torchscript": "model.pt"}[artifact]
    assert {model_file, "metadata.json", "golden/golden.json", "code/inference.py", "code/requirements.txt",
            "code/serving.json"} <= names
    model_dir = _unpack(out, tmp_path / "opt-ml-model")
    requirements = (model_dir / "code" / "requirements.txt").read_text()
    assert requirements == (f"onnxruntime=={version('onnxruntime')}\n" if artifact == "onnx" else "")
    proc = subprocess.run([sys.executable, "-c", CONTAINER, str(model_dir), artifact], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not doc["converter_imported"]
    assert len(doc["results"]) == 2
    for result in doc["results"]:
        assert result["content_type"] == "application/json" and result["type2"] == "application/x-npy"
        assert result["rel"] <= 1e-4 and result["rel2"] <= 1e-4, result
    assert doc["errors"]["shape"][0] == 400 and "[1, 1, 8, 8]" in doc["errors"]["shape"][1]
    assert doc["errors"]["json"][0] == 400
    assert doc["errors"]["type"][0] == 415


def test_model_fn_refuses_an_archive_whose_artifact_breaks_golden(digits_dir, tmp_path):
    out, proc = _package(digits_dir, tmp_path)
    assert proc.returncode == 0, proc.stderr
    model_dir = _unpack(out, tmp_path / "model")
    target = model_dir / "golden" / "output_output_random_0.npy"
    np.save(target, np.load(target) * 1.01)
    proc = subprocess.run([sys.executable, "-c", CONTAINER, str(model_dir), "onnx"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0
    assert "GoldenError" in proc.stderr and "random_0" in proc.stderr


def test_package_refuses_a_broken_folder_and_leaves_nothing(digits_dir, tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    for name in ("model.onnx", "metadata.json"):
        (folder / name).write_bytes((digits_dir / name).read_bytes())
    (folder / "golden").mkdir()
    for path in (digits_dir / "golden").iterdir():
        data = np.load(path) if path.suffix == ".npy" else None
        if data is not None and path.name.startswith("output_"):
            np.save(folder / "golden" / path.name, data + 1.0)
        else:
            (folder / "golden" / path.name).write_bytes(path.read_bytes())
    out, proc = _package(folder, tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert "[package]" in proc.stderr and "tolerance" in proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".model.tar.gz*"))
    out, proc = _package(tmp_path / "missing", tmp_path)
    assert proc.returncode == 2 and "[package]" in proc.stderr and "metadata.json" in proc.stderr


def test_a_dynamic_batch_folder_takes_any_batch_and_no_other_axis(tmp_path):
    """The request checks that the endpoint and inference.py share (converter/serving.py), on a folder converted
    with --dynamic-batch: batch 3 answers as PyTorch does; a wrong spatial size is still refused."""
    import torch

    from converter.serving import Model, RequestError, decode_sagemaker
    from examples.digits.model import build

    out = tmp_path / "dyn"
    proc = run_cli("convert", *DIGITS, "--dynamic-batch", "--targets", "onnx", "--out", out, timeout=600)
    assert proc.returncode == 0, proc.stderr
    model = Model(out, "onnx")
    assert model.v2_shape(model.inputs[0]) == [-1, 1, 8, 8]
    x = np.random.default_rng(0).random((3, 1, 8, 8), dtype=np.float32)
    got = model.predict(decode_sagemaker(model, json.dumps({"x": x.tolist()}).encode(), "application/json"))
    reference = build()
    reference.load_state_dict(torch.load(REPO / "examples/digits/weights.pt", weights_only=True))
    with torch.no_grad():
        want = reference.eval()(torch.from_numpy(x)).numpy()
    assert got["output"].shape == (3, 10)
    assert np.max(np.abs(got["output"] - want)) / np.max(np.abs(want)) <= 1e-4
    with pytest.raises(RequestError, match=r"\[\?, 1, 8, 8\]"):
        decode_sagemaker(model, json.dumps({"x": np.zeros((3, 1, 8, 9)).tolist()}).encode(), "application/json")
