"""1,000 creates against the emulator limited to 20 requests per second (issue 5).

The rate limit sets a floor of 1,000 / 20 = 50 s; the target is to finish within 10 % of it
(55 s) with no failed action. The reconciler paces itself with its client-side token bucket
(`--rate-limit` on the CLI) so it does not waste time on 429s. The state is a real file store
(fsync after every action, with group commit).

    python bench/bench_apply.py [COUNT] [RPS]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from reconciler.api import ShadeformClient
from reconciler.emulator import SANDBOX_API_KEY
from reconciler.emulator.process import emulator_process
from reconciler.engine.executor import Executor, ExecutorOptions
from reconciler.engine.recorder import StateRecorder
from reconciler.engine.workflow import refresh_and_plan
from reconciler.models.spec import Fleet, InstanceSpec
from reconciler.state import FileStateStore, new_state


def make_fleet(size: int) -> Fleet:
    specs = tuple(
        InstanceSpec(
            address=f"bench/gpu-{i}",
            fleet="bench",
            name=f"gpu-{i}",
            cloud="hyperstack",
            region="canada-1",
            shade_instance_type="A6000",
            shade_cloud=True,
            tags=("bench",),
        )
        for i in range(size)
    )
    return Fleet(name="bench", source="bench.yaml", instances=specs, digest="0" * 64)


async def apply_all(base_url: str, fleet: Fleet, store: FileStateStore, rps: float):  # type: ignore[no-untyped-def]
    state = new_state(fleet.name)
    from datetime import UTC, datetime

    async with ShadeformClient(SANDBOX_API_KEY, base_url, rate_limit_per_second=rps) as client:
        plan = await refresh_and_plan(client, [fleet], {fleet.name: state}, now=datetime.now(UTC))
        recorder = StateRecorder(store, state)
        executor = Executor(client, options=ExecutorOptions(parallelism=10, poll_interval=2.0))
        report = await executor.apply(
            plan, fleets={fleet.name: fleet}, recorders={fleet.name: recorder}
        )
    return report, recorder.writes


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    rps = float(sys.argv[2]) if len(sys.argv) > 2 else 20.0
    floor = count / rps
    with (
        tempfile.TemporaryDirectory() as tmp,
        emulator_process(
            "--boot-seconds", "0", "--delete-seconds", "0", "--rate-limit", str(rps)
        ) as base_url,
    ):
        store = FileStateStore(Path(tmp))
        fleet = make_fleet(count)
        started = time.perf_counter()
        report, writes = asyncio.run(apply_all(base_url, fleet, store, rps))
        elapsed = time.perf_counter() - started
        live = httpx.get(
            f"{base_url}/instances", headers={"X-API-KEY": SANDBOX_API_KEY}, timeout=60
        ).json()
        per_address = Counter(
            t for i in live["instances"] for t in i["tags"] if t.startswith("reconciler:address=")
        )
        state = store.read("bench")
    assert state is not None
    print(
        f"{count} creates at {rps:g} req/s: {elapsed:.1f} s (floor {floor:.1f} s, ratio {elapsed / floor:.3f}, "
        f"target <= 1.10); failed={len(report.failed)} succeeded={len(report.succeeded)} "
        f"live={len(per_address)} duplicates={sum(1 for n in per_address.values() if n > 1)} "
        f"recorded={len(state.instances)} state writes={writes} (group commit; {2 * count} changes)"
    )


if __name__ == "__main__":
    main()
