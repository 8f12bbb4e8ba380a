#!/usr/bin/env bash
# Sets a fresh machine up: system packages (Chromium, JUnit), the Python virtual environment in .venv with
# the exact versions of constraints.txt, the ExecuTorch stage's in .venv-executorch (constraints-executorch.txt),
# the npm packages, and the web demo's build. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*"; }

# --- system packages: Node.js is on the machine; Chromium (browser tests), JUnit (Android core tests), gcc
# and binutils' readelf (android-check's tests link .so files for 4 KB and 16 KB pages and compare readelf),
# QEMU's user-mode emulator (a conversion on a CPU without AVX-512, tests/test_tfjs_audit.py)
missing=()
command -v chromium >/dev/null || missing+=(chromium chromium-driver)
[ -f /usr/share/java/junit4.jar ] || missing+=(junit4)
command -v javac >/dev/null || missing+=(openjdk-17-jdk-headless)
command -v gcc >/dev/null || missing+=(gcc libc6-dev)
command -v readelf >/dev/null || missing+=(binutils)
command -v qemu-x86_64 >/dev/null || missing+=(qemu-user)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- Python
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  python3.11 -m venv .venv 2>/dev/null || python3 -m venv .venv
fi
# A stamp of the inputs lets a second run skip the installs (the checks alone take a minute).
stamp() { cat "$@" | sha256sum | cut -d' ' -f1; }
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt)
if [ "$(cat .venv/.setup-stamp 2>/dev/null)" != "$(stamp constraints.txt pyproject.toml scripts/setup.sh)" ]; then
say "installing Python packages (first run: several minutes)"
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade "pip==25.3"
"${PIP[@]}" torch torchvision onnx2tf onnxscript "setuptools<81" scikit-learn pytest hypothesis psutil
# tensorflowjs' declared extras cannot be resolved beside onnx2tf (STACK.md): install it without them,
# then exactly what its converter imports.
"${PIP[@]}" --no-deps tensorflowjs tensorflow-decision-forests
"${PIP[@]}" tensorflow-hub importlib_resources wurlitzer ydf pandas jax jaxlib
# The zoo's and the tests' model libraries (not the converter's): random weights, built offline.
# transformers 5 imports huggingface_hub, which imports httpx2 and truststore.
"${PIP[@]}" timm transformers huggingface_hub httpx2 truststore
# Ray Serve and Ray tasks: `converter endpoint` and `converter batch`.
"${PIP[@]}" "ray[serve]"
"${PIP[@]}" --no-deps --no-build-isolation -e .
stamp constraints.txt pyproject.toml scripts/setup.sh > .venv/.setup-stamp
fi

# --- ExecuTorch (the executorch stage): its own venv, because executorch needs numpy >= 2 and onnx2tf pins
# numpy 1.26.4 (STACK.md). Same torch as .venv; the converter itself is installed editable for the worker.
if [ ! -x .venv-executorch/bin/python ]; then
  say "creating .venv-executorch"
  python3.11 -m venv .venv-executorch 2>/dev/null || python3 -m venv .venv-executorch
fi
if [ "$(cat .venv-executorch/.setup-stamp 2>/dev/null)" != "$(stamp constraints-executorch.txt pyproject.toml scripts/setup.sh)" ]; then
say "installing .venv-executorch (first run: about 2 minutes)"
.venv-executorch/bin/python -m pip install -q --disable-pip-version-check --upgrade "pip==25.3"
# torchvision, timm and transformers: the stage's worker loads the model again from its source (zoo models).
.venv-executorch/bin/python -m pip install -q --disable-pip-version-check -c constraints-executorch.txt \
  executorch torch torchao numpy pytest torchvision timm transformers huggingface_hub httpx2 truststore
.venv-executorch/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
stamp constraints-executorch.txt pyproject.toml scripts/setup.sh > .venv-executorch/.setup-stamp
fi

# --- JavaScript: TF.js for the Node parity check, the web demo's packages, playwright-core
if [ "$(cat node_modules/.setup-stamp 2>/dev/null)" != "$(stamp package-lock.json)" ]; then
  say "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
  stamp package-lock.json > node_modules/.setup-stamp
fi
npm run --silent build:web

say "setup done: .venv, .venv-executorch, node_modules, web-demo/dist"
