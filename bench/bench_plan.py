"""No-op plan of a large fleet against the emulator with 20 ms injected latency.

Targets (issue 4): 2,000 instances in under 1 s; 10,000 in under 3 s. Prints the time of a
refresh + plan (one list call; large fleets skip per-instance info calls), the ratio to the
target, and the peak memory of the process.

    python bench/bench_plan.py            # both sizes
    python bench/bench_plan.py 2000       # one size
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from datetime import UTC, datetime

from reconciler.api import ShadeformClient
from reconciler.emulator import SANDBOX_API_KEY
from reconciler.emulator.process import emulator_process
from reconciler.engine.comparable import comparable_spec
from reconciler.engine.workflow import refresh_and_plan
from reconciler.models.api import CreateRequest
from reconciler.models.live import ownership_tags
from reconciler.models.spec import Fleet, InstanceSpec
from reconciler.models.state import InstanceRecord
from reconciler.state import new_state

TARGETS = {2000: 1.0, 10000: 3.0}
OFFERS = [
    ("hyperstack", "canada-1", "A6000"),
    ("lambdalabs", "us-east-1", "H100"),
    ("datacrunch", "FIN-01", "H200"),
]


def make_fleet(size: int) -> Fleet:
    specs = []
    for i in range(size):
        cloud, region, kind = OFFERS[i % len(OFFERS)]
        name = f"worker-{i}"
        specs.append(
            InstanceSpec(
                address=f"bench/{name}",
                fleet="bench",
                name=name,
                cloud=cloud,
                region=region,
                shade_instance_type=kind,
                shade_cloud=True,
                os="ubuntu22.04_cuda12.2_shade_os",
                tags=("bench", f"shard-{i % 16}"),
            )
        )
    return Fleet(name="bench", source="bench.yaml", instances=tuple(specs), digest="0" * 64)


async def seed(base_url: str, fleet: Fleet):  # type: ignore[no-untyped-def]
    state = new_state(fleet.name)
    async with ShadeformClient(SANDBOX_API_KEY, base_url, parallelism=128) as client:

        async def create(spec: InstanceSpec) -> tuple[str, str]:
            request = CreateRequest.from_spec(
                spec, extra_tags=ownership_tags(fleet.name, spec.address)
            )
            return spec.address, await client.create_instance(request)

        ids = dict(await asyncio.gather(*(create(s) for s in fleet.instances)))
    now = datetime.now(UTC).isoformat()
    records = {
        s.address: InstanceRecord(
            address=s.address,
            instance_id=ids[s.address],
            applied_spec=comparable_spec(s, state.fingerprint_key),
            created_at=now,
            updated_at=now,
        )
        for s in fleet.instances
    }
    return state.model_copy(update={"instances": records, "serial": 1, "lineage": state.lineage})


async def measure(base_url: str, fleet: Fleet, state) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    async with ShadeformClient(SANDBOX_API_KEY, base_url) as client:
        started = time.perf_counter()
        plan = await refresh_and_plan(client, [fleet], {fleet.name: state}, now=datetime.now(UTC))
        elapsed = time.perf_counter() - started
    return elapsed, sum(1 for c in plan.fleets[0].changes if c.is_change)


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or sorted(TARGETS)
    with emulator_process("--boot-seconds", "0", "--latency-ms", "20") as base_url:
        for size in sizes:
            fleet = make_fleet(size)
            state = asyncio.run(seed(base_url, fleet))
            runs = [asyncio.run(measure(base_url, fleet, state)) for _ in range(3)]
            best = min(t for t, _ in runs)
            changes = runs[-1][1]
            target = TARGETS.get(size, float("nan"))
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"no-op plan, {size:>6} instances, 20 ms latency: best {best:.3f} s of 3 "
                f"(target {target:.1f} s, ratio {best / target:.2f}); changes={changes}; "
                f"peak RSS so far {peak_mb:.0f} MiB"
            )
            assert changes == 0, "a no-op plan must have no changes"
            # Clean up so the next size starts from an empty cloud.
            asyncio.run(_delete_all(base_url))


async def _delete_all(base_url: str) -> None:
    async with ShadeformClient(SANDBOX_API_KEY, base_url, parallelism=128) as client:
        listed = await client.list_instances()
        await asyncio.gather(*(client.delete_instance(i.id) for i in listed))


if __name__ == "__main__":
    main()
