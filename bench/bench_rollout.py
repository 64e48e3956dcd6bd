"""How long a rolling replacement takes against its floor: waves x boot time.

A group of 4 replicas changes its image against the emulator (a real process, 20 ms latency)
with a boot time of BOOT seconds. The floor is what no rollout can beat: each wave waits for
its new replicas to boot, so ``waves x BOOT``. The overhead on top is polling (the executor's
poll interval), deletes (waited out until gone, DELETE seconds each wave) and requests. The
emulator's timeline also proves each run kept its floor of serving replicas and its ceiling
of running ones.

    python bench/bench_rollout.py            # max_surge 1 / max_unavailable 1, then 0 / 1
    python bench/bench_rollout.py 1 1        # one strategy: max_surge max_unavailable

Target: within 1.5x the floor (with BOOT = 5 s, DELETE = 0.5 s, a 0.25 s poll interval).
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime

import httpx

from reconciler.api import ShadeformClient
from reconciler.emulator import SANDBOX_API_KEY
from reconciler.emulator.process import emulator_process
from reconciler.emulator.timeline import extremes, period_from_json
from reconciler.engine.executor import Executor, ExecutorOptions
from reconciler.engine.recorder import StateRecorder
from reconciler.engine.workflow import refresh_and_plan
from reconciler.models.live import ADDRESS_TAG
from reconciler.models.spec import (
    DockerConfiguration,
    Fleet,
    InstanceSpec,
    LaunchConfiguration,
    UpdateStrategy,
)
from reconciler.state import MemoryStateStore, new_state

BOOT, DELETE, POLL = 5.0, 0.5, 0.25
REPLICAS = 4
TARGET_RATIO = 1.5
GROUP = "bench/mistral"


def fleet(image: str, strategy: UpdateStrategy) -> Fleet:
    launch = LaunchConfiguration(
        type="docker", docker_configuration=DockerConfiguration(image=image)
    )
    specs = tuple(
        InstanceSpec(
            address=f"{GROUP}-{i}",
            fleet="bench",
            name=f"mistral-{i}",
            cloud="hyperstack",
            region="canada-1",
            shade_instance_type="A6000",
            shade_cloud=True,
            launch_configuration=launch,
            group=GROUP,
            update_strategy=strategy,
        )
        for i in range(REPLICAS)
    )
    return Fleet(name="bench", source="bench.yaml", instances=specs, digest="0" * 64)


async def apply(base_url: str, store: MemoryStateStore, desired: Fleet) -> tuple[float, int]:
    """Plan and apply ``desired``; seconds taken and the rollout's wave count."""
    async with ShadeformClient(SANDBOX_API_KEY, base_url) as client:
        state = store.read("bench") or new_state("bench")
        started = time.perf_counter()
        plan = await refresh_and_plan(client, [desired], {"bench": state}, now=datetime.now(UTC))
        executor = Executor(client, options=ExecutorOptions(poll_interval=POLL))
        report = await executor.apply(
            plan,
            fleets={"bench": desired},
            recorders={"bench": StateRecorder(store, state)},
        )
        elapsed = time.perf_counter() - started
    assert not report.failed, report.results
    rollouts = plan.fleets[0].rollouts
    waves = sum(1 for w in rollouts[0].waves if w.number > 0) if rollouts else 0
    return elapsed, waves


def timeline(base_url: str) -> tuple[float, list]:  # type: ignore[type-arg]
    answer = httpx.get(
        base_url.removesuffix("/v1") + "/_admin/timeline",
        headers={"X-API-KEY": SANDBOX_API_KEY},
    ).json()
    return answer["now"], [period_from_json(p) for p in answer["instances"]]


def run(surge: int, unavailable: int) -> float:
    strategy = UpdateStrategy(max_surge=surge, max_unavailable=unavailable)
    flags = ("--boot-seconds", str(BOOT), "--delete-seconds", str(DELETE), "--latency-ms", "20")
    with emulator_process(*flags) as base_url:
        store = MemoryStateStore()
        asyncio.run(apply(base_url, store, fleet("vllm:1", strategy)))
        start, _ = timeline(base_url)
        seconds, waves = asyncio.run(apply(base_url, store, fleet("vllm:2", strategy)))
        end, periods = timeline(base_url)
    seen = extremes(
        periods,
        since=start,
        until=end,
        chosen=lambda p: any(t.startswith(f"{ADDRESS_TAG}{GROUP}-") for t in p.tags),
    )
    floor = waves * BOOT
    ratio = seconds / floor
    print(
        f"rollout of {REPLICAS} replicas, max_surge {surge}, max_unavailable {unavailable}: "
        f"{waves} waves in {seconds:.1f} s; floor {floor:.1f} s ({waves} x {BOOT:g} s boot), "
        f"ratio {ratio:.2f} (target <= {TARGET_RATIO}); fewest active {seen.fewest_active} "
        f"(floor {REPLICAS - unavailable}), most running {seen.most_running} "
        f"(ceiling {REPLICAS + surge})"
    )
    assert seen.fewest_active >= REPLICAS - unavailable, "the rollout went below its floor"
    assert seen.most_running <= REPLICAS + surge, "the rollout ran more than its surge allows"
    return ratio


def main() -> None:
    if len(sys.argv) == 3:
        cases = [(int(sys.argv[1]), int(sys.argv[2]))]
    else:
        cases = [(1, 1), (0, 1)]
    for surge, unavailable in cases:
        run(surge, unavailable)


if __name__ == "__main__":
    main()
