"""Fit the memory estimate (converter/resources.py) on the zoo's measured peaks: real CNNs and transformers.

    .venv/bin/python scripts/fit_memory.py [--since COMMIT]

Reads docs/zoo.json: every row that finished (passed or failed, not killed) in a run at or after COMMIT (the
first commit with the current process layout, by default), its peak memory (the sum over the converter's
process tree, sampled by scripts/zoo.py) and, by building the model, its weight bytes. Fits
peak = BASE + FACTOR x weights by least squares, then raises BASE until no measured row is above the line
(an estimate that refuses too little is worse than one that refuses a bit too much). Prints the constants and
the table that README.md shows.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKERS_SINCE = "b270484"  # the stage graph with worker processes


def rows(since: str) -> list[dict]:
    doc = json.loads((ROOT / "docs" / "zoo.json").read_text())
    found = []
    for suite in doc["suites"].values():
        commits = {r["id"]: r.get("commit") for r in suite["runs"]}
        for row in suite["rows"]:
            commit = commits.get(row.get("run"))
            if row["status"] not in ("passed", "failed") or not row.get("peak_rss_gb") or not commit:
                continue
            ancestor = subprocess.run(["git", "merge-base", "--is-ancestor", since, commit], cwd=ROOT)
            if ancestor.returncode == 0:
                found.append(row)
    return found


def weight_bytes(row: dict) -> int:
    sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]
    from converter import resources
    from converter.loading import load_model

    spec = shlex.split(row["command"])[4]  # python -m converter convert SPEC ...
    return resources.tensor_bytes(load_model(spec).module)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--since", default=WORKERS_SINCE)
    args = parser.parse_args()
    data = [(row["model"], row["inputs"], weight_bytes(row), row["peak_rss_gb"] * 1e9) for row in rows(args.since)]
    if len(data) < 3:
        raise SystemExit(f"only {len(data)} rows measured since {args.since}: run scripts/zoo.py first")
    n = len(data)
    mean_w = sum(w for _, _, w, _ in data) / n
    mean_p = sum(p for _, _, _, p in data) / n
    factor = sum((w - mean_w) * (p - mean_p) for _, _, w, p in data) / sum((w - mean_w) ** 2 for _, _, w, _ in data)
    base = max(p - factor * w for _, _, w, p in data)
    print(f"{n} rows since {args.since}: BASE_MB = {base / 2**20:.0f}, FACTOR = {factor:.1f} "
          "(least-squares slope; the base raised until no row is above the line)")
    print("\n| model | input | weights | measured peak (process tree) | estimate |\n|---|---|---|---|---|")
    for model, inputs, w, p in sorted(data, key=lambda d: d[2]):
        print(f"| {model} | {inputs} | {w / 2**20:.0f} MB | {p / 1e9:.1f} GB | {(base + factor * w) / 1e9:.1f} GB |")


if __name__ == "__main__":
    main()
