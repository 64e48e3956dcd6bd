"""Refresh against the emulator: out-of-band deletes, renames, retags, errors, preemption."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from reconciler.engine.kinds.instance import InstanceKind
from reconciler.engine.refresh import RefreshOptions, refresh_fleets, resolve_intents
from reconciler.models.live import Health, IntentResolution
from reconciler.models.plan import Action, ReasonCode
from reconciler.models.state import CreateIntent

from .factories import fleet, spec
from .harness import Loop, make_client, make_emulator


def run(coro):
    return asyncio.run(coro)


def applied(loop: Loop, *specs):
    f = fleet(*specs)
    report = run(loop.apply(f))
    assert not report.failed
    return f, {a: r.instance_id for a, r in loop.store.read("inference").instances.items()}


def snapshot(loop: Loop, f, **options):
    async def go():
        async with make_client(loop.emulator) as client:
            return await refresh_fleets(
                client,
                {f.name: loop.state(f)},
                now=datetime.now(UTC),
                options=RefreshOptions(**options),
            )

    return run(go())[f.name]


def only_change(plan):
    (change,) = [c for c in plan.fleets[0].changes if c.action is not Action.NOOP or c.adopt]
    return change


def test_healthy_instances_are_seen_with_observed_fields():
    loop = Loop(make_emulator())
    f, ids = applied(loop, spec("a"))
    live = snapshot(loop, f).by_id[ids["inference/a"]]
    assert live.health is Health.HEALTHY
    assert live.observed["name"] == "a"
    assert live.observed["tags"] == ["team-ml"]  # ownership tags are not user tags
    assert live.fleet == "inference" and live.address == "inference/a"


def test_list_only_mode_for_large_fleets_still_sees_instances():
    loop = Loop(make_emulator())
    f, ids = applied(loop, spec("a"), spec("b"))
    snap = snapshot(loop, f, info_threshold=0)
    assert set(snap.by_id) == set(ids.values())
    assert "auto_delete" not in snap.by_id[ids["inference/a"]].observed  # list lacks it


def test_out_of_band_delete_is_gone():
    loop = Loop(make_emulator())
    f, ids = applied(loop, spec("a"))
    loop.emulator.delete_instance_out_of_band(ids["inference/a"])
    assert snapshot(loop, f).by_id == {}
    assert only_change(run(loop.plan(f))).reasons[0].code is ReasonCode.DELETED_OUTSIDE


def test_out_of_band_rename_and_retag_are_planned_back():
    loop = Loop(make_emulator())
    f, ids = applied(loop, spec("a"), spec("b"))
    loop.emulator.rename_instance(ids["inference/a"], "hijacked")
    loop.emulator.retag_instance(
        ids["inference/b"],
        ["other", "reconciler:fleet=inference", "reconciler:address=inference/b"],
    )
    plan = run(loop.plan(f))
    changes = {c.address: c for c in plan.fleets[0].changes}
    assert changes["inference/a"].action is Action.UPDATE
    assert changes["inference/a"].field_changes[0].before == "hijacked"
    assert changes["inference/b"].action is Action.UPDATE
    assert changes["inference/b"].field_changes[0].before == ["other"]
    run(loop.apply(f, plan))
    assert not run(loop.plan(f)).has_changes


def test_instance_in_error_is_broken_and_replaced():
    loop = Loop(make_emulator())
    f, ids = applied(loop, spec("a"))
    loop.emulator.fail_instance(ids["inference/a"], details="provider lost the host")
    assert snapshot(loop, f).by_id[ids["inference/a"]].health is Health.BROKEN
    change = only_change(run(loop.plan(f)))
    assert change.action is Action.REPLACE and change.reasons[0].code is ReasonCode.IN_ERROR
    run(loop.apply(f))
    assert not run(loop.plan(f)).has_changes


def test_preempted_spot_instance_is_recreated():
    loop = Loop(make_emulator(delete_seconds=60.0))
    f, ids = applied(loop, spec("a", rental_type="spot"))
    loop.emulator.preempt_instance(ids["inference/a"])
    live = snapshot(loop, f).by_id[ids["inference/a"]]
    assert live.health is Health.GONE and live.preempted
    change = only_change(run(loop.plan(f)))
    assert change.action is Action.CREATE and change.reasons[0].code is ReasonCode.PREEMPTED


def test_orphans_of_other_fleets_are_ignored():
    loop = Loop(make_emulator())
    f, _ = applied(loop, spec("a"))
    other = fleet().model_copy(update={"name": "other"})
    snap = snapshot(loop, other)
    assert snap.orphans == ()


def test_resolve_intents_found_pending_abandoned_ambiguous():
    loop = Loop(make_emulator())
    f, ids = applied(loop, spec("a"))
    now = datetime.now(UTC)
    state = loop.state(f).model_copy(
        update={
            "intents": {
                "t-pending": CreateIntent(
                    intent_id="t-pending", address="inference/b", created_at=now.isoformat()
                ),
                "t-old": CreateIntent(
                    intent_id="t-old",
                    address="inference/c",
                    created_at=(now - timedelta(hours=1)).isoformat(),
                ),
            }
        }
    )

    async def listed():
        async with make_client(loop.emulator) as client:
            return await client.list_instances()

    instances = run(listed())

    class Listing:
        """A client whose list call returns ``listed`` (info calls: nothing)."""

        def __init__(self, listed):
            self.listed = listed

        async def list_instances(self):
            return self.listed

        async def get_instances(self, ids):
            return {i: next((x for x in self.listed if x.id == i), None) for i in ids}

    def resolved_with(listed):
        seen = run(InstanceKind().observe(Listing(listed), {"inference": state}, 100))
        matches = seen["inference"].intent_matches
        return {
            r.intent_id: r.resolution
            for r in resolve_intents(state, matches, now=now, grace_seconds=60)
        }

    resolved = resolved_with(instances)
    assert resolved == {"t-pending": IntentResolution.PENDING, "t-old": IntentResolution.ABANDONED}
    tagged = [
        i.model_copy(update={"tags": (*i.tags, "reconciler:intent=t-pending")}) for i in instances
    ]
    resolved = resolved_with(tagged)
    assert resolved["t-pending"] is IntentResolution.FOUND
    twice = tagged + [tagged[0].model_copy(update={"id": "dup"})]
    resolved = resolved_with(twice)
    assert resolved["t-pending"] is IntentResolution.AMBIGUOUS
