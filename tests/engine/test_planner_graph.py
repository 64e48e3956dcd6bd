"""The planner's resource graph, pure: what instances use, what a change may do while others
use it, data loss, and the edges the executor walks."""

from __future__ import annotations

import pytest

from reconciler.engine.planner import PlanOptions, plan_fleet
from reconciler.errors import ManifestError
from reconciler.models.catalog import Catalog, Offer, VolumePrice
from reconciler.models.live import Health, IntentResolution, LiveResource, ResolvedIntent
from reconciler.models.plan import Action, BlockedKind
from reconciler.models.spec import Lifecycle
from reconciler.models.state import CreateIntent, ResourceRecord

from .factories import fleet, live, record, snapshot, spec, ssh_key, state, volume

VOLUME = "inference/volume.data"
KEY_ADDRESS = "inference/ssh_key.deploy"


def resource_record(address: str, kind: str, resource_id: str, applied: dict) -> ResourceRecord:
    return ResourceRecord(
        address=address,
        kind=kind,
        resource_id=resource_id,
        applied_spec=applied,
        created_at="2026-11-27T10:00:00Z",
        updated_at="2026-11-27T10:00:00Z",
    )


def live_volume(
    resource_id: str, *, size: int = 100, used_by: tuple[str, ...] = ()
) -> LiveResource:
    return LiveResource(
        id=resource_id,
        kind="volume",
        name="data",
        observed={"name": "data", "cloud": "hyperstack", "region": "canada-1", "size_in_gb": size},
        in_use_by=used_by,
    )


def applied_volume(size: int = 100) -> dict:
    return {"name": "data", "cloud": "hyperstack", "region": "canada-1", "size_in_gb": size}


def running_graph(size: int = 100, *, instance_lifecycle: Lifecycle = Lifecycle()):
    """A fleet whose trainer mounts volume ``data``, all applied and running."""
    trainer = spec("trainer", volumes=("data",), lifecycle=instance_lifecycle)
    desired = fleet(trainer, volumes=(volume("data", size_in_gb=size),))
    recorded = state(record(spec("trainer", volumes=("data",)), "i-1"))
    recorded = recorded.model_copy(
        update={"resources": {VOLUME: resource_record(VOLUME, "volume", "vol-1", applied_volume())}}
    )
    seen = snapshot(
        live(trainer, "i-1"), resources={"vol-1": live_volume("vol-1", used_by=("i-1",))}
    )
    return desired, recorded, seen


def by_address(plan):
    return {c.address: c for c in plan.changes}


def test_a_new_graph_creates_what_is_used_first_and_names_the_edges():
    desired = fleet(
        spec("trainer", volumes=("data",), ssh_key="deploy"),
        volumes=(volume("data"),),
        ssh_keys=(ssh_key("deploy"),),
    )
    plan = plan_fleet(desired, state(), snapshot())
    assert [(c.kind, c.address) for c in plan.changes] == [
        ("ssh_key", KEY_ADDRESS),
        ("volume", VOLUME),
        ("instance", "inference/trainer"),
    ]
    assert by_address(plan)["inference/trainer"].depends_on == (KEY_ADDRESS, VOLUME)
    key = by_address(plan)[KEY_ADDRESS]
    assert key.after == {"name": "deploy", "fingerprint": ssh_key("deploy").fingerprint}
    assert "ssh-ed25519" not in str(plan.model_dump()), "a plan shows the fingerprint only"


def test_a_resized_volume_is_replaced_with_data_loss_and_takes_its_instance_along():
    desired, recorded, seen = running_graph(size=200)
    plan = plan_fleet(desired, recorded, seen)
    changes = by_address(plan)
    assert changes[VOLUME].action is Action.REPLACE and changes[VOLUME].destroys_data
    assert not changes[VOLUME].create_before_destroy, "a volume is never replaced create-first"
    trainer = changes["inference/trainer"]
    assert trainer.action is Action.REPLACE and not trainer.destroys_data
    assert trainer.reasons[0].code.value == "dependency_replaced"
    assert plan.data_loss == (changes[VOLUME],)


def test_create_before_destroy_with_a_mounted_volume_is_refused_at_plan_time():
    desired, recorded, seen = running_graph(
        size=200, instance_lifecycle=Lifecycle(create_before_destroy=True)
    )
    with pytest.raises(ManifestError) as caught:
        plan_fleet(desired, recorded, seen)
    (issue,) = caught.value.issues
    assert issue.field == "lifecycle.create_before_destroy"
    assert "mounts on one machine" in issue.message and caught.value.exit_code == 3


def test_a_targeted_instance_brings_what_it_uses():
    desired = fleet(
        spec("trainer", volumes=("data",)),
        spec("other"),
        volumes=(volume("data"),),
    )
    plan = plan_fleet(desired, state(), snapshot(), PlanOptions(targets=("inference/trainer",)))
    assert sorted(by_address(plan)) == ["inference/trainer", VOLUME]


def test_an_excluded_volume_holds_back_the_instance_that_needs_it():
    desired = fleet(spec("trainer", volumes=("data",)), volumes=(volume("data"),))
    plan = plan_fleet(desired, state(), snapshot(), PlanOptions(excludes=(VOLUME,)))
    assert plan.changes == ()
    (blocked,) = plan.blocked
    assert blocked.address == "inference/trainer" and VOLUME in blocked.message


def test_a_volume_replaced_while_its_instance_stays_is_held_back():
    desired, recorded, seen = running_graph(size=200)
    plan = plan_fleet(desired, recorded, seen, PlanOptions(targets=(VOLUME,)))
    assert [c for c in plan.changes if c.is_change] == []
    (blocked,) = plan.blocked
    assert blocked.address == VOLUME
    assert "used by inference/trainer" in blocked.message


def test_a_pending_volume_create_blocks_what_waits_for_it():
    desired = fleet(spec("trainer", volumes=("data",)), volumes=(volume("data"),))
    intent = CreateIntent(
        intent_id="t-1",
        address=VOLUME,
        kind="volume",
        anchor={"name": "data", "cloud": "hyperstack", "region": "canada-1"},
        created_at="2026-11-27T10:00:00Z",
    )
    pending = ResolvedIntent(
        intent_id="t-1",
        address=VOLUME,
        kind="volume",
        resolution=IntentResolution.PENDING,
        age_seconds=5,
        grace_seconds=60,
    )
    plan = plan_fleet(
        desired,
        state().model_copy(update={"intents": {"t-1": intent}}),
        snapshot(intents=(pending,)),
    )
    blocked = {b.address: b for b in plan.blocked}
    assert blocked[VOLUME].kind is BlockedKind.PENDING_CREATE
    assert "no volume named 'data' has appeared yet" in blocked[VOLUME].message
    assert "waits for inference/volume.data" in blocked["inference/trainer"].message
    assert plan.changes == ()


def test_removing_a_volume_is_a_delete_that_destroys_data_after_its_user():
    _, recorded, seen = running_graph()
    plan = plan_fleet(fleet(), recorded, seen)
    changes = by_address(plan)
    assert changes[VOLUME].action is Action.DELETE and changes[VOLUME].destroys_data
    assert changes["inference/trainer"].depends_on == (VOLUME,), "from the recorded spec"


def test_a_destroy_keeps_volumes_unless_data_loss_is_allowed():
    desired, recorded, seen = running_graph()
    kept = plan_fleet(desired, recorded, seen, PlanOptions(destroy=True))
    assert [c.address for c in kept.changes] == ["inference/trainer"]
    assert [k.address for k in kept.kept] == [VOLUME] and not kept.data_loss
    allowed = plan_fleet(desired, recorded, seen, PlanOptions(destroy=True, allow_data_loss=True))
    assert sorted(by_address(allowed)) == ["inference/trainer", VOLUME]
    assert allowed.kept == () and allowed.data_loss[0].address == VOLUME


def test_an_instance_already_deleting_is_a_delete_its_volume_waits_for():
    """An earlier destroy sent the instance's delete and stopped: the instance is ``deleting``.
    A forget would let the volume's delete go while it is still mounted."""
    _, recorded, _ = running_graph()
    trainer = spec("trainer", volumes=("data",))
    seen = snapshot(
        live(trainer, "i-1", health=Health.GONE, status="deleting"),
        resources={"vol-1": live_volume("vol-1", used_by=("i-1",))},
    )
    plan = plan_fleet(fleet(), recorded, seen, PlanOptions(destroy=True, allow_data_loss=True))
    changes = by_address(plan)
    assert changes["inference/trainer"].action is Action.DELETE
    assert "already deleting" in changes["inference/trainer"].reasons[0].message
    assert changes["inference/trainer"].depends_on == (VOLUME,)
    gone = snapshot(resources={"vol-1": live_volume("vol-1")})
    forgotten = plan_fleet(fleet(), recorded, gone, PlanOptions(destroy=True))
    assert by_address(forgotten)["inference/trainer"].action is Action.FORGET


def test_a_volume_mounted_outside_the_fleet_is_warned_about():
    desired, recorded, seen = running_graph()
    seen = seen.model_copy(
        update={"resources": {"vol-1": live_volume("vol-1", used_by=("i-foreign",))}}
    )
    plan = plan_fleet(fleet(), recorded, seen)
    assert any("i-foreign" in w for w in plan.warnings)


def test_a_replaced_keys_predecessor_left_behind_is_deleted():
    key = ssh_key("deploy")
    applied = {"name": "deploy", "fingerprint": key.fingerprint}
    recorded = state().model_copy(
        update={
            "resources": {
                KEY_ADDRESS: resource_record(KEY_ADDRESS, "ssh_key", "k-2", applied).model_copy(
                    update={"retiring": ("k-1",)}
                )
            }
        }
    )

    def live_key(key_id: str) -> LiveResource:
        return LiveResource(id=key_id, kind="ssh_key", name="deploy", observed=applied)

    seen = snapshot(resources={"k-1": live_key("k-1"), "k-2": live_key("k-2")})
    plan = plan_fleet(fleet(ssh_keys=(key,)), recorded, seen)
    actions = sorted((c.action.value, c.resource_id) for c in plan.changes)
    assert actions == [("delete", "k-1"), ("no-op", "k-2")]


def test_storage_counts_in_the_fleets_burn():
    catalog = Catalog(
        offers=(
            Offer(
                cloud="hyperstack",
                region="canada-1",
                shade_instance_type="A6000",
                hourly_price_cents=80,
            ),
        ),
        volume_prices=(
            VolumePrice(cloud="hyperstack", region="canada-1", price_per_gb_per_hour="0.00028"),
        ),
    )
    desired = fleet(spec("trainer", volumes=("data",)), volumes=(volume("data", size_in_gb=10),))
    plan = plan_fleet(desired, state(), snapshot(), catalog=catalog)
    volume_change = by_address(plan)[VOLUME]
    assert volume_change.hourly_cents_after == pytest.approx(0.28)
    assert plan.cost.hourly_cents_after == pytest.approx(80.28)
    assert plan.cost.monthly_cents_after == pytest.approx(57801.6)
