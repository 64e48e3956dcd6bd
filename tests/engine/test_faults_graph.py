"""Apply and destroy converge for a graph fleet under injected faults: random 5xx, 429s from
the rate limiter, lost create answers (the volume, key or instance is created, the answer is
lost) and hangs (the answer comes after the client's read timeout).

The fleet: a volume, a key, and two instances, one using both, one the key only. Volumes and
keys carry no tags, so an ambiguous create is found again by its anchor (name and cloud/region,
or name and fingerprint). Whatever the faults, repeated applies converge to exactly one volume,
one key and one instance per address, all recorded, the instances created with the recorded
ids; a destroy deletes everything and never sends a volume's or key's delete while an instance
that uses it exists (``deleting`` included).

The fault dice are seeded; the interleaving of concurrent requests still depends on timing (the
rate limiter runs on the wall clock), so the tests assert invariants, not request sequences.
The client's retry waits run a hundred times faster than asked (a ``Retry-After: 1`` waits
10 ms) and its read timeout is 50 ms, so a hang of 300 ms is a timeout, as over a network.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field, replace

import httpx
import pytest

from reconciler.api import RetryPolicy
from reconciler.emulator import Emulator, FaultConfig
from reconciler.emulator.config import EndpointFaults
from reconciler.engine.planner import PlanOptions
from reconciler.errors import ApiError
from reconciler.models.api import InstanceInfo, SshKey, Volume
from reconciler.models.spec import Fleet

from .factories import fleet, spec, ssh_key, volume
from .harness import Loop, SeenRequest, make_client, make_emulator

MAX_RUNS = 12
HANG_SECONDS = 0.3
DESTROY = PlanOptions(destroy=True, allow_data_loss=True)


def graph_fleet() -> Fleet:
    return fleet(
        spec("trainer", volumes=("data",), ssh_key="deploy"),
        spec("helper", ssh_key="deploy"),
        volumes=(volume("data"),),
        ssh_keys=(ssh_key("deploy"),),
    )


def _lost(rate: float, *operations: str) -> dict[str, EndpointFaults]:
    return {operation: EndpointFaults(lost_response_rate=rate) for operation in operations}


CREATES = ("VolumesCreate", "SshKeysAdd")  # InstancesCreate: FaultConfig.lost_create_rate
DELETES = ("InstancesDelete", "VolumesDelete", "SshKeysDelete")

# name -> (the faults, what must have been injected at least once for the test to mean anything).
# The client waits a hundredth of what it is told, so the emulator's bucket refills a hundred
# times faster too: 1000 requests a second here is 10 a second to the client.
SCENARIOS: dict[str, tuple[FaultConfig, set[str]]] = {
    "5xx": (
        FaultConfig(
            error_rate=0.25,
            error_statuses=(500, 502, 503, 504),
            endpoints={op: EndpointFaults(error_rate=0.5) for op in CREATES},
        ),
        {"5xx"},
    ),
    "429": (FaultConfig(rate_limit_rps=1000, rate_limit_burst=2), {"429"}),
    "lost creates": (
        FaultConfig(lost_create_rate=1.0, endpoints=_lost(1.0, *CREATES)),
        {"volume create 5xx", "key add 5xx", "instance create 5xx"},
    ),
    "hangs": (FaultConfig(hang_rate=0.2, hang_seconds=HANG_SECONDS), {"hang"}),
    "everything": (
        FaultConfig(
            error_rate=0.2,
            rate_limit_rps=1000,
            rate_limit_burst=2,
            lost_create_rate=0.5,
            hang_rate=0.15,
            hang_seconds=HANG_SECONDS,
            endpoints=_lost(0.5, *CREATES),
        ),
        {"5xx", "429"},
    ),
}
SEEDS = (1, 2)
CASES = [
    pytest.param(name, seed, id=f"{name.replace(' ', '-')}-seed{seed}")
    for name in SCENARIOS
    for seed in SEEDS
]


async def _fast_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds / 100)


@dataclass
class Hangs:
    """The emulator's sleep: records each hang (latency is off in these tests)."""

    waits: list[float] = field(default_factory=list)

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class SentDelete:
    what: str  # "volumes" or "sshkeys"
    resource_id: str
    used_by: tuple[str, ...]
    """Live instances (``deleting`` included) using it when the delete was sent."""


@dataclass
class DeleteWatch:
    """Sees every volume and key delete as it is sent, and which live instances use what it
    deletes at that moment."""

    emulator: Emulator
    sent: list[SentDelete] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> None:
        parts = request.url.path.removeprefix("/v1/").split("/")
        if request.method != "POST" or len(parts) != 3 or parts[2] != "delete":
            return
        what, resource_id = parts[0], parts[1]
        if what not in ("volumes", "sshkeys"):
            return
        used_by = tuple(
            i["id"]
            for i in self.emulator.live_instances()
            if (
                resource_id in i.get("volume_ids", [])
                if what == "volumes"
                else i.get("ssh_key_id") == resource_id
            )
        )
        self.sent.append(SentDelete(what, resource_id, used_by))


@dataclass
class World:
    loop: Loop
    watch: DeleteWatch
    hangs: Hangs


def make_world(faults: FaultConfig, *, delete_seconds: float = 0.05) -> World:
    """Deleted instances stay ``deleting`` for ``delete_seconds``."""
    hangs = Hangs()
    emulator = make_emulator(delete_seconds=delete_seconds, faults=faults, sleep=hangs.sleep)
    watch = DeleteWatch(emulator)
    loop = Loop(
        emulator,
        seen=[],
        watch=watch,
        client_options={
            "retry": RetryPolicy(
                max_attempts=6, base_delay=0.001, max_delay=0.01, sleep=_fast_sleep
            ),
            "timeout": httpx.Timeout(5.0, read=0.05),
        },
    )
    return World(loop, watch, hangs)


def converge(loop: Loop, f: Fleet, options: PlanOptions = PlanOptions()) -> int:
    """Plan and apply until a plan has nothing to do; the number of plans it took."""
    for runs in range(1, MAX_RUNS + 1):
        try:
            plan = asyncio.run(loop.plan(f, options))
        except ApiError:
            continue  # a refresh can fail outright under faults (retries exhausted): run again
        if plan.in_sync and not any(p.has_work for p in plan.fleets):
            return runs
        asyncio.run(loop.apply(f, plan))
    raise AssertionError(f"no plan without changes after {MAX_RUNS} runs under faults")


def injected(seen: list[SeenRequest], hangs: Hangs) -> set[str]:
    """Which faults the emulator answered with (a lost answer is an empty 502)."""
    labels = set()
    for r in seen:
        if r.status == 429:
            labels.add("429")
        if r.status >= 500:
            labels.add("5xx")
            for what, path in (
                ("volume create", "/volumes/create"),
                ("key add", "/sshkeys/add"),
                ("instance create", "/instances/create"),
            ):
                if r.method == "POST" and r.path == path:
                    labels.add(f"{what} 5xx")
    if HANG_SECONDS in hangs.waits:
        labels.add("hang")
    return labels


@dataclass(frozen=True)
class Account:
    """What the emulated account holds, read with the faults off."""

    instances: list[InstanceInfo]
    volumes: list[Volume]
    keys: list[SshKey]


def read_account(loop: Loop) -> Account:
    loop.emulator.faults = FaultConfig()

    async def read() -> Account:
        async with make_client(loop.emulator) as client:
            listed = await client.list_instances()
            infos = [await client.get_instance(i.id) for i in listed]
            return Account(
                infos,
                [v for v in await client.list_volumes() if v.name == "data"],
                [k for k in await client.list_ssh_keys() if k.name == "deploy"],
            )

    return asyncio.run(read())


def assert_converged(world: World, f: Fleet) -> None:
    loop = world.loop
    account = read_account(loop)
    names = Counter(i.name for i in account.instances)
    assert names == Counter({"trainer": 1, "helper": 1}), names
    for name in ("trainer", "helper"):
        assert loop.emulator.create_count(name) == 1, f"{name} was created twice"
    assert len(account.volumes) == 1, f"volumes named 'data': {account.volumes}"
    assert len(account.keys) == 1, f"keys named 'deploy': {account.keys}"
    assert world.watch.sent == [], "a volume or key was deleted (a duplicate?)"

    state = loop.state(f)
    volume_id = state.resources["inference/volume.data"].resource_id
    key_id = state.resources["inference/ssh_key.deploy"].resource_id
    assert volume_id == account.volumes[0].id and key_id == account.keys[0].id
    assert set(state.resources) == {"inference/volume.data", "inference/ssh_key.deploy"}
    assert all(r.retiring == () for r in state.resources.values())
    assert state.intents == {}
    by_name = {i.name: i for i in account.instances}
    recorded = {a.removeprefix("inference/"): r for a, r in state.instances.items()}
    assert {n: r.instance_id for n, r in recorded.items()} == {n: i.id for n, i in by_name.items()}
    trainer, helper = by_name["trainer"], by_name["helper"]
    assert trainer.volume_ids == (volume_id,) and trainer.ssh_key_id == key_id
    assert helper.volume_ids == () and helper.ssh_key_id == key_id
    assert recorded["trainer"].uses == {
        "inference/volume.data": volume_id,
        "inference/ssh_key.deploy": key_id,
    }
    assert recorded["helper"].uses == {"inference/ssh_key.deploy": key_id}

    plan = asyncio.run(loop.plan(f))
    assert plan.in_sync and not plan.fleets[0].has_work, plan.fleets[0].changes


@pytest.mark.parametrize(("scenario", "seed"), CASES)
def test_a_graph_fleet_converges_under_faults_without_duplicates(scenario: str, seed: int):
    faults, expected = SCENARIOS[scenario]
    world = make_world(faults.model_copy(update={"seed": seed}))
    f = graph_fleet()
    converge(world.loop, f)
    assert world.loop.seen is not None
    assert expected <= injected(world.loop.seen, world.hangs), "the faults did not fire"
    assert_converged(world, f)


@pytest.mark.parametrize(("scenario", "seed"), CASES)
def test_a_graph_fleet_is_destroyed_under_faults_users_first(scenario: str, seed: int):
    faults, _ = SCENARIOS[scenario]
    world = make_world(FaultConfig())
    loop, f = world.loop, graph_fleet()
    assert not asyncio.run(loop.apply(f)).failed
    ids = {r.resource_id for r in loop.state(f).resources.values()}
    # Lost answers on every delete too: the delete happens, the retry finds it gone.
    loop.emulator.faults = faults.model_copy(
        update={"seed": seed, "endpoints": {**faults.endpoints, **_lost(0.5, *DELETES)}}
    )
    converge(loop, f, DESTROY)

    sent = world.watch.sent
    assert {d.resource_id for d in sent} == ids, "every volume and key delete was sent"
    in_use = [d for d in sent if d.used_by]
    assert not in_use, f"deletes sent while an instance used what they delete: {in_use}"
    account = read_account(loop)
    assert account == Account([], [], [])
    state = loop.state(f)
    assert state.instances == {} and state.resources == {} and state.intents == {}


def test_a_destroy_resumed_while_its_instances_are_deleting_waits_until_they_are_gone():
    """A destroy run that stops after sending the instance deletes (here it gives up waiting
    for them to be gone, as it does after ``gone_timeout`` or when every poll fails) leaves
    them ``deleting``. The next run forgets them (they are as good as gone), but what they
    use must still wait until they are gone: a volume is never deleted under an instance."""
    world = make_world(FaultConfig(), delete_seconds=0.3)
    loop, f = world.loop, graph_fleet()
    assert not asyncio.run(loop.apply(f)).failed
    patient = loop.options
    loop.options = replace(patient, gone_timeout=0.0)
    first = asyncio.run(loop.apply(f, asyncio.run(loop.plan(f, DESTROY))))
    assert {r.address for r in first.results if not r.ok} == {
        "inference/trainer",
        "inference/helper",
        "inference/volume.data",
        "inference/ssh_key.deploy",
    }
    assert world.watch.sent == [], "the volume and the key wait for the instances"
    assert {i["status"] for i in loop.emulator.live_instances()} == {"deleting"}

    loop.options = patient
    second = asyncio.run(loop.apply(f, asyncio.run(loop.plan(f, DESTROY))))
    in_use = [d for d in world.watch.sent if d.used_by]
    assert not in_use, f"deletes sent while an instance used what they delete: {in_use}"
    assert not second.failed, second.results
    assert read_account(loop) == Account([], [], [])
