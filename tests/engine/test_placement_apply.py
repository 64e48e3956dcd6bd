"""Placement at apply time against the emulator: capacity fallback inside the envelope only,
and spot instances preempted by Shadeform recreated by the next apply."""

from __future__ import annotations

import asyncio

from reconciler.models.spec import Placement, PlacementCandidate

from .factories import fleet, spec
from .harness import Loop, make_emulator


def run(coro):
    return asyncio.run(coro)


def envelope(*offers: tuple[str, str, str, str]) -> Placement:
    return Placement(
        candidates=tuple(
            PlacementCandidate(cloud=c, region=r, shade_instance_type=t, rental_type=rt)
            for c, r, t, rt in offers
        )
    )


H100_FIRST = ("lambdalabs", "us-east-1", "H100", "on_demand")
H100_SECOND = ("datacrunch", "FIN-01", "H100", "on_demand")


def placed(name: str, placement: Placement):
    return spec(name, cloud=None, region=None, shade_instance_type=None, placement=placement)


def test_capacity_gone_after_plan_falls_back_to_next_approved_offer():
    loop = Loop(make_emulator())
    f = fleet(placed("gpu", envelope(H100_FIRST, H100_SECOND)))
    plan = run(loop.plan(f))
    assert plan.fleets[0].changes[0].placement.chosen.cloud == "lambdalabs"
    loop.emulator.set_capacity("lambdalabs", "us-east-1", "H100", available=False)
    report = run(loop.apply(f, plan))
    assert not report.failed, report.failed
    (instance,) = loop.live_for("inference/gpu")
    assert (instance["cloud"], instance["region"]) == ("datacrunch", "FIN-01")
    record = loop.store.read("inference").instances["inference/gpu"]
    assert record.placement["offer"]["cloud"] == "datacrunch"
    assert record.placement["tried"] == ["H100 in lambdalabs/us-east-1"]
    assert not run(loop.plan(f)).has_changes  # stays where it landed


def test_fallback_never_leaves_the_envelope():
    loop = Loop(make_emulator())
    f = fleet(placed("gpu", envelope(H100_FIRST)))
    plan = run(loop.plan(f))
    loop.emulator.set_capacity("lambdalabs", "us-east-1", "H100", available=False)
    report = run(loop.apply(f, plan))
    assert report.failed and "no capacity in any approved offer" in report.failed[0].message
    assert loop.emulator.live_instances() == []  # datacrunch had capacity, but was not approved


def test_preempted_spot_instance_is_recreated_by_the_next_apply():
    loop = Loop(make_emulator(delete_seconds=30.0))
    f = fleet(placed("worker", envelope(("datacrunch", "FIN-01", "H100", "spot"))))
    run(loop.apply(f))
    (first,) = loop.live_for("inference/worker")
    loop.emulator.preempt_instance(first["id"])
    plan = run(loop.plan(f))
    (change,) = plan.fleets[0].changes
    assert change.action.value == "create" and change.reasons[0].code.value == "preempted"
    report = run(loop.apply(f, plan))
    assert not report.failed
    live = [i for i in loop.live_for("inference/worker") if i["status"] != "deleting"]
    assert len(live) == 1 and live[0]["id"] != first["id"]
    record = loop.store.read("inference").instances["inference/worker"]
    assert (
        record.instance_id == live[0]["id"] and record.placement["offer"]["rental_type"] == "spot"
    )
