"""The executor's dependency graph against the emulator: volumes and SSH keys before the
instances that use them, instances gone before what they used is deleted, failures that stop
only their dependents, and crash safety for kinds without tags."""

from __future__ import annotations

import asyncio

import pytest

from reconciler.emulator.config import EndpointFaults
from reconciler.engine.planner import PlanOptions
from reconciler.models.plan import Action, BlockedKind
from reconciler.models.state import CreateIntent

from .factories import OTHER_PUBLIC_KEY, fleet, spec, ssh_key, volume
from .harness import Loop, SeenRequest, make_emulator


def run(coro):
    return asyncio.run(coro)


def changes(plan):
    """(address, action) of every change but the no-ops."""
    return [
        (c.address, c.action.value)
        for f in plan.fleets
        for c in f.changes
        if c.action is not Action.NOOP
    ]


def graph_fleet(**volume_overrides):
    """A volume, a key, and two instances: one mounts the volume and uses the key, the other
    uses the key only."""
    return fleet(
        spec("trainer", volumes=("data",), ssh_key="deploy"),
        spec("helper", ssh_key="deploy"),
        volumes=(volume("data", **volume_overrides),),
        ssh_keys=(ssh_key("deploy"),),
    )


@pytest.fixture
def loop() -> Loop:
    return Loop(make_emulator(delete_seconds=0.05), seen=[])


def posts(seen: list[SeenRequest], path_part: str) -> list[int]:
    return [i for i, r in enumerate(seen) if r.method == "POST" and path_part in r.path]


def test_volume_and_key_are_created_first_and_their_ids_flow_into_the_instance_creates(loop):
    f = graph_fleet()
    report = run(loop.apply(f))
    assert not report.failed, report.results
    seen = loop.seen
    volume_create = posts(seen, "/volumes/create")
    key_add = posts(seen, "/sshkeys/add")
    instance_creates = posts(seen, "/instances/create")
    assert len(volume_create) == 1 and len(key_add) == 1 and len(instance_creates) == 2
    assert max(volume_create + key_add) < min(instance_creates)
    state = loop.store.read("inference")
    volume_id = state.resources["inference/volume.data"].resource_id
    key_id = state.resources["inference/ssh_key.deploy"].resource_id
    bodies = {seen[i].body["name"]: seen[i].body for i in instance_creates}
    assert bodies["trainer"]["volume_ids"] == [volume_id]
    assert bodies["trainer"]["ssh_key_id"] == key_id
    assert "volume_ids" not in bodies["helper"] and bodies["helper"]["ssh_key_id"] == key_id
    # The state keeps the manifest's words (names), not the ids: nothing to change next time.
    assert state.instances["inference/trainer"].applied_spec["volumes"] == ["data"]
    assert not run(loop.plan(f)).has_changes


def test_destroy_with_data_loss_deletes_the_volume_only_once_its_instance_is_gone(loop):
    f = graph_fleet()
    run(loop.apply(f))
    state = loop.store.read("inference")
    trainer = state.instances["inference/trainer"].instance_id
    volume_id = state.resources["inference/volume.data"].resource_id
    loop.seen.clear()
    plan = run(loop.plan(f, PlanOptions(destroy=True, allow_data_loss=True)))
    assert ("inference/volume.data", "delete") in changes(plan)
    report = run(loop.apply(f, plan))
    assert not report.failed, report.results
    seen = loop.seen
    trainer_delete = posts(seen, f"/instances/{trainer}/delete")[0]
    (volume_delete,) = posts(seen, f"/volumes/{volume_id}/delete")
    gone = [
        i
        for i, r in enumerate(seen)
        if r.method == "GET" and r.path == f"/instances/{trainer}/info" and r.status == 404
    ]
    assert trainer_delete < gone[0] < volume_delete, "gone (not just deleting) before"
    assert seen[volume_delete].status == 200
    key_delete = posts(seen, "/sshkeys/")[-1]
    assert key_delete > max(posts(seen, "/instances/"))
    assert loop.emulator.live_instances() == []
    after = loop.store.read("inference")
    assert after.instances == {} and after.resources == {}


def test_destroy_keeps_volumes_without_the_word(loop):
    f = graph_fleet()
    run(loop.apply(f))
    volume_id = loop.store.read("inference").resources["inference/volume.data"].resource_id
    plan = run(loop.plan(f, PlanOptions(destroy=True)))
    (fleet_plan,) = plan.fleets
    assert [k.address for k in fleet_plan.kept] == ["inference/volume.data"]
    assert "inference/volume.data" not in {c.address for c in fleet_plan.changes}
    assert not plan.data_loss
    assert not run(loop.apply(f, plan)).failed
    state = loop.store.read("inference")
    assert set(state.resources) == {"inference/volume.data"}
    assert state.resources["inference/volume.data"].resource_id == volume_id
    assert fleet_plan.cost.hourly_cents_after > 0, "the kept volume still costs"


def test_a_changed_key_replaces_itself_create_first_and_every_instance_using_it(loop):
    f = graph_fleet()
    run(loop.apply(f))
    old_key = loop.store.read("inference").resources["inference/ssh_key.deploy"].resource_id
    changed = fleet(
        *f.instances, volumes=f.volumes, ssh_keys=(ssh_key("deploy", OTHER_PUBLIC_KEY),)
    )
    plan = run(loop.plan(changed))
    assert changes(plan) == [
        ("inference/ssh_key.deploy", "replace"),
        ("inference/helper", "replace"),
        ("inference/trainer", "replace"),
    ]
    key_change, *instance_changes = [
        c for c in plan.fleets[0].changes if c.action is not Action.NOOP
    ]
    assert key_change.create_before_destroy and not key_change.destroys_data
    for change in instance_changes:
        assert [r.code.value for r in change.reasons] == ["dependency_replaced"]
        assert "inference/ssh_key.deploy" in change.reasons[0].message
    loop.seen.clear()
    report = run(loop.apply(changed, plan))
    assert not report.failed, report.results
    state = loop.store.read("inference")
    new_key = state.resources["inference/ssh_key.deploy"].resource_id
    assert new_key != old_key and state.resources["inference/ssh_key.deploy"].retiring == ()
    seen = loop.seen
    add = posts(seen, "/sshkeys/add")[0]
    old_delete = posts(seen, f"/sshkeys/{old_key}/delete")[0]
    assert add < min(posts(seen, "/instances/create")), "the new key first"
    assert old_delete > max(posts(seen, "/delete")[:-1]), "the old key last"
    keys = {k["id"] for k in run(_listed(loop, "ssh_keys"))}
    assert new_key in keys and old_key not in keys
    assert not run(loop.plan(changed)).has_changes


def test_a_resized_volume_is_replaced_with_its_instance_and_loses_its_data(loop):
    f = graph_fleet()
    run(loop.apply(f))
    old_volume = loop.store.read("inference").resources["inference/volume.data"].resource_id
    bigger = graph_fleet(size_in_gb=200)
    plan = run(loop.plan(bigger))
    assert changes(plan) == [
        ("inference/volume.data", "replace"),
        ("inference/trainer", "replace"),
    ]
    assert [c.address for c in plan.data_loss] == ["inference/volume.data"]
    report = run(loop.apply(bigger, plan))
    assert not report.failed, report.results
    state = loop.store.read("inference")
    new_volume = state.resources["inference/volume.data"].resource_id
    assert new_volume != old_volume
    trainer = loop.live_for("inference/trainer")[0]
    assert trainer["volume_ids"] == [new_volume]
    assert not run(loop.plan(bigger)).has_changes


def test_a_failed_volume_create_stops_only_what_uses_it(loop):
    loop.emulator.faults.endpoints["VolumesCreate"] = EndpointFaults(
        error_rate=1.0, error_statuses=(500,)
    )
    report = run(loop.apply(graph_fleet()))
    by_address = {r.address: r for r in report.results}
    assert not by_address["inference/volume.data"].ok
    trainer = by_address["inference/trainer"]
    assert not trainer.ok and not trainer.started
    assert "inference/volume.data" in trainer.message
    assert by_address["inference/helper"].ok and by_address["inference/ssh_key.deploy"].ok
    assert [i["name"] for i in loop.emulator.live_instances()] == ["helper"]


def test_a_lost_volume_create_answer_is_found_by_its_anchor(loop):
    loop.emulator.faults.endpoints["VolumesCreate"] = EndpointFaults(lost_response_rate=1.0)
    f = fleet(spec("trainer", volumes=("data",)), volumes=(volume("data"),))
    report = run(loop.apply(f))
    assert not report.failed, report.results
    volumes = run(_listed(loop, "volumes"))
    assert [v["name"] for v in volumes] == ["data"], "exactly one, no retry"
    state = loop.store.read("inference")
    assert state.resources["inference/volume.data"].resource_id == volumes[0]["id"]
    assert state.intents == {}


def test_a_create_recorded_but_never_saved_is_adopted_not_duplicated(loop):
    """A run killed after the volume was created but before its id was saved: the intent's
    anchor finds it, and the next run adopts it instead of creating a second one."""
    f = fleet(volumes=(volume("data"),))
    loop.emulator.faults.endpoints["VolumesCreate"] = EndpointFaults()
    created = run(_create_volume_outside(loop, "data"))
    loop.store.write(
        loop.state(f).model_copy(
            update={
                "intents": {
                    "i-1": CreateIntent(
                        intent_id="i-1",
                        address="inference/volume.data",
                        kind="volume",
                        anchor={"name": "data", "cloud": "hyperstack", "region": "canada-1"},
                        created_at="2026-12-01T00:00:00Z",
                        request_sent=True,
                    )
                }
            }
        )
    )
    plan = run(loop.plan(f))
    (change,) = plan.fleets[0].changes
    assert change.adopt and change.resource_id == created and change.action is Action.NOOP
    assert not run(loop.apply(f, plan)).failed
    assert loop.store.read("inference").resources["inference/volume.data"].resource_id == created
    assert len(run(_listed(loop, "volumes"))) == 1


def test_an_unowned_volume_with_the_same_name_blocks_the_address(loop):
    outside = run(_create_volume_outside(loop, "data"))
    f = fleet(volumes=(volume("data"),))
    plan = run(loop.plan(f))
    (blocked,) = plan.blocked
    assert blocked.address == "inference/volume.data" and blocked.kind is BlockedKind.OTHER
    assert "import it or rename" in blocked.message
    assert f"reconciler import inference/volume.data {outside}" in blocked.message
    report = run(loop.apply(f, plan))
    assert report.blocked and len(run(_listed(loop, "volumes"))) == 1


def test_parallelism_one_still_walks_the_graph(loop):
    loop.options = loop.options.__class__(
        parallelism=1, poll_interval=0.01, ambiguous_lookup_delay=0.01
    )
    f = graph_fleet()
    report = run(asyncio.wait_for(loop.apply(f), timeout=20))
    assert not report.failed
    destroy = run(loop.plan(f, PlanOptions(destroy=True, allow_data_loss=True)))
    assert not run(asyncio.wait_for(loop.apply(f, destroy), timeout=20)).failed


async def _listed(loop: Loop, what: str) -> list[dict]:
    """The account's volumes or keys, as the API lists them."""
    from .harness import make_client

    async with make_client(loop.emulator) as client:
        found = await (client.list_volumes() if what == "volumes" else client.list_ssh_keys())
    return [item.model_dump() for item in found]


async def _create_volume_outside(loop: Loop, name: str) -> str:
    from reconciler.models.api import CreateVolumeRequest

    from .harness import make_client

    async with make_client(loop.emulator) as client:
        return await client.create_volume(
            CreateVolumeRequest(cloud="hyperstack", region="canada-1", size_in_gb=100, name=name)
        )
