"""Benchmark: how fast the CLI starts, measured side by side with a bare Python baseline.

Every command pays its start-up (the pre-commit hook runs ``reconciler validate`` on every
commit), so heavy libraries (httpx, rich, starlette, deepdiff, psycopg, the emulator) load only
in the commands that use them. Runs, in rounds so that machine noise hits all alike:

- the baseline: ``python -c "import click, pydantic"``;
- ``reconciler --version`` (target: at most 1.5x the baseline);
- ``reconciler validate specs/`` (target: at most 3x the baseline).

Prints the median wall time of each and the two ratios. Asserts nothing about time.

The commands run as on a user's machine: Python caches compiled modules (``__pycache__``) on
the first run, so the warm-up run writes them and the timed runs use them. (This workspace
sets ``PYTHONDONTWRITEBYTECODE=1``, which would make every run recompile every module; the
bench leaves it out of the commands' environment.)

    python bench/bench_startup.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

COMMANDS = {
    "baseline": [sys.executable, "-c", "import click, pydantic"],
    "--version": [sys.executable, "-m", "reconciler", "--version"],
    "validate": [sys.executable, "-m", "reconciler", "validate", str(REPO / "specs")],
}
TARGETS = {"--version": 1.5, "validate": 3.0}


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, cwd=REPO, env=ENV)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.decode()[-500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for argv in COMMANDS.values():  # warm the file cache and write __pycache__ once
        timed(argv)
    for _ in range(args.rounds):
        for name, argv in COMMANDS.items():
            samples[name].append(timed(argv))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    baseline = medians["baseline"]
    print(f"start-up, median of {args.rounds} rounds (python {sys.version.split()[0]}):")
    print(f"  baseline (import click, pydantic)  {baseline * 1000:7.1f} ms")
    for name, target in TARGETS.items():
        ratio = medians[name] / baseline
        verdict = "ok" if ratio <= target else "OVER TARGET"
        print(
            f"  reconciler {name:<23} {medians[name] * 1000:7.1f} ms  "
            f"{ratio:4.2f}x baseline (target <= {target:g}x): {verdict}"
        )


if __name__ == "__main__":
    main()
