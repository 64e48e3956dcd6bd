"""What a watcher may do on its own: heals; everything else waits for a review (pure)."""

from __future__ import annotations

from reconciler.controller.backoff import Backoff
from reconciler.controller.policy import decide
from reconciler.engine.planner import plan_fleet
from reconciler.models.live import Health
from reconciler.models.plan import Action
from tests.engine.factories import fleet, live, record, snapshot, spec, state


def test_gone_preempted_and_broken_instances_are_heals_the_rest_is_reported():
    a, b, c, d = spec("a"), spec("b", rental_type="spot"), spec("c"), spec("d")
    recorded = state(record(a, "i-a"), record(b, "i-b"), record(c, "i-c"), record(d, "i-d"))
    seen = snapshot(
        live(b, "i-b", health=Health.GONE, status="deleting", status_details="preempted"),
        live(c, "i-c", health=Health.BROKEN),
        live(d, "i-d"),
    )  # a: deleted out of band
    desired = fleet(a, b, c, d.model_copy(update={"tags": ("changed",)}), spec("e"))
    plan = plan_fleet(desired, recorded, seen)
    decision = decide(plan, sync=False)
    assert decision.act_on == ("inference/a", "inference/b", "inference/c")
    assert sorted(c.address for c in decision.reported) == ["inference/d", "inference/e"]
    assert {c.action for c in decision.reported} == {Action.UPDATE, Action.CREATE}
    synced = decide(plan, sync=True)
    assert synced.act_on == tuple(f"inference/{n}" for n in "abcde") and synced.reported == ()


def test_a_lost_instance_is_recreated_from_the_manifests_as_they_are_now():
    """The manifests a watcher reads are the reviewed ones (the main branch): a lost
    instance comes back as they say, even if they changed since it was created."""
    plan = plan_fleet(fleet(spec("a", tags=("new",))), state(record(spec("a"), "i-a")), snapshot())
    decision = decide(plan, sync=False)
    assert decision.act_on == ("inference/a",)
    (change,) = plan.changes
    assert change.action is Action.CREATE and change.after["tags"] == ["new"]


def test_backoff_doubles_up_to_its_cap_and_forgets_on_success():
    backoff = Backoff(base=10, cap=35)
    assert [backoff.failed("x", 0) for _ in range(4)] == [10, 20, 35, 35]
    assert backoff.waiting("x", 34) and not backoff.waiting("x", 35)
    backoff.succeeded("x")
    assert not backoff.waiting("x", 0) and backoff.failed("x", 0) == 10


def test_what_an_interrupted_run_left_is_finished_without_a_review():
    """A watcher killed mid-heal left a created instance (adopted by its tags) or two for
    one address (the extra one deleted): finishing that is part of healing."""
    a = spec("a")
    orphan = live(a, "i-new")
    adopted = plan_fleet(fleet(a), state(record(a, "i-gone")), snapshot(orphans=(orphan,)))
    assert [(c.action, c.adopt) for c in adopted.changes] == [(Action.NOOP, True)]
    assert decide(adopted, sync=False).act_on == ("inference/a",)
    twice = plan_fleet(
        fleet(a), state(record(a, "i-1")), snapshot(live(a, "i-1"), orphans=(live(a, "i-2"),))
    )
    assert decide(twice, sync=False).act_on == ("inference/a",)
