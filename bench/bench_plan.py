"""No-op plan of a large fleet against the emulator with 20 ms injected latency.

Targets (issue 4): 2,000 instances in under 1 s; 10,000 in under 3 s. The graph case, 2,000
instances (500 of them mounting their own volume) plus 500 volumes and 50 SSH keys every
instance uses one of, stays within the same 1 s. Prints the time of a refresh + plan (one list
call per kind; large fleets skip per-instance info calls), the ratio to the target, and the
peak memory of the process.

    python bench/bench_plan.py            # both sizes, then the graph
    python bench/bench_plan.py 2000       # one size
    python bench/bench_plan.py graph      # the graph only
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import resource
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from reconciler.api import ShadeformClient
from reconciler.emulator import SANDBOX_API_KEY
from reconciler.emulator.process import emulator_process
from reconciler.engine.comparable import comparable_spec
from reconciler.engine.kinds import kind_named
from reconciler.engine.kinds.references import instance_references
from reconciler.engine.workflow import refresh_and_plan
from reconciler.manifest.public_keys import fingerprint_of
from reconciler.models.api import AddSshKeyRequest, CreateRequest, CreateVolumeRequest
from reconciler.models.live import ownership_tags
from reconciler.models.plan import Action
from reconciler.models.spec import (
    Fleet,
    InstanceSpec,
    SshKeySpec,
    VolumeSpec,
    ssh_key_address,
    volume_address,
)
from reconciler.models.state import FleetState, InstanceRecord, ResourceRecord
from reconciler.state import new_state

TARGETS = {2000: 1.0, 10000: 3.0}
GRAPH = "graph"
GRAPH_INSTANCES, GRAPH_VOLUMES, GRAPH_KEYS = 2000, 500, 50
GRAPH_TARGET = 1.0
OFFERS = [
    ("hyperstack", "canada-1", "A6000"),
    ("lambdalabs", "us-east-1", "H100"),
    ("datacrunch", "FIN-01", "H200"),
]


def make_fleet(size: int, *, name: str = "bench", volumes: int = 0, keys: int = 0) -> Fleet:
    """``size`` instances; the first ``volumes`` mount their own volume (in their region)
    and, when ``keys`` is set, instance ``i`` uses key ``i % keys``."""
    specs, volume_specs = [], []
    for i in range(size):
        cloud, region, kind = OFFERS[i % len(OFFERS)]
        worker = f"worker-{i}"
        mounts: tuple[str, ...] = ()
        if i < volumes:
            mounts = (f"data-{i}",)
            volume_specs.append(
                VolumeSpec(
                    address=volume_address(name, mounts[0]),
                    fleet=name,
                    name=mounts[0],
                    cloud=cloud,
                    region=region,
                    size_in_gb=100,
                )
            )
        specs.append(
            InstanceSpec(
                address=f"{name}/{worker}",
                fleet=name,
                name=worker,
                cloud=cloud,
                region=region,
                shade_instance_type=kind,
                shade_cloud=True,
                os="ubuntu22.04_cuda12.2_shade_os",
                tags=("bench", f"shard-{i % 16}"),
                volumes=mounts,
                ssh_key=f"key-{i % keys}" if keys else None,
            )
        )
    return Fleet(
        name=name,
        source=f"{name}.yaml",
        instances=tuple(specs),
        volumes=tuple(volume_specs),
        ssh_keys=tuple(_key_spec(name, k) for k in range(keys)),
        digest="0" * 64,
    )


def _key_spec(fleet: str, index: int) -> SshKeySpec:
    """A well-formed ed25519 public key, distinct per ``index`` (never used to log in)."""
    kind = b"ssh-ed25519"
    point = hashlib.sha256(f"bench-key-{index}".encode()).digest()
    blob = len(kind).to_bytes(4, "big") + kind + len(point).to_bytes(4, "big") + point
    public_key = f"ssh-ed25519 {base64.b64encode(blob).decode()} bench-{index}"
    return SshKeySpec(
        address=ssh_key_address(fleet, f"key-{index}"),
        fleet=fleet,
        name=f"key-{index}",
        public_key=public_key,
        fingerprint=fingerprint_of(public_key),
    )


def graph_fleet() -> Fleet:
    return make_fleet(GRAPH_INSTANCES, name=GRAPH, volumes=GRAPH_VOLUMES, keys=GRAPH_KEYS)


async def seed(base_url: str, fleet: Fleet) -> FleetState:
    """Create the fleet in the emulator as an apply would (volumes and keys first, instances
    with their ids) and return the state that apply would have written."""
    state = new_state(fleet.name)
    now = datetime.now(UTC).isoformat()
    async with ShadeformClient(SANDBOX_API_KEY, base_url, parallelism=128) as client:

        async def create_volume(spec: VolumeSpec) -> tuple[str, str]:
            request = CreateVolumeRequest(
                cloud=spec.cloud, region=spec.region, size_in_gb=spec.size_in_gb, name=spec.name
            )
            return spec.address, await client.create_volume(request)

        async def add_key(spec: SshKeySpec) -> tuple[str, str]:
            request = AddSshKeyRequest(name=spec.name, public_key=spec.public_key)
            return spec.address, await client.add_ssh_key(request)

        resource_ids = dict(
            await asyncio.gather(
                *(create_volume(v) for v in fleet.volumes), *(add_key(k) for k in fleet.ssh_keys)
            )
        )
        uses = {
            s.address: {a: resource_ids[a] for a in instance_references(s)} for s in fleet.instances
        }

        async def create(spec: InstanceSpec) -> tuple[str, str]:
            used = uses[spec.address]
            resolved = spec.model_copy(
                update={
                    "volume_ids": tuple(used[volume_address(spec.fleet, v)] for v in spec.volumes),
                    "ssh_key_id": used[ssh_key_address(spec.fleet, spec.ssh_key)]
                    if spec.ssh_key
                    else None,
                }
            )
            request = CreateRequest.from_spec(
                resolved, extra_tags=ownership_tags(fleet.name, spec.address)
            )
            return spec.address, await client.create_instance(request)

        ids = dict(await asyncio.gather(*(create(s) for s in fleet.instances)))
    records = {
        s.address: InstanceRecord(
            address=s.address,
            instance_id=ids[s.address],
            applied_spec=comparable_spec(s, state.fingerprint_key),
            uses=uses[s.address],
            created_at=now,
            updated_at=now,
        )
        for s in fleet.instances
    }
    resources = {
        s.address: ResourceRecord(
            address=s.address,
            kind=kind,
            resource_id=resource_ids[s.address],
            applied_spec=kind_named(kind).comparable(s, state.fingerprint_key),
            created_at=now,
            updated_at=now,
        )
        for kind, specs in (("volume", fleet.volumes), ("ssh_key", fleet.ssh_keys))
        for s in specs
    }
    return state.model_copy(
        update={
            "instances": records,
            "resources": resources,
            "serial": 1,
            "lineage": state.lineage,
        }
    )


@dataclass(frozen=True)
class Measured:
    seconds: float
    changes: int
    """Changes to infrastructure (and adoptions): must be none."""
    noops: int
    """Addresses planned as up to date: every resource of the fleet."""
    blocked: int


async def measure(base_url: str, fleet: Fleet, state: FleetState) -> Measured:
    async with ShadeformClient(SANDBOX_API_KEY, base_url) as client:
        started = time.perf_counter()
        plan = await refresh_and_plan(client, [fleet], {fleet.name: state}, now=datetime.now(UTC))
        elapsed = time.perf_counter() - started
    planned = plan.fleets[0]
    return Measured(
        seconds=elapsed,
        changes=sum(1 for c in planned.changes if c.is_change),
        noops=sum(1 for c in planned.changes if c.action is Action.NOOP),
        blocked=len(planned.blocked) + len(planned.no_capacity),
    )


def run_case(base_url: str, fleet: Fleet, label: str, target: float) -> None:
    state = asyncio.run(seed(base_url, fleet))
    runs = [asyncio.run(measure(base_url, fleet, state)) for _ in range(3)]
    best = min(r.seconds for r in runs)
    last = runs[-1]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"no-op plan, {label}, 20 ms latency: best {best:.3f} s of 3 "
        f"(target {target:.1f} s, ratio {best / target:.2f}); changes={last.changes}; "
        f"peak RSS so far {peak_mb:.0f} MiB"
    )
    assert last.changes == 0, "a no-op plan must have no changes"
    resources = len(fleet.instances) + len(fleet.volumes) + len(fleet.ssh_keys)
    assert last.noops == resources and last.blocked == 0, (
        f"every resource must be planned up to date ({last.noops} of {resources}; "
        f"{last.blocked} blocked)"
    )
    # Clean up so the next case starts from an empty cloud.
    asyncio.run(_delete_all(base_url, state))


def main() -> None:
    cases = sys.argv[1:] or [*map(str, sorted(TARGETS)), GRAPH]
    with emulator_process("--boot-seconds", "0", "--latency-ms", "20") as base_url:
        for case in cases:
            if case == GRAPH:
                label = (
                    f"graph: {GRAPH_INSTANCES} instances + {GRAPH_VOLUMES} volumes "
                    f"+ {GRAPH_KEYS} SSH keys"
                )
                run_case(base_url, graph_fleet(), label, GRAPH_TARGET)
            else:
                size = int(case)
                target = TARGETS.get(size, float("nan"))
                run_case(base_url, make_fleet(size), f"{size:>6} instances", target)


async def _delete_all(base_url: str, state: FleetState) -> None:
    """Delete every instance, then (once no instance mounts or uses them) the state's
    volumes and keys."""
    async with ShadeformClient(SANDBOX_API_KEY, base_url, parallelism=128) as client:
        listed = await client.list_instances()
        await asyncio.gather(*(client.delete_instance(i.id) for i in listed))
        if not state.resources:
            return
        while await client.list_instances():
            await asyncio.sleep(0.2)
        deletes = {"volume": client.delete_volume, "ssh_key": client.delete_ssh_key}
        await asyncio.gather(*(deletes[r.kind](r.resource_id) for r in state.resources.values()))


if __name__ == "__main__":
    main()
