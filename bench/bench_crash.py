"""Hundreds of crash trials: SIGKILL `reconciler apply` at random moments, converge, check.

Each trial moves the fleet to another manifest version (creates, updates and deletes), kills
the apply process at a random moment, reruns apply to completion and checks the invariants
(no duplicate live instance per address, every owned live instance in the state, a no-op next
plan). Prints the number of trials, kills, and any failure.

    python bench/bench_crash.py [TRIALS] [SEED]
"""

from __future__ import annotations

import random
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.emulator.process import emulator_process  # noqa: E402
from tests.crash.driver import CrashWorld  # noqa: E402


def main() -> None:
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    rng = random.Random(seed)
    started = time.perf_counter()
    kills = 0
    with (
        tempfile.TemporaryDirectory() as tmp,
        emulator_process(
            "--boot-seconds", "0.2", "--delete-seconds", "0", "--latency-ms", "10"
        ) as base_url,
    ):
        world = CrashWorld(base_url, Path(tmp))
        world.converge()
        for trial in range(trials):
            world.write_version(trial + 1)
            if world.kill_at_random(rng) == -signal.SIGKILL:
                kills += 1
            world.converge()
            world.check_invariants()
            if (trial + 1) % 25 == 0:
                print(
                    f"{trial + 1} trials, {kills} killed mid-run, all invariants held", flush=True
                )
    print(
        f"done: {trials} trials ({kills} killed mid-run) in {time.perf_counter() - started:.0f} s; "
        "no duplicates, no lost records, every next plan a no-op"
    )


if __name__ == "__main__":
    main()
