"""Rolling replacement, pure: which replicas go in which wave, create-first or destroy-first,
the floor and the peak, what an earlier run left, the warning without a strategy, and the
budget at the peak."""

from __future__ import annotations

import pytest

from reconciler.engine.planner import PlanOptions, plan_fleet
from reconciler.errors import BudgetError
from reconciler.models.catalog import Catalog, Offer
from reconciler.models.live import Health
from reconciler.models.plan import Action
from reconciler.models.spec import Budget, Readiness, UpdateStrategy

from .factories import fleet, live, record, snapshot, spec, state

GROUP = "inference/mistral"
CATALOG = Catalog(
    offers=(
        Offer(
            cloud="hyperstack",
            region="canada-1",
            shade_instance_type="A6000",
            hourly_price_cents=100,
            boot_seconds_max=600,
        ),
    )
)


def replicas(n: int, *, strategy: UpdateStrategy | None, image: str = "vllm:1", **extra):
    return [
        spec(
            f"mistral-{i}",
            group=GROUP,
            update_strategy=strategy,
            os=f"os-{image}",
            **extra,
        )
        for i in range(n)
    ]


def running(n: int, *, healthy: dict[int, Health] | None = None):
    """A group of ``n`` replicas applied with the old image and running (health per index)."""
    old = replicas(n, strategy=None, image="vllm:1")
    health = healthy or {}
    seen = snapshot(
        *(
            live(s, f"i-{i}", health=health.get(i, Health.HEALTHY), hourly_price=100)
            for i, s in enumerate(old)
        )
    )
    return state(*(record(s, f"i-{i}") for i, s in enumerate(old))), seen


def changed(n: int, strategy: UpdateStrategy | None, **extra):
    return fleet(*replicas(n, strategy=strategy, image="vllm:2", **extra))


def by_address(plan):
    return {c.address: c for c in plan.changes}


def test_four_replicas_roll_in_two_waves_of_one_surge_and_one_unavailable():
    recorded, seen = running(4)
    plan = plan_fleet(
        changed(4, UpdateStrategy(max_unavailable=1, max_surge=1)), recorded, seen, catalog=CATALOG
    )
    (rollout,) = plan.rollouts
    assert rollout.group == GROUP and (rollout.replicas, rollout.serving) == (4, 4)
    assert [(w.number, w.addresses, w.create_first) for w in rollout.waves] == [
        (1, ("inference/mistral-0", "inference/mistral-1"), ("inference/mistral-0",)),
        (2, ("inference/mistral-2", "inference/mistral-3"), ("inference/mistral-2",)),
    ]
    assert (rollout.serving_floor, rollout.peak_running) == (3, 5)
    assert rollout.expected_seconds == 1200
    changes = by_address(plan)
    assert [(changes[f"{GROUP}-{i}"].wave, changes[f"{GROUP}-{i}"].create_before_destroy)
            for i in range(4)] == [(1, True), (1, False), (2, True), (2, False)]  # fmt: skip
    assert {c.rollout for c in plan.changes} == {GROUP}
    # Peak: one surge replica at $1/h beside the fleet's $4/h.
    assert rollout.surge_hourly_cents == 100
    assert plan.cost.peak == 500 and plan.cost.hourly_cents_after == 400


def test_no_surge_means_one_down_at_a_time_and_no_extra_cost():
    recorded, seen = running(4)
    plan = plan_fleet(
        changed(4, UpdateStrategy(max_unavailable=1, max_surge=0)), recorded, seen, catalog=CATALOG
    )
    (rollout,) = plan.rollouts
    assert [w.addresses for w in rollout.waves] == [(f"{GROUP}-{i}",) for i in range(4)]
    assert all(w.create_first == () for w in rollout.waves)
    assert (rollout.serving_floor, rollout.peak_running, rollout.surge_hourly_cents) == (3, 4, 0)
    assert not any(c.create_before_destroy for c in plan.changes)
    assert plan.cost.hourly_cents_peak is None


def test_surge_only_keeps_every_replica_serving():
    recorded, seen = running(3)
    plan = plan_fleet(
        changed(3, UpdateStrategy(max_unavailable=0, max_surge=2)), recorded, seen, catalog=CATALOG
    )
    (rollout,) = plan.rollouts
    assert [w.addresses for w in rollout.waves] == [
        (f"{GROUP}-0", f"{GROUP}-1"),
        (f"{GROUP}-2",),
    ]
    assert all(c.create_before_destroy for c in plan.changes)
    assert (rollout.serving_floor, rollout.peak_running) == (3, 5)


def test_a_broken_replica_is_repaired_in_wave_zero_before_the_group_rolls():
    recorded, seen = running(3, healthy={1: Health.BROKEN})
    plan = plan_fleet(
        changed(3, UpdateStrategy(max_unavailable=1, max_surge=1)), recorded, seen, catalog=CATALOG
    )
    (rollout,) = plan.rollouts
    assert rollout.serving == 2
    assert [(w.number, w.addresses) for w in rollout.waves] == [
        (0, (f"{GROUP}-1",)),
        (1, (f"{GROUP}-0", f"{GROUP}-2")),
    ]
    assert rollout.serving_floor == 2


def test_a_replica_still_booting_is_waited_for_before_the_group_rolls():
    """A restart after a destroy-first slot had created its new replica: it is booting."""
    old = replicas(2, strategy=None, image="vllm:1")
    new = replicas(2, strategy=None, image="vllm:2")
    recorded = state(record(new[0], "i-new"), record(old[1], "i-1"))
    seen = snapshot(
        live(new[0], "i-new", health=Health.IN_PROGRESS), live(old[1], "i-1", hourly_price=100)
    )
    plan = plan_fleet(
        changed(2, UpdateStrategy(max_unavailable=1, max_surge=0)), recorded, seen, catalog=CATALOG
    )
    (rollout,) = plan.rollouts
    assert [(w.number, w.addresses) for w in rollout.waves] == [
        (0, (f"{GROUP}-0",)),
        (1, (f"{GROUP}-1",)),
    ]
    waiting = [c for c in plan.changes if c.address == f"{GROUP}-0"]
    assert [(c.action, c.serving_first, c.wave) for c in waiting] == [(Action.NOOP, "i-new", 0)]
    assert not plan.in_sync


def test_a_predecessor_whose_successor_still_boots_is_deleted_only_once_it_serves():
    """A restart after a create-first slot had created its new replica: the old one still
    serves (an orphan now), the new one boots. Its delete waits for the new one."""
    old = replicas(2, strategy=None, image="vllm:1")
    new = replicas(2, strategy=None, image="vllm:2")
    recorded = state(record(new[0], "i-new"), record(old[1], "i-1"))
    seen = snapshot(
        live(new[0], "i-new", health=Health.IN_PROGRESS),
        live(old[1], "i-1"),
        orphans=(live(old[0], "i-0"),),
    )
    plan = plan_fleet(
        changed(2, UpdateStrategy(max_unavailable=1, max_surge=1)), recorded, seen, catalog=CATALOG
    )
    retire = [c for c in plan.changes if c.resource_id == "i-0"]
    assert [(c.action, c.serving_first, c.wave) for c in retire] == [(Action.DELETE, "i-new", 0)]
    assert "deleted once i-new serves" in retire[0].reasons[0].message
    (rollout,) = plan.rollouts
    assert rollout.serving == 2, "the predecessor still serves its address"
    assert [w.number for w in rollout.waves] == [0, 1]


def test_the_same_predecessor_without_a_strategy_still_waits_for_its_successor():
    old, new = spec("web", os="os-1"), spec("web", os="os-2")
    seen = snapshot(live(new, "i-new", health=Health.IN_PROGRESS), orphans=(live(old, "i-old"),))
    plan = plan_fleet(fleet(new), state(record(new, "i-new")), seen)
    (retire,) = [c for c in plan.changes if c.action is Action.DELETE]
    assert (retire.resource_id, retire.serving_first) == ("i-old", "i-new")


def test_a_broken_successor_keeps_its_serving_predecessor():
    old, new = spec("web", os="os-1"), spec("web", os="os-2")
    seen = snapshot(live(new, "i-new", health=Health.BROKEN), orphans=(live(old, "i-old"),))
    plan = plan_fleet(fleet(new), state(record(new, "i-new")), seen)
    assert not [c for c in plan.changes if c.resource_id == "i-old"]
    assert any("kept i-old, which still serves" in w for w in plan.warnings)
    assert by_address(plan)["inference/web"].action is Action.REPLACE


def test_without_a_strategy_a_group_going_down_at_once_is_a_warning():
    recorded, seen = running(2)
    plan = plan_fleet(changed(2, None), recorded, seen, catalog=CATALOG)
    assert plan.rollouts == ()
    (warning,) = [w for w in plan.warnings if GROUP in w]
    assert "every serving replica (2 of 2) is replaced at once" in warning
    assert "about 10 min" in warning and "update_strategy" in warning


def test_no_warning_when_replicas_are_replaced_create_first_or_one_stays():
    from reconciler.models.spec import Lifecycle

    recorded, seen = running(2)
    cbd = changed(2, None, lifecycle=Lifecycle(create_before_destroy=True))
    assert not plan_fleet(cbd, recorded, seen, catalog=CATALOG).warnings
    one_changed = fleet(
        *replicas(1, strategy=None, image="vllm:2"),
        replicas(2, strategy=None, image="vllm:1")[1],
    )
    assert not plan_fleet(one_changed, recorded, seen, catalog=CATALOG).warnings


def test_the_budget_check_uses_the_peak_of_the_rollout():
    recorded, seen = running(4)
    desired = changed(4, UpdateStrategy(max_unavailable=0, max_surge=2))
    over = desired.model_copy(update={"budget": Budget(max_hourly="5.00")})
    with pytest.raises(BudgetError) as refused:
        plan_fleet(over, recorded, seen, catalog=CATALOG)
    assert "$6.00/h at the peak of the change" in str(refused.value)
    assert "smaller max_surge" in str(refused.value)
    enough = desired.model_copy(update={"budget": Budget(max_hourly="6.00")})
    assert plan_fleet(enough, recorded, seen, catalog=CATALOG).cost.peak == 600


def test_a_destroy_and_unchanged_groups_plan_no_rollout():
    recorded, seen = running(2)
    desired = changed(2, UpdateStrategy(max_unavailable=1, max_surge=1))
    assert plan_fleet(desired, recorded, seen, PlanOptions(destroy=True)).rollouts == ()
    same = fleet(*replicas(2, strategy=UpdateStrategy(max_unavailable=1, max_surge=1)))
    assert plan_fleet(same, recorded, seen, catalog=CATALOG).rollouts == ()


def test_the_rollout_names_its_readiness_command():
    recorded, seen = running(2)
    ready = Readiness(command=("scripts/ready.sh",), timeout_seconds=60, interval_seconds=5)
    desired = changed(2, UpdateStrategy(max_unavailable=1, max_surge=0), readiness=ready)
    (rollout,) = plan_fleet(desired, recorded, seen, catalog=CATALOG).rollouts
    assert rollout.readiness == ("scripts/ready.sh",)


def test_a_booting_replica_an_earlier_run_created_is_adopted_in_wave_zero_and_awaited():
    """Killed between a destroy-first slot's create and saving its id: the address has no
    live record, its new replica boots as an orphan. It is adopted in wave 0, which waits
    until it serves before a destroy-first slot takes another replica down."""
    old = replicas(3, strategy=None, image="vllm:1")
    new = replicas(3, strategy=None, image="vllm:2")
    recorded = state(record(old[1], "i-1"), record(old[2], "i-2"))
    seen = snapshot(
        live(old[1], "i-1", hourly_price=100),
        live(old[2], "i-2", hourly_price=100),
        orphans=(live(new[0], "i-new", health=Health.IN_PROGRESS),),
    )
    plan = plan_fleet(
        changed(3, UpdateStrategy(max_unavailable=1, max_surge=0)), recorded, seen, catalog=CATALOG
    )
    (adopted,) = [c for c in plan.changes if c.address == f"{GROUP}-0"]
    assert (adopted.action, adopted.adopt, adopted.wave, adopted.serving_first) == (
        Action.NOOP,
        True,
        0,
        "i-new",
    )
    assert [w.number for w in plan.rollouts[0].waves] == [0, 1, 2]


def test_a_duplicate_left_by_an_earlier_run_goes_in_wave_zero():
    """Killed after a create-first slot's successor served, before its predecessor went:
    the predecessor is deleted (and waited out) before the next wave surges."""
    old = replicas(2, strategy=None, image="vllm:1")
    new = replicas(2, strategy=None, image="vllm:2")
    recorded = state(record(new[0], "i-new"), record(old[1], "i-1"))
    seen = snapshot(live(new[0], "i-new"), live(old[1], "i-1"), orphans=(live(old[0], "i-0"),))
    plan = plan_fleet(
        changed(2, UpdateStrategy(max_unavailable=0, max_surge=1)), recorded, seen, catalog=CATALOG
    )
    (retire,) = [c for c in plan.changes if c.resource_id == "i-0"]
    assert (retire.action, retire.wave, retire.serving_first) == (Action.DELETE, 0, None)
    (rolled,) = [c for c in plan.changes if c.address == f"{GROUP}-1"]
    assert rolled.wave == 1


def _pending(address: str):
    from reconciler.models.live import IntentResolution, ResolvedIntent
    from reconciler.models.state import CreateIntent

    intent = CreateIntent(
        intent_id="t-1", address=address, kind="instance", created_at="2026-11-27T10:00:00Z"
    )
    resolved = ResolvedIntent(
        intent_id="t-1",
        address=address,
        kind="instance",
        resolution=IntentResolution.PENDING,
        age_seconds=5,
        grace_seconds=60,
    )
    return intent, resolved


def test_a_replica_down_with_nothing_to_bring_it_back_uses_up_max_unavailable():
    """An earlier run's destroy-first slot was killed before its create's answer: the
    replica is gone and its create pending. Taking another one down would break the floor."""
    old = replicas(4, strategy=None, image="vllm:1")
    intent, resolved = _pending(f"{GROUP}-1")
    recorded = state(*(record(s, f"i-{i}") for i, s in enumerate(old) if i != 1))
    recorded = recorded.model_copy(update={"intents": {"t-1": intent}})
    seen = snapshot(
        *(live(s, f"i-{i}", hourly_price=100) for i, s in enumerate(old) if i != 1),
        intents=(resolved,),
    )
    no_surge = plan_fleet(
        changed(4, UpdateStrategy(max_unavailable=1, max_surge=0)), recorded, seen, catalog=CATALOG
    )
    assert no_surge.rollouts == () and not [c for c in no_surge.changes if c.action.is_change]
    blocked = {b.address: b.message for b in no_surge.blocked}
    assert "allows no more to go" in blocked[f"{GROUP}-0"] and f"{GROUP}-1" in blocked[f"{GROUP}-0"]
    surge = plan_fleet(
        changed(4, UpdateStrategy(max_unavailable=1, max_surge=1)), recorded, seen, catalog=CATALOG
    )
    (rollout,) = surge.rollouts
    assert all(w.addresses == w.create_first for w in rollout.waves), "only create-first slots"
    assert rollout.serving_floor == 3


READY = Readiness(command=("ready.sh",), timeout_seconds=60, interval_seconds=5)


def test_an_active_successor_that_has_not_passed_readiness_is_not_serving_yet():
    """Killed after a create-first slot's successor became active, before its readiness
    check passed (a model still loading): its predecessor waits for it, and so does the
    next wave."""
    old = replicas(2, strategy=None, image="vllm:1")
    new = replicas(2, strategy=None, image="vllm:2", readiness=READY)
    unready = record(new[0], "i-new").model_copy(update={"awaiting_readiness": True})
    recorded = state(unready, record(old[1], "i-1"))
    seen = snapshot(live(new[0], "i-new"), live(old[1], "i-1"), orphans=(live(old[0], "i-0"),))
    desired = changed(2, UpdateStrategy(max_unavailable=1, max_surge=0), readiness=READY)
    plan = plan_fleet(desired, recorded, seen, catalog=CATALOG)
    (retire,) = [c for c in plan.changes if c.resource_id == "i-0"]
    assert (retire.serving_first, retire.wave) == ("i-new", 0)
    assert "active, not ready yet" in retire.reasons[0].message
    (rollout,) = plan.rollouts
    assert [w.number for w in rollout.waves] == [0, 1]
    # Without the predecessor (it is gone), the successor itself is waited for in wave 0.
    alone = plan_fleet(
        desired, recorded, snapshot(live(new[0], "i-new"), live(old[1], "i-1")), catalog=CATALOG
    )
    (waits,) = [c for c in alone.changes if c.address == f"{GROUP}-0"]
    assert (waits.action, waits.serving_first, waits.wave) == (Action.NOOP, "i-new", 0)
    # Once it passed, it serves: nothing to wait for.
    passed = state(record(new[0], "i-new"), record(old[1], "i-1"))
    done = plan_fleet(
        desired, passed, snapshot(live(new[0], "i-new"), live(old[1], "i-1")), catalog=CATALOG
    )
    assert [w.number for w in done.rollouts[0].waves] == [1]
