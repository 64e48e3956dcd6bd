"""Table tests for the pure planner: every action and every reason."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reconciler.engine.planner import PlanOptions, address_selected, plan_fleet
from reconciler.errors import ManifestError, PolicyError
from reconciler.models.live import Health, IntentResolution, ResolvedIntent
from reconciler.models.plan import Action, ReasonCode
from reconciler.models.spec import Lifecycle, Thresholds

from .factories import fleet, live, record, secret_env, snapshot, spec, state


def only(plan, address="inference/vllm-0"):
    changes = [c for c in plan.changes if c.address == address]
    assert len(changes) == 1, plan.changes
    return changes[0]


def codes(change):
    return [r.code for r in change.reasons]


def test_new_instance_is_created():
    s = spec()
    plan = plan_fleet(fleet(s), state(serial=0), snapshot())
    change = only(plan)
    assert change.action is Action.CREATE
    assert codes(change) == [ReasonCode.NEW]
    assert change.after["shade_instance_type"] == "A6000"
    assert plan.lineage is None and plan.serial == 0
    assert plan.has_changes


def test_unchanged_instance_is_noop():
    s = spec()
    plan = plan_fleet(fleet(s), state(record(s, "i-1")), snapshot(live(s, "i-1")))
    change = only(plan)
    assert change.action is Action.NOOP
    assert not plan.has_changes
    assert plan.lineage == "lineage-1" and plan.serial == 3


@pytest.mark.parametrize(
    ("field", "value", "action", "code"),
    [
        ("tags", ("team-ml", "prod"), Action.UPDATE, ReasonCode.FIELD_CHANGED),
        (
            "auto_delete",
            Thresholds(spend_threshold="9.00"),
            Action.UPDATE,
            ReasonCode.FIELD_CHANGED,
        ),
        (
            "alert",
            Thresholds(date_threshold="2027-01-01T00:00:00Z"),
            Action.UPDATE,
            ReasonCode.FIELD_CHANGED,
        ),
        ("shade_instance_type", "H100", Action.REPLACE, ReasonCode.FORCES_REPLACEMENT),
        ("region", "us-1", Action.REPLACE, ReasonCode.FORCES_REPLACEMENT),
        ("os", "ubuntu20.04_cuda12.0_shade_os", Action.REPLACE, ReasonCode.FORCES_REPLACEMENT),
        ("rental_type", "spot", Action.REPLACE, ReasonCode.FORCES_REPLACEMENT),
    ],
)
def test_field_change_updates_or_replaces(field, value, action, code):
    old = spec()
    new = spec(**{field: value})
    plan = plan_fleet(fleet(new), state(record(old, "i-1")), snapshot(live(old, "i-1")))
    change = only(plan)
    assert change.action is action
    assert code in codes(change)
    assert [fc.path.split(".")[0] for fc in change.field_changes] == [field]
    assert change.resource_id == "i-1"


def test_out_of_band_rename_is_updated_back():
    s = spec()
    plan = plan_fleet(fleet(s), state(record(s, "i-1")), snapshot(live(s, "i-1", name="renamed")))
    change = only(plan)
    assert change.action is Action.UPDATE
    assert change.field_changes[0].path == "name"
    assert change.field_changes[0].before == "renamed"


def test_out_of_band_retag_is_updated_back():
    s = spec()
    plan = plan_fleet(fleet(s), state(record(s, "i-1")), snapshot(live(s, "i-1", tags=["other"])))
    change = only(plan)
    assert change.action is Action.UPDATE
    assert change.field_changes[0].before == ["other"]
    assert change.field_changes[0].after == ["team-ml"]


def test_deleted_outside_is_recreated():
    s = spec()
    plan = plan_fleet(fleet(s), state(record(s, "i-1")), snapshot())
    change = only(plan)
    assert change.action is Action.CREATE
    assert codes(change) == [ReasonCode.DELETED_OUTSIDE]


def test_preempted_spot_is_recreated_with_reason():
    s = spec(rental_type="spot")
    gone = live(s, "i-1", health=Health.GONE, status_details="preempted")
    plan = plan_fleet(fleet(s), state(record(s, "i-1")), snapshot(gone))
    change = only(plan)
    assert change.action is Action.CREATE
    assert codes(change) == [ReasonCode.PREEMPTED]


def test_instance_in_error_is_replaced():
    s = spec()
    broken = live(s, "i-1", health=Health.BROKEN, status_details="provider failure")
    plan = plan_fleet(fleet(s), state(record(s, "i-1")), snapshot(broken))
    change = only(plan)
    assert change.action is Action.REPLACE
    assert codes(change) == [ReasonCode.IN_ERROR]
    assert "provider failure" in change.reasons[0].message


def test_removed_from_manifest_is_deleted():
    s = spec()
    plan = plan_fleet(fleet(), state(record(s, "i-1")), snapshot(live(s, "i-1")))
    change = only(plan)
    assert change.action is Action.DELETE
    assert codes(change) == [ReasonCode.REMOVED_FROM_MANIFEST]


def test_removed_and_already_gone_is_forgotten_without_counting_as_change():
    s = spec()
    plan = plan_fleet(fleet(), state(record(s, "i-1")), snapshot())
    change = only(plan)
    assert change.action is Action.FORGET
    assert not plan.has_changes


def test_orphan_with_address_tag_is_adopted_not_duplicated():
    s = spec()
    orphan = live(s, "i-9")
    plan = plan_fleet(fleet(s), state(), snapshot(orphans=(orphan,)))
    change = only(plan)
    assert change.action is Action.NOOP
    assert change.adopt and change.resource_id == "i-9"
    assert codes(change) == [ReasonCode.ADOPTED_ORPHAN]
    assert plan.has_changes  # adoption writes state


def test_duplicate_orphans_keep_one_and_delete_the_rest():
    s = spec()
    a = live(s, "i-a")
    b = live(s, "i-b", health=Health.IN_PROGRESS)
    plan = plan_fleet(fleet(s), state(), snapshot(orphans=(b, a)))
    actions = sorted((c.action.value, c.resource_id) for c in plan.changes)
    assert actions == [("delete", "i-b"), ("no-op", "i-a")]


def test_orphan_not_in_manifest_is_deleted():
    s = spec()
    plan = plan_fleet(fleet(), state(), snapshot(orphans=(live(s, "i-9"),)))
    change = only(plan)
    assert change.action is Action.DELETE
    assert ReasonCode.ADOPTED_ORPHAN in codes(change)


def test_instance_without_fleet_tag_is_never_touched():
    s = spec()
    stray = live(s, "i-1", owned=False, name="renamed")
    plan = plan_fleet(fleet(s), state(record(s, "i-1")), snapshot(stray))
    change = only(plan)
    assert change.action is Action.NOOP
    assert codes(change) == [ReasonCode.NOT_OWNED]
    assert plan.warnings


def test_instance_without_fleet_tag_is_not_deleted_when_removed():
    s = spec()
    plan = plan_fleet(fleet(), state(record(s, "i-1")), snapshot(live(s, "i-1", owned=False)))
    assert plan.changes == ()
    assert plan.warnings


def test_secret_change_is_detected_by_fingerprint_and_never_shown():
    old = spec(envs=(secret_env("token-one"),))
    new = spec(envs=(secret_env("token-two"),))
    plan = plan_fleet(fleet(new), state(record(old, "i-1")), snapshot(live(old, "i-1")))
    change = only(plan)
    assert change.action is Action.REPLACE
    assert change.field_changes[0].sensitive
    dumped = plan.model_dump_json()
    assert "token-one" not in dumped and "token-two" not in dumped


def test_same_secret_is_noop():
    s = spec(envs=(secret_env("token-one"),))
    plan = plan_fleet(fleet(s), state(record(s, "i-1")), snapshot(live(s, "i-1")))
    assert only(plan).action is Action.NOOP


def test_ignore_changes_suppresses_diff():
    old = spec()
    new = spec(tags=("x",), region="us-1", lifecycle=Lifecycle(ignore_changes=("tags", "region")))
    plan = plan_fleet(fleet(new), state(record(old, "i-1")), snapshot(live(old, "i-1")))
    assert only(plan).action is Action.NOOP


def test_prevent_destroy_blocks_replace():
    old = spec(lifecycle=Lifecycle(prevent_destroy=True))
    new = spec(shade_instance_type="H100", lifecycle=Lifecycle(prevent_destroy=True))
    with pytest.raises(PolicyError, match="inference/vllm-0"):
        plan_fleet(fleet(new), state(record(old, "i-1")), snapshot(live(old, "i-1")))


def test_prevent_destroy_recorded_in_state_blocks_delete_after_removal():
    old = spec(lifecycle=Lifecycle(prevent_destroy=True))
    with pytest.raises(PolicyError, match="prevent_destroy"):
        plan_fleet(fleet(), state(record(old, "i-1")), snapshot(live(old, "i-1")))


def test_destroy_plans_deletion_of_everything_and_honours_prevent_destroy():
    a, b = spec("a"), spec("b")
    plan = plan_fleet(
        fleet(a, b),
        state(record(a, "i-a"), record(b, "i-b")),
        snapshot(live(a, "i-a"), live(b, "i-b")),
        PlanOptions(destroy=True),
    )
    assert [(c.address, c.action) for c in plan.changes] == [
        ("inference/a", Action.DELETE),
        ("inference/b", Action.DELETE),
    ]
    protected = spec("a", lifecycle=Lifecycle(prevent_destroy=True))
    with pytest.raises(PolicyError):
        plan_fleet(
            fleet(protected),
            state(record(protected, "i-a")),
            snapshot(live(protected, "i-a")),
            PlanOptions(destroy=True),
        )


def test_create_before_destroy_marks_replacement():
    old = spec(lifecycle=Lifecycle(create_before_destroy=True))
    new = spec(region="us-1", lifecycle=Lifecycle(create_before_destroy=True))
    plan = plan_fleet(fleet(new), state(record(old, "i-1")), snapshot(live(old, "i-1")))
    change = only(plan)
    assert change.action is Action.REPLACE and change.create_before_destroy


def test_replace_option_forces_replacement():
    s = spec()
    plan = plan_fleet(
        fleet(s),
        state(record(s, "i-1")),
        snapshot(live(s, "i-1")),
        PlanOptions(replace=("inference/vllm-0",)),
    )
    change = only(plan)
    assert change.action is Action.REPLACE
    assert codes(change) == [ReasonCode.REPLACE_REQUESTED]


def test_target_limits_the_plan():
    a, b = spec("a"), spec("b")
    plan = plan_fleet(
        fleet(a, b), state(serial=0), snapshot(), PlanOptions(targets=("inference/b",))
    )
    assert [c.address for c in plan.changes] == ["inference/b"]


@pytest.mark.parametrize(
    ("address", "selector", "selected"),
    [
        ("inference/vllm-0", "inference/vllm-0", True),
        ("inference/vllm-0", "inference/vllm", True),
        ("inference/vllm-big-0", "inference/vllm", False),
        ("inference/vllm-0", "inference", True),
        ("inference2/vllm-0", "inference", False),
    ],
)
def test_address_selected(address, selector, selected):
    assert address_selected(address, [selector]) is selected


def test_pending_and_ambiguous_intents_block_their_address():
    a, b = spec("a"), spec("b")
    intents = (
        ResolvedIntent(intent_id="t1", address="inference/a", resolution=IntentResolution.PENDING),
        ResolvedIntent(
            intent_id="t2",
            address="inference/b",
            resolution=IntentResolution.AMBIGUOUS,
            resource_ids=("x", "y"),
        ),
    )
    plan = plan_fleet(fleet(a, b), state(serial=0), snapshot(intents=intents))
    assert plan.changes == ()
    assert [x.address for x in plan.blocked] == ["inference/a", "inference/b"]
    assert "x, y" in plan.blocked[1].message


def test_found_and_abandoned_intents_are_released():
    s = spec()
    intents = (
        ResolvedIntent(
            intent_id="t1",
            address=s.address,
            resolution=IntentResolution.FOUND,
            resource_ids=("i-9",),
        ),
        ResolvedIntent(intent_id="t0", address=s.address, resolution=IntentResolution.ABANDONED),
    )
    plan = plan_fleet(fleet(s), state(), snapshot(orphans=(live(s, "i-9"),), intents=intents))
    assert plan.released_intents == ("t0", "t1")
    assert only(plan).adopt


def test_plan_is_deterministic():
    specs = [spec(f"n-{i}") for i in range(20)]
    p1 = plan_fleet(fleet(*specs), state(serial=0), snapshot())
    p2 = plan_fleet(fleet(*reversed(specs)), state(serial=0), snapshot())
    assert p1 == p2
    assert [c.address for c in p1.changes] == sorted(c.address for c in p1.changes)


def test_a_new_instance_with_an_auto_delete_date_in_the_past_is_a_manifest_error():
    """Shadeform would delete the new machine at once; an existing one is left alone."""
    past = {"date_threshold": "2020-01-01T00:00:00Z"}
    new = spec("a", auto_delete=past)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    with pytest.raises(ManifestError) as caught:
        plan_fleet(fleet(new), state(), snapshot(), PlanOptions(now=now))
    (issue,) = caught.value.issues
    assert issue.field == "auto_delete.date_threshold" and caught.value.exit_code == 3
    assert "inference/a: 2020-01-01T00:00:00Z is in the past" in issue.message
    running = spec("b", auto_delete=past)
    quiet = plan_fleet(
        fleet(running),
        state(record(running, "i-1")),
        snapshot(live(running, "i-1")),
        PlanOptions(now=now),
    )
    assert not quiet.has_changes  # existing instances are not held to it
    destroy = plan_fleet(
        fleet(running),
        state(record(running, "i-1")),
        snapshot(live(running, "i-1")),
        PlanOptions(now=now, destroy=True),
    )
    assert destroy.count(Action.DELETE) == 1  # and can still be destroyed
    later = plan_fleet(
        fleet(spec("c", auto_delete={"date_threshold": "2030-01-01T00:00:00Z"})),
        state(),
        snapshot(),
        PlanOptions(now=now),
    )
    assert later.count(Action.CREATE) == 1


def test_a_pending_create_outside_the_target_neither_blocks_nor_waits():
    a, b = spec("a"), spec("b")
    intents = (
        ResolvedIntent(intent_id="t1", address="inference/b", resolution=IntentResolution.PENDING),
    )
    targeted = plan_fleet(
        fleet(a, b), state(), snapshot(intents=intents), PlanOptions(targets=("inference/a",))
    )
    assert targeted.blocked == () and targeted.pending == ()
    everything = plan_fleet(fleet(a, b), state(), snapshot(intents=intents), PlanOptions())
    assert [p.address for p in everything.pending] == ["inference/b"]
