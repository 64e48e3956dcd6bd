"""Info look-ups for 2,000 instances through ShadeformClient, emulator at 20 ms latency.

Target (issue 3): under 2 s, versus a 40 s sequential floor (2,000 x 20 ms). The emulator runs
in a separate process so it does not share the client's event loop or GIL. Prints, for each
parallelism tried, the best of three runs, the ratio to the target and the speed-up over the
sequential floor; the client's default parallelism is marked.

    python bench/bench_client.py                 # 2,000 instances; parallelism 16..256
    python bench/bench_client.py 2000 64 128     # size, then the parallelisms to try
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import time

from reconciler.api import ShadeformClient
from reconciler.emulator import SANDBOX_API_KEY
from reconciler.emulator.process import emulator_process
from reconciler.models.api import CreateRequest

LATENCY_MS = 20
TARGET_SECONDS = 2.0
DEFAULT_PARALLELISM = inspect.signature(ShadeformClient).parameters["parallelism"].default
OFFERS = [
    ("hyperstack", "canada-1", "A6000"),
    ("lambdalabs", "us-east-1", "H100"),
    ("datacrunch", "FIN-01", "H200"),
]


async def seed(base_url: str, size: int) -> list[str]:
    async with ShadeformClient(SANDBOX_API_KEY, base_url, parallelism=128) as client:

        async def create(n: int) -> str:
            cloud, region, kind = OFFERS[n % len(OFFERS)]
            request = CreateRequest(
                cloud=cloud,
                region=region,
                shade_instance_type=kind,
                shade_cloud=True,
                name=f"bench-{n}",
                os="ubuntu22.04_cuda12.2_shade_os",
            )
            return await client.create_instance(request)

        return list(await asyncio.gather(*(create(n) for n in range(size))))


async def look_up(base_url: str, ids: list[str], parallelism: int) -> tuple[float, float]:
    """(wall seconds, client CPU seconds) for one ``get_instances`` of every id."""
    async with ShadeformClient(SANDBOX_API_KEY, base_url, parallelism=parallelism) as client:
        started, cpu_started = time.perf_counter(), time.process_time()
        infos = await client.get_instances(ids)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    missing = sum(1 for info in infos.values() if info is None)
    assert len(infos) == len(ids) and missing == 0, f"{missing} look-ups found nothing"
    return elapsed, cpu


def main() -> None:
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    parallelisms = [int(a) for a in sys.argv[2:]] or [16, 32, 64, 128, 256]
    floor = size * LATENCY_MS / 1000
    flags = ("--boot-seconds", "0", "--latency-ms", str(LATENCY_MS))
    with emulator_process(*flags) as base_url:
        ids = asyncio.run(seed(base_url, size))
        print(
            f"{size} instance info look-ups, {LATENCY_MS} ms latency, emulator in its own "
            f"process; sequential floor {floor:.0f} s, target {TARGET_SECONDS:.1f} s"
        )
        for parallelism in parallelisms:
            best, cpu = min(asyncio.run(look_up(base_url, ids, parallelism)) for _ in range(3))
            mark = "  <- client default" if parallelism == DEFAULT_PARALLELISM else ""
            print(
                f"  parallelism {parallelism:>4}: best {best:.3f} s of 3 "
                f"(target ratio {best / TARGET_SECONDS:.2f}, "
                f"{floor / best:.0f}x faster than sequential; client CPU {cpu:.2f} s){mark}"
            )


if __name__ == "__main__":
    main()
