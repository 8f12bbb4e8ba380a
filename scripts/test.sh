#!/usr/bin/env bash
# Sets the machine up (scripts/setup.sh) and runs every test. Extra arguments go to pytest, e.g.
#   bash scripts/test.sh -m "not slow"     # skip the slowest end-to-end cases
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -ra --durations=15 "$@"
