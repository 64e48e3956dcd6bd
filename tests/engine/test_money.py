"""Planner table tests on a fixed catalog: cost figures, budgets, placement choices."""

from __future__ import annotations

import pytest

from reconciler.engine.planner import PlanOptions, plan_fleet
from reconciler.errors import BudgetError, ManifestError
from reconciler.models.catalog import Catalog, Offer
from reconciler.models.plan import Action
from reconciler.models.spec import Budget, Placement, PlacementCandidate, PlacementRequirements

from .factories import FLEET, fleet, live, record, snapshot, spec, state


def offer(
    cloud, region, kind, cents, *, rental="on_demand", available=True, gpu=None, vram=80, boot=300
):
    return Offer(
        cloud=cloud,
        region=region,
        shade_instance_type=kind,
        rental_type=rental,
        hourly_price_cents=cents,
        available=available,
        gpu_type=gpu or kind,
        num_gpus=8 if kind.startswith("8x") else 1,
        vram_per_gpu_in_gb=vram,
        boot_seconds_max=boot,
    )


CATALOG = Catalog(
    offers=(
        offer("hyperstack", "canada-1", "A6000", 80, vram=48),
        offer("hyperstack", "canada-1", "A6000", 40, rental="spot", vram=48),
        offer("lambdalabs", "us-east-1", "H100", 249),
        offer("datacrunch", "FIN-01", "H100", 219),
        offer("datacrunch", "FIN-01", "H100", 110, rental="spot"),
        offer("nebius", "eu-north1", "H100", 199, available=False),
    )
)


def with_budget(*specs, **budget):
    return fleet(*specs).model_copy(update={"budget": Budget(**budget)})


def h100_envelope(strategy="ordered", **req):
    return Placement(
        strategy=strategy,
        candidates=(
            PlacementCandidate(cloud="lambdalabs", region="us-east-1", shade_instance_type="H100"),
            PlacementCandidate(cloud="datacrunch", region="FIN-01", shade_instance_type="H100"),
        ),
        requirements=PlacementRequirements(**req) if req else None,
    )


def placed(name="gpu", placement=None):
    return spec(
        name,
        cloud=None,
        region=None,
        shade_instance_type=None,
        placement=placement or h100_envelope(),
    )


def plan(f, st=None, snap=None, **options):
    return plan_fleet(f, st or state(serial=0), snap or snapshot(), PlanOptions(**options), CATALOG)


def test_create_shows_price_and_fleet_burn_rate():
    p = plan(fleet(spec("a"), spec("b", rental_type="spot")))
    prices = [c.hourly_cents_after for c in p.changes]
    assert prices == [80, 40]
    assert (p.cost.hourly_cents_before, p.cost.hourly_cents_after) == (0, 120)
    assert p.cost.monthly_cents_after == 120 * 720


def test_existing_instances_count_before_and_after_and_delete_lowers_the_rate():
    a, b = spec("a"), spec("b")
    st = state(record(a, "i-a"), record(b, "i-b"))
    snap = snapshot(live(a, "i-a"), live(b, "i-b"))
    p = plan(fleet(a), st, snap)
    assert (p.cost.hourly_cents_before, p.cost.hourly_cents_after) == (160, 80)
    (delete,) = [c for c in p.changes if c.action is Action.DELETE]
    assert delete.hourly_cents_before == 80 and delete.hourly_cents_after is None


def test_live_hourly_price_wins_over_catalog():
    a = spec("a")
    snap = snapshot(live(a, "i-a").model_copy(update={"hourly_price": 95}))
    p = plan(fleet(a), state(record(a, "i-a")), snap)
    assert p.cost.hourly_cents_before == 95 == p.cost.hourly_cents_after


def test_replacement_shows_old_and_new_price():
    old, new = (
        spec("a"),
        spec("a", cloud="lambdalabs", region="us-east-1", shade_instance_type="H100"),
    )
    p = plan(fleet(new), state(record(old, "i-a")), snapshot(live(old, "i-a")))
    (change,) = p.changes
    assert change.action is Action.REPLACE
    assert (change.hourly_cents_before, change.hourly_cents_after) == (80, 249)


def test_ordered_placement_takes_first_available_and_lists_fallbacks():
    p = plan(fleet(placed()))
    (change,) = p.changes
    assert change.placement.chosen.cloud == "lambdalabs"
    assert [o.cloud for o in change.placement.fallbacks] == ["datacrunch"]
    assert change.after["cloud"] == "lambdalabs" and change.hourly_cents_after == 249


def test_cheapest_strategy_with_requirements_adds_matching_offers():
    envelope = h100_envelope("cheapest", gpu_type="H100", rental_types=("on_demand", "spot"))
    p = plan(fleet(placed(placement=envelope)))
    (change,) = p.changes
    assert change.placement.chosen.key == ("datacrunch", "FIN-01", "H100", "spot")
    keys = [o.key for o in change.placement.fallbacks]
    assert ("nebius", "eu-north1", "H100", "on_demand") not in keys  # unavailable now
    assert [o.hourly_price_cents for o in change.placement.fallbacks] == [219, 249]


def test_requirements_filter_by_price_and_vram():
    envelope = Placement(
        requirements=PlacementRequirements(min_vram_per_gpu_in_gb=80, max_hourly_price="2.20")
    )
    p = plan(fleet(placed(placement=envelope)))
    (change,) = p.changes
    assert change.placement.chosen.key == ("datacrunch", "FIN-01", "H100", "on_demand")
    assert change.placement.fallbacks == ()


def test_no_available_offer_is_reported_per_instance():
    envelope = Placement(
        candidates=(
            PlacementCandidate(cloud="nebius", region="eu-north1", shade_instance_type="H100"),
        )
    )
    p = plan(fleet(placed(placement=envelope), spec("ok")))
    assert [c.address for c in p.changes] == [f"{FLEET}/ok"]
    (missing,) = p.no_capacity
    assert missing.address == f"{FLEET}/gpu" and "H100 in nebius/eu-north1" in missing.message


def test_a_fixed_spec_the_catalog_does_not_list_is_a_typo_not_no_capacity():
    with pytest.raises(ManifestError) as caught:
        plan(fleet(spec("a", shade_instance_type="B300")))
    (issue,) = caught.value.issues
    assert issue.field == "shade_instance_type"
    assert "inference/a: hyperstack does not offer instance type 'B300'" in issue.message


def test_an_existing_instance_whose_type_left_the_catalog_is_left_alone():
    s = spec("a", shade_instance_type="B300")
    p = plan(fleet(s), state(record(s, "i-1")), snapshot(live(s, "i-1")))
    assert [c.action for c in p.changes] == [Action.NOOP]


def test_existing_placement_is_not_moved_when_prices_or_availability_change():
    s = placed()
    current = spec("gpu", cloud="datacrunch", region="FIN-01", shade_instance_type="H100")
    rec = record(current, "i-1").model_copy(
        update={"applied_spec": {**record(current, "i-1").applied_spec}}
    )
    p = plan(fleet(s), state(rec), snapshot(live(current, "i-1")))
    (change,) = p.changes
    assert change.action is Action.NOOP  # datacrunch is still in the envelope, even if not first


def test_envelope_change_excluding_current_placement_forces_replacement():
    current = spec("gpu", cloud="hyperstack", region="canada-1", shade_instance_type="A6000")
    p = plan(fleet(placed()), state(record(current, "i-1")), snapshot(live(current, "i-1")))
    (change,) = p.changes
    assert change.action is Action.REPLACE
    assert change.placement.chosen.cloud == "lambdalabs"
    assert {fc.path for fc in change.field_changes} >= {"cloud", "region", "shade_instance_type"}


def test_preempted_spot_is_recreated_within_its_envelope():
    envelope = Placement(
        candidates=(
            PlacementCandidate(
                cloud="datacrunch", region="FIN-01", shade_instance_type="H100", rental_type="spot"
            ),
        )
    )
    s = placed(placement=envelope)
    current = spec(
        "gpu", cloud="datacrunch", region="FIN-01", shade_instance_type="H100", rental_type="spot"
    )
    from reconciler.models.live import Health

    gone = live(current, "i-1", health=Health.GONE, status_details="preempted")
    p = plan(fleet(s), state(record(current, "i-1")), snapshot(gone))
    (change,) = p.changes
    assert change.action is Action.CREATE and change.reasons[0].code.value == "preempted"
    assert change.placement.chosen.key == ("datacrunch", "FIN-01", "H100", "spot")


@pytest.mark.parametrize(
    ("budget", "needle"),
    [
        ({"max_hourly": "1.00"}, "over max_hourly $1.00/h"),
        ({"max_instance_hourly": "2.00"}, "would cost $2.49/h, over max_instance_hourly"),
        ({"max_creates_per_apply": 1}, "2 instances would be created"),
    ],
)
def test_budget_violations_fail_with_explanation(budget, needle):
    f = with_budget(
        spec("a"),
        spec("b", cloud="lambdalabs", region="us-east-1", shade_instance_type="H100"),
        **budget,
    )
    with pytest.raises(BudgetError) as raised:
        plan(f)
    assert needle in str(raised.value)
    assert raised.value.exit_code == 11


def test_budget_override_is_explicit_and_recorded():
    f = with_budget(spec("a"), spec("b"), max_hourly="1.00")
    p = plan(f, allow_over_budget=True)
    assert p.budget_overrides and "max_hourly" in p.budget_overrides[0]
    assert len(p.changes) == 2


def test_within_budget_passes_and_fallbacks_never_exceed_the_instance_ceiling():
    envelope = h100_envelope()
    f = with_budget(placed(placement=envelope), max_instance_hourly="2.49", max_hourly="10.00")
    p = plan(f)
    assert p.budget_overrides == ()
    f2 = with_budget(placed(placement=envelope), max_instance_hourly="2.30")
    with pytest.raises(BudgetError):
        plan(f2)  # the first available offer costs $2.49/h


def test_plan_over_budget_already_but_shrinking_is_allowed():
    a, b = spec("a"), spec("b")
    st = state(record(a, "i-a"), record(b, "i-b"))
    snap = snapshot(live(a, "i-a"), live(b, "i-b"))
    p = plan(with_budget(a, max_hourly="0.50"), st, snap)  # 1.60 -> 0.80: still over, but lower
    assert p.cost.hourly_cents_after == 80


def test_a_targeted_plan_still_shows_the_whole_fleets_burn():
    a, b = spec("a"), spec("b")
    changed = spec("a", tags=("team-ml", "prod"))
    whole = plan(fleet(a, b), state(record(a, "i-1"), record(b, "i-2")),
                 snapshot(live(a, "i-1"), live(b, "i-2")))  # fmt: skip
    targeted = plan(
        fleet(changed, b),
        state(record(a, "i-1"), record(b, "i-2")),
        snapshot(live(a, "i-1"), live(b, "i-2")),
        targets=("inference/a",),
    )
    assert [c.address for c in targeted.changes] == ["inference/a"]
    assert targeted.cost.hourly_cents_before == whole.cost.hourly_cents_before == 160
    assert targeted.cost.hourly_cents_after == 160


def test_a_targeted_plan_cannot_slip_past_the_fleets_max_hourly():
    a, b = spec("a"), spec("b")
    capped = fleet(a, b).model_copy(update={"budget": Budget(max_hourly="1.20")})
    with pytest.raises(BudgetError):  # b alone fits, but the fleet would burn $1.60/h
        plan(capped, state(record(a, "i-1")), snapshot(live(a, "i-1")), targets=("inference/b",))
