#!/usr/bin/env bash
# Runs pytest with every process of the project's Python (.venv) on an emulated CPU without AVX-512: QEMU's user
# mode with CPU model Haswell (AVX2 and FMA), routed by a binfmt_misc rule, so the conversion's worker processes and
# every other child that runs sys.executable are emulated too. Arguments go to pytest, e.g.
#   bash scripts/test_without_avx512.sh tests/test_pipeline.py -m "not slow"
# Needs root (binfmt_misc) and qemu-user (scripts/setup.sh installs it). Node.js, Chromium and .venv-executorch run
# natively. Expect each Python process to run 5 to 10 times slower than natively.
set -euo pipefail
cd "$(dirname "$0")/.."
qemu=$(command -v qemu-x86_64) || { echo "qemu-x86_64 is missing: run scripts/setup.sh (it installs qemu-user)" >&2; exit 2; }
binfmt=/proc/sys/fs/binfmt_misc
[ -e "$binfmt/register" ] || mount -t binfmt_misc binfmt_misc "$binfmt" \
  || { echo "cannot mount binfmt_misc: run as root" >&2; exit 2; }

# Haswell without the features QEMU's TCG cannot emulate (each would print a warning into every process's stderr).
cpu=Haswell,-pcid,-x2apic,-tsc-deadline,-hle,-invpcid,-rtm
rule=converter_haswell
work=$(mktemp -d)
python=$PWD/.venv/bin/python.haswell  # the rule routes every file named *.haswell to QEMU
cleanup() {
  [ -e "$binfmt/$rule" ] && echo -1 > "$binfmt/$rule"
  rm -rf "$work" "$python"
}
trap cleanup EXIT
printf '#!/bin/sh\nexec %s -cpu %s "$@"\n' "$qemu" "$cpu" > "$work/qemu"
chmod +x "$work/qemu"
[ -e "$binfmt/$rule" ] && echo -1 > "$binfmt/$rule"
echo ":$rule:E::haswell::$work/qemu:" > "$binfmt/register"
ln -sfn python "$python"

"$python" -c 'import torch; print("emulated CPU: QEMU", "'"$cpu"'", "| PyTorch sees", torch.backends.cpu.get_cpu_capability())'
"$python" -m pytest -ra --durations=15 "$@"
